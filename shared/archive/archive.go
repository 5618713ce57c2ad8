package archive

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/wait"
)

// Defaults applied by New.
const (
	// DefaultMargin: events are due this long before their TTL, so a few
	// missed runs lose nothing (DynamoDB's TTL deletes within ~48 h after).
	DefaultMargin = 72 * time.Hour
	// DefaultMaxEventsPerObject bounds one object (about 3 MB of JSON,
	// a few hundred KB gzipped) and the deletes between two checkpoints.
	DefaultMaxEventsPerObject = 10_000
	// DefaultHorizon is how far back a first run (no checkpoint yet) walks:
	// no event written with the store's default retention is older.
	DefaultHorizon = store.DefaultAuditRetention + 48*time.Hour
	// DefaultLeaseDuration is how long a run's lease lasts without renewal.
	DefaultLeaseDuration = 5 * time.Minute
	// DefaultReserve is the time before Request.Deadline at which a run
	// starts no new object.
	DefaultReserve = 30 * time.Second
	// DefaultDeleteConcurrency is the number of BatchWriteItem calls in flight.
	DefaultDeleteConcurrency = 8

	// dayLag keeps the checkpoint at least a day behind now.
	dayLag = 24 * time.Hour
	// batchWriteMax is DynamoDB's limit of requests per BatchWriteItem.
	batchWriteMax = 25
	// unprocessedRetries bounds the retries of BatchWriteItem leftovers.
	unprocessedRetries = 10
)

// Options configure an Archiver. DB, S3, Table and Bucket are required.
type Options struct {
	DB     DynamoDB
	S3     S3
	Table  string
	Bucket string
	// Margin: an event is due this long before its TTL. 0 means DefaultMargin.
	Margin time.Duration
	// MaxEventsPerObject bounds each object. 0 means DefaultMaxEventsPerObject.
	MaxEventsPerObject int
	// Horizon is how far back a run walks when there is no checkpoint yet.
	// 0 means DefaultHorizon.
	Horizon time.Duration
	// LeaseDuration is the lease's life between renewals. 0 means
	// DefaultLeaseDuration.
	LeaseDuration time.Duration
	// Reserve: a run starts no new object once less than this (or a quarter
	// of the time it was given) is left before Request.Deadline. 0 means
	// DefaultReserve.
	Reserve time.Duration
	// DeleteConcurrency is the number of BatchWriteItem calls in flight. 0
	// means DefaultDeleteConcurrency.
	DeleteConcurrency int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Progress, when set, is called after each object's events left
	// DynamoDB (from the goroutine calling Run).
	Progress func(Progress)
}

// Request is what one run archives.
type Request struct {
	// OlderThan makes every event at least this old due as well (0: every
	// event written until now). Negative: only the TTL margin applies.
	OlderThan time.Duration
	// Namespace narrows the run to one namespace id; "" means all.
	Namespace string
	// Deadline bounds the run (zero: none): it starts no new object once
	// less than Options.Reserve is left.
	Deadline time.Time
}

// Report says what a run did.
type Report struct {
	// Archived counts the events this run moved to S3 and deleted from
	// DynamoDB, those of a completed interrupted run included.
	Archived int
	// Objects are the s3:// URLs of the objects whose events this run
	// deleted, in order.
	Objects []string
	// Recovered counts the events of an interrupted run's object that this
	// run completed (part of Archived).
	Recovered int
	// Incomplete reports a run stopped by its deadline with days left.
	Incomplete bool
	// Checkpoint is the first day the next run walks.
	Checkpoint string
}

// Progress is reported after each object.
type Progress struct {
	Archived int    // events so far
	Objects  int    // objects so far
	Object   string // the latest object's s3:// URL
	Day      string // the day being walked
}

// Archiver runs archivals. It is safe for concurrent use; concurrent runs
// (here or anywhere) exclude each other through the checkpoint's lease.
type Archiver struct{ o Options }

