package usage_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

var t0 = time.Date(2026, 3, 31, 23, 59, 30, 0, time.UTC)

func change(ns, entity, res string, j int, seq string, at time.Time, tokens map[string]int64) usage.Change {
	pos, _ := stream.Position(seq)
	return usage.Change{Shard: shard.ID{Namespace: ns, Entity: entity, Resource: res, Shard: j},
		Seq: seq, Position: pos, Stream: "2026-01-01T00:00:00.000", Time: at, Tokens: tokens}
}

func getItem(t *testing.T, table string, k schema.Key) dynamo.Item {
	t.Helper()
	out, err := ddbtest.Client(t).GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)}, ConsistentRead: aws.Bool(true)})
	require.NoError(t, err)
	return out.Item
}

// The snapshot item as written: counters, events, one position per
// source, its identity, both index keys, and the window's end plus the
// retention as its ttl.
func TestApply_snapshotItem(t *testing.T) {
	table := ddbtest.NewTable(t)
	a := &usage.Aggregator{DB: ddbtest.Client(t), Table: table, Windows: []usage.Window{usage.Daily}, Retention: 90 * 24 * time.Hour}
	out := a.Apply(context.Background(), []usage.Change{
		change("ns1", "key-1", "gpt-4", 0, "101", t0, map[string]int64{"tpm": 500, "rpm": 1}),
		change("ns1", "key-1", "gpt-4", 2, "102", t0, map[string]int64{"tpm": 200, "rpm": 1}),
		change("ns1", "key-1", "gpt-4", 0, "103", t0, map[string]int64{"tpm": -100}),
	})
	require.Empty(t, out.Errors)
	assert.Equal(t, usage.Outcome{Written: 1}, out)

	id := usage.SnapshotID{Namespace: "ns1", EntityID: "key-1", Resource: "gpt-4", Window: usage.Daily, Start: usage.Daily.Start(t0)}
	it := getItem(t, table, id.Key())
	require.NotNil(t, it)
	s, err := usage.Decode(it)
	require.NoError(t, err)
	assert.Equal(t, id, s.SnapshotID)
	assert.Equal(t, map[string]int64{"tpm": 600, "rpm": 2}, s.Counters)
	assert.Equal(t, int64(3), s.Events)
	assert.Equal(t, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Add(90*24*time.Hour).Unix(), s.TTL)
	p103, _ := stream.Position("103")
	p102, _ := stream.Position("102")
	assert.Equal(t, p103, dynamo.GetS(it, usage.PositionAttr(0, "2026-01-01T00:00:00.000")))
	assert.Equal(t, p102, dynamo.GetS(it, usage.PositionAttr(2, "2026-01-01T00:00:00.000")))
	assert.Equal(t, schema.ResourceGSI2PK("ns1", "gpt-4"), dynamo.GetS(it, schema.GSI2PK))
	assert.Equal(t, schema.UsageGSI2SK("daily", "2026-03-31T00:00:00Z", "key-1"), dynamo.GetS(it, schema.GSI2SK))
	assert.Equal(t, "ns1", dynamo.GetS(it, schema.GSI4PK))
	assert.Equal(t, schema.GSI4SKFor(id.Key()), dynamo.GetS(it, schema.GSI4SK))

	// Retention 0: no expiry.
	a.Retention = 0
	a.Windows = []usage.Window{usage.Monthly}
	require.Empty(t, a.Apply(context.Background(), []usage.Change{change("ns1", "key-1", "gpt-4", 0, "104", t0, map[string]int64{"tpm": 1})}).Errors)
	id.Window, id.Start = usage.Monthly, usage.Monthly.Start(t0)
	_, has := getItem(t, table, id.Key())[schema.TTL]
	assert.False(t, has)
}

// failingDB is the real client with failures injected: an UpdateItem on a
// key whose SK contains failOn answers a throttling error without being
// sent.
type failingDB struct {
	*dynamodb.Client
	failOn string
}

func (f *failingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if strings.Contains(dynamo.GetS(in.Key, schema.SK), f.failOn) {
		return nil, &smithy.GenericAPIError{Code: "ThrottlingException", Message: "injected"}
	}
	return f.Client.UpdateItem(ctx, in, opts...)
}

// A write that fails reports exactly its own records; the others land.
func TestApply_failedWriteReportsItsRecords(t *testing.T) {
	table := ddbtest.NewTable(t)
	db := &failingDB{Client: ddbtest.Client(t), failOn: "#bad#"}
	a := &usage.Aggregator{DB: db, Table: table, Windows: []usage.Window{usage.Hourly, usage.Daily}, Concurrency: 2}
	var changes []usage.Change
	for i := range 10 {
		res := "good"
		if i%4 == 0 {
			res = "bad"
		}
		changes = append(changes, change("ns1", fmt.Sprint("e", i%3), res, 0, fmt.Sprint(500+i), t0, map[string]int64{"tpm": 1}))
	}
	out := a.Apply(context.Background(), changes)
	// "bad": changes 0, 4, 8 on entities e0, e1, e2: three snapshots x two
	// windows; "good": e0..e2 likewise.
	assert.Equal(t, 6, out.Written)
	assert.Equal(t, 6, out.Failed)
	require.Len(t, out.Errors, 6)
	assert.ErrorContains(t, out.Errors[0], "ThrottlingException")
	assert.ElementsMatch(t, []string{"500", "500", "504", "504", "508", "508"}, out.FailedSeqs)

	// The retry (the failure gone) writes only what is missing.
	db.failOn = "nothing"
	out = a.Apply(context.Background(), changes)
	assert.Equal(t, usage.Outcome{Written: 6, Replayed: 6}, out)
}
