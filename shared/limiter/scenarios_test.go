package limiter_test

// Reference scenarios (core.md §12) 1-20, adapted to the Go API and to the
// rulings of DECISIONS §3.

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// exact are limiter options whose booking grid is below a millisecond, so
// an idle bucket books at the exact clock even while several writers of the
// process are in flight on it, and "available" is what the reference
// reports. With the default grid (100 ms of refill, at most 1% of capacity)
// concurrent writers of a process book an idle bucket at the next grid
// step, which may show as up to one step less available; TestDefaultGridCost
// bounds that.
var exact = limiter.Options{Tick: time.Nanosecond}

// Scenario 1: per_minute(rpm, 10): consume 10, then 1 more is denied with
// available 0 and retry after exactly 6 s; the denial costs no request (this
// process saw the bucket exhausted: the denial cache) and the acquire
// succeeds once the wait is over.
func TestScenario01BasicExhaustion(t *testing.T) {
	e := newEnv(t, exact)
	req := limiter.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 10}, Limits: []limits.Limit{rpm(10)}}
	_, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)

	req.Consume = map[string]int64{"rpm": 1}
	e.count.Reset()
	_, err = e.lim.Acquire(e.ctx, req)
	ex := exceeded(t, err)
	assert.Zero(t, e.count.Count(""), "a repeated denial costs nothing: %v", e.count.Snapshot())
	assert.Equal(t, limits.ReasonCached, ex.Reason)
	v := ex.Violations()
	require.Len(t, v, 1)
	assert.Equal(t, "user-1", v[0].EntityID)
	assert.Equal(t, "gpt-4", v[0].Resource)
	assert.Equal(t, "rpm", v[0].Limit.Name)
	assert.Equal(t, int64(0), v[0].Available)
	assert.Equal(t, int64(1), v[0].Requested)
	assert.Equal(t, 6*time.Second, ex.RetryAfter())
	assert.Equal(t, "6", ex.RetryAfterHeader())
	assert.Equal(t, "rate limit exceeded for user-1/gpt-4: [user-1/rpm]; retry after 6.0s", ex.Error())

	e.clock.Advance(ex.RetryAfter() - time.Millisecond)
	_, err = e.lim.Acquire(e.ctx, req)
	exceeded(t, err)
	e.clock.Advance(time.Millisecond)
	_, err = e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
}

// Scenario 2: asking a new 10 rpm bucket for 20 is denied with requested
// 20, available 10 and a positive wait (the time 20 tokens would take to
// accrue, 60 s); nothing is written.
func TestScenario02OverAskOnNewBucket(t *testing.T) {
	e := newEnv(t, exact)
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 20}, Limits: []limits.Limit{rpm(10)}})
	ex := exceeded(t, err)
	v := ex.Violations()
	require.Len(t, v, 1)
	assert.Equal(t, int64(20), v[0].Requested)
	assert.Equal(t, int64(10), v[0].Available)
	assert.Equal(t, 60*time.Second, ex.RetryAfter(), "a denial must say how long to wait")
	assert.Nil(t, e.item("u", "r", 0), "nothing persisted")

	// The same over-ask on an existing bucket.
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: []limits.Limit{rpm(10)}})
	require.NoError(t, err)
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 20}, Limits: []limits.Limit{rpm(10)}})
	ex = exceeded(t, err)
	assert.Equal(t, int64(9), ex.Violations()[0].Available)
	assert.Equal(t, 66*time.Second, ex.RetryAfter())
	assert.Equal(t, int64(1000), e.tc("u", "r", "rpm"))
}

// Scenario 3: a denial reports every limit of the bucket, passed and
// violated.
func TestScenario03AllStatusesReported(t *testing.T) {
	e := newEnv(t, exact)
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r",
		Consume: map[string]int64{"rpm": 1, "tpm": 200}, Limits: []limits.Limit{rpm(100), tpm(100)}})
	ex := exceeded(t, err)
	require.Len(t, ex.Statuses, 2)
	assert.Equal(t, []string{"u/tpm"}, names(ex.Violations()))
	r := statusOf(t, ex.Statuses, "u", "rpm")
	assert.False(t, r.Exceeded)
	assert.Equal(t, int64(1), r.Requested)
	assert.Equal(t, int64(100), r.Available)
	assert.Equal(t, time.Duration(0), r.RetryAfter)
	assert.Equal(t, "u/tpm", names([]limits.Status{ex.Primary()})[0])
}