// New returns an Archiver; it makes no call.
func New(o Options) (*Archiver, error) {
	switch {
	case o.DB == nil || o.S3 == nil:
		return nil, errors.New("archive: a DynamoDB and an S3 client are required")
	case o.Table == "":
		return nil, errors.New("archive: the table name is required")
	case o.Bucket == "":
		return nil, errors.New("archive: the bucket name is required")
	}
	if o.Margin <= 0 {
		o.Margin = DefaultMargin
	}
	if o.MaxEventsPerObject <= 0 {
		o.MaxEventsPerObject = DefaultMaxEventsPerObject
	}
	if o.Horizon <= 0 {
		o.Horizon = DefaultHorizon
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.Reserve <= 0 {
		o.Reserve = DefaultReserve
	}
	if o.DeleteConcurrency <= 0 {
		o.DeleteConcurrency = DefaultDeleteConcurrency
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Archiver{o: o}, nil
}

// Bucket is the archive bucket's name.
func (a *Archiver) Bucket() string { return a.o.Bucket }

// run is the state of one Run.
type run struct {
	a      *Archiver
	req    Request
	lease  *lease
	start  time.Time
	report Report
	// remaining is the first day seen holding an event that stays.
	remaining string
	day       string // the day being walked
}

// Run archives every due event (see the package documentation). It returns
// a *BusyError when another run holds the lease. On any other error the
// report says what was done before it; nothing was deleted from DynamoDB
// that is not in S3, and the next run completes an interrupted object.
func (a *Archiver) Run(ctx context.Context, req Request) (Report, error) {
	r := &run{a: a, req: req, start: a.o.Now()}
	r.lease = &lease{db: a.o.DB, table: a.o.Table, owner: newRunID(r.start), duration: a.o.LeaseDuration, now: a.o.Now}
	cp, err := r.lease.acquire(ctx)
	if err != nil {
		return Report{}, err
	}
	day, err := r.archive(ctx, cp)
	r.report.Checkpoint = day
	// Release even when ctx is done (a Lambda deadline), so the next run
	// need not wait for the lease to expire; an error keeps the old day.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err != nil {
		if !errors.Is(err, ErrLeaseLost) {
			_ = r.lease.release(rctx, "")
		}
		r.report.Checkpoint = cp.Day
		return r.report, err
	}
	if err := r.lease.release(rctx, day); err != nil {
		return r.report, err
	}
	return r.report, nil
}

// archive completes a pending object, then walks the days; it returns the
// next run's first day.
func (r *run) archive(ctx context.Context, cp checkpoint) (string, error) {
	if cp.Pending != nil {
		if err := r.recover(ctx, *cp.Pending); err != nil {
			return "", err
		}
	}
	today := store.AuditDay(r.start)
	first := cp.Day
	if first == "" {
		first = store.AuditDay(r.start.Add(-r.a.o.Horizon))
	}
	d, err := time.Parse(time.DateOnly, first)
	if err != nil {
		return "", fmt.Errorf("archiver checkpoint day %q: %w", first, err)
	}
	for ; store.AuditDay(d) <= today; d = d.AddDate(0, 0, 1) {
		r.day = store.AuditDay(d)
		if r.pastDeadline() {
			r.report.Incomplete = true
			r.keep(r.day)
			break
		}
		if err := r.lease.renew(ctx); err != nil {
			return "", err
		}
		if err := r.walkDay(ctx); err != nil {
			return "", err
		}
		if r.report.Incomplete {
			break
		}
	}
	next := today
	if r.remaining != "" {
		next = r.remaining
	}
	if lag := store.AuditDay(r.start.Add(-dayLag)); lag < next {
		next = lag
	}
	return next, nil
}

// keep notes that day still holds events after this run.
func (r *run) keep(day string) {
	if r.remaining == "" || day < r.remaining {
		r.remaining = day
	}
}

// pastDeadline reports whether less than the reserve is left before the
// deadline: Options.Reserve, or a quarter of the run's whole time when that
// is shorter (a short Lambda timeout still gets work done).
func (r *run) pastDeadline() bool {
	if r.req.Deadline.IsZero() {
		return false
	}
	reserve := min(r.a.o.Reserve, r.req.Deadline.Sub(r.start)/4)
	return r.a.o.Now().Add(reserve).After(r.req.Deadline)
}

// due reports whether rec is archived by this run.
func (r *run) due(rec store.AuditRecord) bool {
	if r.req.Namespace != "" && rec.Namespace != r.req.Namespace {
		return false
	}
	if !rec.Expires.IsZero() && !rec.Expires.After(r.start.Add(r.a.o.Margin)) {
		return true
	}
	return r.req.OlderThan >= 0 && !rec.Event.Timestamp.After(r.start.Add(-r.req.OlderThan))
}

// walkDay archives the due events of r.day in objects of at most
// MaxEventsPerObject, in event id order.
func (r *run) walkDay(ctx context.Context) error {
	var e dynamo.Expr
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(r.a.o.Table),
		IndexName:                 aws.String(schema.GSI2),
		KeyConditionExpression:    aws.String(e.Name(schema.GSI2PK) + " = " + e.Value(dynamo.S(schema.AuditDayGSI2PK(r.day)))),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}
	var batch []store.AuditRecord
	for {
		page, err := r.a.o.DB.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("query the audit time index for %s: %w", r.day, err)
		}
		for _, it := range page.Items {
			rec, ok := store.DecodeAuditRecord(it)
			if !ok {
				continue
			}
			if !r.due(rec) {
				r.keep(r.day)
				continue
			}
			batch = append(batch, rec)
			if len(batch) < r.a.o.MaxEventsPerObject {
				continue
			}
			if err := r.flush(ctx, batch); err != nil {
				return err
			}
			batch = nil
			if r.pastDeadline() {
				r.report.Incomplete = true
				r.keep(r.day)
				return nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	if len(batch) == 0 {
		return nil
	}
	return r.flush(ctx, batch)
}

// flush writes one object and, once it reads back intact, deletes its
// events from DynamoDB.
func (r *run) flush(ctx context.Context, recs []store.AuditRecord) error {
	o, err := encodeObject(r.day, recs)
	if err != nil {
		return err
	}
	if err := r.lease.setPending(ctx, o); err != nil {
		return err
	}
	if err := r.put(ctx, o); err != nil {
		return err
	}
	keys := make([]schema.Key, len(recs))
	for i, rec := range recs {
		keys[i] = rec.Key()
	}
	return r.complete(ctx, pending{Key: o.key, Sum: o.sum, Count: len(recs)}, keys)
}

// put writes o and reads it back; the run's lease must outlive both.
func (r *run) put(ctx context.Context, o object) error {
	ctx, cancel := context.WithTimeout(ctx, r.a.o.LeaseDuration/2)
	defer cancel()
	_, err := r.a.o.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket:          aws.String(r.a.o.Bucket),
		Key:             aws.String(o.key),
		Body:            bytes.NewReader(o.body),
		ContentLength:   aws.Int64(int64(len(o.body))),
		ContentType:     aws.String(contentType),
		ContentEncoding: aws.String(contentEncoding),
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", r.url(o.key), err)
	}
	body, err := r.get(ctx, o.key)
	if err != nil {
		return fmt.Errorf("read back %s: %w", r.url(o.key), err)
	}
	if checksum(body) != o.sum {
		return fmt.Errorf("read back %s: %d bytes that differ from the %d written; nothing was deleted", r.url(o.key), len(body), len(o.body))
	}
	return nil
}

// complete deletes the events of a durable object and clears it as pending.
func (r *run) complete(ctx context.Context, p pending, keys []schema.Key) error {
	if err := deleteItems(ctx, r.a.o.DB, r.a.o.Table, keys, r.a.o.DeleteConcurrency); err != nil {
		return fmt.Errorf("delete the %d events archived in %s: %w", len(keys), r.url(p.Key), err)
	}
	if err := r.lease.clearPending(ctx, p); err != nil {
		return err
	}
	r.report.Archived += len(keys)
	r.report.Objects = append(r.report.Objects, r.url(p.Key))
	if r.a.o.Progress != nil {
		r.a.o.Progress(Progress{Archived: r.report.Archived, Objects: len(r.report.Objects), Object: r.url(p.Key), Day: r.day})
	}
	return nil
}

// recover completes the object an interrupted run left pending: when it
// is in S3 and intact, exactly its events are deleted; when it is not
// there, the put never landed and its events are still due.
func (r *run) recover(ctx context.Context, p pending) error {
	r.day, _ = parseKey(p.Key)
	body, err := r.get(ctx, p.Key)
	if isNotFound(err) {
		return r.lease.write(ctx, "clear pending object "+p.Key, (&dynamo.Update{}).
			Remove(attrPendingKey).Remove(attrPendingSum).Remove(attrPendingCount))
	}
	if err != nil {
		return fmt.Errorf("complete the interrupted object %s: %w", r.url(p.Key), err)
	}
	if checksum(body) != p.Sum {
		return fmt.Errorf("complete the interrupted object %s: its content differs from what was written (SHA-256 %s); "+
			"its events are still in DynamoDB: delete the object and run again", r.url(p.Key), p.Sum)
	}
	lines, err := decodeObject(body)
	if err != nil {
		return fmt.Errorf("complete the interrupted object %s: %w", r.url(p.Key), err)
	}
	keys := make([]schema.Key, len(lines))
	for i, l := range lines {
		keys[i] = schema.AuditKey(l.NamespaceID, l.EntityID, l.EventID)
	}
	p.Count = len(keys)
	if err := r.complete(ctx, p, keys); err != nil {
		return err
	}
	r.report.Recovered += len(keys)
	return nil
}

// get reads a whole object.
func (r *run) get(ctx context.Context, key string) ([]byte, error) {
	return getObject(ctx, r.a.o.S3, r.a.o.Bucket, key)
}

func (r *run) url(key string) string { return "s3://" + r.a.o.Bucket + "/" + key }

type objectGetter interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

func getObject(ctx context.Context, c objectGetter, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// isNotFound reports S3's answer for a missing key.
func isNotFound(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return true
		}
	}
	return false
}

