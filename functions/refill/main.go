// Command refill is the bucket upkeep Lambda, the table stream's second
// reader: buckets refill by themselves (GCRA form, ADR-001), so it keeps
// them writable and small instead (package upkeep, ADR-026). It grows a hot
// bucket's shards before its writers run out of write budget, and merges a
// quiet sharded bucket back to one shard once its extra shards expire.
// main only wires: the environment (config.go), the AWS configuration and
// the handler.
//
// Build the deployable bootstrap with `make lambda`; run one event locally
// with `make invoke FN=refill EVENT=events/refill/hot.json`.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/fnenv"
	"github.com/zeroae/zae-limiter-go/shared/upkeep"
)

func main() { fnenv.Main("refill", newHandler, func(h *upkeep.Handler) any { return h.Handle }) }

// newHandler builds the handler from the environment: the composition
// root, called once per execution environment.
func newHandler(ctx context.Context, lookup func(string) (string, bool)) (*upkeep.Handler, error) {
	cfg, err := loadConfig(lookup)
	if err != nil {
		return nil, err
	}
	awsCfg, err := fnenv.AWS(ctx, cfg.Tracing)
	if err != nil {
		return nil, err
	}
	return &upkeep.Handler{
		Upkeep:       upkeep.New(upkeep.NewEngine(awsenv.NewDynamoDB(awsCfg), cfg.Table, nil), upkeep.Options{GrowAt: cfg.GrowAt}),
		Log:          slog.Default(),
		FunctionName: lambdacontext.FunctionName,
	}, nil
}
