package limiter_test

// The six over-admission defects of the engine review (issue 7), each as the
// scenario that exposed it, with the test clock.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// A raised capacity reaches a bucket even when every request is above the
// old capacity: the first denial writes the new parameters, so its
// retry-after comes true.
func TestRaisedCapacityReachesABucketThatOnlyDenies(t *testing.T) {
	e := newEnv(t, exact)
	ctx := e.ctx
	require.NoError(t, e.ns.SetLimits(ctx, "u", "llm", []limits.Limit{tpm(1000)}))
	_, err := e.lim.Acquire(ctx, limiter.Request{EntityID: "u", Resource: "llm", Consume: map[string]int64{"tpm": 1}})
	require.NoError(t, err)
	require.NoError(t, e.ns.SetLimits(ctx, "u", "llm", []limits.Limit{tpm(10_000)}))
	fresh := e.newLimiter(exact) // never saw the bucket
	req := limiter.Request{EntityID: "u", Resource: "llm", Consume: map[string]int64{"tpm": 5000}}

	e.clock.Advance(time.Minute)
	_, err = fresh.Acquire(ctx, req)
	denial := exceeded(t, err)
	assert.Equal(t, int64(10_000*1000), e.num(e.item("u", "llm", 0), schema.BucketAttr("tpm", schema.SuffixCapacity)),
		"the denial wrote the new capacity")
	wait := denial.RetryAfter()
	require.Positive(t, wait)
	assert.LessOrEqual(t, wait, 30*time.Second)

	e.clock.Advance(wait)
	admitted := 0
	for range 10 {
		for _, lim := range []*limiter.Limiter{e.lim, fresh} {
			if _, err := lim.Acquire(ctx, req); err == nil {
				admitted++
			} else {
				exceeded(t, err)
			}
		}
		e.clock.Advance(time.Minute)
	}
	// The first request after the promised wait is admitted (the second at
	// that instant is not: 5000 were there), then two 5000s a minute at
	// 10000/min.
	assert.Equal(t, 19, admitted)
}

// A lease keeps no limits of its own: its checked Consume takes the limits
// in force, so a lowered limit is never put back by a lease acquired before.
func TestLeaseConsumeDoesNotRestoreALoweredLimit(t *testing.T) {
	e := newEnv(t, exact)
	ctx := e.ctx
	require.NoError(t, e.ns.SetLimits(ctx, "u", "api", []limits.Limit{rpm(1000)}))
	lease, err := e.lim.Acquire(ctx, limiter.Request{EntityID: "u", Resource: "api", Consume: map[string]int64{"rpm": 1}})
	require.NoError(t, err)
	require.NoError(t, e.ns.SetLimits(ctx, "u", "api", []limits.Limit{rpm(100)}))
	var admitted int64
	for range 100 { // every 6 s for ten minutes
		e.clock.Advance(6 * time.Second)
		if err := lease.Consume(ctx, map[string]int64{"rpm": 1}); err == nil {
			admitted++
		} else {
			exceeded(t, err)
		}
		if _, err := e.lim.Acquire(ctx, limiter.Request{EntityID: "u", Resource: "api", Consume: map[string]int64{"rpm": 95}}); err == nil {
			admitted += 95
		} else {
			exceeded(t, err)
		}
	}
	// 100 held when the limit was lowered, plus 100 a minute for ten minutes.
	assert.LessOrEqual(t, admitted, int64(1100))
	assert.Greater(t, admitted, int64(900), "the limit in force is 100/min: most of it is admitted")
}

