package limiter_test

// Scenarios 21-23: a change of limits at any level reaches existing buckets
// on their next acquire (DECISIONS §3.6), and the config cache.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// params returns a limit's stored capacity, refill amount and period.
func (e *env) params(it dynamo.Item, name string) [3]int64 {
	e.t.Helper()
	return [3]int64{
		e.num(it, schema.BucketAttr(name, schema.SuffixCapacity)),
		e.num(it, schema.BucketAttr(name, schema.SuffixRefill)),
		e.num(it, schema.BucketAttr(name, schema.SuffixPeriod)),
	}
}

// hasLimit reports whether any attribute of limit name is on the item.
func hasLimit(it dynamo.Item, name string) bool {
	for _, suf := range []string{schema.SuffixVirtualTime, schema.SuffixCapacity, schema.SuffixRefill, schema.SuffixPeriod, schema.SuffixConsumed} {
		if _, ok := it[schema.BucketAttr(name, suf)]; ok {
			return true
		}
	}
	return false
}

// Scenario 21 (DECISIONS §3.6): set-limits does not touch the bucket; the
// next acquire rewrites its parameters and consumes, carrying the tokens
// held over (clamped to a lower capacity); a new limit starts full and a
// dropped one disappears from the item.
func TestScenario21ParamSyncOnNextAcquire(t *testing.T) {
	e := newEnv(t, exact)
	stale := e.newLimiter(exact) // another process: its bucket cache goes stale
	acq := func(lim *limiter.Limiter, consume map[string]int64) {
		t.Helper()
		_, err := lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: consume})
		require.NoError(t, err)
	}
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{rpm(100)}))
	acq(stale, map[string]int64{"rpm": 1})
	acq(e.lim, map[string]int64{"rpm": 9})
	assert.Equal(t, [3]int64{100_000, 100_000, 60_000}, e.params(e.item("u", "r", 0), "rpm"))

	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{rpm(200)}))
	assert.Equal(t, [3]int64{100_000, 100_000, 60_000}, e.params(e.item("u", "r", 0), "rpm"), "set-limits writes no bucket")
	e.count.Reset()
	acq(e.lim, map[string]int64{"rpm": 10})
	it := e.item("u", "r", 0)
	assert.Equal(t, [3]int64{200_000, 200_000, 60_000}, e.params(it, "rpm"))
	assert.Equal(t, int64(20_000), e.num(it, "b_rpm_tc"), "the acquire that synced also consumed")
	assert.Equal(t, map[string]int64{"u/rpm": 80}, e.avail(e.lim, "u", "r", nil), "90 carried over, 10 taken")
	t.Logf("acquire after a change of limits: %v", e.count.Snapshot())
	assert.Equal(t, int64(1), e.count.Count("UpdateItem"), "one write syncs and consumes (DECISIONS §3.6)")

	// The other process still caches the old parameters: its acquire
	// learns the new ones from the failed write and consumes once.
	acq(stale, map[string]int64{"rpm": 5})
	assert.Equal(t, int64(25_000), e.tc("u", "r", "rpm"))
	assert.Equal(t, map[string]int64{"u/rpm": 75}, e.avail(e.lim, "u", "r", nil))

	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{limits.PerHour("rpm", 200, 0)}))
	acq(e.lim, map[string]int64{"rpm": 5})
	assert.Equal(t, [3]int64{200_000, 200_000, 3_600_000}, e.params(e.item("u", "r", 0), "rpm"))
	assert.Equal(t, map[string]int64{"u/rpm": 70}, e.avail(e.lim, "u", "r", nil), "a new rate keeps the level")

	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{rpm(50)}))
	acq(e.lim, map[string]int64{"rpm": 10})
	assert.Equal(t, map[string]int64{"u/rpm": 40}, e.avail(e.lim, "u", "r", nil), "70 clamped to 50, 10 taken")

	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{rpm(50), tpm(1000)}))
	acq(e.lim, map[string]int64{"rpm": 1})
	it = e.item("u", "r", 0)
	assert.Equal(t, [3]int64{1_000_000, 1_000_000, 60_000}, e.params(it, "tpm"))
	assert.Equal(t, map[string]int64{"u/rpm": 39, "u/tpm": 1000}, e.avail(e.lim, "u", "r", nil), "a new limit starts full")

	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{tpm(1000)}))
	acq(stale, map[string]int64{"tpm": 100})
	it = e.item("u", "r", 0)
	assert.True(t, hasLimit(it, "rpm"), "a dropped limit stays dormant (coming back, it carries its tokens over): %v", it)
	assert.Equal(t, map[string]int64{"u/tpm": 900}, e.avail(e.lim, "u", "r", nil))
}

