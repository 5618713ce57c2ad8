package limiter_test

// Scenarios 24-27 are about the reference's speculative path and its
// read-modify-write fallback. Ours has one path: a conditional write
// predicted from cached state, whose failure returns the item. They are
// restated as the request counts and outcomes that path must have.

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Scenario 24: an exhausted bucket is rejected after at most one request:
// none when this process saw it exhausted (the denial cache), one when it
// does not know it (or with the cache off); a bucket that refill will
// satisfy admits as soon as it does; a missing bucket is created by the
// acquire itself, complete, in one request.
func TestScenario24OneRequestDecisions(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(1)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls}

	// Missing bucket: created by the acquire (the entity lookup aside, and
	// the namespace's on_unavailable, read beside the write once a minute
	// by acquires with inline limits: limiter.PolicyEvery).
	e.count.Reset()
	_, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"UpdateItem": 1, "GetItem": 2}, e.count.Snapshot(), "one write + the entity record + the policy")
	it := e.item("u", "r", 0)
	require.NotNil(t, it)
	for _, attr := range []string{schema.AttrEntityID, schema.AttrResource, schema.AttrShard, schema.AttrShardLevel,
		schema.AttrShardCount, schema.AttrParams, schema.TTL, schema.GSI3PK, schema.GSI3SK, schema.GSI4PK, schema.GSI4SK,
		"b_rpm_w", "b_rpm_cp", "b_rpm_ra", "b_rpm_rp", "b_rpm_tc", "b_wcu_w", "b_wcu_cp"} {
		assert.Contains(t, it, attr)
	}
	assert.Equal(t, int64(0), e.num(it, schema.AttrShard))
	assert.Equal(t, int64(1), e.num(it, schema.AttrShardCount))

	// Exhausted, known to this process: no request (its write showed it).
	e.count.Reset()
	_, err = e.lim.Acquire(e.ctx, req)
	exceeded(t, err)
	assert.Empty(t, e.count.Snapshot())
	// With the denial cache off: one request.
	uncached := e.newLimiter(limiter.Options{Tick: time.Nanosecond, NoDenialCache: true})
	_, err = uncached.Acquire(e.ctx, req)
	exceeded(t, err)
	e.count.Reset()
	_, err = uncached.Acquire(e.ctx, req)
	ex := exceeded(t, err)
	assert.Empty(t, ex.Reason)
	assert.Equal(t, map[string]int64{"UpdateItem": 1}, e.count.Snapshot())

	// Exhausted, unknown to another process: one write too.
	other := e.newLimiter(exact)
	e.count.Reset()
	_, err = other.Acquire(e.ctx, req)
	exceeded(t, err)
	assert.Equal(t, int64(1), e.count.Count("UpdateItem"), "%v", e.count.Snapshot())
	assert.Equal(t, int64(1000), e.tc("u", "r", "rpm"))

	// 1000 a minute with 999 taken: 2 more are denied now, admitted once
	// 120 ms have refilled them (the write taught the exact state: the
	// denials cost nothing, the admit one request).
	ls = []limits.Limit{limits.PerMinute("rpm", 1000, 0)}
	req = limiter.Request{EntityID: "v", Resource: "r", Consume: map[string]int64{"rpm": 999}, Limits: ls}
	_, err = e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	req.Consume = map[string]int64{"rpm": 2}
	e.count.Reset()
	_, err = e.lim.Acquire(e.ctx, req)
	ex = exceeded(t, err)
	assert.Equal(t, 60*time.Millisecond, ex.RetryAfter())
	e.clock.Advance(59 * time.Millisecond)
	_, err = e.lim.Acquire(e.ctx, req)
	exceeded(t, err)
	e.clock.Advance(time.Millisecond)
	_, err = e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"UpdateItem": 1}, e.count.Snapshot())
}

