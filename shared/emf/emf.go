// Package emf renders CloudWatch embedded metric format (EMF) fields for a
// structured log line: a Lambda function that logs JSON (LoggingConfig
// LogFormat JSON, slog through lambdacontext) gets CloudWatch metrics from
// its summary line without calling CloudWatch.
//
//	log.InfoContext(ctx, "batch done", "records", n,
//	    emf.Group("ZaeLimiter", map[string]string{"FunctionName": fn}, time.Now(),
//	        emf.Count("Records", n), emf.Milliseconds("StreamLag", lag)))
//
// The line then holds "_aws" (the metric directive), one field per
// dimension and one per metric, at its top level, as EMF requires.
package emf

import (
	"log/slog"
	"sort"
	"time"
)

// Metric is one value of a metric.
type Metric struct {
	Name string
	// Unit is a CloudWatch unit: Count, Milliseconds, Bytes, ...
	Unit  string
	Value float64
}

// Count is a Count metric.
func Count(name string, n int) Metric { return Metric{Name: name, Unit: "Count", Value: float64(n)} }

// Milliseconds is a duration metric in milliseconds.
func Milliseconds(name string, d time.Duration) Metric {
	return Metric{Name: name, Unit: "Milliseconds", Value: float64(d.Milliseconds())}
}

// Group is the EMF fields of metrics in namespace with dimensions dims (one
// dimension set holding every key), stamped at now: an inline slog group
// to pass among a log line's attributes.
func Group(namespace string, dims map[string]string, now time.Time, metrics ...Metric) slog.Attr {
	keys := make([]string, 0, len(dims))
	for k := range dims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	defs := make([]map[string]string, len(metrics))
	for i, m := range metrics {
		defs[i] = map[string]string{"Name": m.Name, "Unit": m.Unit}
	}
	attrs := []any{slog.Any("_aws", map[string]any{
		"Timestamp": now.UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  namespace,
			"Dimensions": [][]string{keys},
			"Metrics":    defs,
		}},
	})}
	for _, k := range keys {
		attrs = append(attrs, slog.String(k, dims[k]))
	}
	for _, m := range metrics {
		attrs = append(attrs, slog.Float64(m.Name, m.Value))
	}
	return slog.Group("", attrs...)
}
