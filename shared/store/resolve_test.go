package store

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

func rpm(n int64) []limits.Limit { return []limits.Limit{limits.PerMinute("rpm", n, 0)} }

// DECISIONS §3.1: Entity(resource) > Entity(_default_) > Resource > System.
func TestResolutionPrecedence(t *testing.T) {
	f := setup(t, Options{})
	check := func(want int64, source string) {
		t.Helper()
		r, err := f.ns.ResolveLimits(f.ctx, "u1", "gpt-4")
		require.NoError(t, err)
		assert.Equal(t, source, r.Source)
		assert.Equal(t, rpm(want), r.Limits)
	}
	_, err := f.ns.ResolveLimits(f.ctx, "u1", "gpt-4")
	var ve *limits.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "limits", ve.Field)
	assert.Contains(t, err.Error(), `no limits configured for entity "u1" and resource "gpt-4"`)

	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, rpm(10), ""))
	check(10, SourceSystem)
	require.NoError(t, f.ns.SetResourceDefaults(f.ctx, "gpt-4", rpm(50)))
	check(50, SourceResource)
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", limits.DefaultResource, rpm(100)))
	check(100, SourceEntityDefault)
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "gpt-4", rpm(200)))
	check(200, SourceEntity)

	// Other entities and resources fall through to their own levels.
	r, err := f.ns.ResolveLimits(f.ctx, "u2", "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, SourceResource, r.Source)
	r, err = f.ns.ResolveLimits(f.ctx, "u1", "claude")
	require.NoError(t, err)
	assert.Equal(t, SourceEntityDefault, r.Source)
	r, err = f.ns.ResolveLimits(f.ctx, "u2", "claude")
	require.NoError(t, err)
	assert.Equal(t, SourceSystem, r.Source)
	assert.Equal(t, limits.Block, r.OnUnavailable)

	// Undo level by level (each write evicts its slot).
	require.NoError(t, f.ns.DeleteLimits(f.ctx, "u1", "gpt-4"))
	check(100, SourceEntityDefault)
	require.NoError(t, f.ns.DeleteLimits(f.ctx, "u1", limits.DefaultResource))
	check(50, SourceResource)
	require.NoError(t, f.ns.DeleteResourceDefaults(f.ctx, "gpt-4"))
	check(10, SourceSystem)
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, nil, limits.Allow))
	r, err = f.ns.ResolveLimits(f.ctx, "u1", "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, limits.Allow, r.OnUnavailable)
	require.NoError(t, f.ns.DeleteSystemDefaults(f.ctx))
	_, err = f.ns.ResolveLimits(f.ctx, "u1", "gpt-4")
	require.ErrorIs(t, err, limits.ErrInvalid)
}

func TestResolveDefaultResourceSkipsLevels(t *testing.T) {
	f := setup(t, Options{})
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", limits.DefaultResource, rpm(7)))
	r, err := f.ns.ResolveLimits(f.ctx, "u1", limits.DefaultResource)
	require.NoError(t, err)
	assert.Equal(t, SourceEntity, r.Source)
	assert.Equal(t, 2, f.db.lastKeys, "entity config and system only")
}

