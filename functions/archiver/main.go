// Command archiver is the audit archiver Lambda: on a schedule (an
// EventBridge rule, see template.yaml) it moves audit events that are due
// from DynamoDB to S3 (package archive). main only wires: the environment
// (config.go), the AWS configuration, the archiver and the handler.
//
// Build the deployable bootstrap with `make lambda`; tests run it under
// shared/lambdarun against DynamoDB Local and an S3 server.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/zeroae/zae-limiter-go/shared/archive"
	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/fnenv"
)

func main() { fnenv.Main("archiver", newHandler, func(h *handler) any { return h.handle }) }

// newHandler builds the handler from the environment: the composition
// root, called once per execution environment.
func newHandler(ctx context.Context, lookup func(string) (string, bool)) (*handler, error) {
	cfg, err := loadConfig(lookup)
	if err != nil {
		return nil, err
	}
	awsCfg, err := fnenv.AWS(ctx, cfg.Tracing)
	if err != nil {
		return nil, err
	}
	a, err := archive.New(archive.Options{
		DB:     awsenv.NewDynamoDB(awsCfg),
		S3:     awsenv.NewS3(awsCfg),
		Table:  cfg.Table,
		Bucket: cfg.Bucket,
		Margin: cfg.Margin(),
	})
	if err != nil {
		return nil, err
	}
	return &handler{arch: a, cfg: cfg, function: lambdacontext.FunctionName}, nil
}
