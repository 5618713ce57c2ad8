// Package streams is the local stack's DynamoDB stream event source
// mapping: it polls a table's stream in DynamoDB Local and invokes a
// function with batches of records in the aws-lambda-go DynamoDBEvent
// shape, honouring what the template's mapping asks for, as Lambda does:
//
//   - FilterCriteria (see Filter): records no pattern admits are dropped
//     before batching and never delivered.
//   - BatchSize and MaximumBatchingWindowInSeconds: a batch is sent when it
//     is full, when the window has passed since its first record, or at
//     once when the window is 0.
//   - Function errors (returned, a crash, a timeout): the batch is retried;
//     with BisectBatchOnFunctionError it is split in two and each half is
//     tried on its own first (splitting does not count as a retry).
//   - ReportBatchItemFailures: the records before the first failed item are
//     done, the rest is retried (one retry); an item identifier that is not
//     in the batch (or empty) fails the whole batch.
//   - MaximumRetryAttempts and MaximumRecordAgeInSeconds: a batch that runs
//     out of either goes to the OnFailure destination (a description of the
//     batch in Lambda's shape, plus the records themselves) and is skipped.
//   - TTL deletions, which DynamoDB Local streams with the eventName
//     "UNKNOWN_TO_SDK_VERSION", are delivered as AWS delivers them: REMOVE
//     with the DynamoDB service as userIdentity.
//
// Records of a shard are delivered in order, one batch at a time; a child
// shard waits until its parent is read to its end. Progress is checkpointed
// per shard (to a file when one is given), so a restarted poller resumes
// where it stopped and a record is delivered again only when its batch did
// not complete. A stream that disappears (DynamoDB Local restarted, the
// table re-created) is followed to the table's new stream, read from its
// start.
//
// Local-only tooling: no Lambda imports it.
package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
)

// Invoker runs the function.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (lambdarun.Result, error)
}

// Config is the mapping's part of the template, with Lambda's defaults.
type Config struct {
	BatchSize               int           // default 100
	MaxBatchingWindow       time.Duration // 0: send what a poll returns
	Filters                 []string
	Bisect                  bool
	MaxRetryAttempts        int           // -1: until the records expire
	MaxRecordAge            time.Duration // 0: no limit
	ReportBatchItemFailures bool
	// StartingPosition is TRIM_HORIZON or LATEST; it applies to a shard
	// without a checkpoint of a stream first seen after Start (a stream
	// present when the mapping starts is read from its start).
	StartingPosition string
}