// deleteItems deletes keys with BatchWriteItem, conc calls in flight,
// retrying what DynamoDB leaves unprocessed. Deleting a missing item
// succeeds, so a repeated delete is harmless.
func deleteItems(ctx context.Context, db DynamoDB, table string, keys []schema.Key, conc int) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i := 0; i < len(keys); i += batchWriteMax {
		chunk := keys[i:min(i+batchWriteMax, len(keys))]
		g.Go(func() error {
			reqs := make([]types.WriteRequest, len(chunk))
			for j, k := range chunk {
				reqs[j] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{
					Key: dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)},
				}}
			}
			items := map[string][]types.WriteRequest{table: reqs}
			for attempt := 0; len(items) > 0; attempt++ {
				if attempt > unprocessedRetries {
					return fmt.Errorf("%d deletes still unprocessed after %d retries", len(items[table]), unprocessedRetries)
				}
				if attempt > 0 {
					if err := backoff(ctx, attempt); err != nil {
						return err
					}
				}
				out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: items})
				if err != nil {
					return err
				}
				items = out.UnprocessedItems
			}
			return nil
		})
	}
	return g.Wait()
}

// backoff waits 50 ms doubling, at most 2 s.
func backoff(ctx context.Context, attempt int) error {
	d := min(50*time.Millisecond<<min(attempt, 6), 2*time.Second)
	return wait.For(ctx, d)
}

// newRunID names a run in the lease: its start and 6 random bytes.
func newRunID(now time.Time) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}