// Scenario 4: a multi-limit acquire reports what it consumed.
func TestScenario04MultiLimitSuccess(t *testing.T) {
	e := newEnv(t, exact)
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r",
		Consume: map[string]int64{"rpm": 1, "tpm": 500}, Limits: []limits.Limit{rpm(100), tpm(10_000)}})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 500}, lease.Consumed())
	assert.Equal(t, int64(99), statusOf(t, lease.Statuses(), "u", "rpm").Available)
	assert.Equal(t, int64(9500), statusOf(t, lease.Statuses(), "u", "tpm").Available)
	require.NoError(t, lease.Commit(e.ctx))
	assert.Equal(t, map[string]int64{"u/rpm": 99, "u/tpm": 9500}, e.avail(e.lim, "u", "r", []limits.Limit{rpm(100), tpm(10_000)}))
}

// Scenario 5: the consumption is written before the work runs; another
// process sees it while the work is in progress.
func TestScenario05WriteOnEnter(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(100)}
	other := e.newLimiter(exact)
	err := e.lim.Do(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 10}, Limits: ls},
		func(ctx context.Context, l *limiter.Lease) error {
			assert.Equal(t, int64(10_000), e.tc("u", "r", "rpm"))
			assert.Equal(t, map[string]int64{"u/rpm": 90}, e.avail(other, "u", "r", ls))
			return nil
		})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"u/rpm": 90}, e.avail(other, "u", "r", ls), "committed")
}

// Scenario 6: when the work fails (error or panic) everything is returned
// and the failure reaches the caller unchanged.
func TestScenario06RollbackOnError(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(100)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 10}, Limits: ls}
	boom := errors.New("boom")
	err := e.lim.Do(e.ctx, req, func(ctx context.Context, l *limiter.Lease) error {
		require.NoError(t, l.Adjust(ctx, map[string]int64{"rpm": 5}))
		assert.Equal(t, map[string]int64{"u/rpm": 85}, e.avail(e.lim, "u", "r", ls))
		return boom
	})
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, map[string]int64{"u/rpm": 100}, e.avail(e.lim, "u", "r", ls))
	assert.Equal(t, int64(0), e.tc("u", "r", "rpm"))

	assert.PanicsWithValue(t, "kaboom", func() {
		_ = e.lim.Do(e.ctx, req, func(context.Context, *limiter.Lease) error { panic("kaboom") })
	})
	assert.Equal(t, map[string]int64{"u/rpm": 100}, e.avail(e.lim, "u", "r", ls))
	assert.Equal(t, int64(0), e.tc("u", "r", "rpm"))
}

// Scenario 7: lease.Consume takes more, checked; a denial changes nothing.
func TestScenario07LeaseConsume(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{tpm(10_000)}
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "a", Resource: "r", Consume: map[string]int64{"tpm": 500}, Limits: ls})
	require.NoError(t, err)
	require.NoError(t, lease.Consume(e.ctx, map[string]int64{"tpm": 500}))
	assert.Equal(t, map[string]int64{"tpm": 1000}, lease.Consumed())
	assert.Equal(t, map[string]int64{"a/tpm": 9000}, e.avail(e.lim, "a", "r", ls))

	ls = []limits.Limit{tpm(1000)}
	lease, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "b", Resource: "r", Consume: map[string]int64{"tpm": 500}, Limits: ls})
	require.NoError(t, err)
	err = lease.Consume(e.ctx, map[string]int64{"tpm": 600})
	ex := exceeded(t, err)
	assert.Equal(t, int64(500), statusOf(t, ex.Statuses, "b", "tpm").Available)
	assert.Equal(t, map[string]int64{"tpm": 500}, lease.Consumed())
	assert.Equal(t, map[string]int64{"b/tpm": 500}, e.avail(e.lim, "b", "r", ls))
	assert.Equal(t, int64(500_000), e.tc("b", "r", "tpm"))
}

