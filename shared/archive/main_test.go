package archive

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/archive/s3test"
	"github.com/zeroae/zae-limiter-go/shared/clocktest"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

const testBucket = "audit-archive-test"

// t0 is the tests' "now" at the start: noon UTC of the real day, because
// DynamoDB Local's TTL sweeper deletes items by the real clock, so every
// seeded ttl must lie in the real future.
var t0 = time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)

// fixture is a fresh table with the namespace "default", an in-process S3
// with the archive bucket, and a settable clock shared by both sides.
type fixture struct {
	t     testing.TB
	ctx   context.Context
	table string
	raw   *dynamodb.Client
	s3    *s3test.Server
	clock *clocktest.Clock
	st    *store.Store
	ns    *store.NS
}

func setup(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), table: ddbtest.NewTable(t), raw: ddbtest.Client(t), clock: clocktest.New(t0)}
	f.s3 = s3test.Start(t, testBucket)
	f.st = store.New(f.raw, store.Options{Table: f.table, Now: f.clock.Now, CacheTTL: -1})
	_, err := f.st.RegisterNamespace(f.ctx, "default")
	require.NoError(t, err)
	f.ns, err = f.st.Namespace(f.ctx, "default")
	require.NoError(t, err)
	return f
}

// archiver builds an Archiver over the fixture, with db and s3 standing in
// for the real clients when not nil.
func (f *fixture) archiver(o Options, db DynamoDB, s S3) *Archiver {
	f.t.Helper()
	o.DB, o.S3, o.Table, o.Bucket, o.Now = f.raw, f.s3.Client, f.table, testBucket, f.clock.Now
	if db != nil {
		o.DB = db
	}
	if s != nil {
		o.S3 = s
	}
	a, err := New(o)
	require.NoError(f.t, err)
	return a
}

// seed writes n audit events of namespace nsID, the first at start and
// then one every step, with the store's own codec, and returns them.
func (f *fixture) seed(nsID string, n int, start time.Time, step, retention time.Duration) []store.AuditRecord {
	f.t.Helper()
	recs := make([]store.AuditRecord, n)
	entropy := ulid.Monotonic(rand.Reader, 0)
	var reqs []types.WriteRequest
	flush := func() {
		items := map[string][]types.WriteRequest{f.table: reqs}
		for len(items) > 0 {
			out, err := f.raw.BatchWriteItem(f.ctx, &dynamodb.BatchWriteItemInput{RequestItems: items})
			require.NoError(f.t, err)
			items = out.UnprocessedItems
		}
		reqs = nil
	}
	for i := range recs {
		ts := start.Add(time.Duration(i) * step).Truncate(time.Second)
		id := ulid.MustNew(ulid.Timestamp(start.Add(time.Duration(i)*step)), entropy).String()
		recs[i] = store.AuditRecord{
			Namespace: nsID,
			Event: store.AuditEvent{
				EventID: id, Timestamp: ts, Action: store.ActionLimitsSet, EntityID: fmt.Sprintf("user-%d", i%7),
				Principal: "tester", Resource: "gpt-4", Details: map[string]any{"i": float64(i)},
			},
			Expires: ts.Add(retention),
		}
		it, err := recs[i].Item()
		require.NoError(f.t, err)
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
		if len(reqs) == 25 {
			flush()
		}
	}
	if len(reqs) > 0 {
		flush()
	}
	return recs
}

