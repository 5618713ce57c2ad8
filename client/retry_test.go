package client

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

const unavailable = `{"error":"unavailable","message":"backend down"}`

func TestRetry_availableOn503ThenSucceeds(t *testing.T) {
	s := newServer(t, answer(503, unavailable), answer(502, `bad gateway`), answer(200, `{"limits":[]}`))

	got, err := newTestClient(t, s).Available(context.Background(), "e", "r")
	require.NoError(t, err)
	assert.Empty(t, got)
	assert.Equal(t, 3, s.count())
}

func TestRetry_availableAfterDroppedConnection(t *testing.T) {
	s := newServer(t, drop, answer(200, `{"limits":[]}`))

	_, err := newTestClient(t, s).Available(context.Background(), "e", "r")
	require.NoError(t, err)
	assert.Equal(t, 2, s.count())
}

func TestRetry_healthOn500(t *testing.T) {
	s := newServer(t, answer(500, `{"error":"internal_error","message":"x"}`), answer(200, `{}`))
	require.NoError(t, newTestClient(t, s).Health(context.Background()))
	assert.Equal(t, 2, s.count())
}

func TestRetry_getGivesUp(t *testing.T) {
	s := newServer(t, answer(503, unavailable))
	c := newTestClient(t, s, WithRetry(2, time.Microsecond))

	_, err := c.Available(context.Background(), "e", "r")
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, 3, s.count(), "first attempt and two retries")
}

func TestRetry_off(t *testing.T) {
	s := newServer(t, answer(503, unavailable))
	c := newTestClient(t, s, WithRetry(0, time.Second))

	_, err := c.Available(context.Background(), "e", "r")
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, 1, s.count())
}

