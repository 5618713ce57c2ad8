// Package awsenv builds the AWS SDK configuration shared by the CLI, the
// functions and the tests, with the endpoint and credential rules of the
// local stack:
//
//   - An explicit endpoint URL (the CLI's --endpoint-url) is the endpoint of
//     every service that has none of its own: it becomes aws.Config's
//     BaseEndpoint. The SDK's standard AWS_ENDPOINT_URL_<SERVICE> variables
//     (and the shared config file's per-service endpoint_url) still give a
//     service its own endpoint; each service client applies them itself when
//     it is built from the config. AWS_ENDPOINT_URL is the SDK's own global
//     default, used when no endpoint URL is passed.
//   - With any custom endpoint the config is "local": IMDS is disabled (so
//     credential lookup never waits on a metadata service), dummy static
//     credentials are used when the default chain finds none, and the region
//     defaults to us-east-1. Local servers check neither.
//
// Load never calls STS itself; whether to ask STS for the caller's identity
// is the caller's decision (see IsLocal). With a custom endpoint, profiles
// that assume a role (or a web identity) do not call STS either: they find
// no credentials and the dummy ones are used.
package awsenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
)

// Defaults used against a custom endpoint when nothing else is configured.
const (
	LocalRegion       = "us-east-1"
	DummyAccessKeyID  = "dummy"
	DummySecretKey    = "dummy"
	credentialTimeout = 3 * time.Second
)

// Options are the command-line overrides. Zero values mean "not given".
type Options struct {
	// Region overrides every other region source.
	Region string
	// EndpointURL is the endpoint of every service without its own.
	EndpointURL string
	// Logger receives the SDK's own log lines (such as its warning when IMDS
	// falls back to IMDSv1); nil keeps the SDK's default, which writes to
	// stderr. A CLI passes logging.Nop{} so that stderr holds only its own
	// one-line errors.
	Logger logging.Logger
}

// Load builds the SDK configuration from the default sources (environment,
// shared config files) and the options, applying the local-endpoint rules of
// the package documentation.
func Load(ctx context.Context, o Options) (aws.Config, error) {
	if o.EndpointURL != "" {
		if err := checkEndpoint(o.EndpointURL); err != nil {
			return aws.Config{}, err
		}
	}
	// The environment is checked before loading so that IMDS is off from the
	// start; endpoints set only in the shared config file are found after
	// loading, and the config is then rebuilt with IMDS off.
	custom := o.EndpointURL != "" || envEndpointSet()
	cfg, err := load(ctx, o, custom)
	if err != nil {
		return aws.Config{}, err
	}
	if !custom && IsLocal(cfg) {
		custom = true
		if cfg, err = load(ctx, o, true); err != nil {
			return aws.Config{}, err
		}
	}
	if !custom {
		return cfg, nil
	}
	if !hasCredentials(ctx, cfg.Credentials) {
		cfg.Credentials = aws.NewCredentialsCache(
			credentials.NewStaticCredentialsProvider(DummyAccessKeyID, DummySecretKey, ""))
	}
	if cfg.Region == "" {
		cfg.Region = LocalRegion
	}
	return cfg, nil
}