// Scenario 8: Adjust never checks and may go into debt; Release gives back.
func TestScenario08AdjustIntoDebt(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{tpm(1000)}
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "a", Resource: "r", Consume: map[string]int64{"tpm": 500}, Limits: ls})
	require.NoError(t, err)
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 1000}))
	assert.Equal(t, map[string]int64{"tpm": 1500}, lease.Consumed())
	assert.Equal(t, map[string]int64{"a/tpm": -500}, e.avail(e.lim, "a", "r", ls), "debt")
	// Debt refills like anything else: 1000/min, 30 s -> -500 + 500.
	e.clock.Advance(30 * time.Second)
	assert.Equal(t, map[string]int64{"a/tpm": 0}, e.avail(e.lim, "a", "r", ls))

	lease, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "b", Resource: "r", Consume: map[string]int64{"tpm": 500}, Limits: ls})
	require.NoError(t, err)
	require.NoError(t, lease.Release(e.ctx, map[string]int64{"tpm": 200}))
	assert.Equal(t, map[string]int64{"tpm": 300}, lease.Consumed())
	assert.Equal(t, map[string]int64{"b/tpm": 700}, e.avail(e.lim, "b", "r", ls))
}

// Scenario 9 ("lease expiry"): every operation on a committed or rolled
// back lease is limits.ErrLeaseClosed and writes nothing; zero amounts are
// no-ops.
func TestScenario09ClosedLease(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(100), tpm(10_000)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1, "tpm": 100}, Limits: ls}

	lease, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	// Zero amounts: nothing to write, nothing changes.
	e.count.Reset()
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 0}))
	require.NoError(t, lease.Consume(e.ctx, map[string]int64{"tpm": 0}))
	assert.Equal(t, int64(0), e.count.Count(""))
	require.NoError(t, lease.Consume(e.ctx, map[string]int64{"rpm": 1}))
	assert.Equal(t, map[string]int64{"rpm": 2, "tpm": 100}, lease.Consumed(), "consuming rpm leaves tpm")

	for _, closeIt := range []func(context.Context) error{lease.Commit, nil} {
		if closeIt == nil {
			lease, err = e.lim.Acquire(e.ctx, req)
			require.NoError(t, err)
			closeIt = lease.Rollback
		}
		require.NoError(t, closeIt(e.ctx))
		before := e.avail(e.lim, "u", "r", ls)
		e.count.Reset()
		assert.ErrorIs(t, lease.Consume(e.ctx, map[string]int64{"rpm": 1}), limits.ErrLeaseClosed)
		assert.ErrorIs(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 5}), limits.ErrLeaseClosed)
		assert.ErrorIs(t, lease.Release(e.ctx, map[string]int64{"tpm": 5}), limits.ErrLeaseClosed)
		assert.ErrorIs(t, lease.Commit(e.ctx), limits.ErrLeaseClosed)
		assert.ErrorIs(t, lease.Rollback(e.ctx), limits.ErrLeaseClosed)
		assert.Equal(t, int64(0), e.count.Count(""), "a closed lease writes nothing")
		assert.Equal(t, before, e.avail(e.lim, "u", "r", ls))
	}
	// Committed: 2 rpm and 100 tpm stay taken; the rolled back lease none.
	assert.Equal(t, map[string]int64{"u/rpm": 98, "u/tpm": 9900}, e.avail(e.lim, "u", "r", ls))
}

// Scenario 10: the net consumed counter b_{L}_tc follows acquire, consume,
// adjust and release (millitokens).
func TestScenario10ConsumedCounter(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{tpm(10_000)}
	acq := func(id string) *limiter.Lease {
		l, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: id, Resource: "r", Consume: map[string]int64{"tpm": 100}, Limits: ls})
		require.NoError(t, err)
		assert.Equal(t, int64(100_000), e.tc(id, "r", "tpm"))
		return l
	}
	l := acq("a")
	require.NoError(t, l.Consume(e.ctx, map[string]int64{"tpm": 50}))
	assert.Equal(t, int64(150_000), e.tc("a", "r", "tpm"))

	l = acq("b")
	require.NoError(t, l.Adjust(e.ctx, map[string]int64{"tpm": -30}))
	assert.Equal(t, int64(70_000), e.tc("b", "r", "tpm"))

	l = acq("c")
	require.NoError(t, l.Release(e.ctx, map[string]int64{"tpm": 40}))
	assert.Equal(t, int64(60_000), e.tc("c", "r", "tpm"))

	l = acq("d")
	require.NoError(t, l.Adjust(e.ctx, map[string]int64{"tpm": 200}))
	assert.Equal(t, int64(300_000), e.tc("d", "r", "tpm"))
	require.NoError(t, l.Rollback(e.ctx))
	assert.Equal(t, int64(0), e.tc("d", "r", "tpm"))
}

