package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// config is the function's environment contract. The SDK reads its own
// variables (AWS_REGION, credentials, AWS_ENDPOINT_URL_DYNAMODB, ...) itself.
type config struct {
	// Table is TABLE_NAME (required): the limiter's DynamoDB table.
	Table string
	// DefaultNamespace is DEFAULT_NAMESPACE (optional, default "default"):
	// the namespace of requests that name none.
	DefaultNamespace string
	// LeaseKeys is LEASE_KEYS: comma-separated lease-signing keys, each at
	// least MinKeyLen bytes of text (e.g. `openssl rand -base64 32`); the
	// first signs, every one verifies (rotation: prepend the new key, drop
	// the old one after LEASE_TTL).
	LeaseKeys [][]byte
	// LeaseKeysParameter is LEASE_KEYS_PARAMETER: the name of an SSM
	// parameter (String or SecureString) holding the same comma-separated
	// list, read once at init. A Secrets Manager secret is read through SSM
	// as /aws/reference/secretsmanager/<secret-id>.
	LeaseKeysParameter string
	// LeaseKeysSecret is LEASE_KEYS_SECRET: the ARN (or name) of a Secrets
	// Manager secret holding the same list, read once at init; the stack
	// creates one (LeaseKeysSecret) unless told to use a parameter. Exactly
	// one of LEASE_KEYS, LEASE_KEYS_PARAMETER and LEASE_KEYS_SECRET is
	// required: every instance must verify the tokens the others sign.
	LeaseKeysSecret string
	// LeaseKeysRevision is LEASE_KEYS_REVISION (optional): a label with no
	// effect on the code. The template sets it from LeaseKeysRevision so that
	// changing it replaces every instance, which reads the keys again (a key
	// rotation, docs/production.md).
	LeaseKeysRevision string
	// LeaseTTL is LEASE_TTL (optional, default api.DefaultLeaseTTL): how long
	// a lease token is valid, a Go duration ("15m") or whole seconds ("900"),
	// between 1 s and 24 h.
	LeaseTTL time.Duration
	// ConfigCacheTTL is CONFIG_CACHE_TTL (optional, default
	// store.DefaultCacheTTL): how long an instance caches the limits
	// configuration, entities and namespaces it read, a Go duration ("30s")
	// or whole seconds ("30"), from 0 (no cache: every acquire reads its
	// configuration) to store.MaxCacheTTL. A limit change reaches every
	// instance within it.
	ConfigCacheTTL time.Duration
	// RequestTimeout is REQUEST_TIMEOUT (optional, default
	// limiter.DefaultTimeout, 5 s): the most a request may take, namespace
	// and config reads included, a Go duration ("2s") or whole seconds ("5"),
	// from 100 ms to 60 s; keep it below the function's timeout. Past it an
	// acquire is unavailable and the namespace's on_unavailable decides.
	RequestTimeout time.Duration
	// DenialCache is DENIAL_CACHE (optional, default true): deny a request
	// the bucket was seen unable to take without a DynamoDB request, until
	// refill makes it fit (false writes every denial).
	DenialCache bool
	// Tracing is AWS_XRAY_TRACING_ENABLED (optional, default false): trace
	// the DynamoDB calls with X-Ray. The template sets it where the function
	// has Tracing: Active; unset (as in local runs) nothing is instrumented,
	// so no X-Ray context or daemon is ever needed.
	Tracing bool
}

// Environment variable names.
const (
	envTable            = "TABLE_NAME"
	envDefaultNamespace = "DEFAULT_NAMESPACE"
	envLeaseKeys        = "LEASE_KEYS"
	envLeaseKeysParam   = "LEASE_KEYS_PARAMETER"
	envLeaseKeysSecret  = "LEASE_KEYS_SECRET"
	envLeaseKeysRev     = "LEASE_KEYS_REVISION"
	envLeaseTTL         = "LEASE_TTL"
	envConfigCacheTTL   = "CONFIG_CACHE_TTL"
	envRequestTimeout   = "REQUEST_TIMEOUT"
	envDenialCache      = "DENIAL_CACHE"
	envTracing          = "AWS_XRAY_TRACING_ENABLED"
)

// MinKeyLen is the shortest lease-signing key accepted (bytes).
const MinKeyLen = 32

const maxLeaseTTL = 24 * time.Hour

const maxRequestTimeout = time.Minute

var tableNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// loadConfig reads the configuration through lookup (os.LookupEnv in main).
// Every error names the variable at fault; key values are never echoed.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	c := config{DefaultNamespace: api.DefaultNamespace, LeaseTTL: api.DefaultLeaseTTL, ConfigCacheTTL: store.DefaultCacheTTL,
		RequestTimeout: limiter.DefaultTimeout, DenialCache: true}
	var errs []error

	switch c.Table = get(envTable); {
	case c.Table == "":
		errs = append(errs, fmt.Errorf("%s is required", envTable))
	case !tableNameRe.MatchString(c.Table):
		errs = append(errs, fmt.Errorf("%s=%q: want 3-255 letters, digits, '_', '-' or '.'", envTable, c.Table))
	}

	if v := get(envDefaultNamespace); v != "" {
		c.DefaultNamespace = v
		var ve *limits.ValidationError
		if err := limits.ValidateNamespaceName(v); errors.As(err, &ve) {
			errs = append(errs, fmt.Errorf("%s=%q: %s", envDefaultNamespace, v, ve.Reason))
		} else if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envDefaultNamespace, err))
		}
	}

	keys, param, secret := get(envLeaseKeys), get(envLeaseKeysParam), get(envLeaseKeysSecret)
	var set []string
	for _, kv := range [][2]string{{envLeaseKeys, keys}, {envLeaseKeysParam, param}, {envLeaseKeysSecret, secret}} {
		if kv[1] != "" {
			set = append(set, kv[0])
		}
	}
	switch {
	case len(set) > 1:
		errs = append(errs, fmt.Errorf("set one of %s, %s and %s, not %s",
			envLeaseKeys, envLeaseKeysParam, envLeaseKeysSecret, strings.Join(set, " and ")))
	case keys != "":
		k, err := parseKeys(keys)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", envLeaseKeys, err))
		}
		c.LeaseKeys = k
	case param != "":
		c.LeaseKeysParameter = param
	case secret != "":
		c.LeaseKeysSecret = secret
	default:
		errs = append(errs, fmt.Errorf("%s (or %s, or %s) is required: every instance must share the lease-signing keys",
			envLeaseKeys, envLeaseKeysParam, envLeaseKeysSecret))
	}
	c.LeaseKeysRevision = get(envLeaseKeysRev)

	if v := get(envLeaseTTL); v != "" {
		d, err := parseDuration(v, time.Second, maxLeaseTTL)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envLeaseTTL, v, err))
		}
		c.LeaseTTL = d
	}

	if v := get(envConfigCacheTTL); v != "" {
		d, err := parseDuration(v, 0, store.MaxCacheTTL)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envConfigCacheTTL, v, err))
		}
		c.ConfigCacheTTL = d
	}

	if v := get(envRequestTimeout); v != "" {
		d, err := parseDuration(v, 100*time.Millisecond, maxRequestTimeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", envRequestTimeout, v, err))
		}
		c.RequestTimeout = d
	}

	if v := get(envDenialCache); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", envDenialCache, v))
		}
		c.DenialCache = b
	}

	if v := get(envTracing); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", envTracing, v))
		}
		c.Tracing = b
	}
	return c, errors.Join(errs...)
}

// parseKeys splits a comma-separated key list (the value of LEASE_KEYS or of
// the LEASE_KEYS_PARAMETER parameter).
func parseKeys(s string) ([][]byte, error) {
	var out [][]byte
	for i, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("key %d is %d bytes; want at least %d (e.g. `openssl rand -base64 32`)", i+1, len(k), MinKeyLen)
		}
		out = append(out, []byte(k))
	}
	return out, nil
}

// parseDuration reads a Go duration ("15m") or whole seconds ("900")
// between lo and hi.
func parseDuration(s string, lo, hi time.Duration) (time.Duration, error) {
	bounds := fmt.Errorf("want between %s and %s", short(lo), short(hi))
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseInt(s, 10, 64)
		if nerr != nil {
			return 0, errors.New(`want a duration such as "15m" or whole seconds`)
		}
		if n < 0 || n > int64(hi/time.Second) {
			return 0, bounds
		}
		d = time.Duration(n) * time.Second
	}
	if d < lo || d > hi {
		return 0, bounds
	}
	return d, nil
}

// short renders whole hours and minutes without trailing zero units
// ("24h", not "24h0m0s").
func short(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}
