package client

import (
	"errors"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Option configures a Client built by New.
type Option func(*settings) error

// settings are the collected options; zero values mean the documented
// defaults.
type settings struct {
	token        string
	awsCfg       *aws.Config
	defaultCreds bool
	httpClient   *http.Client
	namespace    string
	retrySet     bool
	maxRetries   int
	baseDelay    time.Duration
	userAgent    string
}

// Defaults of the optional knobs.
const (
	// DefaultMaxRetries is the number of retries after the first attempt.
	DefaultMaxRetries = 3
	// DefaultRetryBase is the backoff before the first retry (before jitter);
	// it doubles per retry up to MaxRetryDelay.
	DefaultRetryBase = 100 * time.Millisecond
	// MaxRetryDelay caps one backoff (before jitter).
	MaxRetryDelay = 5 * time.Second
	// DefaultTimeout is the timeout of the default HTTP client (when
	// WithHTTPClient is not given). Use the context for per-call deadlines.
	DefaultTimeout = 30 * time.Second
	// DefaultUserAgent is the User-Agent sent unless WithUserAgent is given.
	DefaultUserAgent = "zae-limiter-go-client/1"
)

// WithBearerToken sends "Authorization: Bearer <token>" on every request,
// for `zae-limiter serve --token`. It cannot be combined with SigV4.
func WithBearerToken(token string) Option {
	return func(s *settings) error {
		if token == "" {
			return errors.New("client: empty bearer token")
		}
		s.token = token
		return nil
	}
}

// WithSigV4 signs every request with AWS Signature Version 4 for service
// "lambda", using cfg.Credentials, for a Function URL with AuthType AWS_IAM.
// The region comes from the Function URL's host
// (<id>.lambda-url.<region>.on.aws) when it names one, else cfg.Region.
func WithSigV4(cfg aws.Config) Option {
	return func(s *settings) error {
		if cfg.Credentials == nil {
			return errors.New("client: sigv4: aws.Config has no credentials")
		}
		c := cfg.Copy()
		s.awsCfg = &c
		return nil
	}
}

// WithDefaultCredentials is WithSigV4 with the SDK's default configuration
// (environment, shared config files, SSO, container and instance roles),
// loaded once by New, for https URLs. An http:// URL is sent unsigned and
// the configuration is not loaded: Function URLs are served over https
// only, so an http:// URL is a local `zae-limiter serve` (or a test
// server), which checks no signature. One program can so pass
// WithDefaultCredentials for both a deployed Function URL and a local
// serve, with no region or credentials configured for the latter. Over
// https the region comes from the Function URL's host, else the
// configuration; with neither, New fails.
func WithDefaultCredentials() Option {
	return func(s *settings) error {
		s.defaultCreds = true
		return nil
	}
}

// WithHTTPClient sends requests with hc instead of a default client with a
// DefaultTimeout timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return errors.New("client: nil http client")
		}
		s.httpClient = hc
		return nil
	}
}

// WithNamespace names the limiter namespace of acquires and availability
// reads (the server's default namespace when not given). Lease calls need
// none: the lease token names its namespace.
func WithNamespace(ns string) Option {
	return func(s *settings) error {
		s.namespace = ns
		return nil
	}
}

// WithRetry sets the number of retries after the first attempt (0 turns
// retries off) and the backoff before the first retry, which doubles per
// retry up to MaxRetryDelay; each wait is drawn uniformly from [0, backoff]
// (full jitter). Which requests are retried is fixed by the package rules
// (see the package documentation), not by this option.
func WithRetry(maxRetries int, base time.Duration) Option {
	return func(s *settings) error {
		if maxRetries < 0 {
			return errors.New("client: negative max retries")
		}
		if base < 0 {
			return errors.New("client: negative retry base")
		}
		s.retrySet = true
		s.maxRetries = maxRetries
		s.baseDelay = base
		return nil
	}
}

// WithUserAgent sets the User-Agent header (DefaultUserAgent otherwise).
func WithUserAgent(ua string) Option {
	return func(s *settings) error {
		s.userAgent = ua
		return nil
	}
}