// Scenario 11: two leases adjusting one bucket at the same time both land.
func TestScenario11ConcurrentAdjust(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{limits.PerDay("rpd", 1000, 0)}
	var wg sync.WaitGroup
	for _, amt := range [][2]int64{{10, 20}, {5, 15}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": amt[0]}, Limits: ls})
			if assert.NoError(t, err) {
				assert.NoError(t, l.Adjust(e.ctx, map[string]int64{"rpd": amt[1]}))
				assert.NoError(t, l.Commit(e.ctx))
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, map[string]int64{"u/rpd": 950}, e.avail(e.lim, "u", "r", ls))
	assert.Equal(t, int64(50_000), e.tc("u", "r", "rpd"))
}

// Scenario 12: a cascading child consumes from its parent too; a child that
// does not cascade leaves the parent alone; cascade without a parent works.
func TestScenario12CascadeConsumesBoth(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(100)}
	for _, ent := range []store.Entity{
		{ID: "parent"},
		{ID: "child", ParentID: "parent", Cascade: true},
		{ID: "loner", ParentID: "parent"},
		{ID: "orphan", Cascade: true},
	} {
		_, err := e.ns.CreateEntity(e.ctx, ent)
		require.NoError(t, err)
	}
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "child", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls})
	require.NoError(t, err)
	require.Len(t, lease.Entries(), 2)
	assert.Equal(t, map[string]int64{"rpm": 1}, lease.Consumed())
	// Available includes the parent when the entity cascades (§3.8).
	assert.Equal(t, map[string]int64{"child/rpm": 99, "parent/rpm": 99}, e.avail(e.lim, "child", "r", ls))

	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "loner", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"loner/rpm": 99}, e.avail(e.lim, "loner", "r", ls))
	assert.Equal(t, map[string]int64{"parent/rpm": 99}, e.avail(e.lim, "parent", "r", ls))

	lease, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "orphan", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls})
	require.NoError(t, err)
	assert.Len(t, lease.Entries(), 1)
	assert.Equal(t, map[string]int64{"orphan/rpm": 99}, e.avail(e.lim, "orphan", "r", ls))
}

// Scenario 13: a drained parent blocks its cascading child even though the
// child's own limit has room; the violation names the parent and nothing
// stays consumed on the child.
func TestScenario13ParentBlocksChild(t *testing.T) {
	e := newEnv(t, exact)
	_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: "child", ParentID: "parent", Cascade: true})
	require.NoError(t, err)
	require.NoError(t, e.ns.SetLimits(e.ctx, "parent", "gpt-4", []limits.Limit{rpm(5)}))
	require.NoError(t, e.ns.SetLimits(e.ctx, "child", "gpt-4", []limits.Limit{rpm(100)}))
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "parent", Resource: "gpt-4", Consume: map[string]int64{"rpm": 5}})
	require.NoError(t, err)

	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "child", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
	ex := exceeded(t, err)
	assert.Equal(t, []string{"parent/rpm"}, names(ex.Violations()))
	assert.Equal(t, "parent", ex.Primary().EntityID)
	assert.False(t, statusOf(t, ex.Statuses, "child", "rpm").Exceeded)
	assert.Equal(t, int64(0), e.tc("child", "gpt-4", "rpm"), "the child was given back")
	assert.Equal(t, map[string]int64{"child/rpm": 100, "parent/rpm": 0}, e.avail(e.lim, "child", "gpt-4", nil))
}