// Scenario 24 (concurrency): writers of one busy bucket at the same instant
// need no retries, in one process or many: every acquire is one request.
func TestScenario24ConcurrentWritersNeedNoRetries(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{limits.PerDay("rpd", 100_000, 0)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": 1}, Limits: ls}
	lims := []*limiter.Limiter{e.lim, e.newLimiter(exact), e.newLimiter(exact), e.newLimiter(exact)}
	for _, lim := range lims { // each process learns the bucket (and entity)
		_, err := lim.Acquire(e.ctx, req)
		require.NoError(t, err)
	}
	e.count.Reset()
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := lims[i%len(lims)].Acquire(e.ctx, req)
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.Equal(t, map[string]int64{"UpdateItem": 32}, e.count.Snapshot())
	assert.Equal(t, int64(36_000), e.tc("u", "r", "rpd"))
}

// Scenario 25: cascade. With the entity cached, child and parent are
// written concurrently (two requests); a parent without tokens denies the
// acquire naming the parent and the child is given back; once the parent
// refills the acquire succeeds; a missing parent bucket is created.
func TestScenario25Cascade(t *testing.T) {
	e := newEnv(t, exact)
	_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: "child", ParentID: "parent", Cascade: true})
	require.NoError(t, err)
	require.NoError(t, e.ns.SetLimits(e.ctx, "parent", "r", []limits.Limit{rpm(3)}))
	require.NoError(t, e.ns.SetLimits(e.ctx, "child", "r", []limits.Limit{rpm(100)}))
	req := limiter.Request{EntityID: "child", Resource: "r", Consume: map[string]int64{"rpm": 1}}

	_, err = e.lim.Acquire(e.ctx, req) // creates both buckets
	require.NoError(t, err)
	assert.NotNil(t, e.item("parent", "r", 0), "the parent bucket was created")
	e.count.Reset()
	for range 2 {
		_, err = e.lim.Acquire(e.ctx, req)
		require.NoError(t, err)
	}
	assert.Equal(t, map[string]int64{"UpdateItem": 4}, e.count.Snapshot(), "child + parent per acquire")

	e.count.Reset()
	_, err = e.lim.Acquire(e.ctx, req)
	ex := exceeded(t, err)
	assert.Equal(t, []string{"parent/rpm"}, names(ex.Violations()))
	assert.Equal(t, 20*time.Second, ex.RetryAfter())
	assert.Empty(t, e.count.Snapshot(), "the parent was seen exhausted: nothing written (not even the child)")
	assert.Equal(t, limits.ReasonCached, ex.Reason)
	assert.Equal(t, int64(3000), e.tc("child", "r", "rpm"))
	assert.Equal(t, map[string]int64{"child/rpm": 97, "parent/rpm": 0}, e.avail(e.lim, "child", "r", nil))

	e.clock.Advance(ex.RetryAfter())
	_, err = e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"child/rpm": 99, "parent/rpm": 0}, e.avail(e.lim, "child", "r", nil), "the child refilled 33 in 20 s")
}

// Scenario 26 (the reference's normal-write guard): a process whose cached
// state is stale never over-admits. Another writer took 80 of 100: a
// request for 10 is admitted in one request (ADD commutes), one for 50 is
// denied in one request from the returned item; a bucket this process
// believes idle but another made busy costs one extra request.
func TestScenario26StaleCache(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(100)}
	a, b := e.lim, e.newLimiter(exact)
	acq := func(lim *limiter.Limiter, n int64) error {
		_, err := lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": n}, Limits: ls})
		return err
	}
	require.NoError(t, acq(a, 1))
	require.NoError(t, acq(b, 80))

	e.count.Reset()
	require.NoError(t, acq(a, 10))
	assert.Equal(t, map[string]int64{"UpdateItem": 1}, e.count.Snapshot())
	e.count.Reset()
	ex := exceeded(t, acq(a, 50))
	assert.Equal(t, int64(9), ex.Violations()[0].Available)
	assert.Empty(t, e.count.Snapshot(), "its own write showed b's 80: denied on what it saw")

	// A minute later the bucket is full; b writes first, a still believes
	// it idle.
	e.clock.Advance(time.Minute)
	require.NoError(t, acq(b, 30))
	e.count.Reset()
	require.NoError(t, acq(a, 20))
	assert.Equal(t, map[string]int64{"UpdateItem": 2}, e.count.Snapshot(), "one failed prediction, then exact")
	assert.Equal(t, map[string]int64{"u/rpm": 50}, e.avail(a, "u", "r", ls))
	ex = exceeded(t, acq(b, 51))
	assert.Equal(t, int64(50), ex.Violations()[0].Available)
}

