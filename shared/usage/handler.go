package usage

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/shared/emf"
	"github.com/zeroae/zae-limiter-go/shared/stream"
)

// MetricsNamespace is the CloudWatch namespace of the function's metrics.
const MetricsNamespace = "ZaeLimiter"

// Handler serves the aggregator function: one stream batch in, snapshot
// writes out, every record it could not process reported as a batch item
// failure.
type Handler struct {
	Aggregator *Aggregator
	// Log receives one line per invocation (with its counts, the stream
	// lag and EMF metrics) and one per record that failed.
	Log *slog.Logger
	// Now is the clock of the lag (nil: time.Now).
	Now func() time.Time
	// FunctionName is the metrics' dimension.
	FunctionName string
}

// report is what one invocation did.
type report struct {
	// Records in the batch; Changes among them that showed consumption;
	// Ignored those that showed none (other items, deletions, writes that
	// consumed nothing).
	Records, Changes, Ignored int
	// Written and Replayed snapshot writes (see Outcome).
	Written, Replayed int
	// Failed records, reported as batch item failures.
	Failed int
	// Lag is the age of the batch's oldest record when it was processed.
	Lag time.Duration
}

// Handle processes one batch. A record that cannot be decoded or read, or
// whose snapshot writes fail, is reported in BatchItemFailures (the mapping
// retries from the lowest); the rest of the batch is processed all the
// same. Only a failed record without a sequence number fails the whole
// invocation (stream.ErrUnidentified).
func (h *Handler) Handle(ctx context.Context, ev stream.Event) (events.DynamoDBEventResponse, error) {
	start := h.now()
	rep, failures := h.process(ctx, ev)
	resp, err := failures.Response()
	rep.Failed = failures.Len()
	elapsed := h.now().Sub(start)
	attrs := []any{
		"records", rep.Records, "changes", rep.Changes, "ignored", rep.Ignored,
		"snapshots_written", rep.Written, "snapshots_replayed", rep.Replayed, "records_failed", rep.Failed,
		"lag_ms", rep.Lag.Milliseconds(), "processing_time_ms", elapsed.Milliseconds(),
		emf.Group(MetricsNamespace, map[string]string{"FunctionName": h.FunctionName}, start,
			emf.Count("Records", rep.Records), emf.Count("RecordsFailed", rep.Failed),
			emf.Count("SnapshotsWritten", rep.Written), emf.Milliseconds("StreamLag", rep.Lag)),
	}
	if err != nil {
		h.Log.ErrorContext(ctx, "usage batch failed", append(attrs, "error", err.Error())...)
		return resp, err
	}
	h.Log.InfoContext(ctx, "usage batch processed", attrs...)
	return resp, nil
}

// process decodes the batch, applies its changes and returns the report
// and the failed records (logging each failure).
func (h *Handler) process(ctx context.Context, ev stream.Event) (report, *stream.Failures) {
	failures := &stream.Failures{}
	fail := func(seq string, err error) {
		failures.Add(seq)
		h.Log.WarnContext(ctx, "stream record not processed", "sequence_number", seq, "error", err.Error())
	}
	rep := report{Records: len(ev.Records)}
	var recs []stream.Record
	var changes []Change
	for _, rc := range ev.Records {
		if rc.Err != nil {
			fail(rc.Change.SequenceNumber, rc.Err)
			continue
		}
		r, err := stream.Decode(rc.DynamoDBEventRecord)
		if err != nil {
			fail(rc.Change.SequenceNumber, err)
			continue
		}
		recs = append(recs, r)
		c, ok, err := ChangeOf(r)
		switch {
		case err != nil:
			fail(r.Seq, err)
		case ok:
			changes = append(changes, c)
		default:
			rep.Ignored++
		}
	}
	rep.Changes = len(changes)
	rep.Lag = stream.Lag(recs, h.now())
	out := h.Aggregator.Apply(ctx, changes)
	rep.Written, rep.Replayed = out.Written, out.Replayed
	for _, seq := range out.FailedSeqs {
		failures.Add(seq)
	}
	for _, err := range out.Errors {
		h.Log.WarnContext(ctx, "snapshot write failed", "error", err.Error())
	}
	return rep, failures
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