// Dormant limits are part of the parameters a write is conditioned on: a
// process whose cache shows a dormant limit with other parameters than the
// item's cannot charge it at its own clock.
func TestDormantLimitParametersAreConditioned(t *testing.T) {
	e := newEnv(t, exact)
	ctx := e.ctx
	a, c := e.newLimiter(exact), e.newLimiter(exact)
	rpmOnly := []limits.Limit{rpm(1000)}
	xMin := []limits.Limit{rpm(1000), limits.PerMinute("x", 1000, 0)}
	xDay := []limits.Limit{rpm(1000), limits.PerDay("x", 1000, 0)}
	acq := func(lim *limiter.Limiter, ls []limits.Limit, consume map[string]int64) error {
		_, err := lim.Acquire(ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: consume, Limits: ls})
		return err
	}
	require.NoError(t, acq(a, xMin, map[string]int64{"rpm": 1}))
	require.NoError(t, acq(a, rpmOnly, map[string]int64{"rpm": 1}))
	require.NoError(t, acq(c, xDay, map[string]int64{"rpm": 1}))
	require.NoError(t, acq(c, xDay, map[string]int64{"x": 1000}))
	require.NoError(t, acq(c, rpmOnly, map[string]int64{"rpm": 1}))
	e.clock.Advance(time.Second)
	err := acq(a, xMin, map[string]int64{"x": 1000})
	exceeded(t, err) // x was drained a second ago
}

// Losing races is never an outage: two processes whose limits for one
// bucket differ (the config cache window) ping-pong its parameters, and
// with on_unavailable allow not one acquire is admitted unchecked.
func TestContentionIsNeverAnOutage(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	one := []limits.Limit{{Name: "rpd", Capacity: 500, RefillAmount: 1, RefillPeriodSeconds: limits.MaxPeriodSeconds}}
	two := []limits.Limit{{Name: "rpd", Capacity: 500, RefillAmount: 2, RefillPeriodSeconds: limits.MaxPeriodSeconds}}
	lims := []*limiter.Limiter{e.newLimiter(limiter.Options{Now: time.Now}), e.newLimiter(limiter.Options{Now: time.Now})}
	sets := [][]limits.Limit{one, two}
	var admitted, degraded atomic.Int64
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				lease, err := lims[g%2].Acquire(context.Background(), limiter.Request{EntityID: "u", Resource: "r",
					Consume: map[string]int64{"rpd": 1}, Limits: sets[g%2], OnUnavailable: limits.Allow})
				switch {
				case err == nil && lease.Degraded():
					degraded.Add(1)
				case err == nil:
					admitted.Add(1)
				default:
					var ex *limits.ExceededError
					assert.True(t, errors.As(err, &ex), "a denial, not %v", err)
				}
			}
		}()
	}
	wg.Wait()
	assert.Zero(t, degraded.Load(), "contention is not unavailability")
	assert.LessOrEqual(t, admitted.Load(), int64(500))
}

