package limiter_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// picker is a settable shard chooser for Options.Rand: it returns the
// highest candidate by default, or a fixed index when set.
type picker struct{ fixed atomic.Int64 }

func newPicker() *picker {
	p := &picker{}
	p.fixed.Store(-1)
	return p
}

func (p *picker) Rand(n int) int {
	if f := int(p.fixed.Load()); f >= 0 && f < n {
		return f
	}
	return n - 1
}

// stiff is a limit that practically never refills: capacity n, one token
// per 366 days.
func stiff(name string, n int64) limits.Limit {
	return limits.Limit{Name: name, Capacity: n, RefillAmount: 1, RefillPeriodSeconds: limits.MaxPeriodSeconds}
}

// shardTokens is what shard j holds of a limit in millitokens, from its
// stored state: (cp - max(0, w - clock(now))) / shard_level.
func (e *env) shardLevel(entity, resource string, j int) int64 {
	it := e.item(entity, resource, j)
	require.NotNil(e.t, it, "shard %d missing", j)
	return e.num(it, schema.AttrShardLevel)
}

// spendWCU spends the hidden write budget of a shard, as a burst of writes
// would: its virtual time is set a full capacity ahead of its clock.
func (e *env) spendWCU(entity, resource string, j int) {
	e.t.Helper()
	it := e.item(entity, resource, j)
	require.NotNil(e.t, it)
	p := bucket.Params{Capacity: e.num(it, "b_wcu_cp"), RefillAmount: e.num(it, "b_wcu_ra"), RefillPeriod: e.num(it, "b_wcu_rp")}
	w := bucket.Clock(p, e.clock.Now().UnixMilli()) + p.Capacity
	_, err := ddbtest.Client(e.t).UpdateItem(e.ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(e.table),
		Key:                       dynamo.Item{schema.PK: dynamo.S(schema.BucketPK(e.ns.ID, entity, resource, j)), schema.SK: dynamo.S(schema.SKState)},
		UpdateExpression:          aws.String("SET b_wcu_w = :w"),
		ExpressionAttributeValues: dynamo.Item{":w": dynamo.N(w)},
	})
	require.NoError(e.t, err)
}

