package archive

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

const day = 24 * time.Hour

// dueSeed writes n events 88 days old with the store's 90-day retention:
// their TTL is two days away, inside the default margin, so all are due.
func (f *fixture) dueSeed(n int) []store.AuditRecord {
	return f.seed(f.ns.ID, n, t0.Add(-88*day), time.Second, 90*day)
}

// A run that dies between the put and the deletes (its lease still held)
// leaves the object and every event; once the lease expires the next run
// completes exactly that object, then archives the rest: each event in S3
// exactly once.
func TestInterruptedBetweenPutAndDelete(t *testing.T) {
	f := setup(t)
	recs := f.dueSeed(30)
	crash := &faultDB{DynamoDB: f.raw, failAfter: 0}
	rep, err := f.archiver(Options{MaxEventsPerObject: 10}, crash, nil).Run(f.ctx, Request{OlderThan: -1})
	require.ErrorIs(t, err, errCrash)
	assert.Zero(t, rep.Archived)
	assert.Len(t, f.s3.Objects(t, testBucket), 1, "the first object was written and read back")
	assert.Len(t, f.inTable(), 30, "nothing deleted")
	assert.NotEmpty(t, dynamo.GetS(f.checkpointItem(), attrPendingKey), "the object is recorded as pending")

	a := f.archiver(Options{MaxEventsPerObject: 10}, nil, nil)
	_, err = a.Run(f.ctx, Request{OlderThan: -1})
	var busy *BusyError
	require.ErrorAs(t, err, &busy, "the dead run still holds the lease")
	assert.ErrorIs(t, err, ErrBusy)
	assert.Equal(t, f.clock.Now().Add(DefaultLeaseDuration).UnixMilli(), busy.Until.UnixMilli())

	f.clock.Advance(DefaultLeaseDuration + time.Second)
	rep, err = a.Run(f.ctx, Request{OlderThan: -1})
	require.NoError(t, err)
	assert.Equal(t, 30, rep.Archived)
	assert.Equal(t, 10, rep.Recovered)
	assert.Len(t, rep.Objects, 3)
	f.requireExactlyOnce(recs)
	assert.Empty(t, dynamo.GetS(f.checkpointItem(), attrPendingKey))
	total, _ := dynamo.GetN(f.checkpointItem(), attrArchivedTotal)
	assert.Equal(t, int64(30), total)

	// A replay of the same schedule changes nothing.
	rep, err = a.Run(f.ctx, Request{OlderThan: -1})
	require.NoError(t, err)
	assert.Zero(t, rep.Archived)
	f.requireExactlyOnce(recs)
}

