package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
)

// fixtureARN is the stream ARN the files of events/aggregator carry (the
// "limiter" stack's table in us-east-1), instead of DynamoDB Local's.
const fixtureARN = "arn:aws:dynamodb:us-east-1:123456789012:table/limiter/stream/2026-12-01T00:00:00.000"

// scenarios write the traffic behind each file of events/aggregator (see
// its README and eventCases) and return the bucket records it caused, as
// the mapping's filter would deliver them.
var scenarios = map[string]func(t *testing.T, e *usagetest.Env) []events.DynamoDBEventRecord{
	"batch.json": func(t *testing.T, e *usagetest.Env) []events.DynamoDBEventRecord {
		e.Acquire("hot", "gpt-4", map[string]int64{"rpm": 1, "tpm": 10})
		e.Shard("hot", "gpt-4", 4)
		for j := range 4 {
			e.Pick.Store(int64(j))
			e.Acquire("hot", "gpt-4", map[string]int64{"rpm": 1, "tpm": int64(10 * (j + 1))})
			if j == 1 {
				e.Acquire("cold", "gpt-4", map[string]int64{"rpm": 1, "tpm": 1000})
			}
		}
		return buckets(e.Records(13))
	},
	"cascade.json": func(t *testing.T, e *usagetest.Env) []events.DynamoDBEventRecord {
		e.Cascade("key-1", "org")
		e.Acquire("key-1", "gpt-4", map[string]int64{"rpm": 1, "tpm": 100})
		lease := e.Acquire("key-1", "gpt-4", map[string]int64{"rpm": 1, "tpm": 100})
		require.NoError(t, lease.Adjust(e.Ctx, map[string]int64{"tpm": 50}))
		return buckets(e.Records(6))
	},
	"rollback.json": func(t *testing.T, e *usagetest.Env) []events.DynamoDBEventRecord {
		lease := e.Acquire("u", "gpt-4", map[string]int64{"rpm": 1, "tpm": 500})
		require.NoError(t, lease.Adjust(e.Ctx, map[string]int64{"tpm": 200}))
		require.NoError(t, lease.Rollback(e.Ctx))
		e.Acquire("u", "gpt-4", map[string]int64{"rpm": 1, "tpm": 30})
		return buckets(e.Records(4))
	},
	"ttl-removal.json": func(t *testing.T, e *usagetest.Env) []events.DynamoDBEventRecord {
		e.Acquire("gone", "gpt-4", map[string]int64{"rpm": 1, "tpm": 5})
		e.Acquire("gone-local", "gpt-4", map[string]int64{"rpm": 1, "tpm": 7})
		recs := buckets(e.Records(2))
		// DynamoDB Local's sweeper does not expire items of the product's
		// table (four GSIs), so the deletions are made from the real
		// records: AWS's form, and DynamoDB Local's own.
		aws := expire(recs[0], "900000000000000000001")
		aws.EventName = stream.EventRemove
		aws.UserIdentity = &events.DynamoDBUserIdentity{Type: stream.TTLIdentityType, PrincipalID: stream.TTLIdentityPrincipal}
		local := expire(recs[1], "900000000000000000002")
		local.EventName = stream.EventLocalTTL
		return append(recs, aws, local)
	},
	"poisoned.json": func(t *testing.T, e *usagetest.Env) []events.DynamoDBEventRecord {
		for _, n := range []int64{100, 200, 300} {
			e.Acquire("p", "gpt-4", map[string]int64{"rpm": 1, "tpm": n})
		}
		recs := buckets(e.Records(3))
		img := map[string]events.DynamoDBAttributeValue{}
		for k, v := range recs[1].Change.NewImage {
			img[k] = v
		}
		img["b_tpm_w"] = events.NewNumberAttribute("1e400") // not an int64: a damaged item
		recs[1].Change.NewImage = img
		return recs
	},
}

// buckets keeps the bucket shard records (what the mapping's filter lets
// through), with the fixture's ARN and region.
func buckets(recs []events.DynamoDBEventRecord) []events.DynamoDBEventRecord {
	var out []events.DynamoDBEventRecord
	for _, r := range recs {
		if r.Change.Keys[schema.SK].String() != schema.SKState {
			continue
		}
		r.EventSourceArn, r.AWSRegion = fixtureARN, "us-east-1"
		out = append(out, r)
	}
	return out
}

// expire is the TTL deletion of the item r left behind.
func expire(r events.DynamoDBEventRecord, seq string) events.DynamoDBEventRecord {
	r.EventID += "-ttl"
	r.Change.OldImage, r.Change.NewImage = r.Change.NewImage, nil
	r.Change.SequenceNumber = seq
	r.Change.StreamViewType = "NEW_AND_OLD_IMAGES"
	return r
}

// TestGenerateEvents rewrites events/aggregator from real traffic:
//
//	go test ./functions/aggregator -run TestGenerateEvents -update-events
func TestGenerateEvents(t *testing.T) {
	if !*updateEvents {
		t.Skip("regenerate with -update-events")
	}
	for name, gen := range scenarios {
		e := usagetest.New(t, "")
		recs := gen(t, e)
		b, err := json.MarshalIndent(usagetest.Event(recs), "", "  ")
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(eventsDir, name), append(b, '\n'), 0o644))
	}
}