// Scenario 14: limits resolve entity (resource) > entity default > resource
// > system; limits passed in the call override all of them.
func TestScenario14Hierarchy(t *testing.T) {
	e := newEnv(t, exact)
	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(10)}, ""))
	require.NoError(t, e.ns.SetResourceDefaults(e.ctx, "gpt-4", []limits.Limit{rpm(50)}))
	require.NoError(t, e.ns.SetLimits(e.ctx, "user-1", "gpt-4", []limits.Limit{rpm(100)}))
	require.NoError(t, e.ns.SetLimits(e.ctx, "user-2", limits.DefaultResource, []limits.Limit{rpm(100)}))
	acq := func(id, res string, n int64, override ...limits.Limit) error {
		_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: id, Resource: res, Consume: map[string]int64{"rpm": n}, Limits: override})
		return err
	}
	assert.NoError(t, acq("user-1", "gpt-4", 75), "entity config for the resource")
	assert.NoError(t, acq("user-2", "gpt-4", 75), "entity default beats the resource defaults")
	assert.NoError(t, acq("user-3", "gpt-4", 25), "resource defaults")
	exceeded(t, acq("user-3", "gpt-4", 26))
	assert.NoError(t, acq("user-4", "claude", 10), "system defaults")
	exceeded(t, acq("user-4", "claude", 1))
	assert.NoError(t, acq("user-5", "claude", 60, rpm(100)), "the call's limits beat the system")
	// The tokens held carry over (25 left of the entity's 100).
	exceeded(t, acq("user-1", "gpt-4", 26, rpm(200)))
	assert.NoError(t, acq("user-1", "gpt-4", 25, rpm(200)), "the call's limits beat the entity's own config")
	assert.Equal(t, int64(100_000), e.tc("user-1", "gpt-4", "rpm"))

	// Nothing stored at all: the call's limits alone.
	e2 := newEnv(t, exact)
	_, err := e2.lim.Acquire(e2.ctx, limiter.Request{EntityID: "x", Resource: "y", Consume: map[string]int64{"rpm": 100}, Limits: []limits.Limit{rpm(100)}})
	assert.NoError(t, err)
}

// Scenario 15: no limits anywhere is a validation error naming the entity
// and the resource (never unavailability, whatever the policy).
func TestScenario15NoLimitsAnywhere(t *testing.T) {
	e := newEnv(t, exact)
	for _, on := range []limits.OnUnavailable{"", limits.Allow} {
		_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "user-9", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}, OnUnavailable: on})
		require.Error(t, err)
		assert.ErrorIs(t, err, limits.ErrInvalid)
		assert.NotErrorIs(t, err, limits.ErrUnavailable)
		var ve *limits.ValidationError
		require.ErrorAs(t, err, &ve)
		assert.Equal(t, "limits", ve.Field)
		assert.Contains(t, err.Error(), "no limits configured")
		assert.Contains(t, err.Error(), `"user-9"`)
		assert.Contains(t, err.Error(), `"gpt-4"`)
	}
	_, err := e.lim.Available(e.ctx, "user-9", "gpt-4", nil, nil)
	assert.ErrorIs(t, err, limits.ErrInvalid)
}

// Scenario 16: Available and TimeUntilAvailable.
func TestScenario16AvailableAndWait(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(100), tpm(10_000)}
	assert.Equal(t, map[string]int64{"u/rpm": 100, "u/tpm": 10_000}, e.avail(e.lim, "u", "r", ls), "a new bucket is full")
	assert.Nil(t, e.item("u", "r", 0), "Available only reads")
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 30}, Limits: ls})
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"u/rpm": 70, "u/tpm": 10_000}, e.avail(e.lim, "u", "r", ls))

	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 70}, Limits: ls})
	require.NoError(t, err)
	wait, err := e.lim.TimeUntilAvailable(e.ctx, "u", "r", map[string]int64{"rpm": 50, "tpm": 0}, ls)
	require.NoError(t, err)
	assert.InDelta(t, 30.0, wait, 0.001, "50 of 100/min")
	sts, err := e.lim.Available(e.ctx, "u", "r", map[string]int64{"rpm": 50}, ls)
	require.NoError(t, err)
	r := statusOf(t, sts, "u", "rpm")
	assert.True(t, r.Exceeded)
	assert.Equal(t, int64(50), r.Requested)
	assert.Equal(t, 30*time.Second, r.RetryAfter)
	assert.False(t, statusOf(t, sts, "u", "tpm").Exceeded)

	// Through the stored configuration.
	require.NoError(t, e.ns.SetResourceDefaults(e.ctx, "gpt-4", []limits.Limit{rpm(100)}))
	assert.Equal(t, map[string]int64{"v/rpm": 100}, e.avail(e.lim, "v", "gpt-4", nil))
	wait, err = e.lim.TimeUntilAvailable(e.ctx, "v", "gpt-4", map[string]int64{"rpm": 100}, nil)
	require.NoError(t, err)
	assert.Equal(t, 0.0, wait)
}