// Options configure a Mapping.
type Options struct {
	Config
	// Table whose stream is read.
	Table string
	// Endpoint returns DynamoDB Local's endpoint ("" while it is down).
	Endpoint func() string
	// Function is invoked with each batch; FunctionARN names it in
	// failure records.
	Function    Invoker
	FunctionARN string
	// OnFailure receives a batch that ran out of retries or age (nil:
	// logged and dropped).
	OnFailure func(ctx context.Context, f Failure) error
	// CheckpointFile keeps progress across restarts ("" keeps it in memory).
	CheckpointFile string
	// PollInterval between empty polls of a shard (default 250 ms) and
	// RetryBackoff before a retry (default 200 ms, doubling to 5 s).
	PollInterval, RetryBackoff time.Duration
	// Now is the clock for record ages (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Stats counts what a mapping did.
type Stats struct {
	StreamARN   string    `json:"stream_arn,omitempty"`
	Batches     int       `json:"batches"`
	Records     int       `json:"records"`
	Filtered    int       `json:"filtered"`
	Retries     int       `json:"retries"`
	Failed      int       `json:"failed_batches"`
	LastError   string    `json:"last_error,omitempty"`
	LastBatchAt time.Time `json:"last_batch_at,omitzero"`
}

// Mapping polls one table's stream for one function.
type Mapping struct {
	o      Options
	c      *client
	filter *Filter
	cp     *checkpoints

	mu    sync.Mutex
	stats Stats
}

// New validates the options and compiles the filter.
func New(o Options) (*Mapping, error) {
	if o.Table == "" || o.Endpoint == nil || o.Function == nil {
		return nil, errors.New("streams: Table, Endpoint and Function are required")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 100
	}
	if o.BatchSize > 10000 {
		return nil, fmt.Errorf("streams: BatchSize %d: at most 10000", o.BatchSize)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 200 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	f, err := CompileFilter(o.Filters)
	if err != nil {
		return nil, err
	}
	cp, err := loadCheckpoints(o.CheckpointFile)
	if err != nil {
		return nil, err
	}
	return &Mapping{
		o: o, filter: f, cp: cp,
		c: &client{endpoint: o.Endpoint, http: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}},
	}, nil
}

// Stats returns the counters so far.
func (m *Mapping) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

func (m *Mapping) note(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

// Run polls until ctx ends.
func (m *Mapping) Run(ctx context.Context) {
	first := true
	for ctx.Err() == nil {
		arn, err := m.c.streamARN(ctx, m.o.Table)
		if err != nil || arn == "" {
			if err == nil {
				err = fmt.Errorf("table %s has no stream", m.o.Table)
			}
			m.noteErr(err)
			sleep(ctx, time.Second)
			continue
		}
		m.note(func(s *Stats) { s.StreamARN = arn })
		start := m.o.StartingPosition
		if first || m.cp.stream() != arn {
			// A stream present at start, or a new stream (the table was
			// re-created), is read from its start: the mapping exists before
			// any of its records.
			start = "TRIM_HORIZON"
		}
		first = false
		m.cp.setStream(arn)
		err = m.stream(ctx, arn, start)
		if ctx.Err() != nil {
			return
		}
		m.o.Log.Warn("stream ended; looking for the table's stream again", "table", m.o.Table, "error", fmt.Sprint(err))
		m.noteErr(err)
		sleep(ctx, m.o.PollInterval)
	}
}

func (m *Mapping) noteErr(err error) {
	if err != nil {
		m.note(func(s *Stats) { s.LastError = err.Error() })
	}
}

var errStreamGone = errors.New("the stream is gone")

// stream reads every shard of a stream, parents first, until the stream
// disappears or ctx ends.
func (m *Mapping) stream(ctx context.Context, arn, start string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	running := map[string]bool{}
	finished := make(chan string, 64)
	gone := make(chan error, 1)
	for {
		shards, err := m.c.shards(ctx, arn)
		if err != nil {
			if isType(err, "ResourceNotFoundException") {
				return errStreamGone
			}
			m.noteErr(err)
		}
		known := map[string]bool{}
		for _, s := range shards {
			known[s.ShardId] = true
		}
		sort.Slice(shards, func(i, j int) bool { return shards[i].ShardId < shards[j].ShardId })
		for _, s := range shards {
			if running[s.ShardId] || m.cp.done(s.ShardId) {
				continue
			}
			if s.ParentShardId != "" && known[s.ParentShardId] && !m.cp.done(s.ParentShardId) {
				continue // the parent first
			}
			running[s.ShardId] = true
			go func(id string) {
				err := m.shard(ctx, arn, id, start)
				if errors.Is(err, errStreamGone) {
					select {
					case gone <- err:
					default:
					}
					return
				}
				if err == nil {
					finished <- id
				}
			}(s.ShardId)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-gone:
			return err
		case id := <-finished:
			delete(running, id)
		case <-time.After(2 * time.Second):
		}
	}
}

// record is one stream record as delivered, with what the poller needs.
type record struct {
	raw     map[string]any
	seq     string
	created time.Time
}

// shard reads one shard to its end (nil) or until the stream is gone.
func (m *Mapping) shard(ctx context.Context, arn, id, start string) error {
	it, err := m.newIterator(ctx, arn, id, start)
	if err != nil {
		return err
	}
	var pending []record
	var firstAt time.Time
	lastSeq := m.cp.seq(id)
	closed := false
	for ctx.Err() == nil {
		if !closed && len(pending) < m.o.BatchSize {
			raws, next, err := m.c.records(ctx, it, 1000)
			switch {
			case isType(err, "ResourceNotFoundException"):
				return errStreamGone
			case isType(err, "ExpiredIteratorException"), isType(err, "TrimmedDataAccessException"):
				if it, err = m.newIterator(ctx, arn, id, start); err != nil {
					return err
				}
				continue
			case err != nil:
				m.noteErr(err)
				sleep(ctx, m.o.PollInterval)
				continue
			}
			filtered := 0
			for _, raw := range raws {
				r, err := m.decode(raw, arn)
				if err != nil {
					m.noteErr(err)
					continue
				}
				lastSeq = r.seq
				if !m.filter.Match(r.raw) {
					filtered++
					continue
				}
				if len(pending) == 0 {
					firstAt = m.o.Now()
				}
				pending = append(pending, r)
			}
			if filtered > 0 {
				m.note(func(s *Stats) { s.Filtered += filtered })
			}
			if len(pending) == 0 && lastSeq != "" {
				m.cp.set(id, lastSeq) // only filtered records: done
			}
			if next == "" {
				closed = true
			}
			it = next
		}
		ready := len(pending) >= m.o.BatchSize || (len(pending) > 0 &&
			(closed || m.o.MaxBatchingWindow == 0 || m.o.Now().Sub(firstAt) >= m.o.MaxBatchingWindow))
		if ready {
			n := min(len(pending), m.o.BatchSize)
			if err := m.deliver(ctx, arn, id, pending[:n], 0); err != nil {
				return err
			}
			pending = pending[n:]
			if len(pending) > 0 {
				firstAt = m.o.Now()
			} else {
				m.cp.set(id, lastSeq)
			}
			continue
		}
		if closed && len(pending) == 0 {
			m.cp.finish(id)
			return nil
		}
		sleep(ctx, m.o.PollInterval)
	}
	return ctx.Err()
}

func (m *Mapping) newIterator(ctx context.Context, arn, id, start string) (string, error) {
	for {
		var it string
		var err error
		if seq := m.cp.seq(id); seq != "" {
			it, err = m.c.iterator(ctx, arn, id, "AFTER_SEQUENCE_NUMBER", seq)
		} else {
			it, err = m.c.iterator(ctx, arn, id, start, "")
		}
		if err == nil {
			return it, nil
		}
		if isType(err, "ResourceNotFoundException") {
			return "", errStreamGone
		}
		m.noteErr(err)
		if !sleep(ctx, m.o.PollInterval) {
			return "", ctx.Err()
		}
	}
}

// decode reads a stream record and turns it into the Lambda event record.
func (m *Mapping) decode(raw json.RawMessage, arn string) (record, error) {
	var r map[string]any
	if err := json.Unmarshal(raw, &r); err != nil {
		return record{}, fmt.Errorf("stream record: %w", err)
	}
	r["eventSourceARN"] = arn
	if r["eventName"] == "UNKNOWN_TO_SDK_VERSION" {
		// DynamoDB Local's TTL deletion; AWS sends REMOVE by the service.
		r["eventName"] = "REMOVE"
		r["userIdentity"] = map[string]any{"type": "Service", "principalId": "dynamodb.amazonaws.com"}
	}
	ddb, _ := r["dynamodb"].(map[string]any)
	seq, _ := ddb["SequenceNumber"].(string)
	if seq == "" {
		return record{}, errors.New("stream record without a SequenceNumber")
	}
	rec := record{raw: r, seq: seq}
	if ts, ok := ddb["ApproximateCreationDateTime"].(float64); ok {
		sec, frac := math.Modf(ts)
		rec.created = time.Unix(int64(sec), int64(frac*1e9))
	}
	return rec, nil
}

// deliver runs a batch to completion: delivered, partly delivered and
// retried, bisected, or sent to the destination. It returns an error only
// when ctx ends.
func (m *Mapping) deliver(ctx context.Context, arn, shardID string, batch []record, retries int) error {
	invokes := 0
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if batch = m.expire(ctx, arn, shardID, batch, invokes); len(batch) == 0 {
			return nil
		}
		res, err := m.invoke(ctx, batch)
		invokes++
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failedAt := 0 // index of the first record to retry; len(batch) means done
		var fnErr *lambdarun.FunctionError
		switch {
		case err != nil:
			fnErr = &lambdarun.FunctionError{Type: "Runner", Message: err.Error()}
		case res.Err != nil:
			fnErr = res.Err
		default:
			failedAt = m.firstFailure(res.Payload, batch)
		}
		if fnErr == nil && failedAt == len(batch) {
			m.cp.set(shardID, batch[len(batch)-1].seq)
			m.note(func(s *Stats) { s.Batches++; s.Records += len(batch); s.LastBatchAt = m.o.Now() })
			return nil
		}
		if fnErr == nil && failedAt > 0 {
			// Partial failure: what precedes the first failed item is done.
			m.cp.set(shardID, batch[failedAt-1].seq)
			m.note(func(s *Stats) { s.Batches++; s.Records += failedAt; s.LastBatchAt = m.o.Now() })
			batch = batch[failedAt:]
		}
		if fnErr != nil {
			m.noteErr(fnErr)
			if m.o.Bisect && len(batch) > 1 {
				half := len(batch) / 2
				if err := m.deliver(ctx, arn, shardID, batch[:half], retries); err != nil {
					return err
				}
				return m.deliver(ctx, arn, shardID, batch[half:], retries)
			}
		}
		retries++
		m.note(func(s *Stats) { s.Retries++ })
		if m.o.MaxRetryAttempts >= 0 && retries > m.o.MaxRetryAttempts {
			m.fail(ctx, arn, shardID, batch, "RetryAttemptsExhausted", invokes, fnErr)
			m.cp.set(shardID, batch[len(batch)-1].seq)
			return nil
		}
		backoff := m.o.RetryBackoff << min(retries-1, 5)
		if !sleep(ctx, min(backoff, 5*time.Second)) {
			return ctx.Err()
		}
	}
}

// expire sends the records older than MaxRecordAge (the oldest come first)
// to the destination and returns the rest.
func (m *Mapping) expire(ctx context.Context, arn, shardID string, batch []record, invokes int) []record {
	if m.o.MaxRecordAge <= 0 {
		return batch
	}
	n := 0
	for n < len(batch) && !batch[n].created.IsZero() && m.o.Now().Sub(batch[n].created) > m.o.MaxRecordAge {
		n++
	}
	if n > 0 {
		m.fail(ctx, arn, shardID, batch[:n], "RecordAgeExceeded", invokes, nil)
		m.cp.set(shardID, batch[n-1].seq)
	}
	return batch[n:]
}

func (m *Mapping) invoke(ctx context.Context, batch []record) (lambdarun.Result, error) {
	recs := make([]map[string]any, len(batch))
	for i, r := range batch {
		recs[i] = r.raw
	}
	payload, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		return lambdarun.Result{}, err
	}
	return m.o.Function.Invoke(ctx, payload)
}