// A run interrupted after some of an object's deletes: the next run
// deletes the rest and writes no second copy.
func TestInterruptedMidDelete(t *testing.T) {
	f := setup(t)
	recs := f.dueSeed(60)
	crash := &faultDB{DynamoDB: f.raw, failAfter: 1} // 25 deleted, then the crash
	_, err := f.archiver(Options{MaxEventsPerObject: 30, DeleteConcurrency: 1}, crash, nil).Run(f.ctx, Request{OlderThan: -1})
	require.ErrorIs(t, err, errCrash)
	assert.Len(t, f.inTable(), 35)
	counts, _ := f.inS3()
	assert.Len(t, counts, 30)

	f.clock.Advance(DefaultLeaseDuration + time.Second)
	rep, err := f.archiver(Options{MaxEventsPerObject: 30}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.NoError(t, err)
	assert.Equal(t, 60, rep.Archived, "the 30 of the interrupted object and the next 30")
	assert.Equal(t, 30, rep.Recovered)
	f.requireExactlyOnce(recs)
}

// S3 failing mid-run: the object that read back intact has its events
// deleted; the one whose put failed deletes nothing, and the run says so.
// A run after S3 recovers completes the archive exactly once.
func TestS3FailingMidRun(t *testing.T) {
	f := setup(t)
	recs := f.dueSeed(30)
	flaky := &faultS3{S3: f.s3.Client, failAfter: 1}
	rep, err := f.archiver(Options{MaxEventsPerObject: 10}, nil, flaky).Run(f.ctx, Request{OlderThan: -1})
	require.ErrorIs(t, err, errCrash)
	assert.ErrorContains(t, err, "write s3://"+testBucket+"/audit/")
	assert.Equal(t, 10, rep.Archived)
	assert.Len(t, rep.Objects, 1)
	assert.Len(t, f.inTable(), 20, "only the events of the object that is in S3 left DynamoDB")

	// Not a crash: the lease was released, the next run need not wait.
	rep, err = f.archiver(Options{MaxEventsPerObject: 10}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.NoError(t, err)
	assert.Equal(t, 20, rep.Archived)
	assert.Zero(t, rep.Recovered, "the pending object never landed")
	f.requireExactlyOnce(recs)
}

// S3 unreachable (503 on every call, then the server gone): nothing is
// deleted and the run reports the failure.
func TestS3Unreachable(t *testing.T) {
	f := setup(t)
	recs := f.dueSeed(12)
	f.s3.SetDown(true)
	rep, err := f.archiver(Options{}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.Error(t, err)
	assert.ErrorContains(t, err, "SlowDown")
	assert.Zero(t, rep.Archived)
	assert.Len(t, f.inTable(), 12)

	f.s3.SetDown(false)
	rep, err = f.archiver(Options{}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.NoError(t, err)
	assert.Equal(t, 12, rep.Archived)
	f.requireExactlyOnce(recs)

	// A server that is gone: connection refused, nothing deleted.
	more := f.seed(f.ns.ID, 5, t0.Add(-time.Hour), time.Second, 2*day) // due by their TTL

	f.s3.Close()
	_, err = f.archiver(Options{}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.Error(t, err)
	assert.ErrorContains(t, err, "write s3://")
	left := f.inTable()
	for _, r := range more {
		assert.True(t, left[r.Event.EventID])
	}
}

// An object that reads back different from what was written deletes
// nothing; the next run checks it again against the recorded SHA-256.
func TestReadBackMismatch(t *testing.T) {
	f := setup(t)
	recs := f.dueSeed(5)
	_, err := f.archiver(Options{}, nil, &faultS3{S3: f.s3.Client, failAfter: -1, corrupt: true}).Run(f.ctx, Request{OlderThan: -1})
	require.Error(t, err)
	assert.ErrorContains(t, err, "differ")
	assert.Len(t, f.inTable(), 5)

	rep, err := f.archiver(Options{}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Recovered, "the object in S3 is intact: the next run completes it")
	f.requireExactlyOnce(recs)
}

// A pending object whose bytes differ from the recorded checksum is never
// trusted: the run fails naming it and deletes nothing.
func TestRecoverRefusesAForeignObject(t *testing.T) {
	f := setup(t)
	f.dueSeed(5)
	crash := &faultDB{DynamoDB: f.raw, failAfter: 0}
	_, err := f.archiver(Options{}, crash, nil).Run(f.ctx, Request{OlderThan: -1})
	require.ErrorIs(t, err, errCrash)
	key := dynamo.GetS(f.checkpointItem(), attrPendingKey)
	_, err = f.s3.Client.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key), Body: strings.NewReader("not what was written")})
	require.NoError(t, err)

	f.clock.Advance(DefaultLeaseDuration + time.Second)
	_, err = f.archiver(Options{}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.Error(t, err)
	assert.ErrorContains(t, err, "content differs")
	assert.ErrorContains(t, err, key)
	assert.Len(t, f.inTable(), 5)
}

// Due: within the margin of the TTL always; by age only when asked; only
// the requested namespace. The checkpoint stops at the first day that
// keeps an event.
func TestDueRules(t *testing.T) {
	f := setup(t)
	other, err := f.st.RegisterNamespace(f.ctx, "other")
	require.NoError(t, err)
	nearTTL := f.seed(f.ns.ID, 3, t0.Add(-88*day), time.Minute, 90*day)      // ttl in 2 days
	oldLongTTL := f.seed(f.ns.ID, 3, t0.Add(-100*day), time.Minute, 365*day) // 100 days old, ttl far
	recent := f.seed(f.ns.ID, 3, t0.Add(-10*day), time.Minute, 90*day)
	otherNS := f.seed(other.ID, 3, t0.Add(-88*day), time.Minute, 90*day)

	a := f.archiver(Options{Horizon: 120 * day}, nil, nil)
	rep, err := a.Run(f.ctx, Request{OlderThan: -1, Namespace: f.ns.ID})
	require.NoError(t, err)
	assert.Equal(t, 3, rep.Archived, "only the default namespace's events near their TTL")
	counts, _ := f.inS3()
	for _, r := range nearTTL {
		assert.Equal(t, 1, counts[r.Event.EventID])
	}
	assert.Equal(t, store.AuditDay(t0.Add(-100*day)), rep.Checkpoint, "the old events stay: the checkpoint stays on their day")

	rep, err = a.Run(f.ctx, Request{OlderThan: 90 * day})
	require.NoError(t, err)
	assert.Equal(t, 6, rep.Archived, "the old ones by age, and the other namespace's near their TTL")
	counts, _ = f.inS3()
	for _, r := range append(oldLongTTL, otherNS...) {
		assert.Equal(t, 1, counts[r.Event.EventID])
	}
	assert.Equal(t, store.AuditDay(t0.Add(-10*day)), rep.Checkpoint)

	rep, err = a.Run(f.ctx, Request{OlderThan: 0})
	require.NoError(t, err)
	assert.Equal(t, 3, rep.Archived)
	f.requireExactlyOnce(append(append(append(nearTTL, oldLongTTL...), recent...), otherNS...))
	assert.Equal(t, store.AuditDay(t0.Add(-day)), rep.Checkpoint, "never past yesterday")
}

// The checkpoint lets the next run skip emptied days, and an event written
// today after an "everything" run is archived by the next one.
func TestCheckpointAndLaterEvents(t *testing.T) {
	f := setup(t)
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, []limits.Limit{limits.PerMinute("rpm", 10, 0)}, "")) // an event now
	a := f.archiver(Options{}, nil, nil)
	rep, err := a.Run(f.ctx, Request{OlderThan: 0})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Archived)
	assert.Equal(t, store.AuditDay(t0.Add(-day)), dynamo.GetS(f.checkpointItem(), attrDay))

	f.clock.Advance(time.Hour)
	require.NoError(t, f.ns.DeleteSystemDefaults(f.ctx))
	q := &queryCounter{DynamoDB: f.raw}
	rep, err = f.archiver(Options{}, q, nil).Run(f.ctx, Request{OlderThan: 0})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.Archived)
	assert.Equal(t, 2, q.days(), "yesterday and today only")
	evs, err := f.ns.AuditEvents(f.ctx, store.SystemAuditID, 0, "")
	require.NoError(t, err)
	assert.Empty(t, evs)
}

