package fnenv

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
)

// Main runs a Lambda function's main: JSON log lines through slog, the
// handler built once per execution environment from os.LookupEnv by build,
// then served by lambda.Start (handle picks the method to serve). An init
// failure is one log line naming the function, and exit status 1, which
// Lambda reports as an init error.
func Main[H any](name string, build func(context.Context, func(string) (string, bool)) (H, error), handle func(H) any) {
	slog.SetDefault(slog.New(lambdacontext.NewLogHandler()))
	h, err := build(context.Background(), os.LookupEnv)
	if err != nil {
		slog.Error(name+": init failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(handle(h))
}

// AWS loads the function's AWS configuration (awsenv: the SDK's own
// variables, endpoints included), its calls traced with X-Ray when tracing.
func AWS(ctx context.Context, tracing bool) (aws.Config, error) {
	cfg, err := awsenv.Load(ctx, awsenv.Options{})
	if err != nil {
		return cfg, err
	}
	if tracing {
		awsv2.AWSV2Instrumentor(&cfg.APIOptions)
	}
	return cfg, nil
}
