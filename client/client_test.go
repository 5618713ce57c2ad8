package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func TestNew(t *testing.T) {
	cfg := aws.Config{Region: "us-east-1", Credentials: aws.AnonymousCredentials{}}
	tests := []struct {
		name    string
		url     string
		opts    []Option
		wantErr string
	}{
		{name: "plain http", url: "http://127.0.0.1:8080"},
		{name: "https with prefix", url: "https://example.com/limiter/"},
		{name: "function url with sigv4", url: "https://abc.lambda-url.eu-west-1.on.aws/", opts: []Option{WithSigV4(cfg)}},
		{name: "bad scheme", url: "ftp://x", wantErr: "want http(s)://host"},
		{name: "no host", url: "http://", wantErr: "want http(s)://host"},
		{name: "query", url: "http://x/?a=b", wantErr: "no query"},
		{name: "unparsable", url: "http://[::1", wantErr: "client: url"},
		{name: "empty token", url: "http://x", opts: []Option{WithBearerToken("")}, wantErr: "empty bearer token"},
		{name: "token and sigv4", url: "http://x", opts: []Option{WithBearerToken("t"), WithSigV4(cfg)}, wantErr: "both set"},
		{name: "sigv4 without credentials", url: "http://x", opts: []Option{WithSigV4(aws.Config{Region: "us-east-1"})}, wantErr: "no credentials"},
		{name: "sigv4 without region", url: "http://x", opts: []Option{WithSigV4(aws.Config{Credentials: aws.AnonymousCredentials{}})}, wantErr: "no region"},
		{name: "negative retries", url: "http://x", opts: []Option{WithRetry(-1, 0)}, wantErr: "negative max retries"},
		{name: "negative base", url: "http://x", opts: []Option{WithRetry(1, -time.Second)}, wantErr: "negative retry base"},
		{name: "nil http client", url: "http://x", opts: []Option{WithHTTPClient(nil)}, wantErr: "nil http client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.url, tt.opts...)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.NotNil(t, c)
		})
	}
}

func TestNew_defaultsAndHTTPClient(t *testing.T) {
	hc := &http.Client{}
	c, err := New("http://x", WithHTTPClient(hc))
	require.NoError(t, err)
	assert.Same(t, hc, c.hc)
	assert.Equal(t, DefaultMaxRetries, c.maxRetries)
	assert.Equal(t, DefaultRetryBase, c.baseDelay)
	assert.Equal(t, DefaultUserAgent, c.userAgent)

	c, err = New("http://x", WithRetry(0, time.Second))
	require.NoError(t, err)
	assert.Equal(t, 0, c.maxRetries)
	dc, ok := c.hc.(*http.Client)
	require.True(t, ok)
	assert.Equal(t, DefaultTimeout, dc.Timeout)
}

func TestAcquire_request(t *testing.T) {
	s := newServer(t, answer(200, acquireOK))
	c := newTestClient(t, s, WithBearerToken("s3cret"), WithNamespace("tenant-a"), WithUserAgent("app/2"))

	_, err := c.Acquire(context.Background(), Request{
		EntityID: "user-1", Resource: "gpt-4",
		Consume: map[string]int64{"rpm": 1, "tpm": 500},
		Limits:  []wire.Limit{{Name: "rpm", Capacity: 10, RefillAmount: 10, RefillPeriodSeconds: 60}},
	})
	require.NoError(t, err)

	reqs := s.requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, http.MethodPost, r.Method)
	assert.Equal(t, wire.PathAcquire, r.Path)
	assert.Equal(t, "Bearer s3cret", r.Header.Get("Authorization"))
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "application/json", r.Header.Get("Accept"))
	assert.Equal(t, "app/2", r.Header.Get("User-Agent"))
	assert.JSONEq(t, `{"namespace":"tenant-a","entity_id":"user-1","resource":"gpt-4","consume":{"rpm":1,"tpm":500},
		"limits":[{"name":"rpm","capacity":10,"refill_amount":10,"refill_period_seconds":60}]}`, r.Body)
}

func TestAcquire_requestDefaults(t *testing.T) {
	s := newServer(t, answer(200, acquireOK))
	c := newTestClient(t, s)

	_, err := c.Acquire(context.Background(), Request{EntityID: "e", Resource: "r"})
	require.NoError(t, err)

	r := s.requests()[0]
	assert.Empty(t, r.Header.Get("Authorization"))
	assert.Equal(t, DefaultUserAgent, r.Header.Get("User-Agent"))
	// No namespace, no limits, and a nil Consume is sent as {}.
	assert.JSONEq(t, `{"entity_id":"e","resource":"r","consume":{}}`, r.Body)
}