// Scenario 27 (commit error handling), restated: there is no separate
// commit. A transient DynamoDB error while writing the consumption goes
// through the on_unavailable policy like a read failure (DECISIONS §3.7),
// and nothing stays consumed: when the parent's write fails, the child's
// is given back.
func TestScenario27WriteFailure(t *testing.T) {
	e := newEnv(t, exact)
	_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: "child", ParentID: "parent", Cascade: true})
	require.NoError(t, err)
	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(100)}, ""))
	db, _, lim := e.flaky(exact)
	req := limiter.Request{EntityID: "child", Resource: "r", Consume: map[string]int64{"rpm": 1}}
	_, err = lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	before := e.avail(e.lim, "child", "r", nil)
	require.Equal(t, map[string]int64{"child/rpm": 99, "parent/rpm": 99}, before)

	db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" && isBucket(pk, "parent") {
			return serviceUnavailable
		}
		return nil
	})
	_, err = lim.Acquire(e.ctx, req)
	assert.ErrorIs(t, err, limits.ErrUnavailable)
	var ex *limits.ExceededError
	assert.False(t, errors.As(err, &ex))
	assert.Equal(t, before, e.avail(e.lim, "child", "r", nil), "the child was given back")
	assert.Equal(t, int64(1000), e.tc("child", "r", "rpm"))

	req.OnUnavailable = limits.Allow
	lease, err := lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.True(t, lease.Degraded())
	assert.Equal(t, before, e.avail(e.lim, "child", "r", nil))

	// Single bucket, its write fails: nothing written either.
	db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" {
			return throttled
		}
		return nil
	})
	_, err = lim.Acquire(e.ctx, limiter.Request{EntityID: "solo", Resource: "r", Consume: map[string]int64{"rpm": 1}})
	assert.ErrorIs(t, err, limits.ErrUnavailable)
	assert.Nil(t, e.item("solo", "r", 0))

	// Adjust and rollback failures are returned (they are not acquires).
	// A refund whose outcome is unknown (a 503: it may have landed) is
	// counted as done and never sent again: losing tokens is safe, minting
	// them is not. Here it did not land, so 5 tokens are lost.
	db.failWhen(nil)
	lease, err = lim.Acquire(e.ctx, limiter.Request{EntityID: "solo", Resource: "r", Consume: map[string]int64{"rpm": 5}})
	require.NoError(t, err)
	db.failAll(serviceUnavailable)
	assert.Error(t, lease.Adjust(e.ctx, map[string]int64{"rpm": 1}))
	assert.ErrorIs(t, lease.Rollback(e.ctx), limiter.ErrOutcomeUnknown)
	db.failWhen(nil)
	assert.ErrorIs(t, lease.Rollback(e.ctx), limits.ErrLeaseClosed)
	assert.Equal(t, map[string]int64{"solo/rpm": 95}, e.avail(e.lim, "solo", "r", nil))
	assert.Equal(t, int64(5000), e.tc("solo", "r", "rpm"))

	// A refund that provably did not land (throttled) is sent again by the
	// next Rollback.
	lease, err = lim.Acquire(e.ctx, limiter.Request{EntityID: "solo", Resource: "r", Consume: map[string]int64{"rpm": 5}})
	require.NoError(t, err)
	db.failAll(throttled)
	err = lease.Rollback(e.ctx)
	assert.Error(t, err)
	assert.NotErrorIs(t, err, limiter.ErrOutcomeUnknown)
	db.failWhen(nil)
	require.NoError(t, lease.Rollback(e.ctx))
	assert.Equal(t, map[string]int64{"solo/rpm": 95}, e.avail(e.lim, "solo", "r", nil))
	assert.Equal(t, int64(5000), e.tc("solo", "r", "rpm"))
}

// Scenario 27, cascade: the parent's write fails while the child's is in
// flight. The child's write must be allowed to finish (its outcome known)
// and then be given back; cancelling it would leave it applied but unknown,
// consumed for good.
func TestScenario27SiblingWriteNotCancelled(t *testing.T) {
	e := newEnv(t, exact)
	_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: "child", ParentID: "parent", Cascade: true})
	require.NoError(t, err)
	require.NoError(t, e.ns.SetSystemDefaults(e.ctx, []limits.Limit{rpm(100)}, ""))
	db, _, lim := e.flaky(exact)
	req := limiter.Request{EntityID: "child", Resource: "r", Consume: map[string]int64{"rpm": 1}}
	_, err = lim.Acquire(e.ctx, req)
	require.NoError(t, err)

	db.mu.Lock()
	db.late = func(pk string) bool { return isBucket(pk, "child") }
	db.mu.Unlock()
	db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" && isBucket(pk, "parent") {
			time.Sleep(20 * time.Millisecond) // the child's write is in flight
			return serviceUnavailable
		}
		return nil
	})
	_, err = lim.Acquire(e.ctx, req)
	assert.ErrorIs(t, err, limits.ErrUnavailable)
	db.failWhen(nil)
	assert.Equal(t, int64(1000), e.tc("child", "r", "rpm"), "the child's write was given back")
	assert.Equal(t, map[string]int64{"child/rpm": 99, "parent/rpm": 99}, e.avail(e.lim, "child", "r", nil))
}