// Scenario 22 (DECISIONS §3.6): deleting an entity's limits makes its
// buckets fall back to the next level at their next acquire (parameters,
// TTL, limits the fallback does not have removed); with no fallback the
// acquire is a validation error and the bucket stays as it was. Resource
// and system defaults reach the buckets that use them the same way.
func TestScenario22DeleteLimitsAndDefaults(t *testing.T) {
	e := newEnv(t, exact)
	acq := func(entity, resource string, consume map[string]int64) error {
		_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: entity, Resource: resource, Consume: consume})
		return err
	}
	one := map[string]int64{"rpm": 1}

	require.NoError(t, e.ns.SetResourceDefaults(e.ctx, "gpt-4", []limits.Limit{rpm(100)}))
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "gpt-4", []limits.Limit{rpm(500)}))
	require.NoError(t, acq("u", "gpt-4", one))
	assert.Equal(t, int64(500_000), e.params(e.item("u", "gpt-4", 0), "rpm")[0])
	require.NoError(t, e.ns.DeleteLimits(e.ctx, "u", "gpt-4"))
	require.NoError(t, acq("u", "gpt-4", one))
	it := e.item("u", "gpt-4", 0)
	assert.Equal(t, [3]int64{100_000, 100_000, 60_000}, e.params(it, "rpm"))
	ttl, ok := dynamo.GetN(it, schema.TTL)
	assert.True(t, ok)
	assert.Equal(t, e.clock.Now().Unix()+3600, ttl)
	assert.Equal(t, int64(2000), e.num(it, "b_rpm_tc"))
	assert.Equal(t, map[string]int64{"u/rpm": 99}, e.avail(e.lim, "u", "gpt-4", nil), "499 clamped to 100, 1 taken")

	// The resource defaults change: buckets that use them follow.
	require.NoError(t, e.ns.SetResourceDefaults(e.ctx, "gpt-4", []limits.Limit{rpm(300)}))
	require.NoError(t, acq("u", "gpt-4", one))
	assert.Equal(t, int64(300_000), e.params(e.item("u", "gpt-4", 0), "rpm")[0])
	assert.Equal(t, map[string]int64{"u/rpm": 98}, e.avail(e.lim, "u", "gpt-4", nil))

	// Entity [rpm, tpm] over system [rpm]: tpm goes with the entity config.
	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(100)}, ""))
	require.NoError(t, e.ns.SetLimits(e.ctx, "v", "claude", []limits.Limit{rpm(100), tpm(1000)}))
	require.NoError(t, acq("v", "claude", map[string]int64{"rpm": 1, "tpm": 10}))
	assert.True(t, hasLimit(e.item("v", "claude", 0), "tpm"))
	require.NoError(t, e.ns.DeleteLimits(e.ctx, "v", "claude"))
	require.NoError(t, acq("v", "claude", one))
	it = e.item("v", "claude", 0)
	assert.True(t, hasLimit(it, "tpm"), "kept dormant, so coming back carries its tokens over: %v", it)
	assert.Equal(t, int64(2000), e.num(it, "b_rpm_tc"))
	// Asking for tpm now names the missing limit.
	assert.ErrorIs(t, acq("v", "claude", map[string]int64{"tpm": 1}), limits.ErrInvalid)

	// The system defaults change.
	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(10)}, ""))
	require.NoError(t, acq("v", "claude", one))
	assert.Equal(t, int64(10_000), e.params(e.item("v", "claude", 0), "rpm")[0])
	assert.Equal(t, map[string]int64{"v/rpm": 9}, e.avail(e.lim, "v", "claude", nil))

	// No fallback at all: a validation error; the bucket is untouched.
	e2 := newEnv(t, exact)
	require.NoError(t, e2.ns.SetLimits(e2.ctx, "w", "x", []limits.Limit{rpm(100)}))
	_, err := e2.lim.Acquire(e2.ctx, limiter.Request{EntityID: "w", Resource: "x", Consume: one})
	require.NoError(t, err)
	before := e2.item("w", "x", 0)
	require.NoError(t, e2.ns.DeleteLimits(e2.ctx, "w", "x"))
	_, err = e2.lim.Acquire(e2.ctx, limiter.Request{EntityID: "w", Resource: "x", Consume: one})
	assert.ErrorIs(t, err, limits.ErrInvalid)
	assert.Equal(t, before, e2.item("w", "x", 0))
}