// A deadline stops the run between objects; the next run carries on.
func TestDeadline(t *testing.T) {
	f := setup(t)
	recs := f.dueSeed(30)
	o := Options{MaxEventsPerObject: 10, Reserve: 30 * time.Second,
		Progress: func(Progress) { f.clock.Advance(time.Minute) }}
	rep, err := f.archiver(o, nil, nil).Run(f.ctx, Request{OlderThan: -1, Deadline: t0.Add(75 * time.Second)})
	require.NoError(t, err)
	assert.True(t, rep.Incomplete)
	assert.Equal(t, 10, rep.Archived, "one object, then less than the reserve was left")
	assert.Equal(t, store.AuditDay(recs[0].Event.Timestamp), rep.Checkpoint)

	rep, err = f.archiver(Options{MaxEventsPerObject: 10}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.NoError(t, err)
	assert.False(t, rep.Incomplete)
	assert.Equal(t, 20, rep.Archived)
	f.requireExactlyOnce(recs)
}

// Two runs at once: one holds the lease, the other is told so; between
// them every event is archived once.
func TestConcurrentRuns(t *testing.T) {
	f := setup(t)
	recs := f.dueSeed(50)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	reps := make([]Report, 2)
	for i := range 2 {
		wg.Go(func() {
			reps[i], errs[i] = f.archiver(Options{MaxEventsPerObject: 10}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
		})
	}
	wg.Wait()
	archived := 0
	for i, err := range errs {
		if err != nil {
			assert.ErrorIs(t, err, ErrBusy)
			continue
		}
		archived += reps[i].Archived
	}
	assert.Equal(t, 50, archived)
	f.requireExactlyOnce(recs)
}

// A run that lost its lease (it expired and another run took it) writes
// nothing more.
func TestLostLease(t *testing.T) {
	f := setup(t)
	la := &lease{db: f.raw, table: f.table, owner: "a", duration: time.Minute, now: f.clock.Now}
	_, err := la.acquire(f.ctx)
	require.NoError(t, err)
	f.clock.Advance(2 * time.Minute)
	lb := &lease{db: f.raw, table: f.table, owner: "b", duration: time.Minute, now: f.clock.Now}
	_, err = lb.acquire(f.ctx)
	require.NoError(t, err)
	err = la.setPending(f.ctx, object{key: "k", sum: "s"})
	require.ErrorIs(t, err, ErrLeaseLost)
	assert.ErrorIs(t, la.release(f.ctx, "2026-01-01"), ErrLeaseLost)
	assert.Equal(t, "b", dynamo.GetS(f.checkpointItem(), attrOwner))
	require.NoError(t, lb.release(f.ctx, "2026-01-02"))
	assert.Equal(t, "2026-01-02", dynamo.GetS(f.checkpointItem(), attrDay))
}

// Events written through the store read back from S3 exactly as the store
// listed them, page by page.
func TestReaderMatchesStore(t *testing.T) {
	f := setup(t)
	for i := range 5 {
		f.clock.Advance(time.Duration(i) * 7 * time.Hour) // spread over days
		_, err := f.ns.CreateEntity(f.ctx, store.Entity{ID: "e1"})
		require.NoError(t, err)
		_, err = f.ns.DeleteEntity(f.ctx, "e1")
		require.NoError(t, err)
	}
	_, err := f.ns.CreateEntity(f.ctx, store.Entity{ID: "e2"})
	require.NoError(t, err)
	want, err := f.ns.AuditEvents(f.ctx, "e1", 0, "")
	require.NoError(t, err)
	require.Len(t, want, 10)
	page1, err := f.ns.AuditEvents(f.ctx, "e1", 3, "")
	require.NoError(t, err)
	page2, err := f.ns.AuditEvents(f.ctx, "e1", 3, page1[2].EventID)
	require.NoError(t, err)

	rep, err := f.archiver(Options{MaxEventsPerObject: 4}, nil, nil).Run(f.ctx, Request{OlderThan: 0})
	require.NoError(t, err)
	assert.Equal(t, 11, rep.Archived)
	left, err := f.ns.AuditEvents(f.ctx, "e1", 0, "")
	require.NoError(t, err)
	assert.Empty(t, left)

	r := &Reader{S3: f.s3.Client, Bucket: testBucket}
	got, err := r.Events(f.ctx, Query{Namespace: f.ns.ID, EntityID: "e1"})
	require.NoError(t, err)
	assert.Equal(t, want, got)
	got, err = r.Events(f.ctx, Query{Namespace: f.ns.ID, EntityID: "e1", Limit: 3})
	require.NoError(t, err)
	assert.Equal(t, page1, got)
	got, err = r.Events(f.ctx, Query{Namespace: f.ns.ID, EntityID: "e1", Limit: 3, StartAfter: page1[2].EventID})
	require.NoError(t, err)
	assert.Equal(t, page2, got)

	got, err = r.Events(f.ctx, Query{Namespace: "someother", EntityID: "e1"})
	require.NoError(t, err)
	assert.Empty(t, got, "another namespace's events are not this one's")
	_, err = r.Events(f.ctx, Query{Namespace: f.ns.ID, EntityID: "e1", StartAfter: "nope"})
	assert.ErrorContains(t, err, "start_after")
}

// The reader reads the newest days first and stops once a page is full.
func TestReaderStopsEarly(t *testing.T) {
	f := setup(t)
	f.seed(f.ns.ID, 3, t0.Add(-80*day), time.Second, 90*day)
	f.seed(f.ns.ID, 3, t0.Add(-40*day), time.Second, 90*day)
	f.seed(f.ns.ID, 14, t0.Add(-2*day), time.Second, 90*day)
	_, err := f.archiver(Options{}, nil, nil).Run(f.ctx, Request{OlderThan: 0})
	require.NoError(t, err)
	var reads []int
	r := &Reader{S3: f.s3.Client, Bucket: testBucket}
	got, err := r.Events(f.ctx, Query{Namespace: f.ns.ID, EntityID: "user-0", Limit: 2,
		Progress: func(read, total int) { reads = append(reads, read) }})
	require.NoError(t, err)
	assert.Len(t, got, 2)
	assert.Equal(t, []int{1}, reads, "the newest day's object was enough")
}

// queryCounter counts the days a run queries.
type queryCounter struct {
	DynamoDB
	mu      sync.Mutex
	queried map[string]bool
}

func (q *queryCounter) days() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queried)
}

func (q *queryCounter) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	q.mu.Lock()
	if q.queried == nil {
		q.queried = map[string]bool{}
	}
	for _, v := range in.ExpressionAttributeValues {
		q.queried[v.(*types.AttributeValueMemberS).Value] = true
	}
	q.mu.Unlock()
	return q.DynamoDB.Query(ctx, in, o...)
}