// Scenario 17: a bucket refills with time: 100 per second, drained, is
// denied at once and admits 50 after 1.1 s.
func TestScenario17RefillRecovery(t *testing.T) {
	for _, o := range []limiter.Options{exact, {}} {
		e := newEnv(t, o)
		ls := []limits.Limit{{Name: "rps", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 1}}
		req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rps": 100}, Limits: ls}
		_, err := e.lim.Acquire(e.ctx, req)
		require.NoError(t, err)
		_, err = e.lim.Acquire(e.ctx, req)
		ex := exceeded(t, err)
		assert.Greater(t, ex.RetryAfter(), time.Duration(0))
		assert.LessOrEqual(t, ex.RetryAfter(), time.Second)
		e.clock.Advance(1100 * time.Millisecond)
		req.Consume = map[string]int64{"rps": 50}
		_, err = e.lim.Acquire(e.ctx, req)
		require.NoError(t, err, "options %+v", o)
	}
}

// Scenario 18: when DynamoDB fails, the policy decides: block (the default)
// is an error matching limits.ErrUnavailable that carries the cause; allow
// is a degraded no-op lease; the call's policy overrides the stored one
// both ways.
func TestScenario18OnUnavailable(t *testing.T) {
	e := newEnv(t, exact)
	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(100)}, limits.Allow))
	db, _, lim := e.flaky(exact)
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}
	_, err := lim.Acquire(e.ctx, req) // warms the config cache
	require.NoError(t, err)

	db.failAll(serviceUnavailable)
	lease, err := lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.True(t, lease.Degraded())
	assert.Empty(t, lease.Entries())
	assert.Empty(t, lease.Consumed())
	calls := db.calls.Load()
	assert.NoError(t, lease.Consume(e.ctx, map[string]int64{"rpm": 5}))
	assert.NoError(t, lease.Adjust(e.ctx, map[string]int64{"rpm": 5}))
	assert.Empty(t, lease.Consumed())
	assert.NoError(t, lease.Rollback(e.ctx))
	assert.Equal(t, calls, db.calls.Load(), "a degraded lease makes no call")
	assert.ErrorIs(t, lease.Commit(e.ctx), limits.ErrLeaseClosed)

	// The call's block beats the stored allow.
	req.OnUnavailable = limits.Block
	_, err = lim.Acquire(e.ctx, req)
	assert.ErrorIs(t, err, limits.ErrUnavailable)
	var ue *limiter.UnavailableError
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "u", ue.EntityID)
	assert.Equal(t, "r", ue.Resource)
	var api smithy.APIError
	require.ErrorAs(t, err, &api, "the cause is carried")
	assert.Equal(t, "ServiceUnavailable", api.ErrorCode())

	db.failAll(nil)
	assert.Equal(t, map[string]int64{"u/rpm": 99}, e.avail(lim, "u", "r", nil), "nothing consumed while down")

	// Block by default; the call's allow beats it.
	e2 := newEnv(t, exact)
	require.NoError(t, e2.ns.SetSystemDefaults(e2.ctx, []limits.Limit{rpm(100)}, ""))
	db2, _, lim2 := e2.flaky(exact)
	req.OnUnavailable = ""
	_, err = lim2.Acquire(e2.ctx, req)
	require.NoError(t, err)
	db2.failAll(throttled)
	_, err = lim2.Acquire(e2.ctx, req)
	assert.ErrorIs(t, err, limits.ErrUnavailable)
	require.ErrorAs(t, err, &api)
	assert.Equal(t, "ProvisionedThroughputExceededException", api.ErrorCode())
	req.OnUnavailable = limits.Allow
	lease, err = lim2.Acquire(e2.ctx, req)
	require.NoError(t, err)
	assert.True(t, lease.Degraded())

	// A failure before anything is cached (the config reads fail) follows
	// the policy too.
	db3, _, lim3 := e2.flaky(exact)
	db3.failAll(serviceUnavailable)
	lease, err = lim3.Acquire(e2.ctx, req)
	require.NoError(t, err)
	assert.True(t, lease.Degraded())
	req.OnUnavailable = ""
	_, err = lim3.Acquire(e2.ctx, req)
	assert.ErrorIs(t, err, limits.ErrUnavailable)
}

