package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/archive"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// config is the function's environment contract. The SDK reads its own
// variables itself: AWS_REGION, credentials, and the endpoints
// (AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL;
// with a custom S3 endpoint the client uses path-style addressing).
type config struct {
	// Table is TABLE_NAME (required): the limiter's DynamoDB table.
	Table string
	// Bucket is ARCHIVE_BUCKET_NAME (required): the archive bucket.
	Bucket string
	// Retention is AUDIT_RETENTION_DAYS (optional, default 90, 1 to 3650):
	// events at least this old are archived, whatever their TTL.
	Retention time.Duration
	// Interval is the period of ARCHIVE_SCHEDULE (optional, default
	// "rate(1 hour)"): the EventBridge rate expression the function runs
	// on. Only rate(N minute[s]|hour[s]|day[s]) is accepted.
	Interval time.Duration
	// Tracing is AWS_XRAY_TRACING_ENABLED (optional, default false).
	Tracing bool
}

// Margin is how long before its TTL an event is due: three schedule
// periods, and never less than archive.DefaultMargin, so two missed runs
// (or a backlog larger than one run's time) still lose nothing.
func (c config) Margin() time.Duration { return max(archive.DefaultMargin, 3*c.Interval) }

// Environment variable names.
const (
	envTable     = "TABLE_NAME"
	envBucket    = "ARCHIVE_BUCKET_NAME"
	envRetention = "AUDIT_RETENTION_DAYS"
	envSchedule  = "ARCHIVE_SCHEDULE"
	envTracing   = "AWS_XRAY_TRACING_ENABLED"
)

const (
	defaultSchedule = "rate(1 hour)"
	maxRetention    = 3650
)

var (
	tableNameRe  = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	bucketNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	rateRe       = regexp.MustCompile(`^rate\(\s*([1-9][0-9]*)\s+(minute|minutes|hour|hours|day|days)\s*\)$`)
)

// loadConfig reads the configuration through lookup (os.LookupEnv in
// main). Every error names the variable at fault.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	c := config{Retention: store.DefaultAuditRetention}
	var errs []error

	switch c.Table = get(envTable); {
	case c.Table == "":
		errs = append(errs, fmt.Errorf("%s is required", envTable))
	case !tableNameRe.MatchString(c.Table):
		errs = append(errs, fmt.Errorf("%s=%q: want 3-255 letters, digits, '_', '-' or '.'", envTable, c.Table))
	}

	switch c.Bucket = get(envBucket); {
	case c.Bucket == "":
		errs = append(errs, fmt.Errorf("%s is required", envBucket))
	case !bucketNameRe.MatchString(c.Bucket):
		errs = append(errs, fmt.Errorf("%s=%q: want an S3 bucket name (3-63 lower-case letters, digits, '.' or '-')", envBucket, c.Bucket))
	}

	if v := get(envRetention); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxRetention {
			errs = append(errs, fmt.Errorf("%s=%q: want whole days from 1 to %d", envRetention, v, maxRetention))
		}
		c.Retention = time.Duration(n) * 24 * time.Hour
	}

	sched := get(envSchedule)
	if sched == "" {
		sched = defaultSchedule
	}
	d, err := parseRate(sched)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s=%q: %w", envSchedule, sched, err))
	}
	c.Interval = d

	if v := get(envTracing); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", envTracing, v))
		}
		c.Tracing = b
	}
	return c, errors.Join(errs...)
}

// parseRate reads an EventBridge rate expression.
func parseRate(s string) (time.Duration, error) {
	m := rateRe.FindStringSubmatch(s)
	if m == nil {
		return 0, errors.New("want a rate expression such as rate(1 hour) or rate(30 minutes)")
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n > 366*24*60 {
		return 0, errors.New("the rate is too long")
	}
	unit := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}[strings.TrimSuffix(m[2], "s")]
	d := time.Duration(n) * unit
	if d > 366*24*time.Hour {
		return 0, errors.New("want at most rate(366 days)")
	}
	return d, nil
}
