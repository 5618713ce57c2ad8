package upkeep_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/stream/streamtest"
	"github.com/zeroae/zae-limiter-go/shared/upkeep"
)

// env is a table on the test DynamoDB, writers and the refill function's
// engine on one settable clock, and a reader of the table's stream that
// delivers its records to the refill handler as the mapping would.
type env struct {
	t     testing.TB
	ctx   context.Context
	table string
	db    *dynamodb.Client
	ns    *store.NS
	// clock is the test's time (Unix ns): writers and refill read it.
	clock atomic.Int64
	// writer is the application's limiter, refill the function's engine:
	// their Stats tell apart the splits each made.
	writer, refill *limiter.Limiter
	h              *upkeep.Handler
	log            *bytes.Buffer
	rd             *streamtest.Reader
}

func newEnv(t testing.TB, o upkeep.Options) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), table: ddbtest.NewTable(t), db: ddbtest.Client(t), log: &bytes.Buffer{}}
	e.clock.Store(time.Now().Truncate(time.Second).UnixNano())
	o.Now = e.now
	st := store.New(e.db, store.Options{Table: e.table, CacheTTL: -1})
	_, err := st.RegisterNamespace(e.ctx, "default")
	require.NoError(t, err)
	e.ns, err = st.Namespace(e.ctx, "default")
	require.NoError(t, err)
	lo := limiter.Options{Table: e.table, Namespace: e.ns.ID, Now: e.now, Timeout: time.Minute}
	e.writer = limiter.New(e.db, e.ns, lo)
	eng := upkeep.NewEngine(e.db, e.table, e.now)
	e.refill = eng.Lim
	e.h = &upkeep.Handler{
		Upkeep: upkeep.New(eng, o),
		Log:    slog.New(slog.NewJSONHandler(&lockedWriter{w: e.log}, nil)), Now: e.now, FunctionName: "refill",
	}
	e.rd = streamtest.New(t, ddbtest.Config(t), e.table)
	return e
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *env) now() time.Time          { return time.Unix(0, e.clock.Load()) }
func (e *env) advance(d time.Duration) { e.clock.Add(int64(d)) }

// rps is a limit the load never exhausts; rpm one whose capacity a single
// request can ask for whole.
var (
	rps = limits.Limit{Name: "rps", Capacity: 1_000_000, RefillAmount: 1_000_000, RefillPeriodSeconds: 1}
	rpm = limits.Limit{Name: "rpm", Capacity: 12_000, RefillAmount: 12_000, RefillPeriodSeconds: 60}
)

func (e *env) id(entity string) shard.ID {
	return shard.ID{Namespace: e.ns.ID, Entity: entity, Resource: "gpt"}
}

// acquire takes n of rpm (and 1 of rps) on entity's bucket; ok is false
// for a denial by the limits.
func (e *env) acquire(entity string, n int64) (bool, error) {
	_, err := e.writer.Acquire(e.ctx, limiter.Request{EntityID: entity, Resource: "gpt",
		Consume: map[string]int64{"rps": 1, "rpm": n}, Limits: []limits.Limit{rps, rpm}})
	var ex *limits.ExceededError
	if errors.As(err, &ex) {
		if ex.Reason != "" {
			return false, fmt.Errorf("denied for %s", ex.Reason)
		}
		return false, nil
	}
	return err == nil, err
}

// load runs rate acquires a second of the test clock on entity's bucket
// for d, from four writers, each acquire moving the clock by 1/rate; every
// acquire must be admitted.
func (e *env) load(entity string, rate int, d time.Duration) {
	e.t.Helper()
	total := int64(d) * int64(rate) / int64(time.Second)
	tick := time.Second / time.Duration(rate)
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for w := range errs {
		wg.Go(func() {
			for n.Add(1) <= total {
				e.advance(tick)
				ok, err := e.acquire(entity, 0)
				if err == nil && !ok {
					err = errors.New("denied")
				}
				if err != nil {
					errs[w] = err
					return
				}
			}
		})
	}
	wg.Wait()
	require.NoError(e.t, errors.Join(errs...))
}

