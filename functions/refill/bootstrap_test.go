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
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/stream/streamtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

var rpm = limits.Limit{Name: "rpm", Capacity: 100_000, RefillAmount: 100_000, RefillPeriodSeconds: 60}

// The real bootstrap, fed the stream records of a busy bucket: it splits
// the bucket ahead of its writers, says so in one JSON line with its
// metrics, and the same records again (with the split's own) change
// nothing. A damaged record comes back alone in batchItemFailures.
//
// The writers' clock runs an hour ahead of the function's, frozen, so that
// two hundred acquires book a tenth of a shard's write budget ahead however
// slowly this machine runs them and builds the bootstrap (a bucket is
// judged at the latest writer clock it has seen); GROW_AT_PERCENT=5 makes
// that hot.
func TestHotBucketGrowsThroughTheBootstrap(t *testing.T) {
	ctx := context.Background()
	table, db := ddbtest.NewTable(t), ddbtest.Client(t)
	st := store.New(db, store.Options{Table: table, CacheTTL: -1})
	_, err := st.RegisterNamespace(ctx, "default")
	require.NoError(t, err)
	ns, err := st.Namespace(ctx, "default")
	require.NoError(t, err)
	ahead := time.Now().Add(time.Hour)
	w := limiter.New(db, ns, limiter.Options{Table: table, Namespace: ns.ID, Now: func() time.Time { return ahead }})
	rd := streamtest.New(t, ddbtest.Config(t), table)
	for range 200 {
		_, err := w.Acquire(ctx, limiter.Request{EntityID: "hot", Resource: "gpt", Consume: map[string]int64{"rpm": 1}, Limits: []limits.Limit{rpm}})
		require.NoError(t, err)
	}
	recs := rd.WaitFor(t, 200, time.Minute)

	runner, out := lambdatest.Start(t, lambdarun.Options{
		Binary: lambdatest.Bootstrap(t, "."), FunctionName: table + "-refill", Timeout: time.Minute,
		Env: lambdatest.Env(t, table, "GROW_AT_PERCENT=5"),
	})
	invoke := func(recs []events.DynamoDBEventRecord) events.DynamoDBEventResponse {
		t.Helper()
		payload, err := json.Marshal(events.DynamoDBEvent{Records: recs})
		require.NoError(t, err)
		ictx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		res, err := runner.Invoke(ictx, payload)
		require.NoError(t, err)
		require.Nil(t, res.Err, "function error: %s", res.Payload)
		var resp events.DynamoDBEventResponse
		require.NoError(t, json.Unmarshal(res.Payload, &resp), "%s", res.Payload)
		require.NotNil(t, resp.BatchItemFailures, "an empty list, never null: %s", res.Payload)
		return resp
	}
	count := func() int {
		t.Helper()
		eng := limiter.New(db, nil, limiter.Options{Table: table})
		states, err := eng.Shards(ctx, shard.ID{Namespace: ns.ID, Entity: "hot", Resource: "gpt"})
		require.NoError(t, err)
		return states[0].Count
	}

	require.Equal(t, 1, count())
	assert.Empty(t, invoke(recs[len(recs)-100:]).BatchItemFailures)
	assert.Equal(t, 2, count(), "the bucket grew to two shards")
	grown := rd.Next(t)
	require.NotEmpty(t, grown, "the split's own writes")

	recs = append(recs, grown...)
	assert.Empty(t, invoke(recs).BatchItemFailures)
	assert.Empty(t, rd.Next(t), "a redelivery writes nothing")
	assert.Equal(t, 2, count())

	bad := streamtest.Damaged(t, recs[len(recs)-1], "_w")
	resp := invoke([]events.DynamoDBEventRecord{recs[0], bad})
	assert.Equal(t, []events.DynamoDBBatchItemFailure{{ItemIdentifier: bad.Change.SequenceNumber}}, resp.BatchItemFailures)

	if *updateEvents {
		writeEvents(t, recs, grown, bad)
	}

	summaries := lambdatest.Lines(t, out, "upkeep batch processed", 3)
	require.Len(t, summaries, 3, "%s", out.String())
	assert.Equal(t, float64(1), summaries[0]["shards_split"])
	assert.Equal(t, float64(0), summaries[1]["shards_split"], "a redelivery splits nothing")
	assert.Equal(t, float64(len(recs)), summaries[1]["records"])
	assert.Equal(t, table+"-refill", summaries[0]["FunctionName"])
	assert.Contains(t, summaries[0], "requestId")
	assert.Contains(t, summaries[0], "_aws")
	assert.Contains(t, out.String(), `"bucket grow"`)
	assert.Contains(t, out.String(), "stream record not processed")
}

