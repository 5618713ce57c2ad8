package main

import (
	"fmt"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/fnenv"
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

// loadConfig reads the configuration through lookup (os.LookupEnv in main).
// Every error names the variable at fault.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	r := fnenv.New(lookup)
	c := config{Table: r.TableName(envTable), Windows: usage.DefaultWindows}
	if v := r.Get(envWindows); v != "" {
		ws, err := usage.ParseWindows(v)
		if err != nil {
			r.Fail(envWindows, v, err.Error())
		}
		c.Windows = ws
	}
	c.Retention = days(r.Int(envRetention, defaultRetentionDays, 0, maxRetentionDays,
		fmt.Sprintf("whole days from 0 (keep forever) to %d", maxRetentionDays)))
	c.Tracing = r.Bool(envTracing, false)
	return c, r.Err()
}

func days(n int) time.Duration { return time.Duration(n) * 24 * time.Hour }