// records reads what the stream holds since the last call.
func (e *env) records() []events.DynamoDBEventRecord { return e.rd.Next(e.t) }

// deliver hands recs to the handler as one batch and returns the sequence
// numbers it reported failed.
func (e *env) deliver(recs []events.DynamoDBEventRecord) []string {
	e.t.Helper()
	ev := stream.Event{}
	for _, r := range recs {
		ev.Records = append(ev.Records, stream.Received{DynamoDBEventRecord: r})
	}
	resp, err := e.h.Handle(e.ctx, ev)
	require.NoError(e.t, err)
	var failed []string
	for _, f := range resp.BatchItemFailures {
		failed = append(failed, f.ItemIdentifier)
	}
	return failed
}

// shards reads every shard item of entity's bucket as stored.
func (e *env) shards(entity string) []*shard.State {
	e.t.Helper()
	var out []*shard.State
	for j := range shard.MaxShards {
		got, err := e.db.GetItem(e.ctx, &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: e.id(entity).Of(j).Key(), ConsistentRead: aws.Bool(true)})
		require.NoError(e.t, err)
		st, err := shard.Decode(got.Item)
		require.NoError(e.t, err)
		out = append(out, st)
	}
	return out
}

// live is the number of shard items of entity's bucket that exist and are
// not tombstones.
func (e *env) live(entity string) int {
	n := 0
	for _, st := range e.shards(entity) {
		if st.Exists && !st.Merged {
			n++
		}
	}
	return n
}

// sweep plays DynamoDB's time to live at the test clock: it deletes every
// item whose ttl has passed, conditioned on that ttl (DynamoDB Local's own
// sweeper does not expire the product's table, and runs on the wall
// clock). It returns how many it deleted.
func (e *env) sweep() int {
	e.t.Helper()
	items := e.scan()
	n := 0
	for _, it := range items {
		v, ok := it[schema.TTL].(*types.AttributeValueMemberN)
		if !ok {
			continue
		}
		ttl, err := strconv.ParseInt(v.Value, 10, 64)
		require.NoError(e.t, err)
		if ttl > e.now().Unix() {
			continue
		}
		_, err = e.db.DeleteItem(e.ctx, &dynamodb.DeleteItemInput{
			TableName: aws.String(e.table), Key: map[string]types.AttributeValue{schema.PK: it[schema.PK], schema.SK: it[schema.SK]},
			ConditionExpression:       aws.String("#t = :t"),
			ExpressionAttributeNames:  map[string]string{"#t": schema.TTL},
			ExpressionAttributeValues: map[string]types.AttributeValue{":t": v},
		})
		require.NoError(e.t, err)
		n++
	}
	return n
}

// scan reads the whole table.
func (e *env) scan() []map[string]types.AttributeValue {
	e.t.Helper()
	var out []map[string]types.AttributeValue
	p := dynamodb.NewScanPaginator(e.db, &dynamodb.ScanInput{TableName: aws.String(e.table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(e.ctx)
		require.NoError(e.t, err)
		out = append(out, page.Items...)
	}
	return out
}

// dump is the table as text, items in key order: two dumps are equal
// exactly when nothing was written in between.
func (e *env) dump() string {
	e.t.Helper()
	var lines []string
	for _, it := range e.scan() {
		lines = append(lines, fmt.Sprint(it[schema.PK].(*types.AttributeValueMemberS).Value, " ", it[schema.SK].(*types.AttributeValueMemberS).Value, " ", render(it)))
	}
	sort.Strings(lines)
	return fmt.Sprint(lines)
}

func render(it map[string]types.AttributeValue) string {
	keys := make([]string, 0, len(it))
	for k := range it {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		switch v := it[k].(type) {
		case *types.AttributeValueMemberS:
			fmt.Fprintf(&b, "%s=%q ", k, v.Value)
		case *types.AttributeValueMemberN:
			fmt.Fprintf(&b, "%s=%s ", k, v.Value)
		default:
			fmt.Fprintf(&b, "%s=%v ", k, v)
		}
	}
	return b.String()
}
