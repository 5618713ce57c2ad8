package usage_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// Synthetic batches: batchSize MODIFY records of real shard item images
// (shard.Fresh's encoding, two limits and the write budget), spread over
// benchBuckets buckets of up to 4 shards, each record taking 1 rpm and 100
// tpm.
const (
	batchSize    = 100
	benchBuckets = 20
)

var benchCfg = shard.Config{Level: 1, Limits: map[string]bucket.Params{
	"rpm": {Capacity: 1_000_000, RefillAmount: 1_000_000, RefillPeriod: 60_000},
	"tpm": {Capacity: 100_000_000, RefillAmount: 100_000_000, RefillPeriod: 60_000},
}}

// image is a shard item image in the event's attribute values.
func image(id shard.ID, tc int64) map[string]events.DynamoDBAttributeValue {
	it, _ := shard.Fresh(id, benchCfg, 1_700_000_000_000, 7)
	it[schema.BucketAttr("rpm", schema.SuffixConsumed)] = dynamo.N(tc / 100)
	it[schema.BucketAttr("tpm", schema.SuffixConsumed)] = dynamo.N(tc)
	out := map[string]events.DynamoDBAttributeValue{} // a shard item holds strings and numbers only
	for k := range it {
		if s := dynamo.GetS(it, k); s != "" {
			out[k] = events.NewStringAttribute(s)
		} else if n, ok := dynamo.GetN(it, k); ok {
			out[k] = events.NewNumberAttribute(fmt.Sprint(n))
		}
	}
	return out
}

// batch is batch number n of a stream for namespace ns: every record's
// position and consumed counters follow the previous batch's.
func batch(ns string, n int, at time.Time) stream.Event {
	var ev stream.Event
	for k := range batchSize {
		i := n*batchSize + k
		id := shard.ID{Namespace: ns, Entity: fmt.Sprint("e", i%benchBuckets), Resource: "gpt-4", Shard: (i / benchBuckets) % 4}
		round := int64(i / (benchBuckets * 4)) // how many records this shard had before
		rec := events.DynamoDBEventRecord{
			EventName: stream.EventModify, EventSourceArn: "arn:aws:dynamodb:us-east-1:1:table/t/stream/2026-01-01T00:00:00.000",
			Change: events.DynamoDBStreamRecord{
				SequenceNumber:              fmt.Sprintf("1%020d", i),
				ApproximateCreationDateTime: events.SecondsEpochTime{Time: at},
				Keys:                        map[string]events.DynamoDBAttributeValue{"PK": events.NewStringAttribute(id.PK()), "SK": events.NewStringAttribute(schema.SKState)},
				OldImage:                    image(id, round*100_000),
				NewImage:                    image(id, (round+1)*100_000),
			},
		}
		ev.Records = append(ev.Records, stream.Received{DynamoDBEventRecord: rec})
	}
	return ev
}

// BenchmarkDecodeAndPlan is the CPU side of a batch: decode every record,
// read its consumption, plan the snapshot writes (no I/O).
func BenchmarkDecodeAndPlan(b *testing.B) {
	ev := batch("ns1", 0, time.Now())
	b.ResetTimer()
	for range b.N {
		var changes []usage.Change
		for _, rc := range ev.Records {
			r, err := stream.Decode(rc.DynamoDBEventRecord)
			if err != nil {
				b.Fatal(err)
			}
			c, ok, err := usage.ChangeOf(r)
			if err != nil || !ok {
				b.Fatal(err)
			}
			changes = append(changes, c)
		}
		for _, w := range usage.Plan(changes, usage.DefaultWindows) {
			_ = w.Update(90 * 24 * time.Hour)
		}
	}
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkHandle is a whole batch through the handler against DynamoDB
// Local: new batches (every record folded in) and the same batch again
// (a redelivery: every write's condition fails and nothing is written).
func BenchmarkHandle(b *testing.B) {
	table := ddbtest.NewTable(b)
	count := &dynamo.Counter{}
	cfg := ddbtest.Config(b)
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, count.Install)
	})
	h := &usage.Handler{
		Aggregator: &usage.Aggregator{DB: db, Table: table, Retention: 90 * 24 * time.Hour},
		Log:        slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
	at := time.Now()
	run := func(b *testing.B, ev stream.Event) {
		resp, err := h.Handle(context.Background(), ev)
		require.NoError(b, err)
		require.Empty(b, resp.BatchItemFailures)
	}
	next := 0
	report := func(b *testing.B, before int64) {
		b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(count.Count("UpdateItem")-before)/float64(b.N), "UpdateItem/batch")
	}
	b.Run("new", func(b *testing.B) {
		before := count.Count("UpdateItem")
		for range b.N {
			ev := batch("ns1", next, at)
			next++
			run(b, ev)
		}
		report(b, before)
	})
	b.Run("replayed", func(b *testing.B) {
		ev := batch("ns1", 0, at)
		run(b, ev)
		b.ResetTimer()
		before := count.Count("UpdateItem")
		for range b.N {
			run(b, ev)
		}
		report(b, before)
	})
}
