package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Manifest is one namespace's declared limits, validated.
type Manifest struct {
	// Namespace is the namespace the file names; "" when it names none
	// (the caller's default applies, see WithNamespace).
	Namespace string
	// System is nil when the manifest does not manage the system level.
	System *System
	// Resources maps a resource to its default limits.
	Resources map[string][]limits.Limit
	// Entities maps an entity id to its limits per resource
	// (limits.DefaultResource for every resource).
	Entities map[string]map[string][]limits.Limit
}

// System is the managed system level. What is not given is not managed:
// Limits nil leaves the stored system limits alone, OnUnavailable "" the
// stored policy (as `system set-defaults` without -l or --on-unavailable).
type System struct {
	OnUnavailable limits.OnUnavailable
	Limits        []limits.Limit
}

// Levels of a target.
const (
	LevelSystem   = "system"
	LevelResource = "resource"
	LevelEntity   = "entity"
)

// Target names one config item a manifest can manage.
type Target struct {
	Level    string // LevelSystem, LevelResource or LevelEntity
	Entity   string // entity level only
	Resource string // resource and entity levels
}

// SystemTarget is the system level's target.
var SystemTarget = Target{Level: LevelSystem}

// ResourceTarget is the target of a resource's defaults.
func ResourceTarget(res string) Target { return Target{Level: LevelResource, Resource: res} }

// EntityTarget is the target of an entity's limits for a resource.
func EntityTarget(entity, res string) Target {
	return Target{Level: LevelEntity, Entity: entity, Resource: res}
}

// String is "" for the system, the resource, or "entity/resource".
func (t Target) String() string {
	switch t.Level {
	case LevelResource:
		return t.Resource
	case LevelEntity:
		return t.Entity + "/" + t.Resource
	}
	return ""
}

// Compare orders targets: the system, then resources, then entity
// configs by entity and resource.
func (t Target) Compare(u Target) int {
	rank := func(l string) int { return map[string]int{LevelSystem: 0, LevelResource: 1, LevelEntity: 2}[l] }
	if c := rank(t.Level) - rank(u.Level); c != 0 {
		return c
	}
	if c := strings.Compare(t.Entity, u.Entity); c != 0 {
		return c
	}
	return strings.Compare(t.Resource, u.Resource)
}

// Item is one managed config item: a target and its declared content.
type Item struct {
	Target
	// Limits sorted by name; nil on a system item that manages only the policy.
	Limits []limits.Limit
	// OnUnavailable is the system level's policy ("" = not managed).
	OnUnavailable limits.OnUnavailable
}