// inTable returns the event ids of every audit item left in the table.
func (f *fixture) inTable() map[string]bool {
	f.t.Helper()
	out := map[string]bool{}
	var e dynamo.Expr
	in := &dynamodb.ScanInput{
		TableName:                 aws.String(f.table),
		FilterExpression:          aws.String("begins_with(" + e.Name(schema.SK) + ", " + e.Value(dynamo.S(schema.SKAuditPrefix)) + ")"),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}
	for {
		page, err := f.raw.Scan(f.ctx, in)
		require.NoError(f.t, err)
		for _, it := range page.Items {
			out[dynamo.GetS(it, "event_id")] = true
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// inS3 counts each event id over every object in the bucket, and returns
// the lines by event id.
func (f *fixture) inS3() (map[string]int, map[string]Line) {
	f.t.Helper()
	counts, lines := map[string]int{}, map[string]Line{}
	for _, key := range f.s3.Objects(f.t, testBucket) {
		_, ok := parseKey(key)
		require.True(f.t, ok, "unexpected key %s", key)
		body, err := getObject(f.ctx, f.s3.Client, testBucket, key)
		require.NoError(f.t, err)
		ls, err := decodeObject(body)
		require.NoError(f.t, err, key)
		for _, l := range ls {
			counts[l.EventID]++
			lines[l.EventID] = l
		}
	}
	return counts, lines
}

// checkpointItem reads the raw checkpoint item.
func (f *fixture) checkpointItem() dynamo.Item {
	f.t.Helper()
	out, err := f.raw.GetItem(f.ctx, &dynamodb.GetItemInput{TableName: aws.String(f.table), Key: checkpointKey(), ConsistentRead: aws.Bool(true)})
	require.NoError(f.t, err)
	return out.Item
}

// requireExactlyOnce checks that every record is in S3 exactly once and no
// longer in the table.
func (f *fixture) requireExactlyOnce(recs []store.AuditRecord) {
	f.t.Helper()
	counts, _ := f.inS3()
	left := f.inTable()
	for _, r := range recs {
		require.Equal(f.t, 1, counts[r.Event.EventID], "event %s in S3", r.Event.EventID)
		require.False(f.t, left[r.Event.EventID], "event %s still in DynamoDB", r.Event.EventID)
	}
	require.Len(f.t, counts, len(recs), "S3 holds exactly the seeded events")
}

var errCrash = errors.New("injected failure")

// faultDB wraps the table's client: it can fail BatchWriteItem after a
// number of calls, and then ("crash") fail every later checkpoint write
// too, as a process that died would never release its lease.
type faultDB struct {
	DynamoDB
	mu           sync.Mutex
	batchCalls   int
	failAfter    int // BatchWriteItem calls that succeed before failing; <0: never fail
	crashed      bool
	updateCalls  int
	failUpdateAt int // the UpdateItem call (1-based) that fails; 0: none
}

func (d *faultDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	d.mu.Lock()
	d.batchCalls++
	fail := d.failAfter >= 0 && d.batchCalls > d.failAfter
	if fail {
		d.crashed = true
	}
	d.mu.Unlock()
	if fail {
		return nil, errCrash
	}
	return d.DynamoDB.BatchWriteItem(ctx, in, o...)
}

func (d *faultDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	d.mu.Lock()
	d.updateCalls++
	fail := d.crashed || d.updateCalls == d.failUpdateAt
	d.mu.Unlock()
	if fail {
		return nil, errCrash
	}
	return d.DynamoDB.UpdateItem(ctx, in, o...)
}

// faultS3 wraps the S3 client: it can fail PutObject after a number of
// calls, or hand back other bytes than were written.
type faultS3 struct {
	S3
	mu        sync.Mutex
	puts      int
	failAfter int // PutObject calls that succeed before failing; <0: never
	corrupt   bool
}

func (s *faultS3) PutObject(ctx context.Context, in *s3.PutObjectInput, o ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	s.mu.Lock()
	s.puts++
	fail := s.failAfter >= 0 && s.puts > s.failAfter
	s.mu.Unlock()
	if fail {
		return nil, errCrash
	}
	return s.S3.PutObject(ctx, in, o...)
}

func (s *faultS3) GetObject(ctx context.Context, in *s3.GetObjectInput, o ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	out, err := s.S3.GetObject(ctx, in, o...)
	if err != nil || !s.corrupt {
		return out, err
	}
	out.Body.Close()
	out.Body = corruptBody()
	return out, nil
}

func corruptBody() io.ReadCloser { return io.NopCloser(strings.NewReader("not what was written")) }
