package main

import (
	"github.com/zeroae/zae-limiter-go/shared/fnenv"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// config is the function's environment contract. The SDK reads its own
// variables (AWS_REGION, credentials, AWS_ENDPOINT_URL_DYNAMODB, ...) itself.
type config struct {
	// Table is TABLE_NAME (required): the limiter's DynamoDB table.
	Table string
	// GrowAt is GROW_AT_PERCENT (optional, default 50, 1 to 100) of a
	// shard's write budget (a thousand writes a second) that may be booked
	// ahead before its bucket grows, in millitokens of the budget.
	GrowAt int64
	// Tracing is AWS_XRAY_TRACING_ENABLED (optional, default false).
	Tracing bool
}

// Environment variable names.
const (
	envTable   = "TABLE_NAME"
	envGrowAt  = "GROW_AT_PERCENT"
	envTracing = "AWS_XRAY_TRACING_ENABLED"
)

const defaultGrowAtPercent = 50

// loadConfig reads the configuration through lookup (os.LookupEnv in main).
// Every error names the variable at fault.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	r := fnenv.New(lookup)
	pct := r.Int(envGrowAt, defaultGrowAtPercent, 1, 100, "a whole percentage of a shard's write budget from 1 to 100")
	return config{
		Table:   r.TableName(envTable),
		GrowAt:  shard.BudgetParams.Capacity * int64(pct) / 100,
		Tracing: r.Bool(envTracing, false),
	}, r.Err()
}
