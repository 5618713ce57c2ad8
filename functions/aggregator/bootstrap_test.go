package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun/lambdatest"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
	"github.com/zeroae/zae-limiter-go/shared/usage"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

const eventsDir = "../../events/aggregator"

// function is the real bootstrap running against table, writing every
// window.
type function struct {
	table  string
	runner *lambdarun.Runner
	out    *syncio.Buffer
}

func startFunction(t *testing.T, table string) *function {
	t.Helper()
	f := &function{table: table}
	f.runner, f.out = lambdatest.Start(t, lambdarun.Options{
		Binary: lambdatest.Bootstrap(t, "."), FunctionName: table + "-aggregator", Timeout: time.Minute,
		Env: lambdatest.Env(t, table, "SNAPSHOT_WINDOWS=hourly,daily,monthly"),
	})
	return f
}

// invoke sends one stream event and returns the partial batch response.
func (f *function) invoke(t *testing.T, payload []byte) events.DynamoDBEventResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := f.runner.Invoke(ctx, payload)
	require.NoError(t, err)
	require.Nil(t, res.Err, "function error: %s", res.Payload)
	var resp events.DynamoDBEventResponse
	require.NoError(t, json.Unmarshal(res.Payload, &resp), "%s", res.Payload)
	require.NotNil(t, resp.BatchItemFailures, "an empty list, never null: %s", res.Payload)
	return resp
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// totals adds up every snapshot of window w of the buckets (ns, entity,
// resource) per entity and limit, with the events.
func totals(t *testing.T, table, ns, resource string, w usage.Window, entities ...string) (map[string]map[string]int64, map[string]int64) {
	t.Helper()
	out, evs := map[string]map[string]int64{}, map[string]int64{}
	for _, e := range entities {
		snaps, err := usage.List(context.Background(), ddbtest.Client(t), table,
			usage.Filter{Namespace: ns, EntityID: e, Resource: resource, Windows: []usage.Window{w}})
		require.NoError(t, err)
		for _, s := range snaps {
			if out[e] == nil {
				out[e] = map[string]int64{}
			}
			for n, v := range s.Counters {
				out[e][n] += v
			}
			evs[e] += s.Events
		}
	}
	return out, evs
}

// Live traffic: the real limiter writes to DynamoDB Local, the records are
// read from its stream and handed to the real bootstrap in batches of at
// most 10 (as a mapping with BatchSize 10 would); then everything again,
// as one batch (a redelivery). Every window's totals equal each bucket's
// net consumption from its shard items, before and after the redelivery.
func TestLiveTrafficThroughTheBootstrap(t *testing.T) {
	e := usagetest.New(t, "")
	recs := usagetest.Busy(e)
	want := e.ConsumedBy(usagetest.BusyBuckets...)
	f := startFunction(t, e.Table)
	for i := 0; i < len(recs); i += 10 {
		resp := f.invoke(t, marshal(t, usagetest.Event(recs[i:min(i+10, len(recs))])))
		assert.Empty(t, resp.BatchItemFailures)
	}
	check := func(when string) {
		t.Helper()
		for _, w := range usage.Windows {
			got, evs := totals(t, e.Table, e.NS.ID, "gpt", w, usagetest.BusyBuckets...)
			assert.Equal(t, want, got, "%s: %s", when, w)
			assert.Equal(t, map[string]int64{"key-1": 6, "org": 6, "solo": 3, "hot": 5}, evs, "%s: %s events", when, w)
		}
	}
	check("delivered in batches of 10")
	assert.Empty(t, f.invoke(t, marshal(t, usagetest.Event(recs))).BatchItemFailures)
	check("redelivered as one batch")

	// One JSON line per invocation with the counts, the lag and the EMF
	// metrics; the function's name is the metrics' dimension.
	summaries := lambdatest.Lines(t, f.out, "usage batch processed", (len(recs)+9)/10+1)
	require.Len(t, summaries, (len(recs)+9)/10+1)
	last := summaries[len(summaries)-1]
	assert.Equal(t, float64(len(recs)), last["records"])
	assert.Equal(t, float64(0), last["snapshots_written"], "a redelivery writes nothing")
	assert.Greater(t, last["snapshots_replayed"], float64(0))
	assert.Equal(t, e.Table+"-aggregator", last["FunctionName"])
	assert.Contains(t, last, "requestId")
	assert.Contains(t, last, "_aws")
	assert.Contains(t, last, "StreamLag")
}

