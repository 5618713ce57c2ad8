package limiter_test

// What a lease promises across time: an adjustment is charged whatever
// parameters its process cached, debt and dormant limits outlive the item's
// TTL, and a charge on an expired shard is never given back by a rollback.
// Each scenario below was a defect found by the second review (S1..S3),
// kept as its regression test.

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// S1: apply computes the bucket clock from the CACHED parameters of a limit
// (or from the lease's limits when nothing is cached) but conditions its
// write on the shard level only, not on the parameters. After another
// process rewrote the bucket's parameters to a faster refill, the busy
// form's "w >= c" is checked against a clock in the wrong units, passes on
// an idle bucket, and the charge is ADDed behind the clock: forgiven.
func TestAdjustWithStaleParametersIsCharged(t *testing.T) {
	e := newEnv(t, exact)
	slow := []limits.Limit{{Name: "tpm", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 600}}
	fast := []limits.Limit{{Name: "tpm", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 60}}
	other := e.newLimiter(exact)
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1000}, Limits: slow})
	require.NoError(t, err)
	e.clock.Advance(30 * time.Second)
	// Another process (new config) writes the bucket: parameters -> fast.
	_, err = other.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1}, Limits: fast})
	require.NoError(t, err)
	e.clock.Advance(3 * time.Minute) // full at the fast rate, long since
	require.Equal(t, map[string]int64{"u/tpm": 1000}, e.avail(other, "u", "r", fast))
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 900}))
	assert.Equal(t, map[string]int64{"u/tpm": 100}, e.avail(other, "u", "r", fast), "the 900-token charge must be booked")
}

// S1b: the same with no cache at all (the HTTP API resumes leases in any
// process): the clock comes from the lease's own (old) limits.
func TestResumedAdjustAfterALimitChangeIsCharged(t *testing.T) {
	e := newEnv(t, exact)
	slow := []limits.Limit{{Name: "tpm", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 600}}
	fast := []limits.Limit{{Name: "tpm", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 60}}
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1}, Limits: slow})
	require.NoError(t, err)
	entries := lease.Entries()
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1}, Limits: fast})
	require.NoError(t, err)
	e.clock.Advance(3 * time.Minute)
	fresh := e.newLimiter(exact) // another process: nothing cached
	resumed := fresh.Resume(limiter.Request{EntityID: "u", Resource: "r", Limits: slow}, entries)
	require.NoError(t, resumed.Adjust(e.ctx, map[string]int64{"tpm": 900}))
	assert.Equal(t, map[string]int64{"u/tpm": 100}, e.avail(fresh, "u", "r", fast), "the 900-token charge must be booked")
}

// S1c: the other direction: a stale cache with a FASTER clock than the
// item's takes the idle form ("w < c" passes on a busy bucket) and SETs
// the virtual time to the wrong clock: a 1-token charge becomes years of
// debt.
func TestAdjustWithStaleFasterParametersNeverLocksTheBucket(t *testing.T) {
	e := newEnv(t, exact)
	slow := []limits.Limit{{Name: "tpm", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 600}}
	fast := []limits.Limit{{Name: "tpm", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 60}}
	other := e.newLimiter(exact)
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1}, Limits: fast})
	require.NoError(t, err)
	e.clock.Advance(2 * time.Minute) // the cache says idle
	_, err = other.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 500}, Limits: slow})
	require.NoError(t, err)
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 1}))
	got := e.avail(other, "u", "r", slow)["u/tpm"]
	assert.GreaterOrEqual(t, got, int64(499), "a 1-token charge on a bucket holding 500")
}

// S2: a bucket's time to live is a multiple of its limits' fill time, but
// an unchecked positive adjustment can put it into debt for far longer.
// When the item expires (TTL) the debt is forgiven and the bucket starts
// full: "renew the time to live ... so debt is not forgiven early" does not
// hold.
func TestDebtOutlivesTheItemsTTL(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{tpm(10)} // 10/min: TTL max(7 min, 1 h) = 1 h
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1}, Limits: ls})
	require.NoError(t, err)
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 10_000})) // ~1000 minutes of debt
	ttl := e.num(e.item("u", "r", 0), schema.TTL)
	repaid := e.clock.Now().Add(1000 * time.Minute).Unix()
	assert.GreaterOrEqual(t, ttl, repaid, "the item expires (debt forgiven) %v before its debt is repaid",
		time.Duration(repaid-ttl)*time.Second)
}

// S2b: a limit dropped from the config stays on the item, dormant, "so that
// if it comes back its tokens carry over instead of starting full". But the
// item's TTL is computed from the configured limits only: a dormant daily
// limit is lost after an hour and comes back full.
func TestDormantLimitOutlivesTheItemsTTL(t *testing.T) {
	e := newEnv(t, exact)
	day := limits.PerDay("tpd", 1000, 0)
	withDay := []limits.Limit{rpm(1000), day}
	without := []limits.Limit{rpm(1000)}
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpd": 1000}, Limits: withDay})
	require.NoError(t, err)
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: without})
	require.NoError(t, err)
	ttl := e.num(e.item("u", "r", 0), schema.TTL)
	refilled := e.clock.Now().Add(24 * time.Hour).Unix()
	assert.GreaterOrEqual(t, ttl, refilled, "the dormant tpd (empty) expires %v before it refills",
		time.Duration(refilled-ttl)*time.Second)
}

// S3: a lease whose shard expired (TTL: idle for over an hour, e.g. a long
// job) charges nothing: apply finds no item and returns nil, yet the lease
// books the charge. The bucket is recreated full by the next acquire, and
// the lease's rollback then gives back tokens this generation of the
// bucket never got: other users' consumption is erased.
func TestChargeOnAnExpiredShardThenRollbackNeverMints(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{tpm(1000)} // TTL 1 h
	acq := func(n int64) (*limiter.Lease, error) {
		return e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": n}, Limits: ls})
	}
	lease, err := acq(1)
	require.NoError(t, err)
	e.clock.Advance(2 * time.Hour)
	require.Less(t, e.num(e.item("u", "r", 0), schema.TTL), e.clock.Now().Unix())
	e.deleteShard("u", "r", 0) // expired: TTL deletes it
	adjErr := lease.Adjust(e.ctx, map[string]int64{"tpm": 900})
	// The adjust books its 900 on the bucket recreated full: 100 left.
	admitted := int64(900)
	if _, err := acq(500); err == nil {
		admitted += 500
	}
	rbErr := lease.Rollback(e.ctx)
	if _, err := acq(1000); err == nil {
		admitted += 1000
	}
	assert.LessOrEqual(t, admitted, int64(1000),
		"at one instant from a 1000-token bucket (adjust error %v, rollback error %v)", adjErr, rbErr)
}