// Hash identifies the item's content (target excluded): 16 hex digits of a
// SHA-256 over the sorted limits and the policy. Two items with the same
// content have the same hash whatever order the file listed them in.
func (it Item) Hash() string {
	h := sha256.New()
	fmt.Fprintf(h, "on=%s\n", it.OnUnavailable)
	ls := slices.Clone(it.Limits)
	sortLimits(ls)
	for _, l := range ls {
		fmt.Fprintf(h, "%s %d %d %d", l.Name, l.Capacity, l.RefillAmount, l.RefillPeriodSeconds)
		// Only when set, so the hashes of items without them stay as
		// they were (re-applying an unchanged file changes nothing).
		if l.Calendar != "" {
			fmt.Fprintf(h, " calendar=%s", l.Calendar)
		}
		if l.Shadow {
			fmt.Fprint(h, " shadow")
		}
		fmt.Fprint(h, "\n")
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Items lists every managed item in target order.
func (m *Manifest) Items() []Item {
	var out []Item
	if m.System != nil {
		out = append(out, Item{Target: SystemTarget, Limits: m.System.Limits, OnUnavailable: m.System.OnUnavailable})
	}
	for _, r := range sortedKeys(m.Resources) {
		out = append(out, Item{Target: ResourceTarget(r), Limits: m.Resources[r]})
	}
	for _, e := range sortedKeys(m.Entities) {
		for _, r := range sortedKeys(m.Entities[e]) {
			out = append(out, Item{Target: EntityTarget(e, r), Limits: m.Entities[e][r]})
		}
	}
	return out
}

// Len is the number of managed items.
func (m *Manifest) Len() int {
	n := len(m.Resources)
	if m.System != nil {
		n++
	}
	for _, rs := range m.Entities {
		n += len(rs)
	}
	return n
}

// WithNamespace resolves the namespace: the file's own, else def. A file
// naming another namespace than an explicit one (explicit true) is an
// error naming both.
func (m *Manifest) WithNamespace(def string, explicit bool) (string, error) {
	switch {
	case m.Namespace == "":
		return def, limits.ValidateNamespaceName(def)
	case explicit && def != m.Namespace:
		return "", limits.Invalid("namespace", def,
			fmt.Sprintf("the manifest is for namespace %q; drop -N or make them agree", m.Namespace))
	}
	return m.Namespace, nil
}

// Hash identifies the whole manifest: "sha256:" and the hex SHA-256 of its
// canonical JSON.
func (m *Manifest) Hash() string {
	b, _ := json.Marshal(m)
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// The canonical document: the file format with every limit written out in
// full. It is what MarshalJSON writes and Parse reads back.
type (
	document struct {
		Namespace string                 `json:"namespace,omitempty"`
		System    *systemDoc             `json:"system,omitempty"`
		Resources map[string]levelDoc    `json:"resources,omitempty"`
		Entities  map[string]entityLevel `json:"entities,omitempty"`
	}
	systemDoc struct {
		OnUnavailable string              `json:"on_unavailable,omitempty"`
		Limits        map[string]limitDoc `json:"limits,omitempty"`
	}
	levelDoc struct {
		Limits map[string]limitDoc `json:"limits"`
	}
	entityLevel struct {
		Resources map[string]levelDoc `json:"resources"`
	}
	limitDoc struct {
		Capacity int64 `json:"capacity"`
		// Omitted only for a calendar quota (never zero otherwise).
		RefillAmount int64  `json:"refill_amount,omitempty"`
		RefillPeriod int64  `json:"refill_period,omitempty"`
		Calendar     string `json:"calendar,omitempty"`
		Shadow       bool   `json:"shadow,omitempty"`
	}
)

func limitDocs(ls []limits.Limit) map[string]limitDoc {
	if ls == nil {
		return nil
	}
	out := make(map[string]limitDoc, len(ls))
	for _, l := range ls {
		d := limitDoc{Capacity: l.Capacity, RefillAmount: l.RefillAmount, RefillPeriod: l.RefillPeriodSeconds, Shadow: l.Shadow}
		if l.Calendar != "" {
			d = limitDoc{Capacity: l.Capacity, Calendar: l.Calendar, Shadow: l.Shadow}
		}
		out[l.Name] = d
	}
	return out
}

// MarshalJSON writes the canonical document (map keys sorted, every limit
// with capacity, refill_amount and refill_period).
func (m *Manifest) MarshalJSON() ([]byte, error) {
	d := document{Namespace: m.Namespace}
	if m.System != nil {
		d.System = &systemDoc{OnUnavailable: string(m.System.OnUnavailable), Limits: limitDocs(m.System.Limits)}
	}
	if len(m.Resources) > 0 {
		d.Resources = map[string]levelDoc{}
		for r, ls := range m.Resources {
			d.Resources[r] = levelDoc{Limits: limitDocs(ls)}
		}
	}
	if len(m.Entities) > 0 {
		d.Entities = map[string]entityLevel{}
		for e, rs := range m.Entities {
			lv := entityLevel{Resources: map[string]levelDoc{}}
			for r, ls := range rs {
				lv.Resources[r] = levelDoc{Limits: limitDocs(ls)}
			}
			d.Entities[e] = lv
		}
	}
	return json.Marshal(d)
}

// UnmarshalJSON reads a manifest with the same strict rules as Parse (JSON
// is YAML); problems are named with the file "manifest".
func (m *Manifest) UnmarshalJSON(b []byte) error {
	got, err := Parse("manifest", b)
	if err != nil {
		return err
	}
	*m = *got
	return nil
}

func sortLimits(ls []limits.Limit) {
	slices.SortFunc(ls, func(a, b limits.Limit) int { return strings.Compare(a.Name, b.Name) })
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