// Scenario 19: the policy when the call gives none: block when no system
// config exists; the stored value while it is cached; and when DynamoDB
// fails after the cache expired, the last value read (else block).
func TestScenario19OnUnavailableResolution(t *testing.T) {
	e := newEnv(t, exact)
	db, _, lim := e.flaky(exact)
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: []limits.Limit{rpm(100)}}
	db.failAll(serviceUnavailable)
	_, err := lim.Acquire(e.ctx, req)
	assert.ErrorIs(t, err, limits.ErrUnavailable, "nothing known: block")

	db.failAll(nil)
	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(100)}, limits.Allow))
	db, _, lim = e.flaky(exact)
	req.Limits = nil
	_, err = lim.Acquire(e.ctx, req)
	require.NoError(t, err)

	db.failAll(serviceUnavailable)
	lease, err := lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.True(t, lease.Degraded(), "cached allow")

	// The config cache (60 s) expires; DynamoDB still fails: the last value
	// read still holds.
	e.clock.Advance(store.DefaultCacheTTL + time.Second)
	lease, err = lim.Acquire(e.ctx, req)
	require.NoError(t, err, "the last known policy is allow")
	assert.True(t, lease.Degraded())
}

// Scenario 20: bucket TTL is the multiplier (7) times the slowest limit's
// fill time, at least one hour, from the last write; every acquire renews
// it; a negative multiplier disables it. Unlike the reference, buckets of
// entities with their own config expire too: by then they are full, so
// expiry loses nothing.
func TestScenario20BucketTTL(t *testing.T) {
	e := newEnv(t, exact)
	ttl := func(entity string) (int64, bool) {
		return dynamo.GetN(e.item(entity, "r", 0), schema.TTL)
	}
	now := func() int64 { return e.clock.Now().Unix() }

	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(100)}, ""))
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "sys", Resource: "r", Consume: map[string]int64{"rpm": 1}})
	require.NoError(t, err)
	v, ok := ttl("sys")
	require.True(t, ok)
	assert.Equal(t, now()+3600, v, "7 x 60 s is below the one-hour floor")

	slow := limits.Limit{Name: "slow", Capacity: 1000, RefillAmount: 10, RefillPeriodSeconds: 60}
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "slow", Resource: "r", Consume: map[string]int64{"slow": 1}, Limits: []limits.Limit{rpm(100), slow}})
	require.NoError(t, err)
	v, _ = ttl("slow")
	assert.Equal(t, now()+42_000, v, "7 x 6000 s")

	require.NoError(t, e.ns.SetLimits(e.ctx, "custom", "r", []limits.Limit{limits.PerHour("rph", 100, 0)}))
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "custom", Resource: "r", Consume: map[string]int64{"rph": 1}})
	require.NoError(t, err)
	v, ok = ttl("custom")
	require.True(t, ok)
	assert.Equal(t, now()+7*3600, v)

	e.clock.Advance(10 * time.Minute)
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "sys", Resource: "r", Consume: map[string]int64{"rpm": 1}})
	require.NoError(t, err)
	v, _ = ttl("sys")
	assert.Equal(t, now()+3600, v, "renewed by the write")

	off := e.newLimiter(limiter.Options{Tick: time.Nanosecond, TTLMultiplier: -1})
	_, err = off.Acquire(e.ctx, limiter.Request{EntityID: "off", Resource: "r", Consume: map[string]int64{"rpm": 1}})
	require.NoError(t, err)
	_, ok = ttl("off")
	assert.False(t, ok, "no ttl when disabled")
}