// Scenario 28 (sharding): a shard whose hidden write budget (wcu: 1000
// writes a second) is spent makes the next acquire double the shard count
// on shard 0; the shard is split in two when first written at the new count
// (its twin created with the same virtual times, both at the doubled
// level), the sum over shards is exactly what the bucket held, a drained
// shard makes the acquire try the other one, and wcu never shows in any
// status. (The budget is spent by hand: thousands of writes would slow the
// suite down; TestSkewedClocksDoNotShard checks that the budget is not
// spent by too little.)
func TestShardDoublingBySplit(t *testing.T) {
	p := newPicker()
	e := newEnv(t, limiter.Options{Rand: p.Rand})
	ls := []limits.Limit{stiff("rpm", 2010)}
	req := limiter.Request{EntityID: "hot", Resource: "api", Consume: map[string]int64{"rpm": 1}, Limits: ls}
	acq := func(n int64) (*limiter.Lease, error) {
		r := req
		r.Consume = map[string]int64{"rpm": n}
		return e.lim.Acquire(e.ctx, r)
	}
	for i := range 10 {
		_, err := acq(1)
		require.NoError(t, err, "acquire %d", i)
	}
	s0 := e.item("hot", "api", 0)
	assert.Equal(t, int64(1), e.num(s0, schema.AttrShardCount))
	assert.Equal(t, int64(1), e.num(s0, schema.AttrShardLevel))
	w0 := e.num(s0, "b_rpm_w")
	assert.Nil(t, e.item("hot", "api", 1))

	// The clock is frozen: the spent budget does not refill. The next write
	// finds no budget: the count doubles, shard 0 is split into itself and
	// shard 1, and the acquire lands on shard 1.
	e.spendWCU("hot", "api", 0)
	e.count.Reset()
	lease, err := acq(1)
	require.NoError(t, err)
	t.Logf("the acquire that doubled: %v", e.count.Snapshot())
	require.Len(t, lease.Entries(), 1)
	assert.Equal(t, 1, lease.Entries()[0].Shard)
	for _, s := range lease.Statuses() {
		assert.NotEqual(t, limits.ReservedLimitName, s.Limit.Name)
	}

	s0, s1 := e.item("hot", "api", 0), e.item("hot", "api", 1)
	require.NotNil(t, s1, "shard 1 created by the split")
	assert.Equal(t, int64(2), e.num(s0, schema.AttrShardCount), "shard_count doubled on shard 0")
	assert.Equal(t, int64(2), e.num(s0, schema.AttrShardLevel))
	assert.Equal(t, int64(2), e.num(s1, schema.AttrShardLevel))
	assert.Equal(t, w0, e.num(s0, "b_rpm_w"), "splitting leaves the virtual time")
	assert.Equal(t, w0+2*1000, e.num(s1, "b_rpm_w"), "twin created with the same w, then charged 1 token at level 2")
	// Parameters stay those of the whole limit on every shard.
	for _, s := range []dynamo.Item{s0, s1} {
		assert.Equal(t, int64(2010*1000), e.num(s, "b_rpm_cp"))
		assert.Equal(t, int64(1000), e.num(s, "b_rpm_ra"))
	}

	// The shards together hold exactly what is left of the limit: 1000 on
	// shard 0, 999 on shard 1.
	assert.Equal(t, map[string]int64{"hot/rpm": 2010 - 11}, e.avail(e.lim, "hot", "api", ls), "no wcu, sum over shards")

	// Give shard 0 its write budget back (rpm refills nothing in seconds).
	e.clock.Advance(2 * time.Second)

	// Drain shard 1 (the picker prefers it).
	l, err := acq(999)
	require.NoError(t, err)
	require.Equal(t, 1, l.Entries()[0].Shard)
	// A share is half the limit: more than 1005 at once never fits.
	_, err = acq(1006)
	exceeded(t, err)
	// Shard 1 is empty: the acquire is denied there (on what this process
	// saw of it: no request) and retried on shard 0 (one write).
	e.count.Reset()
	l, err = acq(1)
	require.NoError(t, err)
	assert.Equal(t, 0, l.Entries()[0].Shard)
	assert.Equal(t, int64(1), e.count.Count("UpdateItem"), "one write: %v", e.count.Snapshot())
	_, err = acq(999)
	require.NoError(t, err)

	// Both shards drained: denied, and the limiter admitted exactly 2010.
	_, err = acq(1)
	ex := exceeded(t, err)
	for _, s := range ex.Statuses {
		assert.NotEqual(t, limits.ReservedLimitName, s.Limit.Name)
	}
	assert.Equal(t, []string{"hot/rpm"}, names(ex.Violations()))
	assert.Equal(t, map[string]int64{"hot/rpm": 0}, e.avail(e.lim, "hot", "api", ls))
	assert.Equal(t, int64(2010*1000), e.tc("hot", "api", "rpm")+e.num(e.item("hot", "api", 1), "b_rpm_tc"),
		"tc over both shards is what was admitted")

	// Another process knows nothing of the shards: it learns the count from
	// shard 0 and sees the same total.
	other := e.newLimiter(limiter.Options{Rand: p.Rand})
	assert.Equal(t, map[string]int64{"hot/rpm": 0}, e.avail(other, "hot", "api", ls))
	_, err = other.Acquire(e.ctx, req)
	exceeded(t, err)
}

