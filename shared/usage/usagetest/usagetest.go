// Package usagetest produces real bucket traffic for the tests of the
// usage snapshots: the real limiter writes to a table on the test DynamoDB
// (ddbtest), and the stream records it causes are read back from the
// table's stream, in the shape the aggregator function receives.
package usagetest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/stream/streamtest"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// Env is a table with the "default" namespace, a limiter on it and a
// reader of its stream.
type Env struct {
	T      testing.TB
	Ctx    context.Context
	Table  string
	DB     *dynamodb.Client
	Store  *store.Store
	NS     *store.NS
	Lim    *limiter.Limiter
	Stream *streamtest.Reader
	// Pick is the shard the limiter writes when a bucket has several
	// (Options.Rand); -1 (the default) picks the highest.
	Pick atomic.Int64
}

// New creates a table on the test DynamoDB (or uses table when not empty:
// another Env's) and reads its stream.
func New(t testing.TB, table string) *Env {
	t.Helper()
	if table == "" {
		table = ddbtest.NewTable(t)
	}
	e := Open(t, ddbtest.Client(t), table)
	e.Stream = streamtest.New(t, ddbtest.Config(t), e.Table)
	return e
}

// Open is an Env on an existing table through db (a local stack's, say),
// registering "default" when needed; it reads no stream (Stream is nil).
func Open(t testing.TB, db *dynamodb.Client, table string) *Env {
	t.Helper()
	e := &Env{T: t, Ctx: context.Background(), Table: table, DB: db}
	e.Pick.Store(-1)
	e.Store = store.New(e.DB, store.Options{Table: e.Table, CacheTTL: -1})
	if _, err := e.Store.RegisterNamespace(e.Ctx, "default"); err != nil && !isExists(err) {
		t.Fatalf("usagetest: register namespace: %v", err)
	}
	var err error
	if e.NS, err = e.Store.Namespace(e.Ctx, "default"); err != nil {
		t.Fatalf("usagetest: namespace: %v", err)
	}
	e.Lim = limiter.New(e.DB, e.NS, limiter.Options{Table: e.Table, Namespace: e.NS.ID, Timeout: time.Minute,
		Rand: func(n int) int {
			if p := int(e.Pick.Load()); p >= 0 && p < n {
				return p
			}
			return n - 1
		}})
	return e
}

func isExists(err error) bool { return errors.Is(err, limits.ErrExists) }

// Limits are generous limits for the scenarios: nothing is ever denied.
var Limits = []limits.Limit{
	{Name: "rpm", Capacity: 1_000_000, RefillAmount: 1_000_000, RefillPeriodSeconds: 60},
	{Name: "tpm", Capacity: 100_000_000, RefillAmount: 100_000_000, RefillPeriodSeconds: 60},
}

// Acquire acquires consume for entity on resource under Limits and
// returns the lease (already written).
func (e *Env) Acquire(entity, resource string, consume map[string]int64) *limiter.Lease {
	e.T.Helper()
	lease, err := e.Lim.Acquire(e.Ctx, limiter.Request{EntityID: entity, Resource: resource, Consume: consume, Limits: Limits})
	if err != nil {
		e.T.Fatalf("usagetest: acquire %s/%s: %v", entity, resource, err)
	}
	return lease
}

// Cascade creates a child entity that cascades to parent.
func (e *Env) Cascade(child, parent string) {
	e.T.Helper()
	if _, err := e.NS.CreateEntity(e.Ctx, store.Entity{ID: parent}); err != nil && !isExists(err) {
		e.T.Fatalf("usagetest: create %s: %v", parent, err)
	}
	if _, err := e.NS.CreateEntity(e.Ctx, store.Entity{ID: child, ParentID: parent, Cascade: true}); err != nil {
		e.T.Fatalf("usagetest: create %s: %v", child, err)
	}
}

// Shard sets the bucket's target shard count on shard 0, as a writer that
// ran out of write budget (or the refill function) does: the limiter then
// splits shards as it writes them.
func (e *Env) Shard(entity, resource string, count int) {
	e.T.Helper()
	var u dynamo.Update
	u.IfExists(schema.PK)
	u.Set(schema.AttrShardCount, count)
	id := shard.ID{Namespace: e.NS.ID, Entity: entity, Resource: resource}
	if _, err := e.DB.UpdateItem(e.Ctx, u.Input(e.Table, id.Key())); err != nil {
		e.T.Fatalf("usagetest: shard %s/%s: %v", entity, resource, err)
	}
}

// Consumed is the bucket's net consumption per limit in whole tokens,
// from its shard items as stored: the sum over shards of Tokens(TC). It
// is what the snapshots of every window must add up to.
func (e *Env) Consumed(entity, resource string) map[string]int64 {
	e.T.Helper()
	out := map[string]int64{}
	for j, n := 0, 1; j < n; j++ {
		st := e.shardState(entity, resource, j)
		if j == 0 {
			n = max(st.Count, st.Level)
		}
		for name, l := range st.Limits {
			if name != shard.Budget {
				out[name] += usage.Tokens(l.TC)
			}
		}
	}
	return out
}