// Scenario 23: the config cache.
func TestConfigCache(t *testing.T) {
	c := newClock()
	f := setup(t, Options{Now: c.Now}) // CacheTTL 0 means the 60 s default
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, rpm(10), ""))
	require.NoError(t, f.ns.SetResourceDefaults(f.ctx, "gpt-4", rpm(50)))
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "gpt-4", rpm(200)))

	resolve := func(entity string) Resolved {
		t.Helper()
		r, err := f.ns.ResolveLimits(f.ctx, entity, "gpt-4")
		require.NoError(t, err)
		return r
	}
	f.db.reset()
	assert.Equal(t, SourceEntity, resolve("u1").Source)
	assert.Equal(t, 1, f.db.count("TransactGetItems"), "one batch for all misses")
	assert.Equal(t, 4, f.db.lastKeys)
	assert.Equal(t, 1, f.db.total())

	// All cached: no DynamoDB call at all.
	f.db.reset()
	for range 5 {
		assert.Equal(t, SourceEntity, resolve("u1").Source)
	}
	assert.Zero(t, f.db.total())

	// Partial cache: another entity fetches only its two entity slots.
	assert.Equal(t, SourceResource, resolve("u2").Source)
	assert.Equal(t, 1, f.db.count("TransactGetItems"))
	assert.Equal(t, 2, f.db.lastKeys)

	// Negative caching: u2's absent configs are not fetched again.
	f.db.reset()
	assert.Equal(t, SourceResource, resolve("u2").Source)
	assert.Zero(t, f.db.total())

	// A change of limits through this handle evicts every config level, so
	// the next resolution reads them all at the new config version.
	require.NoError(t, f.ns.SetLimits(f.ctx, "u2", "gpt-4", rpm(300)))
	f.db.reset()
	r := resolve("u2")
	assert.Equal(t, rpm(300), r.Limits)
	assert.Equal(t, 4, f.db.lastKeys, "every level is read again, in one snapshot")
	// DeleteLimits too.
	require.NoError(t, f.ns.DeleteLimits(f.ctx, "u2", "gpt-4"))
	assert.Equal(t, SourceResource, resolve("u2").Source)
	// Resource and system writes evict their slots.
	require.NoError(t, f.ns.SetResourceDefaults(f.ctx, "gpt-4", rpm(55)))
	assert.Equal(t, rpm(55), resolve("u2").Limits)
	require.NoError(t, f.ns.DeleteResourceDefaults(f.ctx, "gpt-4"))
	assert.Equal(t, rpm(10), resolve("u2").Limits)
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, rpm(11), ""))
	assert.Equal(t, rpm(11), resolve("u2").Limits)

	// Another process's change is seen only after the TTL.
	other := New(f.raw, Options{Table: f.table})
	ons, err := other.Namespace(f.ctx, "default")
	require.NoError(t, err)
	require.NoError(t, ons.SetLimits(f.ctx, "u2", "gpt-4", rpm(999)))
	assert.Equal(t, rpm(11), resolve("u2").Limits, "stale within the TTL")
	c.Advance(DefaultCacheTTL + time.Second)
	f.db.reset()
	assert.Equal(t, rpm(999), resolve("u2").Limits)
	assert.Equal(t, 4, f.db.lastKeys, "everything expired")

	// InvalidateCache drops everything.
	resolve("u1")
	f.db.reset()
	resolve("u1")
	assert.Zero(t, f.db.total())
	f.ns.InvalidateCache()
	resolve("u1")
	assert.Equal(t, 1, f.db.count("TransactGetItems"))
}

func TestConfigCacheDisabled(t *testing.T) {
	f := setup(t, Options{CacheTTL: -1})
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, rpm(10), ""))
	f.db.reset()
	for range 3 {
		r, err := f.ns.ResolveLimits(f.ctx, "u1", "gpt-4")
		require.NoError(t, err)
		assert.Equal(t, SourceSystem, r.Source)
		assert.Equal(t, 4, f.db.lastKeys)
	}
	assert.Equal(t, 3, f.db.count("TransactGetItems"), "every resolution batches")
	_, _, err := f.ns.CachedEntity(f.ctx, "u1")
	require.NoError(t, err)
	_, _, err = f.ns.CachedEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, 2, f.db.count("GetItem"))
}

func TestResolveReportsDynamoDBErrors(t *testing.T) {
	f := setup(t, Options{})
	f.db.failOp("TransactGetItems", errors.New("throttled"))
	_, err := f.ns.ResolveLimits(f.ctx, "u1", "gpt-4")
	require.Error(t, err)
	assert.NotErrorIs(t, err, limits.ErrInvalid)
	assert.Contains(t, err.Error(), `resolve limits of entity "u1" for resource "gpt-4"`)
}

