// Command acquire is the acquire Lambda: the HTTP API of package api behind a
// Function URL (payload 2.0, invoke mode BUFFERED). main only wires: the
// environment (config.go), the AWS configuration, the store and the handler.
//
// Build the deployable bootstrap with
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' \
//	    -o dist/acquire/bootstrap ./functions/acquire
//
// or `make lambda`; run it locally with `make invoke FN=acquire EVENT=...`.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/funcurl"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func main() {
	slog.SetDefault(slog.New(lambdacontext.NewLogHandler()))
	h, err := newHandler(context.Background(), os.LookupEnv)
	if err != nil {
		// Lambda reports the exit as an init failure, with this line in the log.
		slog.Error("acquire: init failed", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(funcurl.Handler(h))
}

// newHandler builds the API from the environment: the composition root,
// called once per execution environment.
func newHandler(ctx context.Context, lookup func(string) (string, bool)) (http.Handler, error) {
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
	keys, err := leaseKeys(ctx, cfg, awsCfg, lookup)
	if err != nil {
		return nil, err
	}
	db := awsenv.NewDynamoDB(awsCfg)
	return api.New(api.Options{
		Store:            store.New(db, store.Options{Table: cfg.Table, CacheTTL: store.CacheTTLSetting(cfg.ConfigCacheTTL)}),
		DB:               db,
		Table:            cfg.Table,
		DefaultNamespace: cfg.DefaultNamespace,
		Keys:             keys,
		LeaseTTL:         cfg.LeaseTTL,
		Timeout:          cfg.RequestTimeout,
		Limiter:          limiter.Options{NoDenialCache: !cfg.DenialCache},
	}), nil
}

// leaseKeys returns the lease-signing keys from the configured source:
// LEASE_KEYS itself, an SSM parameter (decrypted when it is a SecureString)
// or a Secrets Manager secret.
func leaseKeys(ctx context.Context, c config, cfg aws.Config, lookup func(string) (string, bool)) ([][]byte, error) {
	read, env, id := getParameter, envLeaseKeysParam, c.LeaseKeysParameter
	switch {
	case c.LeaseKeysSecret != "":
		read, env, id = getSecret, envLeaseKeysSecret, c.LeaseKeysSecret
	case c.LeaseKeysParameter == "":
		return c.LeaseKeys, nil
	}
	v, err := read(ctx, cfg, lookup, id)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: read the keys: %w", env, id, err)
	}
	keys, err := parseKeys(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", env, id, err)
	}
	return keys, nil
}
