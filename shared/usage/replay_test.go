package usage_test

import (
	"math/rand/v2"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/usage"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
)

// totals adds up every snapshot of one window per entity and limit, with
// the events.
func totals(t *testing.T, e *usagetest.Env, w usage.Window) (map[string]map[string]int64, map[string]int64) {
	t.Helper()
	snaps, err := usage.List(e.Ctx, e.DB, e.Table, usage.Filter{Namespace: e.NS.ID, Resource: "gpt", Windows: []usage.Window{w}})
	require.NoError(t, err)
	out, evs := map[string]map[string]int64{}, map[string]int64{}
	for _, s := range snaps {
		if out[s.EntityID] == nil {
			out[s.EntityID] = map[string]int64{}
		}
		for n, v := range s.Counters {
			out[s.EntityID][n] += v
		}
		evs[s.EntityID] += s.Events
	}
	return out, evs
}

func handler(e *usagetest.Env) *usage.Handler { return usagetest.Handler(e.DB, e.Table) }

func deliver(t *testing.T, h *usage.Handler, recs []events.DynamoDBEventRecord) {
	t.Helper()
	usagetest.Deliver(t, h, recs)
}

// The replay test (DECISIONS §3.20): real traffic's records delivered once
// give snapshots whose totals, in every window, equal each bucket's net
// consumption; delivering them again, whole, bisected, retried from a
// point in the middle with the batch running further, or record by record
// in any mix, changes no total and no event count.
func TestReplayChangesNoTotal(t *testing.T) {
	e := usagetest.New(t, "")
	recs := usagetest.Busy(e)
	want := e.ConsumedBy(usagetest.BusyBuckets...)
	require.Equal(t, map[string]int64{"rpm": 4, "tpm": 300 + 500 + 250 - 100}, want["key-1"])
	require.Equal(t, want["key-1"], want["org"], "the cascade charges the parent alike")
	require.Equal(t, map[string]int64{"rpm": 1, "tpm": 40}, want["solo"], "the rollback returned everything")
	require.Equal(t, map[string]int64{"rpm": 5, "tpm": 10 + 10 + 20 + 30 + 40}, want["hot"], "every shard counts")

	h := handler(e)
	deliver(t, h, recs)
	check := func(when string) {
		t.Helper()
		for _, w := range usage.Windows {
			got, evs := totals(t, e, w)
			assert.Equal(t, want, got, "%s: %s totals", when, w)
			// Events: the writes that moved a counter: 4 acquires and 2
			// adjustments of key-1, the same on org (a lease holds the
			// parent's bucket too), solo's 2 acquires and its rollback,
			// hot's 5 acquires (splits and twins move none).
			assert.Equal(t, map[string]int64{"key-1": 6, "org": 6, "solo": 3, "hot": 5}, evs, "%s: %s events", when, w)
		}
	}
	check("delivered once")

	deliver(t, h, recs)
	check("delivered twice")

	half := len(recs) / 2
	deliver(t, h, recs[:half])
	deliver(t, h, recs[half:])
	check("bisected")

	for i := len(recs) - 1; i >= 0; i-- {
		deliver(t, h, recs[i:i+1])
	}
	check("record by record, backwards")
}

// An event source mapping retries from the first failed record and may
// hand a longer batch on the retry: the records before the failure were
// written, the ones after it partly. Every way of cutting the stream into
// such deliveries (random checkpoints, batches that overlap what was
// written, on a table of their own) ends with the same totals as one
// clean delivery.
func TestRetriedOverlappingBatchesCountOnce(t *testing.T) {
	e := usagetest.New(t, "")
	recs := usagetest.Busy(e)
	want := e.ConsumedBy(usagetest.BusyBuckets...)
	for seed := range uint64(4) {
		// The snapshots of each run go to a table of their own.
		fresh := &usagetest.Env{T: t, Ctx: e.Ctx, Table: ddbtest.NewTable(t), DB: e.DB, NS: e.NS}
		h := handler(fresh)
		rnd := rand.New(rand.NewPCG(seed, 7))
		done := 0 // the mapping's checkpoint
		for done < len(recs) {
			end := min(len(recs), done+1+rnd.IntN(12))
			batch := recs[done:end]
			if rnd.IntN(3) == 0 && len(batch) > 1 {
				// A failure in the middle: a prefix of the batch was
				// written, then the mapping retries from an earlier record
				// with a batch that runs past the first one's end.
				deliver(t, h, batch[:1+rnd.IntN(len(batch)-1)])
				done = max(0, done-rnd.IntN(3))
				continue
			}
			deliver(t, h, batch)
			done = end
		}
		for _, w := range usage.Windows {
			got, _ := totals(t, fresh, w)
			assert.Equal(t, want, got, "seed %d, %s", seed, w)
		}
	}
}