func TestAcquire_urlPrefix(t *testing.T) {
	s := newServer(t, answer(200, acquireOK))
	c, err := newClient(s.URL+"/limiter/", http.DefaultClient)
	require.NoError(t, err)

	_, err = c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)
	assert.Equal(t, "/limiter"+wire.PathAcquire, s.requests()[0].Path)
}

func TestAcquire_response(t *testing.T) {
	s := newServer(t, answer(200, acquireOK, wire.HeaderLimit, "1000", wire.HeaderRemaining, "500", wire.HeaderReset, "30"))
	c := newTestClient(t, s)

	l, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)

	assert.Equal(t, "tok-1", l.Token())
	assert.Equal(t, "user-1", l.EntityID())
	assert.Equal(t, "gpt-4", l.Resource())
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 500}, l.Consumed())
	assert.Equal(t, []wire.LimitState{
		{EntityID: "user-1", Name: "rpm", Available: 9, Capacity: 10},
		{EntityID: "user-1", Name: "tpm", Available: 500, Capacity: 1000},
	}, l.Limits())
	rl, ok := l.RateLimit()
	require.True(t, ok)
	assert.Equal(t, RateLimit{Limit: 1000, Remaining: 500, Reset: 30 * time.Second}, rl)
	assert.False(t, l.Closed())
	assert.False(t, l.Degraded())

	// The getters hand out copies.
	l.Consumed()["rpm"] = 99
	assert.Equal(t, int64(1), l.Consumed()["rpm"])
}

func TestAcquire_degraded(t *testing.T) {
	s := newServer(t, answer(200, `{"lease":"tok-d","entity_id":"e","resource":"r","consumed":{},"limits":[],"degraded":true}`))
	l, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
	require.NoError(t, err)
	assert.True(t, l.Degraded())
}

func TestAcquire_noRateLimitHeaders(t *testing.T) {
	s := newServer(t, answer(200, acquireOK, wire.HeaderLimit, "10"))
	c := newTestClient(t, s)

	l, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)
	_, ok := l.RateLimit()
	assert.False(t, ok)
}

func TestAcquire_badAnswer(t *testing.T) {
	tests := []struct {
		name, body, wantErr string
	}{
		{"not json", `<html>`, "decode answer"},
		{"no lease", `{"consumed":{}}`, "answer has no lease"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, answer(200, tt.body))
			_, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

// leaseServer answers the acquire, then each later request with the given
// handlers in turn.
func leaseServer(t *testing.T, then ...http.HandlerFunc) (*server, *Lease) {
	t.Helper()
	s := newServer(t, append([]http.HandlerFunc{answer(200, acquireOK)}, then...)...)
	l, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
	require.NoError(t, err)
	return s, l
}

func TestLease_adjustReleaseCommit(t *testing.T) {
	ctx := context.Background()
	s, l := leaseServer(t,
		answer(200, `{"lease":"tok-1","consumed":{"rpm":1,"tpm":700}}`),
		answer(200, `{"lease":"tok-1","consumed":{"rpm":1,"tpm":650}}`),
		answer(200, `{"lease":"tok-1","rolled_back":false}`),
	)

	require.NoError(t, l.Adjust(ctx, map[string]int64{"tpm": 200}))
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 700}, l.Consumed())
	require.NoError(t, l.Release(ctx, map[string]int64{"tpm": 50}))
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 650}, l.Consumed())
	require.NoError(t, l.Commit(ctx))
	assert.True(t, l.Closed())

	reqs := s.requests()
	require.Len(t, reqs, 4)
	assert.Equal(t, wire.PathAdjust, reqs[1].Path)
	assert.JSONEq(t, `{"lease":"tok-1","adjust":{"tpm":200}}`, reqs[1].Body)
	assert.Equal(t, wire.PathAdjust, reqs[2].Path)
	assert.JSONEq(t, `{"lease":"tok-1","adjust":{"tpm":-50}}`, reqs[2].Body)
	assert.Equal(t, http.MethodPost, reqs[3].Method)
	assert.Equal(t, wire.PathRelease, reqs[3].Path)
	assert.JSONEq(t, `{"lease":"tok-1","rollback":false}`, reqs[3].Body)

	// Closed: every further call answers locally.
	assert.ErrorIs(t, l.Commit(ctx), ErrLeaseClosed)
	assert.ErrorIs(t, l.Rollback(ctx), ErrLeaseClosed)
	assert.ErrorIs(t, l.Adjust(ctx, map[string]int64{"tpm": 1}), ErrLeaseClosed)
	assert.Equal(t, 4, s.count(), "no request once closed")
}

