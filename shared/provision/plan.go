package provision

import (
	"encoding/json"
	"slices"

	"github.com/zeroae/zae-limiter-go/shared/manifest"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Actions of a change.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Change is one config item to create, update or delete.
type Change struct {
	Action string
	manifest.Target
	// Item is the declared content (create and update only).
	Item *manifest.Item
}

// changeJSON is a change on the wire (DECISIONS §4.1): target is null for
// the system level, the resource, or "entity/resource".
type changeJSON struct {
	Action string  `json:"action"`
	Level  string  `json:"level"`
	Target *string `json:"target"`
}

func (c Change) MarshalJSON() ([]byte, error) {
	j := changeJSON{Action: c.Action, Level: c.Level}
	if c.Level != manifest.LevelSystem {
		s := c.Target.String()
		j.Target = &s
	}
	return json.Marshal(j)
}

func (c *Change) UnmarshalJSON(b []byte) error {
	var j changeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	c.Action, c.Target = j.Action, manifest.Target{Level: j.Level}
	if j.Target != nil {
		switch j.Level {
		case manifest.LevelResource:
			c.Resource = *j.Target
		case manifest.LevelEntity:
			// Entity ids cannot hold '/'; resources can.
			for i := range len(*j.Target) {
				if (*j.Target)[i] == '/' {
					c.Entity, c.Resource = (*j.Target)[:i], (*j.Target)[i+1:]
					break
				}
			}
		}
	}
	return nil
}

// Describe is "create entity user-1/gpt-4", "update system".
func (c Change) Describe() string {
	s := c.Action + " " + c.Level
	if t := c.Target.String(); t != "" {
		s += " " + t
	}
	return s
}

// Plan is the content diff of m against the managed set: create what the
// record lacks, update what it holds with other content, delete what it
// holds and m dropped. Items outside the record are created (and so
// replaced) only when m declares them; nothing else is touched.
func Plan(m *manifest.Manifest, rec Record) []Change {
	declared := map[manifest.Target]bool{}
	var out []Change
	for _, it := range m.Items() {
		declared[it.Target] = true
		h, managed := rec.Entries[it.Target]
		switch {
		case !managed:
			out = append(out, Change{Action: ActionCreate, Target: it.Target, Item: &it})
		case h != it.Hash():
			out = append(out, Change{Action: ActionUpdate, Target: it.Target, Item: &it})
		}
	}
	for t := range rec.Entries {
		if !declared[t] {
			out = append(out, Change{Action: ActionDelete, Target: t})
		}
	}
	sortChanges(out)
	return out
}

// Drift compares m with the live items: what is declared and missing is a
// create, declared with other content an update, managed, dropped from m
// and still there a delete. It shows hand edits of managed items that Plan
// (which trusts the record) cannot see.
func Drift(m *manifest.Manifest, rec Record, live map[manifest.Target]store.StoredConfig) []Change {
	declared := map[manifest.Target]bool{}
	var out []Change
	for _, it := range m.Items() {
		declared[it.Target] = true
		got, ok := live[it.Target]
		switch {
		case !ok || (it.Limits != nil && len(got.Limits) == 0):
			out = append(out, Change{Action: ActionCreate, Target: it.Target, Item: &it})
		case !sameContent(it, got):
			out = append(out, Change{Action: ActionUpdate, Target: it.Target, Item: &it})
		}
	}
	for t := range rec.Entries {
		if _, there := live[t]; there && !declared[t] {
			out = append(out, Change{Action: ActionDelete, Target: t})
		}
	}
	sortChanges(out)
	return out
}

// sameContent compares what the item manages with the stored item: the
// system level's limits and policy only where the manifest gives them.
func sameContent(it manifest.Item, got store.StoredConfig) bool {
	if it.OnUnavailable != "" && it.OnUnavailable != got.OnUnavailable {
		return false
	}
	return it.Limits == nil || slices.Equal(it.Limits, got.Limits)
}

// liveTargets are the items Drift needs read: the declared and the managed.
func liveTargets(m *manifest.Manifest, rec Record) []manifest.Target {
	seen := map[manifest.Target]bool{}
	var out []manifest.Target
	for _, it := range m.Items() {
		seen[it.Target] = true
		out = append(out, it.Target)
	}
	for t := range rec.Entries {
		if !seen[t] {
			out = append(out, t)
		}
	}
	return out
}

func configRef(t manifest.Target) store.ConfigRef {
	return store.ConfigRef{Entity: t.Entity, Resource: t.Resource}
}

// sortChanges orders changes by level (system, resources, entities), then
// creates and updates before deletes, then by target.
func sortChanges(cs []Change) {
	rank := map[string]int{manifest.LevelSystem: 0, manifest.LevelResource: 1, manifest.LevelEntity: 2}
	slices.SortFunc(cs, func(a, b Change) int {
		if c := rank[a.Level] - rank[b.Level]; c != 0 {
			return c
		}
		da, db := a.Action == ActionDelete, b.Action == ActionDelete
		if da != db {
			if da {
				return 1
			}
			return -1
		}
		return a.Target.Compare(b.Target)
	})
}

// applied returns the record after the changes that landed: each landed
// create or update records its content hash, each landed delete drops its
// target; what failed keeps its previous entry (or none).
func applied(rec Record, cs []Change, errs []error) map[manifest.Target]string {
	out := make(map[manifest.Target]string, len(rec.Entries)+len(cs))
	for t, h := range rec.Entries {
		out[t] = h
	}
	for i, c := range cs {
		if errs[i] != nil {
			continue
		}
		if c.Action == ActionDelete {
			delete(out, c.Target)
		} else {
			out[c.Target] = c.Item.Hash()
		}
	}
	return out
}
