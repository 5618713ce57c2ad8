package limiter_test

// What the write path promises, each test named for it: a charge is never
// forgiven, a lease never gives back more than it took, a lost answer is
// never refunded twice, expired shards never make a bucket unavailable, and
// parameters rewritten back and forth never mint. Each scenario below was a
// defect found by review (R1..R6b), kept as its regression test.

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// R1: a positive adjustment written as a bare ADD onto an idle bucket (w
// behind the clock) is absorbed by refill the bucket could not hold: the
// charge is forgiven and the next acquire is admitted as if it never was.
func TestAdjustOnIdleBucketIsCharged(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{tpm(1000)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1}, Limits: ls}
	lease, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	// The work takes a while; the bucket refills completely meanwhile.
	e.clock.Advance(2 * time.Minute)
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 900}))
	// Token bucket: full (1000) minus 900 = 100.
	assert.Equal(t, map[string]int64{"u/tpm": 100}, e.avail(e.lim, "u", "r", ls), "the adjustment must be charged")
	req.Consume = map[string]int64{"tpm": 1000}
	_, err = e.lim.Acquire(e.ctx, req)
	assert.Error(t, err, "1000 more tokens admitted right after a 900-token adjustment on a 1000-capacity bucket")
}

// R2: a lease can give back more than it took: Release/Adjust with a
// negative delta beyond the lease's net consumption mints tokens for every
// user of the bucket (over HTTP, anyone holding a lease token).
func TestReleaseNeverGivesBackMoreThanTaken(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{stiff("tpm", 1000)}
	acq := func(n int64) (*limiter.Lease, error) {
		return e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": n}, Limits: ls})
	}
	small, err := acq(1)
	require.NoError(t, err)
	_, err = acq(999)
	require.NoError(t, err)
	// The lease took 1 token and gives back 1000.
	rerr := small.Release(e.ctx, map[string]int64{"tpm": 1000})
	_, err = acq(1000)
	assert.True(t, rerr != nil || err != nil,
		"2000 tokens admitted from a 1000-token bucket that never refills (release error %v)", rerr)
}

// R3: a rollback whose write was applied but whose answer was lost (a
// timeout) must not give the same tokens back twice: the outcome is
// unknown, so the lease counts it as done and closes.
func TestRollbackRetriedAfterALostAnswerRefundsOnce(t *testing.T) {
	e := newEnv(t, exact)
	f, _, lim := e.flaky(exact)
	ls := []limits.Limit{stiff("tpm", 100)}
	acq := func(n int64) (*limiter.Lease, error) {
		return lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": n}, Limits: ls})
	}
	lease, err := acq(30)
	require.NoError(t, err)
	_, err = acq(70)
	require.NoError(t, err)

	f.late = func(pk string) bool { return isBucket(pk, "u") }
	ctx, cancel := context.WithTimeout(e.ctx, 50*time.Millisecond)
	err = lease.Rollback(ctx)
	cancel()
	require.ErrorIs(t, err, limiter.ErrOutcomeUnknown, "the answer was lost")
	f.late = nil
	require.ErrorIs(t, lease.Rollback(e.ctx), limits.ErrLeaseClosed, "not sent again")
	assert.Equal(t, map[string]int64{"u/tpm": 30}, e.avail(e.lim, "u", "r", ls), "30 taken back once, not twice")
}

// deleteShard removes a bucket shard item, as TTL does.
func (e *env) deleteShard(entity, resource string, j int) {
	e.t.Helper()
	k := schema.BucketKey(e.ns.ID, entity, resource, j)
	_, err := ddbtest.Client(e.t).DeleteItem(e.ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(e.table),
		Key:       dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)},
	})
	require.NoError(e.t, err)
}

// split2 makes u/r a two-shard bucket (shard 0 split into 0 and 1).
func split2(t *testing.T, e *env, lim *limiter.Limiter, ls []limits.Limit) {
	t.Helper()
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls}
	_, err := lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	e.spendWCU("u", "r", 0)
	l, err := lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	require.Equal(t, 1, l.Entries()[0].Shard)
	require.Equal(t, int64(2), e.shardLevel("u", "r", 0))
	require.Equal(t, int64(2), e.shardLevel("u", "r", 1))
}

// R4: a long-lived process that knows a bucket has 2 shards picks shard 1
// after both shards expired (TTL): ensure finds shard 0 missing and returns
// without creating anything, take retries shard 1 until MaxAttempts and the
// acquire fails as "unavailable" (or, with policy allow, is admitted
// unchecked).
func TestExpiredShardsNeverMakeAcquireUnavailable(t *testing.T) {
	p := newPicker() // prefers the highest shard
	e := newEnv(t, limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	ls := []limits.Limit{rpm(1000)}
	split2(t, e, e.lim, ls)
	e.clock.Advance(3 * time.Hour)
	e.deleteShard("u", "r", 0)
	e.deleteShard("u", "r", 1)
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls})
	assert.NoError(t, err, "a bucket whose shards expired is simply full")
}

