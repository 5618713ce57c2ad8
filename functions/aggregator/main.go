// Command aggregator is the usage snapshot Lambda: it reads the table's
// stream (an event source mapping filtered to bucket items, with partial
// batch responses) and folds every bucket's consumption into hourly,
// daily and monthly usage snapshots, exactly once in effect (package
// usage, ADR-020). main only wires: the environment (config.go), the AWS
// configuration and the handler.
//
// Build the deployable bootstrap with `make lambda`; run one event locally
// with `make invoke FN=aggregator EVENT=events/aggregator/batch.json`.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/fnenv"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func main() { fnenv.Main("aggregator", newHandler, func(h *usage.Handler) any { return h.Handle }) }

// newHandler builds the handler from the environment: the composition
// root, called once per execution environment.
func newHandler(ctx context.Context, lookup func(string) (string, bool)) (*usage.Handler, error) {
	cfg, err := loadConfig(lookup)
	if err != nil {
		return nil, err
	}
	awsCfg, err := fnenv.AWS(ctx, cfg.Tracing)
	if err != nil {
		return nil, err
	}
	return &usage.Handler{
		Aggregator: &usage.Aggregator{
			DB:        awsenv.NewDynamoDB(awsCfg),
			Table:     cfg.Table,
			Windows:   cfg.Windows,
			Retention: cfg.Retention,
		},
		Log:          slog.Default(),
		FunctionName: lambdacontext.FunctionName,
	}, nil
}