func load(ctx context.Context, o Options, custom bool) (aws.Config, error) {
	var lo []func(*config.LoadOptions) error
	if o.Region != "" {
		lo = append(lo, config.WithRegion(o.Region))
	}
	if o.Logger != nil {
		lo = append(lo, config.WithLogger(o.Logger))
	}
	if custom {
		lo = append(lo,
			config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
			config.WithAssumeRoleCredentialOptions(func(o *stscreds.AssumeRoleOptions) { o.Client = noSTS{} }),
			config.WithWebIdentityRoleCredentialOptions(func(o *stscreds.WebIdentityRoleOptions) { o.Client = noSTS{} }),
		)
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if o.EndpointURL != "" {
		// Set after loading, not with config.WithBaseEndpoint: an in-code
		// base endpoint would also override every AWS_ENDPOINT_URL_<SERVICE>.
		// Set here it wins over AWS_ENDPOINT_URL (and over
		// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS, which concerns configured, not
		// passed, endpoints) while each service's own endpoint still wins.
		cfg.BaseEndpoint = aws.String(o.EndpointURL)
	}
	return cfg, nil
}

// noSTS stands in for STS while resolving credentials against a custom
// endpoint: a profile that assumes a role finds no credentials there (and
// the dummy ones are used) instead of calling AWS.
type noSTS struct{}

var errNoSTS = errors.New("awsenv: STS is not called with a custom endpoint")

func (noSTS) AssumeRole(context.Context, *sts.AssumeRoleInput, ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	return nil, errNoSTS
}

func (noSTS) AssumeRoleWithWebIdentity(context.Context, *sts.AssumeRoleWithWebIdentityInput, ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return nil, errNoSTS
}

// envEndpointSet reports whether the environment names a custom endpoint for
// every service or for DynamoDB, as the SDK would honour it.
func envEndpointSet() bool {
	if v := strings.ToLower(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")); v == "true" {
		return false
	}
	return os.Getenv("AWS_ENDPOINT_URL") != "" || os.Getenv("AWS_ENDPOINT_URL_DYNAMODB") != ""
}

// hasCredentials reports whether p yields usable keys within a short time.
func hasCredentials(ctx context.Context, p aws.CredentialsProvider) bool {
	if p == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, credentialTimeout)
	defer cancel()
	c, err := p.Retrieve(ctx)
	return err == nil && c.HasKeys()
}

func checkEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid endpoint URL %q: want http(s)://host[:port]", s)
	}
	return nil
}

// IsLocal reports whether cfg talks to a custom endpoint rather than AWS: a
// base endpoint for every service, or one of DynamoDB's own. Callers use it to
// skip calls a stand-in server cannot answer (such as STS GetCallerIdentity).
func IsLocal(cfg aws.Config) bool {
	return cfg.BaseEndpoint != nil || DynamoDBEndpoint(cfg) != ""
}

// DynamoDBEndpoint is the custom endpoint a DynamoDB client built from cfg
// uses, or "" when it uses AWS's own.
func DynamoDBEndpoint(cfg aws.Config) string {
	ep := dynamodb.NewFromConfig(cfg).Options().BaseEndpoint
	if ep == nil {
		return ""
	}
	return *ep
}

// IsLoopback reports whether endpoint is an http(s) URL whose host is a
// loopback address or localhost.
func IsLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	h := strings.ToLower(u.Hostname())
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// DynamoDBOptions is a dynamodb client option: when the client's endpoint is
// custom it turns off response checksum validation, because DynamoDB Local
// omits X-Amz-Crc32 on error responses (aws/aws-sdk-go-v2#3545). Pass it
// after any option that sets BaseEndpoint.
func DynamoDBOptions(o *dynamodb.Options) {
	if o.BaseEndpoint != nil {
		o.DisableValidateResponseChecksum = true
	}
}

// NewDynamoDB returns a DynamoDB client for cfg with DynamoDBOptions applied
// after optFns.
func NewDynamoDB(cfg aws.Config, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	opts := append(append([]func(*dynamodb.Options){}, optFns...), DynamoDBOptions)
	return dynamodb.NewFromConfig(cfg, opts...)
}

// S3Options is an s3 client option for a custom endpoint (a local S3
// server such as versitygw or gofakes3, or any S3-compatible store): it
// turns on path-style addressing, which those servers need (virtual-hosted
// style would put the bucket in the host name), and silences the SDK's log
// line about responses that carry no checksum. Pass it after any option
// that sets BaseEndpoint. On AWS's own endpoint it changes nothing.
func S3Options(o *s3.Options) {
	if o.BaseEndpoint != nil {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	}
}

// NewS3 returns an S3 client for cfg with S3Options applied after optFns.
// Its endpoint comes from cfg (the CLI's --endpoint-url) or the SDK's own
// variables (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL).
func NewS3(cfg aws.Config, optFns ...func(*s3.Options)) *s3.Client {
	opts := append(append([]func(*s3.Options){}, optFns...), S3Options)
	return s3.NewFromConfig(cfg, opts...)
}

// S3Endpoint is the custom endpoint an S3 client built from cfg uses, or ""
// when it uses AWS's own.
func S3Endpoint(cfg aws.Config) string {
	ep := s3.NewFromConfig(cfg).Options().BaseEndpoint
	if ep == nil {
		return ""
	}
	return *ep
}