func TestOnUnavailable(t *testing.T) {
	c := newClock()
	f := setup(t, Options{Now: c.Now})
	on, err := f.ns.OnUnavailable(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, limits.Block, on, "default")

	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, nil, limits.Allow))
	on, err = f.ns.OnUnavailable(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, limits.Allow, on)
	f.db.reset()
	on, err = f.ns.OnUnavailable(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, limits.Allow, on)
	assert.Zero(t, f.db.total(), "cached")

	// DynamoDB fails after expiry: the last known value, with the error.
	c.Advance(DefaultCacheTTL + time.Second)
	f.db.failOp("GetItem", errors.New("network down"))
	on, err = f.ns.OnUnavailable(f.ctx)
	require.Error(t, err)
	assert.Equal(t, limits.Allow, on)
	f.db.failOp("GetItem", nil)

	// Another namespace never read anything: block.
	_, err = f.st.RegisterNamespace(f.ctx, "fresh")
	require.NoError(t, err)
	fresh, err := f.st.Namespace(f.ctx, "fresh")
	require.NoError(t, err)
	f.db.failOp("GetItem", errors.New("network down"))
	on, err = fresh.OnUnavailable(f.ctx)
	require.Error(t, err)
	assert.Equal(t, limits.Block, on)
}

// Every change of limits, at any level, raises the namespace's config
// version, and a resolution reports the version it read (the oldest of the
// levels it used from the cache): a bucket written with a newer version
// tells a process its cache is stale.
func TestResolvedVersionFollowsEveryConfigChange(t *testing.T) {
	f := setup(t, Options{})
	ns := f.ns
	resolve := func(n *NS) int64 {
		t.Helper()
		r, err := n.ResolveLimits(f.ctx, "e", "gpt")
		require.NoError(t, err)
		return r.Version
	}
	v0, err := ns.ConfigVersion(f.ctx)
	require.NoError(t, err)
	steps := []func() error{
		func() error { return ns.SetSystemDefaults(f.ctx, []limits.Limit{limits.PerMinute("rpm", 10, 0)}, "") },
		func() error {
			return ns.SetResourceDefaults(f.ctx, "gpt", []limits.Limit{limits.PerMinute("rpm", 20, 0)})
		},
		func() error { return ns.SetLimits(f.ctx, "e", "gpt", []limits.Limit{limits.PerMinute("rpm", 30, 0)}) },
		func() error { return ns.SetLimits(f.ctx, "e", "gpt", []limits.Limit{limits.PerMinute("rpm", 40, 0)}) },
		func() error { return ns.DeleteLimits(f.ctx, "e", "gpt") },
		func() error { return ns.DeleteResourceDefaults(f.ctx, "gpt") },
		func() error { return ns.SetSystemDefaults(f.ctx, []limits.Limit{limits.PerMinute("rpm", 50, 0)}, "") },
	}
	prev := v0
	for i, step := range steps {
		require.NoError(t, step(), "step %d", i)
		v, err := ns.ConfigVersion(f.ctx)
		require.NoError(t, err)
		assert.Equal(t, prev+1, v, "step %d raises the version by one", i)
		assert.Equal(t, v, resolve(ns), "step %d: the writer's own cache was evicted", i)
		prev = v
	}

	// Another process caches the current config; a change is not seen until
	// its cache expires, unless it refreshes.
	other := f.otherNS(t)
	before := resolve(other)
	require.NoError(t, ns.DeleteSystemDefaults(f.ctx))
	require.NoError(t, ns.SetSystemDefaults(f.ctx, []limits.Limit{limits.PerMinute("rpm", 60, 0)}, ""))
	assert.Equal(t, before, resolve(other), "cached")
	r, err := other.RefreshLimits(f.ctx, "e", "gpt")
	require.NoError(t, err)
	assert.Equal(t, before+2, r.Version)
	assert.Equal(t, int64(60), r.Limits[0].Capacity)
}
