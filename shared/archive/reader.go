package archive

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/oklog/ulid/v2"
	"golang.org/x/sync/errgroup"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// DefaultReadConcurrency is the number of objects a Reader reads at once.
const DefaultReadConcurrency = 8

// Reader reads archived events back from the bucket.
type Reader struct {
	S3     ReaderS3
	Bucket string
	// Concurrency is the number of GetObject calls in flight; 0 means
	// DefaultReadConcurrency.
	Concurrency int
}

// Query selects archived events of one entity.
type Query struct {
	// Namespace is the namespace id (required).
	Namespace string
	// EntityID is the audited entity ($SYSTEM and $RESOURCE:x included).
	EntityID string
	// Limit is the most events returned; <= 0 means store.DefaultAuditPageSize.
	Limit int
	// StartAfter returns only events older than this event id ("" for the
	// newest), for paging as with store.NS.AuditEvents.
	StartAfter string
	// Progress, when set, is told how many objects were read of how many
	// it may need (from the goroutine calling Events).
	Progress func(read, total int)
}

// Events returns up to q.Limit archived events of q.EntityID in
// q.Namespace, newest first: the same events, in the same shape and order,
// as store.NS.AuditEvents returned before they were archived. It reads the
// partitions newest first and stops once a partition completes the page.
func (r *Reader) Events(ctx context.Context, q Query) ([]store.AuditEvent, error) {
	if q.Namespace == "" {
		return nil, errors.New("archive: a namespace id is required")
	}
	if q.StartAfter != "" {
		id, err := ulid.ParseStrict(q.StartAfter)
		if err != nil {
			return nil, limits.Invalid("start_after", q.StartAfter, "must be an audit event id")
		}
		q.StartAfter = id.String()
	}
	if q.Limit <= 0 {
		q.Limit = store.DefaultAuditPageSize
	}
	days, total, err := r.listDays(ctx)
	if err != nil {
		return nil, err
	}
	lastDay := ""
	if q.StartAfter != "" {
		id := ulid.MustParse(q.StartAfter)
		lastDay = store.AuditDay(ulid.Time(id.Time()))
	}
	seen := map[string]bool{}
	var out []store.AuditEvent
	read := 0
	for _, d := range days {
		if lastDay != "" && d.day > lastDay {
			total -= len(d.keys)
			continue
		}
		lines, err := r.readAll(ctx, d.keys)
		if err != nil {
			return nil, err
		}
		read += len(d.keys)
		if q.Progress != nil {
			q.Progress(read, total)
		}
		for _, l := range lines {
			if l.NamespaceID != q.Namespace || l.EntityID != q.EntityID || seen[l.EventID] {
				continue
			}
			if q.StartAfter != "" && l.EventID >= q.StartAfter {
				continue
			}
			ev, err := l.Event()
			if err != nil {
				return nil, err
			}
			seen[l.EventID] = true
			out = append(out, ev)
		}
		if len(out) >= q.Limit {
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EventID > out[j].EventID })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

type dayKeys struct {
	day  string
	keys []string
}

// listDays lists the archive's objects by day, newest day first.
func (r *Reader) listDays(ctx context.Context) ([]dayKeys, int, error) {
	byDay := map[string][]string{}
	total := 0
	in := &s3.ListObjectsV2Input{Bucket: aws.String(r.Bucket), Prefix: aws.String(Prefix)}
	for {
		out, err := r.S3.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, 0, fmt.Errorf("list s3://%s/%s: %w", r.Bucket, Prefix, err)
		}
		for _, o := range out.Contents {
			key := aws.ToString(o.Key)
			if day, ok := parseKey(key); ok {
				byDay[day] = append(byDay[day], key)
				total++
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			break
		}
		in.ContinuationToken = out.NextContinuationToken
	}
	days := make([]dayKeys, 0, len(byDay))
	for d, keys := range byDay {
		days = append(days, dayKeys{d, keys})
	}
	sort.Slice(days, func(i, j int) bool { return days[i].day > days[j].day })
	return days, total, nil
}

// readAll reads and decodes objects concurrently.
func (r *Reader) readAll(ctx context.Context, keys []string) ([]Line, error) {
	conc := r.Concurrency
	if conc <= 0 {
		conc = DefaultReadConcurrency
	}
	res := make([][]Line, len(keys))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, key := range keys {
		g.Go(func() error {
			body, err := getObject(ctx, r.S3, r.Bucket, key)
			if err != nil {
				return fmt.Errorf("read s3://%s/%s: %w", r.Bucket, key, err)
			}
			lines, err := decodeObject(body)
			if err != nil {
				return fmt.Errorf("s3://%s/%s: %w", r.Bucket, key, err)
			}
			res[i] = lines
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []Line
	for _, l := range res {
		out = append(out, l...)
	}
	return out, nil
}

// LocalBucketName is the archive bucket of a stack on the local stack:
// "{stack}-audit-archive", lower-cased, with '_' and '.' turned into '-'
// (bucket names allow neither upper case nor '_'). `zae-limiter local up`
// creates it and the CLI finds it by this name when it talks to a local
// endpoint; in AWS the stack's output AuditArchiveBucketName names it.
func LocalBucketName(stack string) string {
	const suffix = "-audit-archive"
	s := strings.ToLower(stack)
	s = strings.NewReplacer("_", "-", ".", "-").Replace(s)
	s = strings.TrimLeft(s, "-")
	if len(s) > 63-len(suffix) {
		s = s[:63-len(suffix)]
	}
	s = strings.TrimRight(s, "-")
	if s == "" {
		s = "zae-limiter"
	}
	return s + suffix
}
