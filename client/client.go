package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// doer sends one HTTP request; *http.Client is one. It is the test seam.
type doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Client calls one acquire API endpoint. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	hc         doer
	token      string
	signer     *sigv4 // nil unless SigV4 is on
	namespace  string
	maxRetries int
	baseDelay  time.Duration
	userAgent  string

	// jitter draws one wait from [0, d]; tests replace it.
	jitter func(d time.Duration) time.Duration
}

// New returns a client of the acquire API at rawURL: the Function URL
// (https://<id>.lambda-url.<region>.on.aws/) or the address of
// `zae-limiter serve` (http://127.0.0.1:8080). A path in rawURL is kept as
// a prefix of the API paths.
func New(rawURL string, opts ...Option) (*Client, error) {
	return newClient(rawURL, nil, opts...)
}

// newClient is New with the HTTP client injected (nil: WithHTTPClient's, else
// a default one).
func newClient(rawURL string, d doer, opts ...Option) (*Client, error) {
	var s settings
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: url %q: %w", rawURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: url %q: want http(s)://host[/prefix]", rawURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: url %q: no query or fragment allowed", rawURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""

	if d == nil {
		if s.httpClient != nil {
			d = s.httpClient
		} else {
			d = &http.Client{Timeout: DefaultTimeout}
		}
	}
	c := &Client{
		base:       u,
		hc:         d,
		token:      s.token,
		namespace:  s.namespace,
		maxRetries: DefaultMaxRetries,
		baseDelay:  DefaultRetryBase,
		userAgent:  DefaultUserAgent,
		jitter:     fullJitter,
	}
	if s.retrySet {
		c.maxRetries, c.baseDelay = s.maxRetries, s.baseDelay
	}
	if s.userAgent != "" {
		c.userAgent = s.userAgent
	}
	if s.defaultCreds && s.awsCfg == nil && u.Scheme == "https" {
		// New has no context; loading the default config reads the
		// environment and shared files, credentials are fetched lazily per
		// request with the request's context.
		cfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("client: load default aws config: %w", err)
		}
		s.awsCfg = &cfg
	}
	if s.awsCfg != nil {
		if s.token != "" {
			return nil, errors.New("client: bearer token and sigv4 both set; a request has one Authorization header")
		}
		sg, err := newSigV4(*s.awsCfg, u.Hostname())
		if err != nil {
			return nil, err
		}
		c.signer = sg
	}
	return c, nil
}

// Request is one acquire.
type Request struct {
	EntityID string
	Resource string
	// Consume names each limit and the amount to take (≥ 0).
	Consume map[string]int64
	// Limits, when given, override the stored limits for this call.
	Limits []wire.Limit
}

// Acquire takes req.Consume from every limit of the entity (and its parent
// when it cascades) at once, or takes nothing. A denial is a
// *RateLimitedError. Acquire is retried only when the request provably never
// left this process (see the package documentation).
func (c *Client) Acquire(ctx context.Context, req Request) (*Lease, error) {
	consume := req.Consume
	if consume == nil {
		consume = map[string]int64{}
	}
	body := wire.AcquireRequest{
		Namespace: c.namespace,
		EntityID:  req.EntityID,
		Resource:  req.Resource,
		Consume:   consume,
		Limits:    req.Limits,
	}
	res, err := c.post(ctx, wire.PathAcquire, body, retryUnsentOnly, false)
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return nil, res.err()
	}
	var out wire.AcquireResponse
	if err := res.decode(&out); err != nil {
		return nil, err
	}
	if out.Lease == "" {
		return nil, fmt.Errorf("client: POST %s: answer has no lease", wire.PathAcquire)
	}
	l := c.newLease(out.Lease)
	l.entityID, l.resource = out.EntityID, out.Resource
	l.consumed = out.Consumed
	l.limits = out.Limits
	l.degraded = out.Degraded
	l.shadow = out.ShadowViolations
	l.rateLimit, l.hasRateLimit = parseRateLimit(res.header)
	return l, nil
}

// Do acquires req, calls fn with the lease, then commits it when fn returns
// nil, or rolls it back when fn returns an error or panics (the panic goes
// on after the rollback). If fn itself committed or rolled back the lease,
// Do leaves it alone. The rollback runs even when ctx is already done (with
// its values, on a CleanupTimeout budget), since a cancelled ctx is a common
// reason for fn to fail. Do returns fn's error as is when the rollback
// succeeds, else both joined.
func (c *Client) Do(ctx context.Context, req Request, fn func(context.Context, *Lease) error) error {
	l, err := c.Acquire(ctx, req)
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if finished {
			return
		}
		// fn panicked (or called runtime.Goexit): roll back and let the
		// panic continue with its original stack.
		_ = l.rollbackDetached(ctx)
	}()
	ferr := fn(ctx, l)
	finished = true
	if l.Closed() {
		return ferr
	}
	if ferr != nil {
		if rerr := l.rollbackDetached(ctx); rerr != nil {
			return errors.Join(ferr, fmt.Errorf("client: rollback after error: %w", rerr))
		}
		return ferr
	}
	return l.Commit(ctx)
}

// Lease returns a handle on an existing lease from its token (for example one
// handed over by another process): every copy of a token means the same
// lease, so Adjust, Release, Commit and Rollback work on it as on the
// original. Its Consumed and Limits are unknown (empty) until an Adjust.
func (c *Client) Lease(token string) *Lease {
	return c.newLease(token)
}

// Available reads what each limit of entityID on resource holds now (the
// parent's too when the entity cascades). It is retried on transport errors
// and 5xx answers.
func (c *Client) Available(ctx context.Context, entityID, resource string) ([]wire.LimitState, error) {
	q := url.Values{}
	q.Set("entity_id", entityID)
	q.Set("resource", resource)
	if c.namespace != "" {
		q.Set("namespace", c.namespace)
	}
	res, err := c.get(ctx, wire.PathAvailable, q)
	if err != nil {
		return nil, err
	}
	if res.status != http.StatusOK {
		return nil, res.err()
	}
	var out wire.AvailableResponse
	if err := res.decode(&out); err != nil {
		return nil, err
	}
	return out.Limits, nil
}

// Health calls GET /healthz and returns nil on 200. It is retried on
// transport errors and 5xx answers.
func (c *Client) Health(ctx context.Context) error {
	res, err := c.get(ctx, wire.PathHealth, nil)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return res.err()
	}
	return nil
}

func (c *Client) post(ctx context.Context, path string, body any, p retryPolicy, mayHaveLanded bool) (*result, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("client: POST %s: encode: %w", path, err)
	}
	res, _, err := c.send(ctx, call{method: http.MethodPost, path: path, body: b, policy: p}, mayHaveLanded)
	return res, err
}

func (c *Client) get(ctx context.Context, path string, q url.Values) (*result, error) {
	res, _, err := c.send(ctx, call{method: http.MethodGet, path: path, query: q, policy: retryIdempotent}, false)
	return res, err
}

// fullJitter draws uniformly from [0, d].
func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d) + 1))
}