func TestLease_rollback(t *testing.T) {
	s, l := leaseServer(t, answer(200, `{"lease":"tok-1","rolled_back":true}`))

	require.NoError(t, l.Rollback(context.Background()))
	assert.JSONEq(t, `{"lease":"tok-1","rollback":true}`, s.requests()[1].Body)
	assert.ErrorIs(t, l.Commit(context.Background()), ErrLeaseClosed)
	assert.Equal(t, 2, s.count())
}

func TestLease_adjustNothing(t *testing.T) {
	s, l := leaseServer(t)
	require.NoError(t, l.Adjust(context.Background(), nil))
	assert.Equal(t, 1, s.count())
}

func TestLease_releaseNegative(t *testing.T) {
	s, l := leaseServer(t)
	err := l.Release(context.Background(), map[string]int64{"tpm": -1})
	assert.ErrorIs(t, err, ErrInvalidRequest)
	assert.Contains(t, err.Error(), "release.tpm -1 must be a whole number >= 0")
	assert.Equal(t, 1, s.count(), "nothing sent beyond the acquire")
}

func TestLease_serverSaysClosed(t *testing.T) {
	closed := answer(409, `{"error":"lease_closed","message":"lease already closed"}`)

	t.Run("adjust", func(t *testing.T) {
		s, l := leaseServer(t, closed)
		err := l.Adjust(context.Background(), map[string]int64{"tpm": 1})
		assert.ErrorIs(t, err, ErrLeaseClosed)
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 409, apiErr.Status)
		assert.True(t, l.Closed())
		assert.ErrorIs(t, l.Commit(context.Background()), ErrLeaseClosed)
		assert.Equal(t, 2, s.count())
	})
	t.Run("commit without an earlier attempt", func(t *testing.T) {
		// Nothing of ours may have landed: someone else closed the lease,
		// which Commit must report.
		s, l := leaseServer(t, closed)
		err := l.Commit(context.Background())
		var apiErr *APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, wire.CodeLeaseClosed, apiErr.Code)
		assert.True(t, l.Closed())
		assert.Equal(t, 2, s.count())
	})
}

func TestClient_Lease(t *testing.T) {
	s := newServer(t, answer(200, `{"lease":"handed-over","consumed":{"tpm":5}}`), answer(200, `{}`))
	c := newTestClient(t, s)

	l := c.Lease("handed-over")
	assert.Equal(t, "handed-over", l.Token())
	assert.Empty(t, l.Consumed())
	require.NoError(t, l.Adjust(context.Background(), map[string]int64{"tpm": 5}))
	assert.Equal(t, map[string]int64{"tpm": 5}, l.Consumed())
	require.NoError(t, l.Rollback(context.Background()))
	assert.JSONEq(t, `{"lease":"handed-over","rollback":true}`, s.requests()[1].Body)
}

func TestLease_concurrentCommit(t *testing.T) {
	s, l := leaseServer(t, answer(200, `{}`))

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = l.Commit(context.Background())
			_ = l.Consumed()
		})
	}
	wg.Wait()

	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			assert.ErrorIs(t, err, ErrLeaseClosed)
		}
	}
	assert.Equal(t, 1, ok)
	assert.Equal(t, 2, s.count(), "one acquire, one release")
}

func TestLease_waitHonoursContext(t *testing.T) {
	_, l := leaseServer(t)
	l.sem <- struct{}{} // another call in flight
	defer l.unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, l.Commit(ctx), context.Canceled)
	assert.ErrorIs(t, l.Adjust(ctx, map[string]int64{"a": 1}), context.Canceled)
}