func TestRetry_getNotRetried(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
	}{
		{"501", 501, `{"error":"internal_error","message":"not implemented"}`},
		{"429", 429, `{"error":"rate_limited","message":"x","retry_after_seconds":1}`},
		{"400", 400, `{"error":"invalid_request","message":"bad id"}`},
		{"404", 404, `{"error":"not_found","message":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, answer(tt.status, tt.body))
			_, err := newTestClient(t, s).Available(context.Background(), "e", "r")
			require.Error(t, err)
			assert.Equal(t, 1, s.count())
		})
	}
}

func TestRetry_acquireNotRetriedOn503(t *testing.T) {
	s := newServer(t, answer(503, unavailable), answer(200, acquireOK))

	_, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
	assert.ErrorIs(t, err, ErrUnavailable)
	assert.Equal(t, 1, s.count())
}

func TestRetry_acquireNotRetriedAfterDroppedConnection(t *testing.T) {
	// The server read the request: it may have charged, so no second copy.
	s := newServer(t, drop, answer(200, acquireOK))

	_, err := newTestClient(t, s).Acquire(context.Background(), testRequest)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "client: POST "+wire.PathAcquire)
	assert.Equal(t, 1, s.count())
}

func TestRetry_acquireRetriedWhenNeverSent(t *testing.T) {
	s := newServer(t, answer(200, acquireOK))
	d, calls := dialFailures(2, http.DefaultClient)
	c, err := newClient(s.URL, d, fastRetry)
	require.NoError(t, err)

	l, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)
	assert.Equal(t, "tok-1", l.Token())
	assert.Equal(t, 3, calls())
	assert.Equal(t, 1, s.count(), "only the attempt that was sent reached the server")
}

func TestRetry_acquireRefusedForReal(t *testing.T) {
	// A real refused connection is a dial error: retried, then reported.
	s := newServer(t, answer(200, acquireOK))
	url := s.URL
	s.Close()
	var tries int
	d := doerFunc(func(r *http.Request) (*http.Response, error) {
		tries++
		return http.DefaultClient.Do(r)
	})
	c, err := newClient(url, d, WithRetry(2, time.Microsecond))
	require.NoError(t, err)

	_, err = c.Acquire(context.Background(), testRequest)
	require.Error(t, err)
	assert.True(t, provablyUnsent(err), "error %v", err)
	assert.Equal(t, 3, tries)
}

func TestRetry_adjustNotRetried(t *testing.T) {
	t.Run("on 503", func(t *testing.T) {
		s, l := leaseServer(t, answer(503, unavailable), answer(200, `{"lease":"tok-1","consumed":{}}`))
		assert.ErrorIs(t, l.Adjust(context.Background(), map[string]int64{"tpm": 1}), ErrUnavailable)
		assert.Equal(t, 2, s.count())
		assert.False(t, l.Closed())
	})
	t.Run("after dropped connection", func(t *testing.T) {
		s, l := leaseServer(t, drop, answer(200, `{"lease":"tok-1","consumed":{}}`))
		require.Error(t, l.Adjust(context.Background(), map[string]int64{"tpm": 1}))
		assert.Equal(t, 2, s.count())
	})
	t.Run("retried when never sent", func(t *testing.T) {
		s := newServer(t, answer(200, `{"lease":"tok-1","consumed":{"tpm":1}}`))
		d, calls := dialFailures(1, http.DefaultClient)
		c, err := newClient(s.URL, d, fastRetry)
		require.NoError(t, err)
		require.NoError(t, c.Lease("tok-1").Adjust(context.Background(), map[string]int64{"tpm": 1}))
		assert.Equal(t, 2, calls())
		assert.Equal(t, 1, s.count())
	})
}

func TestRetry_releaseAfterDroppedConnection409IsSuccess(t *testing.T) {
	// The first release landed (the server closed the lease) but the answer
	// was lost; the retry is told lease_closed, which means done.
	s, l := leaseServer(t, drop, answer(409, `{"error":"lease_closed","message":"lease already closed"}`))

	require.NoError(t, l.Commit(context.Background()))
	assert.True(t, l.Closed())
	reqs := s.requests()
	require.Len(t, reqs, 3)
	assert.Equal(t, reqs[1].Body, reqs[2].Body, "the retry is the same request")
	assert.ErrorIs(t, l.Commit(context.Background()), ErrLeaseClosed)
	assert.Equal(t, 3, s.count())
}

func TestRetry_releaseAfter503Then409IsSuccess(t *testing.T) {
	s, l := leaseServer(t, answer(503, unavailable), answer(409, `{"error":"lease_closed","message":"closed"}`))

	require.NoError(t, l.Rollback(context.Background()))
	assert.Equal(t, 3, s.count())
}

func TestRetry_releaseAfter503ThenOK(t *testing.T) {
	s, l := leaseServer(t, answer(503, unavailable), answer(200, `{}`))
	require.NoError(t, l.Rollback(context.Background()))
	assert.Equal(t, 3, s.count())
}

func TestRetry_releaseNeverSentThen409IsAnError(t *testing.T) {
	// The failed attempt provably never left, so a 409 is someone else's
	// release, not ours.
	s := newServer(t, answer(409, `{"error":"lease_closed","message":"closed"}`))
	d, _ := dialFailures(1, http.DefaultClient)
	c, err := newClient(s.URL, d, fastRetry)
	require.NoError(t, err)

	err = c.Lease("tok-1").Commit(context.Background())
	var apiErr *APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 409, apiErr.Status)
}

func TestRetry_releaseRemembersAcrossCalls(t *testing.T) {
	// With retries off the first Commit fails after the request reached the
	// server; the Lease remembers, so the next call's 409 means done.
	s := newServer(t, answer(200, acquireOK), drop, answer(409, `{"error":"lease_closed","message":"closed"}`))
	c := newTestClient(t, s, WithRetry(0, 0))
	l, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)

	require.Error(t, l.Commit(context.Background()))
	assert.False(t, l.Closed())
	require.NoError(t, l.Commit(context.Background()))
	assert.True(t, l.Closed())
	assert.Equal(t, 3, s.count())
}

func TestRetry_releaseRemembers5xxAcrossCalls(t *testing.T) {
	s := newServer(t, answer(200, acquireOK), answer(503, unavailable), answer(409, `{"error":"lease_closed","message":"closed"}`))
	c := newTestClient(t, s, WithRetry(0, 0))
	l, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)

	assert.ErrorIs(t, l.Rollback(context.Background()), ErrUnavailable)
	require.NoError(t, l.Rollback(context.Background()))
}

func TestRetry_release410AfterDropIsStillAnError(t *testing.T) {
	// Expiry is checked before closed: a 410 cannot tell whether the lost
	// attempt landed, so it is reported.
	_, l := leaseServer(t, drop, answer(410, `{"error":"lease_expired","message":"expired"}`))
	assert.ErrorIs(t, l.Rollback(context.Background()), ErrLeaseExpired)
	assert.False(t, l.Closed())
}

func TestRetry_backoffRespectsContext(t *testing.T) {
	s := newServer(t, answer(503, unavailable))
	c, err := newClient(s.URL, http.DefaultClient, WithRetry(5, time.Hour))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The jitter runs once the 503 has been read and the backoff starts:
	// cancelling there (and not from a goroutine watching the server, which
	// can cancel while the answer is still in flight) makes the test exact.
	c.jitter = func(d time.Duration) time.Duration {
		go cancel()
		return d // wait the full hour unless the context ends it
	}
	start := time.Now()
	_, err = c.Available(ctx, "e", "r")
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, ErrUnavailable, "the last attempt's error is kept")
	assert.Equal(t, 1, s.count())
}

func TestRetry_deadlineDuringBackoff(t *testing.T) {
	s := newServer(t, drop)
	c, err := newClient(s.URL, http.DefaultClient, WithRetry(5, time.Hour))
	require.NoError(t, err)
	c.jitter = func(d time.Duration) time.Duration { return d }
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()

	l := c.Lease("tok-1")
	err = l.Commit(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, l.Closed())
	assert.True(t, l.mayHaveLanded[0], "a commit may have landed")
}

func TestRetry_noRetryOnceContextDone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		cancel()
		answer(503, unavailable)(w, r)
	})
	_, err := newTestClient(t, s).Available(ctx, "e", "r")
	require.Error(t, err)
	assert.Equal(t, 1, s.count())
}

func TestRetry_signErrorNotRetried(t *testing.T) {
	var tries int
	d := doerFunc(func(*http.Request) (*http.Response, error) { tries++; return nil, errors.New("unreachable") })
	c, err := newClient("https://abc.lambda-url.us-east-1.on.aws", d, fastRetry, WithSigV4(failingCreds()))
	require.NoError(t, err)

	_, err = c.Available(context.Background(), "e", "r")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sigv4")
	assert.Equal(t, 0, tries)
}

func TestBackoff(t *testing.T) {
	c := &Client{baseDelay: 100 * time.Millisecond}
	assert.Equal(t, 100*time.Millisecond, c.backoff(0))
	assert.Equal(t, 200*time.Millisecond, c.backoff(1))
	assert.Equal(t, 800*time.Millisecond, c.backoff(3))
	assert.Equal(t, MaxRetryDelay, c.backoff(10))
	assert.Equal(t, MaxRetryDelay, c.backoff(1000), "no overflow")

	c.baseDelay = 0
	assert.Equal(t, time.Duration(0), c.backoff(5))
}

func TestFullJitter(t *testing.T) {
	assert.Equal(t, time.Duration(0), fullJitter(0))
	for range 1000 {
		d := fullJitter(time.Second)
		require.GreaterOrEqual(t, d, time.Duration(0))
		require.LessOrEqual(t, d, time.Second)
	}
}
