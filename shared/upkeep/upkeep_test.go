package upkeep_test

import (
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/stream/streamtest"
	"github.com/zeroae/zae-limiter-go/shared/upkeep"
)

// poll is how often the mapping hands the function a batch under load:
// Lambda polls a stream shard four times a second, and a batch of 100
// records fills in 25 ms at 4000 writes a second.
const poll = 250 * time.Millisecond

// sustain runs rate acquires a second on entity's bucket for d of the test
// clock; with refill it delivers the stream's records to the handler every
// poll, as the mapping would. It returns every record delivered.
func (e *env) sustain(entity string, rate int, d time.Duration, refill bool) []events.DynamoDBEventRecord {
	e.t.Helper()
	var all []events.DynamoDBEventRecord
	for ; d > 0; d -= poll {
		e.load(entity, rate, min(d, poll))
		if refill {
			recs := e.records()
			require.Empty(e.t, e.deliver(recs))
			all = append(all, recs...)
		}
	}
	return all
}

// cheap is the refill of the tests that only need a grown bucket: it grows
// one with a tenth of a second of writes booked ahead, so a short burst
// does.
var cheap = upkeep.Options{GrowAt: 100 * shard.Milli}

// Under sustained load above one shard's write budget the refill function
// splits the bucket before its writers run out of budget: most splits are
// refill's, and the bucket keeps growing while its shards are still busy
// (a split's halves start their budgets over, so two seconds at 4000 a
// second show two doublings). Without it, the writers split on their own
// path.
func TestRefillSplitsAheadOfWriters(t *testing.T) {
	e := newEnv(t, upkeep.Options{})
	e.sustain("hot", 4000, 2*time.Second, true)
	w, r := e.writer.Stats(), e.refill.Stats()
	t.Logf("with refill: splits by writers %d, by refill %d; %d shards", w.Splits, r.Splits, e.live("hot"))
	assert.Positive(t, r.Splits)
	assert.Greater(t, r.Splits, w.Splits, "most splits are refill's")
	assert.GreaterOrEqual(t, e.live("hot"), 4, "4000 writes a second need four shards or more")

	alone := newEnv(t, upkeep.Options{})
	alone.sustain("hot", 4000, time.Second, false)
	t.Logf("without refill: splits by writers %d", alone.writer.Stats().Splits)
	assert.Positive(t, alone.writer.Stats().Splits, "without refill the writers split")
	assert.Zero(t, alone.refill.Stats().Splits)
}

// A quiet bucket comes back to one shard: its shards other than 0 expire
// (idle and full for an hour), the stream shows them go, and refill merges
// the bucket pair by pair. A request of the whole capacity, inadmissible
// on one shard of several (it holds a share), is admitted again once the
// bucket has refilled; shard 0 has its ttl back.
func TestQuietBucketShrinksToOneShard(t *testing.T) {
	e := newEnv(t, cheap)
	e.sustain("hot", 1500, 3*poll, true)
	require.GreaterOrEqual(t, e.live("hot"), 2)
	ok, err := e.acquire("hot", rpm.Capacity)
	require.NoError(t, err)
	require.False(t, ok, "a shard holds a share of the capacity")
	s0 := e.shards("hot")[0]
	assert.Zero(t, s0.TTL, "a sharded bucket's shard 0 never expires")

	e.advance(2 * time.Hour)
	require.Positive(t, e.sweep(), "the shards other than 0 expired")
	require.Empty(t, e.deliver(e.records()))
	assert.Equal(t, 1, e.live("hot"))
	s0 = e.shards("hot")[0]
	assert.Equal(t, 1, s0.Level)
	assert.Equal(t, 1, s0.Count)
	assert.Positive(t, s0.TTL, "one shard again: it expires like any bucket")
	assert.Positive(t, e.refill.Stats().Merges)

	e.advance(time.Minute) // the merged shard refills (an expired twin counted as empty)
	ok, err = e.acquire("hot", rpm.Capacity)
	require.NoError(t, err)
	assert.True(t, ok, "the whole capacity fits one shard again")
	assert.Contains(t, e.log.String(), `"msg":"bucket shrink"`)
}

// The replay test (DECISIONS §3.20): every record delivered again, whole,
// halved, backwards or one by one, writes nothing: the table is as it was
// and the stream shows no new record. Records of a bucket that has grown
// since, or merged back, no longer call for anything.
func TestReplayChangesNothing(t *testing.T) {
	e := newEnv(t, cheap)
	recs := e.sustain("hot", 1500, 3*poll, true)
	e.load("cold", 10, time.Second)
	recs = append(recs, e.records()...)
	require.Empty(t, e.deliver(recs[len(recs)-10:]))
	grown := e.refill.Stats()
	require.Positive(t, grown.Splits)

	replay := func(when string) {
		t.Helper()
		before := e.dump()
		require.Empty(t, e.deliver(recs), "%s: whole", when)
		half := len(recs) / 2
		require.Empty(t, e.deliver(recs[half:]), "%s: second half", when)
		require.Empty(t, e.deliver(recs[:half]), "%s: first half", when)
		for i := len(recs) - 1; i >= len(recs)-50; i-- {
			require.Empty(t, e.deliver(recs[i:i+1]), "%s: record %d alone", when, i)
		}
		assert.Equal(t, before, e.dump(), "%s: the table is unchanged", when)
		assert.Empty(t, e.records(), "%s: nothing was written", when)
	}
	replay("grown")
	assert.Equal(t, grown, e.refill.Stats())

	// Merged back: the growth records and the expiries, again, change
	// nothing either (the bucket is one shard, cold).
	e.advance(2 * time.Hour)
	require.Positive(t, e.sweep())
	gone := e.records()
	require.Empty(t, e.deliver(gone))
	require.Equal(t, 1, e.live("hot"))
	// The shrink's own writes are records too: delivered again with the
	// rest, they call for nothing.
	recs = append(recs, gone...)
	recs = append(recs, e.records()...)
	merged := e.refill.Stats()
	replay("merged")
	assert.Equal(t, merged, e.refill.Stats())
}

// A record that cannot be read (a damaged number in its image) comes back
// in batchItemFailures, alone; the rest of the batch is processed: the hot
// bucket beside it still grows.
func TestPoisonedRecordFailsAlone(t *testing.T) {
	e := newEnv(t, cheap)
	e.load("cold", 10, time.Second)
	cold := e.records()
	require.NotEmpty(t, cold)
	e.load("hot", 1500, 2*poll)
	hot := e.records()

	bad := streamtest.Damaged(t, cold[len(cold)-1], "_w")

	batch := append([]events.DynamoDBEventRecord{bad}, hot...)
	assert.Equal(t, []string{bad.Change.SequenceNumber}, e.deliver(batch))
	assert.Positive(t, e.refill.Stats().Splits, "the hot bucket grew all the same")
	assert.Contains(t, e.log.String(), "stream record not processed")
}