// eventFiles are the files of events/aggregator, each checked by
// TestEvents.
var eventFiles = []string{"batch.json", "cascade.json", "rollback.json", "ttl-removal.json", "poisoned.json"}

func TestEventFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	assert.ElementsMatch(t, eventFiles, names, "a new event needs a case in TestEvents")
}

// eventCase is what the function must do with one file of events/aggregator
// (see its README): the failures it reports and, per entity, the totals of
// every window (resource gpt-4) and the events.
type eventCase struct {
	failed   []int // indexes of the records reported as failures
	entities map[string]map[string]int64
	events   map[string]int64
}

var eventCases = map[string]eventCase{
	"batch.json": {entities: map[string]map[string]int64{
		"hot": {"rpm": 5, "tpm": 110}, "cold": {"rpm": 1, "tpm": 1000}},
		events: map[string]int64{"hot": 5, "cold": 1}},
	"cascade.json": {entities: map[string]map[string]int64{
		"key-1": {"rpm": 2, "tpm": 250}, "org": {"rpm": 2, "tpm": 250}},
		events: map[string]int64{"key-1": 3, "org": 3}},
	"rollback.json": {entities: map[string]map[string]int64{"u": {"rpm": 1, "tpm": 30}},
		events: map[string]int64{"u": 4}},
	"ttl-removal.json": {entities: map[string]map[string]int64{"gone": {"rpm": 1, "tpm": 5}, "gone-local": {"rpm": 1, "tpm": 7}},
		events: map[string]int64{"gone": 1, "gone-local": 1}},
	"poisoned.json": {failed: []int{1}, entities: map[string]map[string]int64{"p": {"rpm": 2, "tpm": 400}},
		events: map[string]int64{"p": 2}},
}

// TestEvents runs each file of events/aggregator through the real
// bootstrap on a fresh table, twice: the answer and the totals are the
// README's, and the second delivery changes nothing.
func TestEvents(t *testing.T) {
	for _, name := range eventFiles {
		t.Run(name, func(t *testing.T) {
			c := eventCases[name]
			raw, err := os.ReadFile(filepath.Join(eventsDir, name))
			require.NoError(t, err)
			var ev events.DynamoDBEvent
			require.NoError(t, json.Unmarshal(raw, &ev), "%s is a DynamoDB stream event", name)
			require.NotEmpty(t, ev.Records)
			id, err := shard.ParseID(ev.Records[0].Change.Keys["PK"].String())
			require.NoError(t, err)

			f := startFunction(t, ddbtest.NewTable(t))
			var wantFailed []events.DynamoDBBatchItemFailure
			for _, i := range c.failed {
				wantFailed = append(wantFailed, events.DynamoDBBatchItemFailure{ItemIdentifier: ev.Records[i].Change.SequenceNumber})
			}
			var entities []string
			for e := range c.entities {
				entities = append(entities, e)
			}
			for _, when := range []string{"first delivery", "redelivery"} {
				resp := f.invoke(t, raw)
				if len(wantFailed) == 0 {
					assert.Empty(t, resp.BatchItemFailures, when)
				} else {
					assert.Equal(t, wantFailed, resp.BatchItemFailures, when)
				}
				for _, w := range usage.Windows {
					got, evs := totals(t, f.table, id.Namespace, "gpt-4", w, entities...)
					assert.Equal(t, c.entities, got, "%s: %s", when, w)
					assert.Equal(t, c.events, evs, "%s: %s events", when, w)
				}
			}
		})
	}
}

var updateEvents = flag.Bool("update-events", false, "regenerate events/aggregator from real limiter traffic on DynamoDB Local")
