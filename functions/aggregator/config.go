package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// config is the function's environment contract. The SDK reads its own
// variables (AWS_REGION, credentials, AWS_ENDPOINT_URL_DYNAMODB, ...) itself.
type config struct {
	// Table is TABLE_NAME (required): the limiter's DynamoDB table, where the
	// snapshots are written.
	Table string
	// Windows is SNAPSHOT_WINDOWS (optional, default "hourly,daily"): the
	// comma-separated snapshot windows, each of hourly, daily and monthly.
	Windows []usage.Window
	// Retention is SNAPSHOT_TTL_DAYS (optional, default 90): how many days a
	// snapshot is kept after its window ends, 0 to 3650 (0 keeps it forever).
	Retention time.Duration
	// Tracing is AWS_XRAY_TRACING_ENABLED (optional, default false): trace
	// the DynamoDB calls with X-Ray (the template sets it with EnableTracing).
	Tracing bool
}

// Environment variable names.
const (
	envTable     = "TABLE_NAME"
	envWindows   = "SNAPSHOT_WINDOWS"
	envRetention = "SNAPSHOT_TTL_DAYS"
	envTracing   = "AWS_XRAY_TRACING_ENABLED"
)

// Defaults and bounds.
const (
	defaultRetentionDays = 90
	maxRetentionDays     = 3650
)

var tableNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// loadConfig reads the configuration through lookup (os.LookupEnv in main).
// Every error names the variable at fault.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	c := config{Windows: usage.DefaultWindows, Retention: days(defaultRetentionDays)}
	var errs []error
	switch c.Table = get(envTable); {
	case c.Table == "":
		errs = append(errs, fmt.Errorf("%s is required", envTable))
	case !tableNameRe.MatchString(c.Table):
		errs = append(errs, fmt.Errorf("%s=%q: want 3-255 letters, digits, '_', '-' or '.'", envTable, c.Table))
	}
	if v := get(envWindows); v != "" {
		ws, err := usage.ParseWindows(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envWindows, v, err))
		}
		c.Windows = ws
	}
	if v := get(envRetention); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxRetentionDays {
			errs = append(errs, fmt.Errorf("%s=%q: want whole days from 0 (keep forever) to %d", envRetention, v, maxRetentionDays))
		}
		c.Retention = days(n)
	}
	if v := get(envTracing); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", envTracing, v))
		}
		c.Tracing = b
	}
	return c, errors.Join(errs...)
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
