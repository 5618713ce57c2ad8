package limiter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// Grow splits ahead of writers: the count doubles and every shard below it
// is split, the sum over shards unchanged.
func TestGrowSplitsAheadOfWriters(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{stiff("rpm", 1000)}
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 100}, Limits: ls})
	require.NoError(t, err)
	b := shard.ID{Namespace: e.ns.ID, Entity: "u", Resource: "r"}
	upkeep := e.newLimiter(exact)
	splits, err := upkeep.Grow(e.ctx, b, 1)
	require.NoError(t, err)
	assert.Equal(t, 1, splits)
	assert.Equal(t, int64(2), e.num(e.item("u", "r", 0), schema.AttrShardCount))
	assert.Equal(t, int64(2), e.shardLevel("u", "r", 1))
	assert.Equal(t, map[string]int64{"u/rpm": 900}, e.avail(e.lim, "u", "r", ls))
	splits, err = upkeep.Grow(e.ctx, b, 1) // replayed: the count is 2 already, nothing below it
	require.NoError(t, err)
	assert.Zero(t, splits)
	assert.Equal(t, limiter.Stats{Splits: 1, Bumps: 1}, upkeep.Stats())
}

// Shrink merges a quiet bucket back to one shard: pairs merge exactly (or,
// with a twin gone, as if it were empty), the count comes down first, shard
// 0 expires again, writers with a stale count carry on, and once refilled a
// request of the whole capacity is admitted again.
func TestShrinkMergesAQuietBucketBack(t *testing.T) {
	p := newPicker()
	e := newEnv(t, limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	ls := []limits.Limit{rpm(1000)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 10}, Limits: ls}
	on := func(lim *limiter.Limiter, j int) {
		t.Helper()
		p.fixed.Store(int64(j))
		lease, err := lim.Acquire(e.ctx, req)
		require.NoError(t, err)
		require.Equal(t, j, lease.Entries()[0].Shard)
	}
	on(e.lim, 0)
	e.spendWCU("u", "r", 0)
	on(e.lim, 1)
	e.spendWCU("u", "r", 1)
	on(e.lim, 3)
	on(e.lim, 2)
	for j := range 4 {
		require.Equal(t, int64(4), e.shardLevel("u", "r", j))
	}
	stale := e.newLimiter(limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	on(stale, 3) // caches a count of 4
	assert.Equal(t, map[string]int64{"u/rpm": 950}, e.avail(e.lim, "u", "r", ls))

	b := shard.ID{Namespace: e.ns.ID, Entity: "u", Resource: "r"}
	upkeep := e.newLimiter(exact)
	merges, err := upkeep.Shrink(e.ctx, e.db, b)
	require.NoError(t, err)
	assert.Equal(t, 3, merges, "4 -> 2 -> 1")
	s0 := e.item("u", "r", 0)
	assert.Equal(t, int64(1), e.num(s0, schema.AttrShardCount))
	assert.Equal(t, int64(1), e.num(s0, schema.AttrShardLevel))
	assert.Contains(t, s0, schema.TTL, "one shard again: it expires like any bucket")
	for j := 1; j < 4; j++ {
		assert.True(t, e.item("u", "r", j) == nil || e.item("u", "r", j)[schema.AttrMerged] != nil, "shard %d is a tombstone", j)
	}
	assert.Equal(t, map[string]int64{"u/rpm": 950}, e.avail(e.lim, "u", "r", ls), "merged exactly")

	// A writer that still believes in 4 shards is told, and lands on 0.
	p.fixed.Store(3)
	lease, err := stale.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 0, lease.Entries()[0].Shard)
	e.clock.Advance(time.Minute)
	full := req
	full.Consume = map[string]int64{"rpm": 1000}
	_, err = e.lim.Acquire(e.ctx, full)
	require.NoError(t, err, "the whole capacity fits one shard again")

	merges, err = upkeep.Shrink(e.ctx, e.db, b) // replayed: nothing left to merge
	require.NoError(t, err)
	assert.Zero(t, merges)
}