// Scenario 28 with the shard count written by hand (as the refill function
// would): shards are created by splitting the shards they descend from, and
// the per-shard shares always add up to what the bucket held.
func TestShardCountWrittenBySomeoneElse(t *testing.T) {
	p := newPicker()
	e := newEnv(t, limiter.Options{Rand: p.Rand})
	ls := []limits.Limit{stiff("rpm", 1000), stiff("tpm", 100_000)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 4, "tpm": 400}, Limits: ls}
	_, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)

	// Someone doubles twice: shard_count 4 on shard 0.
	_, err = ddbtest.Client(t).UpdateItem(e.ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(e.table),
		Key:                       dynamo.Item{schema.PK: dynamo.S(schema.BucketPK(e.ns.ID, "u", "r", 0)), schema.SK: dynamo.S(schema.SKState)},
		UpdateExpression:          aws.String("SET shard_count = :n"),
		ExpressionAttributeValues: dynamo.Item{":n": dynamo.N(4)},
	})
	require.NoError(t, err)

	// A fresh limiter learns the count and writes shard 3: shard 0 splits
	// into 0+1 (level 2), then 1 into 1+3 (level 4).
	lim := e.newLimiter(limiter.Options{Rand: p.Rand})
	sum := func() map[string]int64 { return e.avail(lim, "u", "r", ls) }
	assert.Equal(t, map[string]int64{"u/rpm": 996, "u/tpm": 99_600}, sum())
	lease, err := lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 3, lease.Entries()[0].Shard)
	assert.Equal(t, int64(2), e.shardLevel("u", "r", 0))
	assert.Equal(t, int64(4), e.shardLevel("u", "r", 1))
	assert.Equal(t, int64(4), e.shardLevel("u", "r", 3))
	assert.Nil(t, e.item("u", "r", 2))
	assert.Equal(t, map[string]int64{"u/rpm": 992, "u/tpm": 99_200}, sum())

	// Shard 2 descends from shard 0 (level 2 -> 4).
	p.fixed.Store(2)
	lease, err = lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 2, lease.Entries()[0].Shard)
	for j := range 4 {
		assert.Equal(t, int64(4), e.shardLevel("u", "r", j), "shard %d", j)
	}
	assert.Equal(t, map[string]int64{"u/rpm": 988, "u/tpm": 98_800}, sum())

	// Rolling back through the lease goes to the shard it wrote.
	require.NoError(t, lease.Rollback(e.ctx))
	assert.Equal(t, map[string]int64{"u/rpm": 992, "u/tpm": 99_200}, sum())
	assert.Equal(t, int64(4*1000), e.num(e.item("u", "r", 3), "b_rpm_tc"))
	assert.Equal(t, int64(0), e.num(e.item("u", "r", 2), "b_rpm_tc"))

	// Every shard now holds a quarter of the limit: at most 988/4 = 247
	// tokens plus what it held; a request above a shard's share is denied
	// even though the sum would allow it.
	big := req
	big.Consume = map[string]int64{"rpm": 300}
	_, err = lim.Acquire(context.Background(), big)
	exceeded(t, err)
	assert.Equal(t, map[string]int64{"u/rpm": 992, "u/tpm": 99_200}, sum(), "a denial changes nothing")
}

// A lease keeps its shard when that shard is split after the acquire
// (DECISIONS §3.2): its adjustments and rollback follow the doubled level,
// so the sum over shards gets back exactly what the lease took. (A shard
// never holds more than its share, capacity/level: what a rollback would
// return beyond that is lost, as on a full bucket, never minted; here the
// shard has room.)
func TestLeaseFollowsItsShardThroughASplit(t *testing.T) {
	p := newPicker()
	e := newEnv(t, limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	ls := []limits.Limit{stiff("rpm", 1000)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 800}, Limits: ls}
	_, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	req.Consume = map[string]int64{"rpm": 100}
	lease, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	require.Equal(t, 0, lease.Entries()[0].Shard)

	// Shard 0 runs out of write budget: the next acquire splits it (50
	// tokens each) and takes 10 on shard 1.
	e.spendWCU("u", "r", 0)
	req.Consume = map[string]int64{"rpm": 10}
	l2, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	require.Equal(t, 1, l2.Entries()[0].Shard)
	require.Equal(t, int64(2), e.shardLevel("u", "r", 0))
	assert.Equal(t, map[string]int64{"u/rpm": 90}, e.avail(e.lim, "u", "r", ls))

	// The first lease, on shard 0 (now at level 2), adjusts and rolls back.
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"rpm": 20}))
	assert.Equal(t, map[string]int64{"u/rpm": 70}, e.avail(e.lim, "u", "r", ls))
	// A process that never saw the split resumes and rolls it back.
	other := e.newLimiter(limiter.Options{Rand: p.Rand, Tick: time.Nanosecond})
	require.NoError(t, other.Resume(req, lease.Entries()).Rollback(e.ctx))
	assert.Equal(t, map[string]int64{"u/rpm": 190}, e.avail(e.lim, "u", "r", ls))
	assert.Equal(t, int64(800_000), e.tc("u", "r", "rpm"))
	assert.Equal(t, int64(10_000), e.num(e.item("u", "r", 1), "b_rpm_tc"))
}
