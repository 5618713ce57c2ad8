package shard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

func TestPlanAdjust(t *testing.T) {
	ls := []limits.Limit{perMin("tpm", 1000)}
	busy := stateOf(t, ls, t0, map[string]int64{"tpm": 600})
	idle := stateOf(t, ls, t0-120_000, map[string]int64{"tpm": 600}) // two minutes ago: full again
	c := bucket.Clock(ParamsOf(ls[0]), t0)

	t.Run("a refund adds, only to its generation", func(t *testing.T) {
		p := PlanAdjust(id0, busy, Adjust{Deltas: map[string]int64{"tpm": -100 * Milli}, Level: 1, Gen: 42, Now: t0})
		require.NotNil(t, p.Update)
		assert.Equal(t, busy.Limits["tpm"].W-100*Milli, p.Next.Limits["tpm"].W)
		assert.Contains(t, p.Update.Values(), ":002")
		assert.Equal(t, int64(500), level(p.Next, "tpm", t0))
	})
	t.Run("a charge on a busy limit adds, bounded by the debt limit", func(t *testing.T) {
		p := PlanAdjust(id0, busy, Adjust{Deltas: map[string]int64{"tpm": 900 * Milli}, Level: 1, Now: t0})
		assert.Equal(t, int64(-500), level(p.Next, "tpm", t0), "debt")
		assert.Contains(t, p.Update.Condition(), "<=")
	})
	t.Run("a charge on an idle limit is booked from the clock", func(t *testing.T) {
		p := PlanAdjust(id0, idle, Adjust{Deltas: map[string]int64{"tpm": 900 * Milli}, Level: 1, Now: t0})
		assert.Equal(t, c+900*Milli, p.Next.Limits["tpm"].W, "not absorbed by refill the bucket could not hold")
		assert.Equal(t, int64(100), level(p.Next, "tpm", t0))
	})
	t.Run("a shard's level scales the cost", func(t *testing.T) {
		st := busy.Clone()
		st.Level = 4
		p := PlanAdjust(id0.Of(1), st, Adjust{Deltas: map[string]int64{"tpm": 10 * Milli}, Level: 4, Now: t0})
		assert.Equal(t, busy.Limits["tpm"].W+40*Milli, p.Next.Limits["tpm"].W)
	})
	t.Run("nothing to write", func(t *testing.T) {
		assert.Nil(t, PlanAdjust(id0, busy, Adjust{Deltas: map[string]int64{"tpm": 0}, Level: 1, Now: t0}).Update)
	})
	t.Run("the debt bound", func(t *testing.T) {
		deep := busy.Clone()
		l := deep.Limits["tpm"]
		l.W = c + l.Params.Capacity + MaxDebt - 10*Milli
		deep.Limits["tpm"] = l
		a := Adjust{Deltas: map[string]int64{"tpm": 11 * Milli}, Level: 1, Now: t0}
		name, over := OverDebt(deep, a)
		assert.True(t, over)
		assert.Equal(t, "tpm", name)
		a.Deltas["tpm"] = 10 * Milli
		_, over = OverDebt(deep, a)
		assert.False(t, over)
	})
}

// Splitting halves a shard's share with its virtual times unchanged, and
// its twin gets the same virtual times: the two hold exactly what it held.
func TestSplitAndTwinHoldWhatTheShardHeld(t *testing.T) {
	ls := []limits.Limit{perMin("rpm", 1000)}
	st := stateOf(t, ls, t0, map[string]int64{"rpm": 300})
	busy := st.Clone()
	b := busy.Limits[Budget]
	b.W = bucket.Clock(BudgetParams, t0) + 900_000 // 900 writes booked ahead
	busy.Limits[Budget] = b
	split := PlanSplit(id0, busy, t0).Next
	assert.Equal(t, bucket.Clock(BudgetParams, t0), split.Limits[Budget].W, "a split shard's write budget starts over")
	assert.Equal(t, st.Limits[Budget].W, PlanSplit(id0, st, t0+1000).Next.Limits[Budget].W, "never booked further ahead than it was")
	_, twin := Twin(id0.Of(1), split, t0, 7)
	assert.Equal(t, int64(350), level(split, "rpm", t0))
	assert.Equal(t, int64(350), level(twin, "rpm", t0))
	assert.Zero(t, split.TTL, "a split shard 0 never expires")
	assert.Positive(t, twin.TTL)
	assert.Equal(t, bucket.Clock(BudgetParams, t0), twin.Limits[Budget].W, "a twin's write budget starts full")
	_, empty := Empty(id0.Of(3), st.Params(), 4, 0, t0, 7)
	assert.Equal(t, int64(0), level(empty, "rpm", t0), "a recreated shard starts empty")
}