var updateEvents = flag.Bool("update-events", false, "rewrite events/refill from the records of TestHotBucketGrowsThroughTheBootstrap")

const (
	eventsDir = "../../events/refill"
	// fixtureARN is the stream ARN the files carry (the "limiter" stack's
	// table in us-east-1), instead of DynamoDB Local's.
	fixtureARN = "arn:aws:dynamodb:us-east-1:123456789012:table/limiter/stream/2026-12-01T00:00:00.000"
)

// eventFiles are the files of events/refill with the batch item failures
// each must come back with (see events/refill/README.md).
var eventFiles = map[string]int{"hot.json": 0, "expired.json": 0, "poisoned.json": 1}

// writeEvents rewrites events/refill: the last takes of the hot bucket and
// the records of its split, the TTL expiry of the twin in AWS's form, and a
// damaged record beside a good one.
func writeEvents(t *testing.T, takes, grown []events.DynamoDBEventRecord, bad events.DynamoDBEventRecord) {
	t.Helper()
	fix := func(recs ...events.DynamoDBEventRecord) events.DynamoDBEvent {
		for i := range recs {
			recs[i].EventSourceArn, recs[i].AWSRegion = fixtureARN, "us-east-1"
		}
		return events.DynamoDBEvent{Records: recs}
	}
	var buckets []events.DynamoDBEventRecord
	for _, r := range takes {
		if r.Change.Keys[schema.SK].String() == schema.SKState {
			buckets = append(buckets, r)
		}
	}
	takes = buckets
	var twin events.DynamoDBEventRecord
	for _, r := range grown {
		if r.EventName == "INSERT" {
			twin = r
		}
	}
	require.NotEmpty(t, twin.EventID, "the split created a twin")
	twin.EventID += "-ttl"
	twin.EventName = stream.EventRemove
	twin.Change.OldImage, twin.Change.NewImage = twin.Change.NewImage, nil
	twin.Change.SequenceNumber = "900000000000000000001"
	twin.UserIdentity = &events.DynamoDBUserIdentity{Type: stream.TTLIdentityType, PrincipalID: stream.TTLIdentityPrincipal}
	for name, ev := range map[string]events.DynamoDBEvent{
		"hot.json":      fix(append(append([]events.DynamoDBEventRecord{}, takes[len(takes)-3:]...), grown...)...),
		"expired.json":  fix(twin),
		"poisoned.json": fix(takes[0], bad),
	} {
		b, err := json.MarshalIndent(ev, "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(eventsDir, name), append(b, '\n'), 0o644))
	}
}

// Each file of events/refill, through the real bootstrap on a fresh table
// (none of its buckets exists there: nothing to grow or merge), comes back
// with its failures and writes nothing; every record is a bucket shard's.
func TestEvents(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := make([]string, 0, len(eventFiles))
	for n := range eventFiles {
		want = append(want, n)
	}
	require.ElementsMatch(t, want, names, "a new event needs a line in eventFiles")

	table := ddbtest.NewTable(t)
	rd := streamtest.New(t, ddbtest.Config(t), table)
	runner, _ := lambdatest.Start(t, lambdarun.Options{
		Binary: lambdatest.Bootstrap(t, "."), FunctionName: "limiter-refill", Timeout: time.Minute,
		Env: lambdatest.Env(t, table),
	})
	for name, failures := range eventFiles {
		payload, err := os.ReadFile(filepath.Join(eventsDir, name))
		require.NoError(t, err)
		var ev events.DynamoDBEvent
		require.NoError(t, json.Unmarshal(payload, &ev), name)
		require.NotEmpty(t, ev.Records, name)
		for _, r := range ev.Records {
			assert.Equal(t, schema.SKState, r.Change.Keys[schema.SK].String(), name)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		res, err := runner.Invoke(ctx, payload)
		cancel()
		require.NoError(t, err)
		require.Nil(t, res.Err, "%s: %s", name, res.Payload)
		var resp events.DynamoDBEventResponse
		require.NoError(t, json.Unmarshal(res.Payload, &resp), name)
		assert.Len(t, resp.BatchItemFailures, failures, name)
	}
	assert.Empty(t, rd.Next(t), "nothing was written")
}