func TestAvailable(t *testing.T) {
	s := newServer(t, answer(200, `{"limits":[{"entity_id":"user-1","name":"tpm","available":-20,"capacity":1000,"retry_after_seconds":1.2}]}`))
	c := newTestClient(t, s, WithNamespace("tenant-a"), WithBearerToken("tok"))

	got, err := c.Available(context.Background(), "user-1", "gpt 4")
	require.NoError(t, err)
	retry := 1.2
	assert.Equal(t, []wire.LimitState{{EntityID: "user-1", Name: "tpm", Available: -20, Capacity: 1000, RetryAfterSeconds: &retry}}, got)

	r := s.requests()[0]
	assert.Equal(t, http.MethodGet, r.Method)
	assert.Equal(t, wire.PathAvailable, r.Path)
	assert.Equal(t, map[string][]string{"entity_id": {"user-1"}, "resource": {"gpt 4"}, "namespace": {"tenant-a"}}, r.Query)
	assert.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
	assert.Empty(t, r.Body)
	assert.Empty(t, r.Header.Get("Content-Type"))
}

func TestAvailable_noNamespace(t *testing.T) {
	s := newServer(t, answer(200, `{"limits":[]}`))
	_, err := newTestClient(t, s).Available(context.Background(), "e", "r")
	require.NoError(t, err)
	assert.Equal(t, map[string][]string{"entity_id": {"e"}, "resource": {"r"}}, s.requests()[0].Query)
}

func TestHealth(t *testing.T) {
	s := newServer(t, answer(200, `{}`))
	require.NoError(t, newTestClient(t, s).Health(context.Background()))
	assert.Equal(t, wire.PathHealth, s.requests()[0].Path)

	s = newServer(t, answer(404, `{"error":"not_found","message":"no route"}`))
	var apiErr *APIError
	require.ErrorAs(t, newTestClient(t, s).Health(context.Background()), &apiErr)
	assert.Equal(t, 404, apiErr.Status)
}

func TestErrorMapping(t *testing.T) {
	long := strings.Repeat("x", 1000)
	tests := []struct {
		name     string
		status   int
		body     string
		is       []error
		isNot    []error
		wantCode string
		wantMsg  string
	}{
		{name: "lease closed", status: 409, body: `{"error":"lease_closed","message":"closed"}`, is: []error{ErrLeaseClosed}, isNot: []error{ErrLeaseExpired, ErrUnavailable}, wantCode: wire.CodeLeaseClosed, wantMsg: "closed"},
		{name: "lease expired", status: 410, body: `{"error":"lease_expired","message":"expired"}`, is: []error{ErrLeaseExpired}, isNot: []error{ErrLeaseClosed}, wantCode: wire.CodeLeaseExpired},
		{name: "invalid lease", status: 400, body: `{"error":"invalid_lease","message":"bad signature"}`, is: []error{ErrInvalidLease}, isNot: []error{ErrInvalidRequest}, wantCode: wire.CodeInvalidLease},
		{name: "invalid request", status: 400, body: `{"error":"invalid_request","message":"consume.tpm: negative"}`, is: []error{ErrInvalidRequest}, isNot: []error{ErrInvalidLease}, wantCode: wire.CodeInvalidRequest, wantMsg: "consume.tpm: negative"},
		{name: "unavailable", status: 503, body: `{"error":"unavailable","message":"backend down"}`, is: []error{ErrUnavailable}, wantCode: wire.CodeUnavailable},
		{name: "unauthorized", status: 401, body: `{"error":"unauthorized","message":"bad token"}`, is: []error{ErrUnauthorized}, wantCode: wire.CodeUnauthorized},
		{name: "function url forbidden", status: 403, body: `{"Message":"Forbidden"}`, is: []error{ErrUnauthorized}, wantMsg: "Forbidden"},
		{name: "not found", status: 404, body: `{"error":"not_found","message":"no route"}`, isNot: []error{ErrLeaseClosed, ErrInvalidRequest}, wantCode: wire.CodeNotFound},
		{name: "method not allowed", status: 405, body: `{"error":"method_not_allowed","message":"POST only"}`, wantCode: wire.CodeMethodNotAllowed},
		{name: "too large", status: 413, body: `{"error":"request_too_large","message":"over 64 KiB"}`, wantCode: wire.CodeTooLarge},
		{name: "internal", status: 500, body: `{"error":"internal_error","message":"oops"}`, isNot: []error{ErrUnavailable}, wantCode: wire.CodeInternal},
		{name: "gateway html", status: 502, body: "<html>" + long, wantMsg: "<html>" + long[:maxMessage-6] + "…"},
		{name: "bare 409", status: 409, body: ``, is: []error{ErrLeaseClosed}},
		{name: "bare 410", status: 410, body: `{}`, is: []error{ErrLeaseExpired}},
		{name: "bare 503", status: 503, body: `Service Unavailable`, is: []error{ErrUnavailable}, wantMsg: "Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, answer(tt.status, tt.body))
			_, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
			var apiErr *APIError
			require.ErrorAs(t, err, &apiErr)
			assert.Equal(t, tt.status, apiErr.Status)
			assert.Equal(t, tt.wantCode, apiErr.Code)
			if tt.wantMsg != "" {
				assert.Equal(t, tt.wantMsg, apiErr.Message)
			}
			for _, target := range tt.is {
				assert.ErrorIs(t, err, target)
			}
			for _, target := range tt.isNot {
				assert.NotErrorIs(t, err, target)
			}
			assert.NotErrorIs(t, err, ErrRateLimited)
			assert.Contains(t, err.Error(), "client: ")
		})
	}
}