// firstFailure reads a ReportBatchItemFailures response: the index of the
// first record to retry (len(batch) when none, 0 when the response fails
// the whole batch).
func (m *Mapping) firstFailure(payload []byte, batch []record) int {
	if !m.o.ReportBatchItemFailures {
		return len(batch)
	}
	var resp struct {
		BatchItemFailures []struct {
			ItemIdentifier *string `json:"itemIdentifier"`
		} `json:"batchItemFailures"`
	}
	if len(payload) == 0 || string(payload) == "null" || json.Unmarshal(payload, &resp) != nil {
		return len(batch) // an empty or unreadable response is a success, as in Lambda
	}
	first := len(batch)
	for _, f := range resp.BatchItemFailures {
		if f.ItemIdentifier == nil || *f.ItemIdentifier == "" {
			return 0
		}
		idx := -1
		for i, r := range batch {
			if r.seq == *f.ItemIdentifier {
				idx = i
				break
			}
		}
		if idx < 0 {
			return 0
		}
		first = min(first, idx)
	}
	return first
}

// Failure describes a batch sent to the on-failure destination: Lambda's
// invocation record for stream sources, plus the records (local only).
type Failure struct {
	RequestContext struct {
		RequestID              string `json:"requestId"`
		FunctionARN            string `json:"functionArn"`
		Condition              string `json:"condition"`
		ApproximateInvokeCount int    `json:"approximateInvokeCount"`
	} `json:"requestContext"`
	ResponseContext struct {
		StatusCode      int    `json:"statusCode"`
		ExecutedVersion string `json:"executedVersion"`
		FunctionError   string `json:"functionError,omitempty"`
	} `json:"responseContext"`
	Version   string    `json:"version"`
	Timestamp string    `json:"timestamp"`
	BatchInfo BatchInfo `json:"DDBStreamBatchInfo"`
	Error     string    `json:"errorMessage,omitempty"`
	Records   []any     `json:"records"`
}

