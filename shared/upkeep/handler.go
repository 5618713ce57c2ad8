package upkeep

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

// Handler serves the refill function: one stream batch in, the splits and
// merges it calls for out, every record whose bucket could not be handled
// reported as a batch item failure.
type Handler struct {
	Upkeep *Upkeep
	// Log receives one line per invocation (counts, stream lag, EMF
	// metrics), one per bucket grown or shrunk and one per failed record.
	Log *slog.Logger
	// Now is the clock of the lag (nil: time.Now).
	Now func() time.Time
	// FunctionName is the metrics' dimension.
	FunctionName string
}

// Handle processes one batch. A record that cannot be decoded, or whose
// bucket's split or merge failed, is reported in BatchItemFailures (the
// mapping retries from the lowest); the rest of the batch is processed all
// the same. Only a failed record without a sequence number fails the whole
// invocation (stream.ErrUnidentified).
func (h *Handler) Handle(ctx context.Context, ev stream.Event) (events.DynamoDBEventResponse, error) {
	start := h.now()
	failures := &stream.Failures{}
	fail := func(seq string, err error) {
		failures.Add(seq)
		h.Log.WarnContext(ctx, "stream record not processed", "sequence_number", seq, "error", err.Error())
	}
	var recs []stream.Record
	var changes []Change
	ignored := 0
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
		switch c, ok, err := ChangeOf(r); {
		case err != nil:
			fail(r.Seq, err)
		case ok:
			changes = append(changes, c)
		default:
			ignored++
		}
	}
	lag := stream.Lag(recs, start)
	res, failed, err := h.Upkeep.Apply(ctx, changes)
	for _, i := range failed {
		failures.Add(changes[i].Seq)
	}
	if err != nil {
		h.Log.WarnContext(ctx, "bucket upkeep failed", "records_failed", len(failed), "error", err.Error())
	}
	for _, d := range res.Done {
		h.Log.InfoContext(ctx, "bucket "+d.Op, "namespace", d.Bucket.Namespace, "entity_id", d.Bucket.Entity,
			"resource", d.Bucket.Resource, map[string]string{"grow": "splits", "shrink": "merges"}[d.Op], d.N)
	}
	resp, rerr := failures.Response()
	attrs := []any{
		"records", len(ev.Records), "changes", res.Changes, "ignored", ignored,
		"buckets_grown", res.Grown, "shards_split", res.Splits,
		"buckets_shrunk", res.Shrunk, "shards_merged", res.Merges,
		"records_failed", failures.Len(), "lag_ms", lag.Milliseconds(),
		"processing_time_ms", h.now().Sub(start).Milliseconds(),
		emf.Group(MetricsNamespace, map[string]string{"FunctionName": h.FunctionName}, start,
			emf.Count("Records", len(ev.Records)), emf.Count("RecordsFailed", failures.Len()),
			emf.Count("ShardsSplit", res.Splits), emf.Count("ShardsMerged", res.Merges),
			emf.Milliseconds("StreamLag", lag)),
	}
	if rerr != nil {
		h.Log.ErrorContext(ctx, "upkeep batch failed", append(attrs, "error", rerr.Error())...)
		return resp, rerr
	}
	h.Log.InfoContext(ctx, "upkeep batch processed", attrs...)
	return resp, nil
}

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}