// A charge on a shard that expired recreates it at the level of the bucket
// (read from shard 0), never at a level guessed from a fresh process's
// (empty) cache: the shards' shares never add up to more than the limit.
func TestExpiredShardRecreatedAtTheBucketsLevel(t *testing.T) {
	p := newPicker()
	e := newEnv(t, limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	ls := []limits.Limit{rpm(1000)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls}
	acqOn := func(lim *limiter.Limiter, j int) *limiter.Lease {
		t.Helper()
		p.fixed.Store(int64(j))
		lease, err := lim.Acquire(e.ctx, req)
		require.NoError(t, err)
		require.Equal(t, j, lease.Entries()[0].Shard)
		return lease
	}
	acqOn(e.lim, 0)
	e.spendWCU("u", "r", 0)
	acqOn(e.lim, 1) // count 2: shard 0 split into 0 and 1
	e.spendWCU("u", "r", 1)
	acqOn(e.lim, 3)                  // count 4: shard 1 split into 1 and 3
	acqOn(e.lim, 2)                  // shard 0 split into 0 and 2
	e.clock.Advance(3 * time.Second) // the spent write budgets refill
	for j := range 4 {
		require.Equal(t, int64(4), e.shardLevel("u", "r", j), "shard %d", j)
	}
	lease := acqOn(e.lim, 1)

	e.deleteShard("u", "r", 1) // expired while the others keep traffic
	fresh := e.newLimiter(limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	resumed := fresh.Resume(req, lease.Entries())
	require.NoError(t, resumed.Adjust(e.ctx, map[string]int64{"rpm": 1}))
	assert.Equal(t, int64(4), e.shardLevel("u", "r", 1), "recreated at the bucket's level")

	e.clock.Advance(2 * time.Minute) // everything refills
	total := e.avail(fresh, "u", "r", ls)["u/rpm"]
	assert.LessOrEqual(t, total, int64(1000))
	admitted := int64(0)
	for j := range 4 {
		p.fixed.Store(int64(j))
		for {
			r := req
			r.Consume = map[string]int64{"rpm": 50}
			if _, err := fresh.Acquire(e.ctx, r); err != nil {
				exceeded(t, err)
				break
			}
			admitted += 50
		}
	}
	assert.LessOrEqual(t, admitted, int64(1000), "at one instant from a 1000-token limit")
}

// Writers whose clocks disagree by more than the write budget's burst never
// mistake the skew for load: the bucket stays one shard, whatever the skew.
func TestClockSkewNeverShards(t *testing.T) {
	for _, skew := range []time.Duration{3 * time.Second, 30 * time.Second, 2 * time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			e := newEnv(t, limiter.Options{})
			slow, fast := newClock(), newClock()
			fast.Advance(skew)
			a := e.newLimiter(limiter.Options{Now: slow.Now})
			b := e.newLimiter(limiter.Options{Now: fast.Now})
			req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": 1},
				Limits: []limits.Limit{limits.PerDay("rpd", 1_000_000, 0)}}
			for range 20 { // 40 acquires in 2 s
				slow.Advance(100 * time.Millisecond)
				fast.Advance(100 * time.Millisecond)
				for _, lim := range []*limiter.Limiter{b, a} {
					_, err := lim.Acquire(e.ctx, req)
					require.NoError(t, err)
				}
			}
			t.Logf("requests: %v", e.count.Snapshot())
			it := e.item("u", "r", 0)
			assert.Equal(t, int64(1), e.num(it, schema.AttrShardCount))
			assert.Equal(t, int64(40_000), e.num(it, "b_rpd_tc"))
			assert.Nil(t, e.item("u", "r", 1))
		})
	}
}

// Debt never saturates: a lease holds at most limits.MaxTokens of a limit,
// so every sum stays exact, and a rollback restores the bucket exactly.
func TestDebtIsBoundedAndRollbackIsExact(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{tpm(1000)}
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1}, Limits: ls})
	require.NoError(t, err)
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": limits.MaxTokens - 1}))
	err = lease.Adjust(e.ctx, map[string]int64{"tpm": 1})
	var ve *limits.ValidationError
	require.ErrorAs(t, err, &ve, "beyond MaxTokens held")
	assert.Equal(t, "adjust.tpm", ve.Field)
	assert.Equal(t, map[string]int64{"u/tpm": 1000 - limits.MaxTokens}, e.avail(e.lim, "u", "r", ls), "the refused adjust changed nothing")
	require.NoError(t, lease.Rollback(e.ctx))
	assert.Equal(t, map[string]int64{"u/tpm": 1000}, e.avail(e.lim, "u", "r", ls), "exactly restored")
}

// More limits than one bucket may hold (limits.MaxLimits) is the caller's
// input: a validation error naming the limits, before any request.
func TestTooManyLimitsRefusedBeforeAnyWrite(t *testing.T) {
	e := newEnv(t, exact)
	var ls []limits.Limit
	for i := range limits.MaxLimits + 1 {
		ls = append(ls, limits.Limit{Name: fmt.Sprintf("l%d", i), Capacity: 5, RefillAmount: 5, RefillPeriodSeconds: 60})
	}
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"l0": 1}, Limits: ls})
	var ve *limits.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "limits", ve.Field)
	assert.Contains(t, err.Error(), fmt.Sprintf("at most %d limits", limits.MaxLimits))
	assert.Nil(t, e.item("u", "r", 0), "nothing written")
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"l0": 1}, Limits: ls[:limits.MaxLimits]})
	assert.NoError(t, err, "MaxLimits limits are allowed")
}
