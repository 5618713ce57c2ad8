// Command provisioner is the limits provisioner Lambda: declarative limits
// (package provision) for the CLI event that `zae-limiter limits
// plan|apply|diff` sends and for the CloudFormation custom resource
// Custom::ZaeLimiterLimits. main only wires: the environment (config.go),
// the AWS configuration and the handler.
//
// Build the deployable bootstrap with `make lambda`; run one event locally
// with `make invoke FN=provisioner EVENT=events/provisioner/plan.json`.
package main

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/fnenv"
	"github.com/zeroae/zae-limiter-go/shared/provision"
)

func main() {
	fnenv.Main("provisioner", newHandler, func(h *provision.Handler) any { return h.Handle })
}

// newHandler builds the handler from the environment: the composition root,
// called once per execution environment.
func newHandler(ctx context.Context, lookup func(string) (string, bool)) (*provision.Handler, error) {
	cfg, err := loadConfig(lookup)
	if err != nil {
		return nil, err
	}
	awsCfg, err := fnenv.AWS(ctx, cfg.Tracing)
	if err != nil {
		return nil, err
	}
	return &provision.Handler{
		Engine:      &provision.Engine{DB: awsenv.NewDynamoDB(awsCfg), Table: cfg.Table},
		Log:         slog.Default(),
		FunctionARN: invokedARN,
	}, nil
}

// invokedARN is the ARN the function was invoked by: the audit principal of
// CLI events that name none.
func invokedARN(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.InvokedFunctionArn
	}
	return ""
}
