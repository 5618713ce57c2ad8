package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/clocktest"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// The client against the real handler (package api, the code behind the
// Function URL and `zae-limiter serve`) over DynamoDB Local.
func TestMain(m *testing.M) { ddbtest.Main(m) }

type apiFixture struct {
	url string
	// clock is shared by the store and the handler and stands still, so
	// buckets do not refill between calls and availability is exact.
	clock *clocktest.Clock
	// before is user-1/gpt-4's availability once its bucket exists. The
	// first write to an idle bucket books up to one grid step ahead of the
	// exact instant (ADR-001); with the clock frozen the bucket then stays
	// busy, so every later write is exact and comparable to before.
	before map[string]int64
}

// newAPI serves a fresh table (namespace "default" registered, system
// defaults rpm 10/min and tpm 1000/min) through api.New on httptest.
func newAPI(t *testing.T, mod ...func(*api.Options)) *apiFixture {
	t.Helper()
	ctx := context.Background()
	table := ddbtest.NewTable(t)
	db := ddbtest.Client(t)
	clock := clocktest.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	st := store.New(db, store.Options{Table: table, Now: clock.Now})
	_, err := st.RegisterNamespace(ctx, "default")
	require.NoError(t, err)
	ns, err := st.Namespace(ctx, "default")
	require.NoError(t, err)
	require.NoError(t, ns.SetSystemDefaults(ctx, []limits.Limit{
		limits.PerMinute("rpm", 10, 0),
		limits.PerMinute("tpm", 1000, 0),
	}, limits.Block))

	o := api.Options{Store: st, DB: db, Table: table, Now: clock.Now, Keys: [][]byte{[]byte("integration-key-0123456789")}}
	for _, m := range mod {
		m(&o)
	}
	srv := httptest.NewServer(api.New(o))
	t.Cleanup(srv.Close)
	f := &apiFixture{url: srv.URL, clock: clock}

	var auth []client.Option
	if o.Token != "" {
		auth = append(auth, client.WithBearerToken(o.Token))
	}
	c := f.client(t, auth...)
	warm, err := c.Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 1}})
	require.NoError(t, err)
	require.NoError(t, warm.Commit(ctx))
	f.before = available(t, c, "user-1", "gpt-4")
	require.Len(t, f.before, 2)
	return f
}

func minus(m, d map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[k] = v - d[k]
	}
	return out
}

func (f *apiFixture) client(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(f.url, append([]client.Option{client.WithRetry(2, time.Millisecond)}, opts...)...)
	require.NoError(t, err)
	return c
}

// available is entity/limit → available.
func available(t *testing.T, c *client.Client, entity, resource string) map[string]int64 {
	t.Helper()
	ls, err := c.Available(context.Background(), entity, resource)
	require.NoError(t, err)
	out := map[string]int64{}
	for _, l := range ls {
		out[l.EntityID+"/"+l.Name] = l.Available
	}
	return out
}

func TestIntegration_acquireAdjustRollback(t *testing.T) {
	f := newAPI(t)
	c := f.client(t)
	ctx := context.Background()
	require.NoError(t, c.Health(ctx))
	before := f.before

	l, err := c.Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 500}})
	require.NoError(t, err)
	assert.NotEmpty(t, l.Token())
	assert.Equal(t, "user-1", l.EntityID())
	assert.Equal(t, "gpt-4", l.Resource())
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 500}, l.Consumed())
	assert.NotEmpty(t, l.Limits())
	rl, ok := l.RateLimit()
	require.True(t, ok)
	assert.Equal(t, int64(1000), rl.Limit, "tpm is the tightest: 500/1000 left")
	assert.Equal(t, before["user-1/tpm"]-500, rl.Remaining)
	assert.Equal(t, minus(before, map[string]int64{"user-1/rpm": 1, "user-1/tpm": 500}), available(t, c, "user-1", "gpt-4"))

	require.NoError(t, l.Adjust(ctx, map[string]int64{"tpm": 700})) // into debt
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 1200}, l.Consumed())
	after := available(t, c, "user-1", "gpt-4")
	assert.Equal(t, minus(before, map[string]int64{"user-1/rpm": 1, "user-1/tpm": 1200}), after)
	assert.Negative(t, after["user-1/tpm"], "in debt")

	require.NoError(t, l.Release(ctx, map[string]int64{"tpm": 100}))
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 1100}, l.Consumed())

	require.NoError(t, l.Rollback(ctx))
	assert.Equal(t, before, available(t, c, "user-1", "gpt-4"), "rollback returns the acquire and every adjustment")
	assert.ErrorIs(t, l.Commit(ctx), client.ErrLeaseClosed)
}

func TestIntegration_commitTwice(t *testing.T) {
	f := newAPI(t)
	c := f.client(t)
	ctx := context.Background()

	l, err := c.Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 300}})
	require.NoError(t, err)
	require.NoError(t, l.Commit(ctx))
	assert.ErrorIs(t, l.Commit(ctx), client.ErrLeaseClosed, "known locally")

	// Another handle on the same token asks the server: 409 lease_closed.
	other := c.Lease(l.Token())
	err = other.Commit(ctx)
	assert.ErrorIs(t, err, client.ErrLeaseClosed)
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusConflict, apiErr.Status)
	assert.Equal(t, wire.CodeLeaseClosed, apiErr.Code)
	assert.ErrorIs(t, c.Lease(l.Token()).Adjust(ctx, map[string]int64{"tpm": 1}), client.ErrLeaseClosed)

	// Commit kept the consumption.
	assert.Equal(t, minus(f.before, map[string]int64{"user-1/rpm": 0, "user-1/tpm": 300}), available(t, c, "user-1", "gpt-4"))
}