// shardState reads shard j of a bucket (consistent read; a missing item
// is a state with Exists false).
func (e *Env) shardState(entity, resource string, j int) *shard.State {
	e.T.Helper()
	id := shard.ID{Namespace: e.NS.ID, Entity: entity, Resource: resource, Shard: j}
	got, err := e.DB.GetItem(e.Ctx, &dynamodb.GetItemInput{TableName: aws.String(e.Table), Key: id.Key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		e.T.Fatalf("usagetest: read %s: %v", id.PK(), err)
	}
	st, err := shard.Decode(got.Item)
	if err != nil {
		e.T.Fatalf("usagetest: %v", err)
	}
	return st
}

// Records waits for at least n new records on the stream and returns
// every new one.
func (e *Env) Records(n int) []events.DynamoDBEventRecord {
	e.T.Helper()
	return e.Stream.WaitFor(e.T, n, time.Minute)
}

// Event wraps records as the event the function receives.
func Event(recs []events.DynamoDBEventRecord) events.DynamoDBEvent {
	return events.DynamoDBEvent{Records: recs}
}

// ConsumedBy is Consumed of each entity's bucket on resource "gpt".
func (e *Env) ConsumedBy(entities ...string) map[string]map[string]int64 {
	e.T.Helper()
	out := map[string]map[string]int64{}
	for _, b := range entities {
		out[b] = e.Consumed(b, "gpt")
	}
	return out
}

// BusyBuckets are the entities Busy writes to (resource "gpt").
var BusyBuckets = []string{"key-1", "org", "solo", "hot"}

// Busy is a busy stretch of real limiter traffic on resource "gpt" (see
// BusyTraffic); it returns every stream record it caused, in stream order.
func Busy(e *Env) []events.DynamoDBEventRecord {
	e.T.Helper()
	BusyTraffic(e)
	// At least: 4 child and 4 parent acquires, 4 adjustments, 3 writes
	// for solo, and for hot 5 acquires, the count bump, 3 splits, 3 twins.
	return e.Records(30)
}

// BusyTraffic writes a busy stretch of real limiter traffic on resource
// "gpt": plain acquires, a cascade (key-1 cascades to org: every acquire
// of the child also writes the parent's bucket), an adjustment into more
// consumption, a refund, a rollback, and a bucket spread over four shards.
// Net, in whole tokens: key-1 and org rpm 4, tpm 950; solo rpm 1, tpm 40
// (its rolled back lease returned everything); hot rpm 5, tpm 110 over four
// shards. Bucket changes that moved a counter (events): key-1 and org 6,
// solo 3, hot 5.
func BusyTraffic(e *Env) {
	e.T.Helper()
	must := func(err error) {
		if err != nil {
			e.T.Fatalf("usagetest: %v", err)
		}
	}
	e.Cascade("key-1", "org")
	for range 3 {
		e.Acquire("key-1", "gpt", map[string]int64{"rpm": 1, "tpm": 100})
	}
	lease := e.Acquire("key-1", "gpt", map[string]int64{"rpm": 1, "tpm": 500})
	must(lease.Adjust(e.Ctx, map[string]int64{"tpm": 250}))  // used more than estimated
	must(lease.Adjust(e.Ctx, map[string]int64{"tpm": -100})) // a refund
	must(lease.Commit(e.Ctx))
	rolled := e.Acquire("solo", "gpt", map[string]int64{"rpm": 2, "tpm": 700})
	must(rolled.Rollback(e.Ctx))
	e.Acquire("solo", "gpt", map[string]int64{"rpm": 1, "tpm": 40})

	e.Acquire("hot", "gpt", map[string]int64{"rpm": 1, "tpm": 10})
	e.Shard("hot", "gpt", 4)
	for j := range 4 {
		e.Pick.Store(int64(j))
		e.Acquire("hot", "gpt", map[string]int64{"rpm": 1, "tpm": int64(10 * (j + 1))})
	}
	e.Pick.Store(-1)
}

// Handler is the aggregator function's handler on table (every window,
// 90 days' retention, logs discarded).
func Handler(db usage.DynamoDB, table string) *usage.Handler {
	return &usage.Handler{
		Aggregator: &usage.Aggregator{DB: db, Table: table, Windows: usage.Windows, Retention: 90 * 24 * time.Hour},
		Log:        slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}
}

// Deliver runs recs through h as one batch, as the mapping would, and
// fails t unless every record was processed.
func Deliver(t testing.TB, h *usage.Handler, recs []events.DynamoDBEventRecord) {
	t.Helper()
	var ev stream.Event
	for _, r := range recs {
		ev.Records = append(ev.Records, stream.Received{DynamoDBEventRecord: r})
	}
	resp, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatalf("usagetest: deliver %d records: %v", len(recs), err)
	}
	if len(resp.BatchItemFailures) > 0 {
		t.Fatalf("usagetest: records failed: %v", resp.BatchItemFailures)
	}
}
