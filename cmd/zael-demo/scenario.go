package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/manifest"
)

// DefaultManifest is the demo's limits file, relative to the checkout (make
// demo runs there).
const DefaultManifest = "cmd/zael-demo/limits.yaml"

// Scenario is what the demo stores before it runs: the limits, from a
// manifest, and the entities that call the model, some of them cascading
// to a parent (a manifest holds limits only, so the demo creates those).
type Scenario struct {
	Resource string
	// Limits is the manifest `limits apply` writes.
	Limits *manifest.Manifest
	// Entities are every entity the report shows: the callers and their
	// parents, in display order.
	Entities []EntitySpec
}

// EntitySpec is one entity of the scenario.
type EntitySpec struct {
	ID string
	// Parent, when set, is the entity this one cascades to: every acquire
	// is charged to both, and either can deny it.
	Parent string
	// Note is shown next to the entity in the configuration listing.
	Note string
}

// DefaultEntities are the entities of `make demo`: a premium customer, a
// project whose two API keys share its budget, and a basic user on the
// defaults. Their limits are in DefaultManifest.
func DefaultEntities() []EntitySpec {
	return []EntitySpec{
		{ID: "premium", Note: "premium plan"},
		{ID: "proj-acme", Note: "project: the budget its keys share"},
		{ID: "key-acme-1", Parent: "proj-acme", Note: "API key with its own limits"},
		{ID: "key-acme-2", Parent: "proj-acme", Note: "API key on the resource default"},
		{ID: "user-basic", Note: "basic user on the resource default"},
	}
}

// LoadScenario reads the manifest file and checks that it declares limits
// for resource, the resource every entity calls.
func LoadScenario(file, resource string, entities []EntitySpec) (Scenario, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return Scenario{}, fmt.Errorf("read the demo's limits (--manifest): %w", err)
	}
	m, err := manifest.Parse(file, b)
	if err != nil {
		return Scenario{}, err
	}
	if _, ok := m.Resources[resource]; !ok {
		return Scenario{}, fmt.Errorf("%s: no defaults for the resource %q the demo calls", file, resource)
	}
	return Scenario{Resource: resource, Limits: m, Entities: entities}, nil
}

// Scaled returns the scenario with every limit's capacity and refill
// multiplied by f (at least 1 token), so that a short run still meets them.
func (s Scenario) Scaled(f float64) Scenario {
	scale := func(ls []limits.Limit) []limits.Limit {
		if ls == nil {
			return nil
		}
		out := make([]limits.Limit, len(ls))
		for i, l := range ls {
			l.Capacity = max(1, int64(float64(l.Capacity)*f))
			l.RefillAmount = max(1, int64(float64(l.RefillAmount)*f))
			out[i] = l
		}
		return out
	}
	m := *s.Limits
	if m.System != nil {
		sys := *m.System
		sys.Limits = scale(sys.Limits)
		m.System = &sys
	}
	m.Resources = map[string][]limits.Limit{}
	for r, ls := range s.Limits.Resources {
		m.Resources[r] = scale(ls)
	}
	m.Entities = map[string]map[string][]limits.Limit{}
	for e, rs := range s.Limits.Entities {
		m.Entities[e] = map[string][]limits.Limit{}
		for r, ls := range rs {
			m.Entities[e][r] = scale(ls)
		}
	}
	out := s
	out.Limits = &m
	return out
}

// OwnLimits are the limits the manifest gives id on the scenario's
// resource; nil when the resource default governs it.
func (s Scenario) OwnLimits(id string) []limits.Limit {
	return s.Limits.Entities[id][s.Resource]
}

// Callers are the entities the workers call as: every entity that is
// nobody's parent (a project is charged through its keys).
func (s Scenario) Callers() []string {
	parents := map[string]bool{}
	for _, e := range s.Entities {
		if e.Parent != "" {
			parents[e.Parent] = true
		}
	}
	var out []string
	for _, e := range s.Entities {
		if !parents[e.ID] {
			out = append(out, e.ID)
		}
	}
	return out
}

// Children lists the entities that cascade to id.
func (s Scenario) Children(id string) []string {
	var out []string
	for _, e := range s.Entities {
		if e.Parent == id {
			out = append(out, e.ID)
		}
	}
	return out
}

// Parents lists the entities others cascade to.
func (s Scenario) Parents() []string {
	var out []string
	for _, e := range s.Entities {
		if len(s.Children(e.ID)) > 0 {
			out = append(out, e.ID)
		}
	}
	return out
}

// Cascading lists the entities with a parent.
func (s Scenario) Cascading() []EntitySpec {
	return slices.DeleteFunc(slices.Clone(s.Entities), func(e EntitySpec) bool { return e.Parent == "" })
}

func specs(ls []limits.Limit) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, " ")
}
