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
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/upkeep"
)

func main() {
	slog.SetDefault(slog.New(lambdacontext.NewLogHandler()))
	h, err := newHandler(context.Background(), os.LookupEnv)
	if err != nil {
		// Lambda reports the exit as an init failure, with this line in the log.
		slog.Error("refill: init failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

// newHandler builds the handler from the environment: the composition
// root, called once per execution environment.
func newHandler(ctx context.Context, lookup func(string) (string, bool)) (*upkeep.Handler, error) {
	cfg, err := loadConfig(lookup)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsenv.Load(ctx, awsenv.Options{})
	if err != nil {
		return nil, err
	}
	if cfg.Tracing {
		awsv2.AWSV2Instrumentor(&awsCfg.APIOptions)
	}
	return &upkeep.Handler{
		Upkeep:       upkeep.New(upkeep.NewEngine(awsenv.NewDynamoDB(awsCfg), cfg.Table, nil), upkeep.Options{GrowAt: cfg.GrowAt}),
		Log:          slog.Default(),
		FunctionName: lambdacontext.FunctionName,
	}, nil
}