// R5: shard 0 must not expire (TTL) while its twins live: a process that
// does not know the bucket is sharded would recreate it at level 1 holding
// the whole capacity beside them. A split shard 0 carries no ttl.
func TestShard0NeverRecreatedBesideALiveTwin(t *testing.T) {
	p := newPicker()
	e := newEnv(t, limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	ls := []limits.Limit{rpm(1000)}
	split2(t, e, e.lim, ls)
	for range 4 { // writes to either shard keep shard 0 without a ttl
		_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls})
		require.NoError(t, err)
	}
	_, has0 := e.item("u", "r", 0)[schema.TTL]
	_, has1 := e.item("u", "r", 1)[schema.TTL]
	assert.False(t, has0, "a split shard 0 never expires")
	assert.True(t, has1, "its twins do")
}

// R6: two callers whose limits differ (a per-call override, or two
// processes whose config caches differ for up to 60 s) rewrite the bucket's
// parameters back and forth. An idle limit (w at or behind the clock) is
// reset to FULL at the larger capacity instead of carrying its tokens over,
// so every round trip mints tokens.
func TestParameterPingPongNeverMints(t *testing.T) {
	e := newEnv(t, exact)
	big := []limits.Limit{rpm(1000)}                                                                  // 1000/min, burst 1000
	small := []limits.Limit{{Name: "rpm", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 60}} // 100/min
	acq := func(ls []limits.Limit, n int64) bool {
		_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": n}, Limits: ls})
		return err == nil
	}
	admitted := int64(0)
	start := e.clock.Now()
	for range 5 {
		if acq(big, 1000) {
			admitted += 1000
		}
		e.clock.Advance(6 * time.Second) // 100 back at 1000/min
		if acq(small, 1) {
			admitted++
		}
		e.clock.Advance(time.Second) // full again at 100/min
	}
	elapsed := e.clock.Now().Sub(start)
	// Whatever the parameters, nothing above the larger burst plus the
	// larger rate over the elapsed time may be admitted.
	bound := int64(1000) + int64(elapsed.Seconds()*1000/60) + 1
	assert.LessOrEqual(t, admitted, bound, "admitted in %v", elapsed)
}

// R6b: the same minting with no per-call override: a limit lowered with
// set-limits while another process still caches the old limits (config
// cache, 60 s). Every admitted acquire of either process is counted.
func TestParameterPingPongAfterSetLimitsNeverMints(t *testing.T) {
	e := newEnv(t, exact)
	_, _, stale := e.flaky(exact) // its own store handle: its own config cache
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{rpm(1000)}))
	e.avail(stale, "u", "r", nil) // the stale process reads (and caches) 1000/min
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{{Name: "rpm", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 60}}))
	acq := func(lim *limiter.Limiter, n int64) bool {
		_, err := lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": n}})
		return err == nil
	}
	admitted := int64(0)
	start := e.clock.Now()
	for range 7 { // 49 s: within the stale process's config cache TTL
		if acq(stale, 1000) {
			admitted += 1000
		}
		e.clock.Advance(6 * time.Second)
		if acq(e.lim, 1) {
			admitted++
		}
		e.clock.Advance(time.Second)
	}
	elapsed := e.clock.Now().Sub(start)
	bound := int64(1000) + int64(elapsed.Seconds()*1000/60) + 1 // even at the OLD, larger limit
	assert.LessOrEqual(t, admitted, bound, "admitted in %v", elapsed)
}

// On a bucket split in two, each shard holds half of every limit: an amount
// above half is denied on any shard, and the denial says why waiting alone
// will not help.
func TestShardShareNamedInDenial(t *testing.T) {
	p := newPicker() // prefers the highest shard: split2 is deterministic
	e := newEnv(t, limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	ls := []limits.Limit{rpm(1000)}
	split2(t, e, e.lim, ls)
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 600}, Limits: ls})
	var ex *limits.ExceededError
	require.ErrorAs(t, err, &ex)
	assert.Equal(t, 2, ex.Violations()[0].Shards)
	assert.Contains(t, ex.Error(), "requested 600 exceeds the 500 that each of the bucket's 2 shards holds")

	sts, err := e.lim.Available(e.ctx, "u", "r", map[string]int64{"rpm": 600}, ls)
	require.NoError(t, err)
	assert.Equal(t, 2, sts[0].Shards)
	assert.Equal(t, int64(500), sts[0].ShardCapacity(), "available knows no acquire can take 600")
}
