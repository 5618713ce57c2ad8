package store

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Config sources, in order of precedence.
const (
	SourceEntity        = "entity"         // the entity's config for the resource
	SourceEntityDefault = "entity_default" // the entity's config for limits.DefaultResource
	SourceResource      = "resource"       // the resource's defaults
	SourceSystem        = "system"         // the namespace's system defaults
)

// snapshot is one consistent read of config levels and the config version.
type snapshot struct {
	items   map[schema.Key]dynamo.Item
	version int64
}

// Resolved is the outcome of ResolveLimits.
type Resolved struct {
	Limits []limits.Limit
	Source string
	// OnUnavailable is the system setting, limits.Block when not set.
	OnUnavailable limits.OnUnavailable
	// Version is the namespace's config version the limits were read at
	// (at least): buckets record it, so a process holding an older config
	// learns from a bucket that its cache is stale (see RefreshLimits).
	Version int64
}

type level struct {
	source string
	key    schema.Key
	entity bool   // entity config slot (else resource or system)
	slot   string // resource of an entity or resource slot
}

// ResolveLimits finds the limits of (entity, resource): the entity's config
// for the resource, else its default config, else the resource defaults,
// else the system defaults. Levels are read through the config cache, and
// all cache misses are fetched with the config version in one
// TransactGetItems (a consistent snapshot); absent levels are cached as
// absent. Resolved.Version is the oldest version of the levels consulted.
// Nothing anywhere is a *limits.ValidationError on field "limits" naming
// entity and resource.
func (n *NS) ResolveLimits(ctx context.Context, entityID, resource string) (Resolved, error) {
	if err := limits.ValidateEntityID(entityID); err != nil {
		return Resolved{}, err
	}
	if err := limits.ValidateConfigResource(resource); err != nil {
		return Resolved{}, err
	}
	levels := []level{{SourceEntity, schema.EntityConfigKey(n.ID, entityID, resource), true, resource}}
	if resource != limits.DefaultResource {
		levels = append(levels,
			level{SourceEntityDefault, schema.EntityConfigKey(n.ID, entityID, limits.DefaultResource), true, limits.DefaultResource},
			level{SourceResource, schema.ResourceConfigKey(n.ID, resource), false, resource})
	}
	levels = append(levels, level{SourceSystem, schema.SystemConfigKey(n.ID), false, ""})

	got := make([]configEntry, len(levels))
	var misses []int
	n.mu.Lock()
	for i, lv := range levels {
		var c configEntry
		var ok bool
		switch {
		case lv.entity:
			c, ok = n.entityCfg[[2]string{entityID, lv.slot}]
		case lv.source == SourceResource:
			c, ok = n.resources[lv.slot]
		case n.system != nil:
			c, ok = *n.system, true
		}
		if ok && n.fresh(c.expires) && c.version >= 0 {
			got[i] = c
		} else {
			misses = append(misses, i)
		}
	}
	gen := n.gen
	n.mu.Unlock()

	if len(misses) > 0 {
		keys := make([]schema.Key, len(misses))
		for j, i := range misses {
			keys[j] = levels[i].key
		}
		flightKey := ""
		for _, k := range keys {
			flightKey += k.PK + "\x00" + k.SK + "\x00"
		}
		v, err := n.shared(ctx, flightKey, gen, func(ctx context.Context) (any, error) {
			items, version, err := n.readSnapshot(ctx, keys)
			return snapshot{items, version}, err
		})
		if err != nil {
			return Resolved{}, fmt.Errorf("resolve limits of entity %q for resource %q: %w", entityID, resource, err)
		}
		snap := v.(snapshot)
		exp := n.expiry()
		n.mu.Lock()
		// A write through this handle since the read began evicted what it
		// read: use the result, but do not cache it.
		caching := n.s.cacheTTL() > 0 && n.gen == gen
		for _, i := range misses {
			lv := levels[i]
			it := snap.items[lv.key]
			c := configEntry{limits: decodeLimits(it), expires: exp, version: snap.version}
			if lv.source == SourceSystem {
				c.on = limits.OnUnavailable(dynamo.GetS(it, attrOnUnavailable))
				n.lastOn = c.on
			}
			got[i] = c
			if !caching {
				continue
			}
			switch {
			case lv.entity:
				n.entityCfg[[2]string{entityID, lv.slot}] = c
			case lv.source == SourceResource:
				n.resources[lv.slot] = c
			default:
				n.system = &c
			}
		}
		n.mu.Unlock()
	}

	on := got[len(got)-1].on
	if on == "" {
		on = limits.Block
	}
	// The version of a resolution is the oldest of the levels it consulted:
	// each was read at (at least) its own.
	version := int64(math.MaxInt64)
	for i, lv := range levels {
		version = min(version, got[i].version)
		if len(got[i].limits) > 0 {
			return Resolved{Limits: slices.Clone(got[i].limits), Source: lv.source, OnUnavailable: on, Version: version}, nil
		}
	}
	return Resolved{OnUnavailable: on}, limits.Invalid("limits", "", fmt.Sprintf(
		"no limits configured for entity %q and resource %q (set entity limits, resource or system defaults, or pass limits)",
		entityID, resource))
}

// RefreshLimits is ResolveLimits with every level of (entity, resource)
// read afresh: a bucket showed limits of a newer config than the cached one.
func (n *NS) RefreshLimits(ctx context.Context, entityID, resource string) (Resolved, error) {
	n.evictLevels(entityID, resource)
	return n.ResolveLimits(ctx, entityID, resource)
}

// OnUnavailable returns the namespace's on_unavailable policy from the
// system config, read through the config cache; limits.Block when it is not
// set. When DynamoDB fails it returns the last value it read (else
// limits.Block) together with the error: the policy is always usable.
func (n *NS) OnUnavailable(ctx context.Context) (limits.OnUnavailable, error) {
	n.mu.Lock()
	if n.system != nil && n.fresh(n.system.expires) {
		on := n.system.on
		n.mu.Unlock()
		return orBlock(on), nil
	}
	n.mu.Unlock()
	it, err := n.s.getItem(ctx, schema.SystemConfigKey(n.ID), false)
	if err != nil {
		n.mu.Lock()
		on := n.lastOn
		n.mu.Unlock()
		return orBlock(on), fmt.Errorf("read on_unavailable: %w", err)
	}
	c := configEntry{limits: decodeLimits(it), on: limits.OnUnavailable(dynamo.GetS(it, attrOnUnavailable)), expires: n.expiry(), version: -1}
	n.mu.Lock()
	n.lastOn = c.on
	if n.s.cacheTTL() > 0 {
		n.system = &c
	}
	n.mu.Unlock()
	return orBlock(c.on), nil
}

func orBlock(on limits.OnUnavailable) limits.OnUnavailable {
	if on == "" {
		return limits.Block
	}
	return on
}