func TestRateLimitedError(t *testing.T) {
	body := `{"error":"rate_limited","message":"rate limit exceeded","retry_after_seconds":1.25,` +
		`"violations":[{"entity_id":"user-1","resource":"gpt-4","limit":"tpm","available":100,"requested":500}]}`
	s := newServer(t, answer(429, body, wire.HeaderRetryAfter, "2",
		wire.HeaderLimit, "1000", wire.HeaderRemaining, "100", wire.HeaderReset, "24"))

	_, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
	var rl *RateLimitedError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, 1250*time.Millisecond, rl.RetryAfter, "the body's precise value wins over the header")
	assert.Equal(t, "rate limit exceeded", rl.Message)
	assert.Equal(t, []wire.Violation{{EntityID: "user-1", Resource: "gpt-4", Limit: "tpm", Available: 100, Requested: 500}}, rl.Violations)
	require.NotNil(t, rl.RateLimit)
	assert.Equal(t, RateLimit{Limit: 1000, Remaining: 100, Reset: 24 * time.Second}, *rl.RateLimit)
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.NotErrorIs(t, err, ErrUnavailable)
	var apiErr *APIError
	assert.False(t, errors.As(err, &apiErr), "a denial is not an APIError")
	assert.Equal(t, "client: rate limited: rate limit exceeded (retry after 1.25s)", err.Error())
	assert.True(t, rl.Retryable(), "a body that does not say is retryable")
	assert.Equal(t, 1, s.count(), "a denial is never retried")
}

func TestRateLimitedError_retryable(t *testing.T) {
	for _, tc := range []struct {
		field string
		want  bool
	}{{`,"retryable":false`, false}, {`,"retryable":true`, true}, {``, true}} {
		body := `{"error":"rate_limited","message":"never at the current limits","retry_after_seconds":4` + tc.field + `}`
		s := newServer(t, answer(429, body, wire.HeaderRetryAfter, "4"))
		_, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
		var rl *RateLimitedError
		require.ErrorAs(t, err, &rl)
		assert.Equal(t, tc.want, rl.Retryable(), tc.field)
		assert.Equal(t, 4*time.Second, rl.RetryAfter, "the wait is kept either way")
		if !tc.want {
			assert.Equal(t, "client: rate limited: never at the current limits (not retryable)", err.Error())
		}
	}
}

func TestRateLimitedError_headerOnly(t *testing.T) {
	// e.g. a throttle in front of the handler: no body of ours.
	s := newServer(t, answer(429, `{"Message":"Rate Exceeded."}`, wire.HeaderRetryAfter, "3"))

	_, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
	var rl *RateLimitedError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, 3*time.Second, rl.RetryAfter)
	assert.Equal(t, "Rate Exceeded.", rl.Message)
	assert.Empty(t, rl.Violations)
	assert.Nil(t, rl.RateLimit)
}

func TestSecondsToDuration(t *testing.T) {
	assert.Equal(t, time.Duration(0), secondsToDuration(-1))
	assert.Equal(t, time.Duration(0), secondsToDuration(0))
	assert.Equal(t, 1500*time.Millisecond, secondsToDuration(1.5))
	assert.Equal(t, time.Nanosecond, secondsToDuration(1e-12), "rounds up")
	assert.Equal(t, time.Duration(1<<63-1), secondsToDuration(1e300))
}

func TestWireRoundTrip(t *testing.T) {
	// The request bodies are exactly the wire types: nothing else is sent.
	s := newServer(t, answer(200, acquireOK))
	_, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
	require.NoError(t, err)
	dec := json.NewDecoder(strings.NewReader(s.requests()[0].Body))
	dec.DisallowUnknownFields()
	var req wire.AcquireRequest
	require.NoError(t, dec.Decode(&req))
}