// BatchInfo locates a failed batch in the stream.
type BatchInfo struct {
	ShardID                         string `json:"shardId"`
	StartSequenceNumber             string `json:"startSequenceNumber"`
	EndSequenceNumber               string `json:"endSequenceNumber"`
	ApproximateArrivalOfFirstRecord string `json:"approximateArrivalOfFirstRecord"`
	ApproximateArrivalOfLastRecord  string `json:"approximateArrivalOfLastRecord"`
	BatchSize                       int    `json:"batchSize"`
	StreamARN                       string `json:"streamArn"`
}

func (m *Mapping) fail(ctx context.Context, arn, shardID string, batch []record, condition string, invokes int, fnErr *lambdarun.FunctionError) {
	var f Failure
	f.RequestContext.RequestID = fmt.Sprintf("%s-%s", shardID, batch[0].seq)
	f.RequestContext.FunctionARN = m.o.FunctionARN
	f.RequestContext.Condition = condition
	f.RequestContext.ApproximateInvokeCount = invokes
	f.ResponseContext.StatusCode = http.StatusOK
	f.ResponseContext.ExecutedVersion = "$LATEST"
	if fnErr != nil {
		f.ResponseContext.FunctionError = "Unhandled"
		f.Error = fnErr.Error()
	}
	f.Version = "1.0"
	f.Timestamp = m.o.Now().UTC().Format(time.RFC3339Nano)
	f.BatchInfo = BatchInfo{
		ShardID: shardID, StartSequenceNumber: batch[0].seq, EndSequenceNumber: batch[len(batch)-1].seq,
		ApproximateArrivalOfFirstRecord: batch[0].created.UTC().Format(time.RFC3339),
		ApproximateArrivalOfLastRecord:  batch[len(batch)-1].created.UTC().Format(time.RFC3339),
		BatchSize:                       len(batch), StreamARN: arn,
	}
	for _, r := range batch {
		f.Records = append(f.Records, r.raw)
	}
	m.note(func(s *Stats) { s.Failed++ })
	m.o.Log.Error("stream batch sent to the on-failure destination", "function", m.o.FunctionARN,
		"condition", condition, "records", len(batch), "shard", shardID)
	if m.o.OnFailure == nil {
		return
	}
	if err := m.o.OnFailure(ctx, f); err != nil {
		m.o.Log.Error("writing to the on-failure destination failed", "error", err.Error())
	}
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
