package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Scenario is the configuration the demo stores before it runs: system and
// resource defaults, and the entities that call the model.
type Scenario struct {
	Resource         string
	System           []limits.Limit
	ResourceDefaults []limits.Limit
	Entities         []EntitySpec
}

// EntitySpec is one entity of the scenario.
type EntitySpec struct {
	ID string
	// Parent, when set, is the entity this one cascades to: every acquire
	// is charged to both, and either can deny it.
	Parent string
	// Limits are the entity's own limits on the resource; nil means it is
	// governed by the resource default.
	Limits []limits.Limit
	// Note is shown next to the entity in the configuration listing.
	Note string
}

// DefaultScenario is what `make demo` shows: a premium customer, a project
// whose two API keys share its budget, and a basic user on the defaults.
func DefaultScenario() Scenario {
	return Scenario{
		Resource:         "gpt-4",
		System:           perMinute(600, 100_000),
		ResourceDefaults: perMinute(120, 40_000),
		Entities: []EntitySpec{
			{ID: "premium", Limits: perMinute(300, 120_000), Note: "premium plan"},
			{ID: "proj-acme", Limits: perMinute(150, 60_000), Note: "project: the budget its keys share"},
			{ID: "key-acme-1", Parent: "proj-acme", Limits: perMinute(100, 50_000), Note: "API key with its own limits"},
			{ID: "key-acme-2", Parent: "proj-acme", Note: "API key on the resource default"},
			{ID: "user-basic", Note: "basic user on the resource default"},
		},
	}
}

func perMinute(rpm, tpm int64) []limits.Limit {
	return []limits.Limit{limits.PerMinute("rpm", rpm, 0), limits.PerMinute("tpm", tpm, 0)}
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
	out := s
	out.System, out.ResourceDefaults = scale(s.System), scale(s.ResourceDefaults)
	out.Entities = make([]EntitySpec, len(s.Entities))
	for i, e := range s.Entities {
		e.Limits = scale(e.Limits)
		out.Entities[i] = e
	}
	return out
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

// Setup stores the scenario in ns and writes one line per item to w. It can
// run again on the same table.
func Setup(ctx context.Context, ns *store.NS, s Scenario, w io.Writer) error {
	if err := ns.SetSystemDefaults(ctx, s.System, ""); err != nil {
		return fmt.Errorf("system defaults: %w", err)
	}
	fmt.Fprintf(w, "  %-22s %-28s every resource without defaults of its own\n", "system defaults", specs(s.System))
	if err := ns.SetResourceDefaults(ctx, s.Resource, s.ResourceDefaults); err != nil {
		return fmt.Errorf("resource defaults: %w", err)
	}
	fmt.Fprintf(w, "  %-22s %-28s every entity without limits of its own\n", "resource "+s.Resource, specs(s.ResourceDefaults))
	for _, e := range s.Entities {
		if err := createEntity(ctx, ns, e); err != nil {
			return err
		}
		lim := "(resource default)"
		if e.Limits != nil {
			if err := ns.SetLimits(ctx, e.ID, s.Resource, e.Limits); err != nil {
				return fmt.Errorf("limits of %s: %w", e.ID, err)
			}
			lim = specs(e.Limits)
		}
		note := e.Note
		if e.Parent != "" {
			note += ", cascades to " + e.Parent
		}
		fmt.Fprintf(w, "  %-22s %-28s %s\n", "entity "+e.ID, lim, note)
	}
	return nil
}

// createEntity creates e, or checks that an existing one has the same parent.
func createEntity(ctx context.Context, ns *store.NS, e EntitySpec) error {
	_, err := ns.CreateEntity(ctx, store.Entity{ID: e.ID, ParentID: e.Parent, Cascade: e.Parent != ""})
	if errors.Is(err, limits.ErrExists) {
		got, gerr := ns.GetEntity(ctx, e.ID)
		if gerr != nil {
			return gerr
		}
		if got.ParentID != e.Parent || got.Cascade != (e.Parent != "") {
			return fmt.Errorf("entity %q exists with another parent (%q): use a fresh table", e.ID, got.ParentID)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("entity %s: %w", e.ID, err)
	}
	return nil
}

func specs(ls []limits.Limit) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.String()
	}
	return strings.Join(s, " ")
}