func TestIntegration_rateLimited(t *testing.T) {
	f := newAPI(t)
	c := f.client(t)

	_, err := c.Acquire(context.Background(), client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 1500}})
	var rl *client.RateLimitedError
	require.ErrorAs(t, err, &rl)
	assert.ErrorIs(t, err, client.ErrRateLimited)
	assert.Positive(t, rl.RetryAfter)
	assert.False(t, rl.Retryable(), "1500 tokens never fit a capacity of 1000")
	require.NotEmpty(t, rl.Violations)
	v := rl.Violations[0]
	assert.Equal(t, "user-1", v.EntityID)
	assert.Equal(t, "gpt-4", v.Resource)
	assert.Equal(t, "tpm", v.Limit)
	assert.Equal(t, int64(1500), v.Requested)
	assert.Equal(t, f.before["user-1/tpm"], v.Available)
	assert.NotEmpty(t, rl.Message)
	require.NotNil(t, rl.RateLimit)
	assert.Equal(t, int64(1000), rl.RateLimit.Limit)
	assert.Equal(t, f.before, available(t, c, "user-1", "gpt-4"), "a denial takes nothing")
}

func TestIntegration_do(t *testing.T) {
	f := newAPI(t)
	c := f.client(t)
	ctx := context.Background()
	req := client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 100}}

	errFn := errors.New("upstream failed")
	err := c.Do(ctx, req, func(ctx context.Context, l *client.Lease) error {
		require.NoError(t, l.Adjust(ctx, map[string]int64{"tpm": 50}))
		return errFn
	})
	assert.Same(t, errFn, err)
	assert.Equal(t, f.before, available(t, c, "user-1", "gpt-4"))

	require.NoError(t, c.Do(ctx, req, func(context.Context, *client.Lease) error { return nil }))
	assert.Equal(t, minus(f.before, map[string]int64{"user-1/rpm": 1, "user-1/tpm": 100}), available(t, c, "user-1", "gpt-4"))
}

func TestIntegration_leaseErrors(t *testing.T) {
	f := newAPI(t)
	c := f.client(t)
	ctx := context.Background()

	assert.ErrorIs(t, c.Lease("not-a-token").Commit(ctx), client.ErrInvalidLease)

	l, err := c.Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 1}})
	require.NoError(t, err)
	f.clock.Advance(api.DefaultLeaseTTL + time.Second)
	assert.ErrorIs(t, l.Adjust(ctx, map[string]int64{"tpm": 1}), client.ErrLeaseExpired)
	assert.ErrorIs(t, l.Rollback(ctx), client.ErrLeaseExpired)
	assert.False(t, l.Closed())

	_, err = c.Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"nope": 1}})
	assert.ErrorIs(t, err, client.ErrInvalidRequest)
	_, err = c.Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": -1}})
	assert.ErrorIs(t, err, client.ErrInvalidRequest)

	_, err = f.client(t, client.WithNamespace("unregistered")).Available(ctx, "user-1", "gpt-4")
	var apiErr *client.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, http.StatusNotFound, apiErr.Status)
}

func TestIntegration_bearerToken(t *testing.T) {
	f := newAPI(t, func(o *api.Options) { o.Token = "s3cret" })
	ctx := context.Background()

	_, err := f.client(t).Available(ctx, "user-1", "gpt-4")
	assert.ErrorIs(t, err, client.ErrUnauthorized)
	_, err = f.client(t, client.WithBearerToken("wrong")).Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 1}})
	assert.ErrorIs(t, err, client.ErrUnauthorized)

	c := f.client(t, client.WithBearerToken("s3cret"))
	require.NoError(t, c.Do(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 1}},
		func(context.Context, *client.Lease) error { return nil }))
}

// lossy loses the answer of the first release: the server applied it, the
// client sees a reset connection.
type lossy struct {
	mu   sync.Mutex
	lost bool
}

func (t *lossy) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.URL.Path != wire.PathRelease {
		return resp, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lost {
		return resp, nil
	}
	t.lost = true
	_ = resp.Body.Close()
	return nil, errors.New("read: connection reset by peer")
}

func TestIntegration_releaseAnswerLost(t *testing.T) {
	f := newAPI(t)
	c := f.client(t, client.WithHTTPClient(&http.Client{Transport: &lossy{}}))
	ctx := context.Background()

	l, err := c.Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 400}})
	require.NoError(t, err)
	// The first rollback lands but its answer is lost; the retry gets 409
	// lease_closed, which means the first one did it.
	require.NoError(t, l.Rollback(ctx))
	assert.True(t, l.Closed())
	assert.Equal(t, f.before, available(t, c, "user-1", "gpt-4"), "rolled back exactly once")
}
