package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/shared/archive"
)

// metricsNamespace is the CloudWatch namespace of the embedded metrics.
const metricsNamespace = "ZaeLimiter"

type handler struct {
	arch     *archive.Archiver
	cfg      config
	function string
}

// result is the invocation's answer.
type result struct {
	Archived   int      `json:"archived"`
	Objects    []string `json:"objects"`
	Recovered  int      `json:"recovered"`
	Incomplete bool     `json:"incomplete"`
	Checkpoint string   `json:"checkpoint,omitempty"`
	// Skipped is "busy" when another run held the lease (not an error: that
	// run archives what this one would have).
	Skipped string `json:"skipped,omitempty"`
}

// handle runs one archival for a scheduled event (any event starts one:
// a manual invoke with {} does the same). It logs one summary line,
// carrying CloudWatch embedded metrics, and fails the invocation when the
// run failed, so the function's Errors alarm sees it.
func (h *handler) handle(ctx context.Context, ev events.EventBridgeEvent) (result, error) {
	start := time.Now()
	req := archive.Request{OlderThan: h.cfg.Retention}
	if dl, ok := ctx.Deadline(); ok {
		req.Deadline = dl
	}
	rep, err := h.arch.Run(ctx, req)
	res := result{Archived: rep.Archived, Objects: rep.Objects, Recovered: rep.Recovered,
		Incomplete: rep.Incomplete, Checkpoint: rep.Checkpoint}
	if res.Objects == nil {
		res.Objects = []string{}
	}
	attrs := []any{
		"bucket", h.arch.Bucket(), "events_archived", rep.Archived, "s3_objects_created", len(rep.Objects),
		"events_recovered", rep.Recovered, "incomplete", rep.Incomplete, "checkpoint", rep.Checkpoint,
		"processing_time_ms", time.Since(start).Milliseconds(), "schedule_time", ev.Time,
	}
	var busy *archive.BusyError
	switch {
	case errors.As(err, &busy):
		res.Skipped = "busy"
		slog.InfoContext(ctx, "archive run skipped: another run holds the lease",
			append(attrs, "lease_owner", busy.Owner, "lease_until", busy.Until)...)
		return res, nil
	case err != nil:
		slog.ErrorContext(ctx, "archive run failed", append(attrs, "error", err.Error(), h.metrics(rep, 1))...)
		return res, err
	}
	slog.InfoContext(ctx, "archive run completed", append(attrs, h.metrics(rep, 0))...)
	return res, nil
}

// metrics is the CloudWatch embedded metric format (EMF) of a run: with the
// JSON log format, CloudWatch Logs turns the summary line into metrics.
func (h *handler) metrics(rep archive.Report, failed int) slog.Attr {
	return slog.Group("",
		slog.Any("_aws", map[string]any{
			"Timestamp": time.Now().UnixMilli(),
			"CloudWatchMetrics": []any{map[string]any{
				"Namespace":  metricsNamespace,
				"Dimensions": [][]string{{"FunctionName"}},
				"Metrics": []any{
					map[string]any{"Name": "EventsArchived", "Unit": "Count"},
					map[string]any{"Name": "ObjectsWritten", "Unit": "Count"},
					map[string]any{"Name": "ArchiveRunFailed", "Unit": "Count"},
				},
			}},
		}),
		slog.String("FunctionName", h.function),
		slog.Int("EventsArchived", rep.Archived),
		slog.Int("ObjectsWritten", len(rep.Objects)),
		slog.Int("ArchiveRunFailed", failed),
	)
}