// Scenario 23: the config cache. A warm acquire reads no configuration;
// set-limits evicts every config level of its handle (the next acquire reads
// them all in one snapshot, at the new config version);
// absent levels are cached as absent; entries expire after 60 s; with the
// cache off every acquire reads every level.
func TestScenario23ConfigCache(t *testing.T) {
	e := newEnv(t, exact)
	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(100)}, ""))
	require.NoError(t, e.ns.SetResourceDefaults(e.ctx, "gpt-4", []limits.Limit{rpm(50)}))
	db, ns, lim := e.flaky(exact)
	acq := func(entity string) {
		t.Helper()
		_, err := lim.Acquire(e.ctx, limiter.Request{EntityID: entity, Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
		require.NoError(t, err)
	}

	acq("u")
	ops, keys := db.seen()
	assert.Equal(t, []int{4}, keys, "entity, entity default, resource and system in one batch")
	assert.Equal(t, 1, ops["GetItem"], "the entity record: %v", ops)

	db.reset()
	acq("u")
	ops, keys = db.seen()
	assert.Empty(t, keys)
	assert.Equal(t, map[string]int{"UpdateItem": 1}, ops, "all cached")

	require.NoError(t, ns.SetLimits(e.ctx, "u", "gpt-4", []limits.Limit{rpm(100)}))
	db.reset()
	acq("u")
	ops, keys = db.seen()
	assert.Equal(t, []int{4}, keys, "every level, in one snapshot")
	assert.Equal(t, 0, ops["GetItem"])

	db.reset()
	acq("v") // no entity config: resource and system are cached
	_, keys = db.seen()
	assert.Equal(t, []int{2}, keys)
	db.reset()
	acq("v")
	ops, keys = db.seen()
	assert.Empty(t, keys, "absence is cached too")
	assert.Equal(t, map[string]int{"UpdateItem": 1}, ops)

	e.clock.Advance(store.DefaultCacheTTL + time.Second)
	db.reset()
	acq("v")
	ops, keys = db.seen()
	assert.Equal(t, []int{4}, keys, "expired")
	assert.Equal(t, 1, ops["GetItem"])

	db, _, lim = e.flaky(exact, store.Options{CacheTTL: -1})
	for range 2 {
		db.reset()
		_, err := lim.Acquire(e.ctx, limiter.Request{EntityID: "v", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
		require.NoError(t, err)
		ops, keys = db.seen()
		assert.Equal(t, []int{4}, keys, "cache off")
		assert.Equal(t, 1, ops["GetItem"])
	}
}

// A process whose config cache is stale learns the new limits from the first
// bucket another process wrote with them (the bucket records the config
// version): it reads its config afresh instead of rewriting the bucket back
// to the old limits until its cache expires.
func TestStaleProcessLearnsNewLimitsFromTheBucket(t *testing.T) {
	e := newEnv(t, exact)
	_, _, stale := e.flaky(exact) // its own store handle: its own config cache
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{rpm(1000)}))
	acq := func(lim *limiter.Limiter, n int64) error {
		_, err := lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": n}})
		return err
	}
	require.NoError(t, acq(stale, 1)) // caches 1000/min
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{rpm(100)}))
	require.NoError(t, acq(e.lim, 1)) // writes 100/min with the new version
	require.NoError(t, acq(stale, 50))
	assert.Equal(t, int64(100*1000), e.params(e.item("u", "r", 0), "rpm")[0], "the stale process kept the new limits")
	exceeded(t, acq(stale, 60)) // 100 - 1 - 50 left (its cache would have said 1000)
}
