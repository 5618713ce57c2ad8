package client

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func TestDo(t *testing.T) {
	ok := answer(200, `{}`)
	errFn := errors.New("fn failed")
	tests := []struct {
		name         string
		fn           func(context.Context, *Lease) error
		release      http.HandlerFunc
		wantErr      []error
		wantReleases []string // bodies of the release calls
	}{
		{
			name:         "commit on success",
			fn:           func(context.Context, *Lease) error { return nil },
			release:      ok,
			wantReleases: []string{`{"lease":"tok-1","rollback":false}`},
		},
		{
			name:         "rollback on error",
			fn:           func(context.Context, *Lease) error { return errFn },
			release:      ok,
			wantErr:      []error{errFn},
			wantReleases: []string{`{"lease":"tok-1","rollback":true}`},
		},
		{
			name:         "fn committed itself",
			fn:           func(ctx context.Context, l *Lease) error { return l.Commit(ctx) },
			release:      ok,
			wantReleases: []string{`{"lease":"tok-1","rollback":false}`},
		},
		{
			name:         "fn rolled back itself and failed",
			fn:           func(ctx context.Context, l *Lease) error { _ = l.Rollback(ctx); return errFn },
			release:      ok,
			wantErr:      []error{errFn},
			wantReleases: []string{`{"lease":"tok-1","rollback":true}`},
		},
		{
			name:         "commit fails",
			fn:           func(context.Context, *Lease) error { return nil },
			release:      answer(410, `{"error":"lease_expired","message":"expired"}`),
			wantErr:      []error{ErrLeaseExpired},
			wantReleases: []string{`{"lease":"tok-1","rollback":false}`},
		},
		{
			name:         "rollback fails too",
			fn:           func(context.Context, *Lease) error { return errFn },
			release:      answer(410, `{"error":"lease_expired","message":"expired"}`),
			wantErr:      []error{errFn, ErrLeaseExpired},
			wantReleases: []string{`{"lease":"tok-1","rollback":true}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, answer(200, acquireOK), tt.release)
			err := newTestClient(t, s).Do(context.Background(), testRequest, tt.fn)
			if tt.wantErr == nil {
				require.NoError(t, err)
			}
			for _, want := range tt.wantErr {
				assert.ErrorIs(t, err, want)
			}
			var releases []string
			for _, r := range s.requests() {
				if r.Path == wire.PathRelease {
					releases = append(releases, r.Body)
				}
			}
			require.Len(t, releases, len(tt.wantReleases))
			for i := range releases {
				assert.JSONEq(t, tt.wantReleases[i], releases[i])
			}
		})
	}
}

func TestDo_errorReturnedAsIs(t *testing.T) {
	s := newServer(t, answer(200, acquireOK), answer(200, `{}`))
	errFn := errors.New("fn failed")
	err := newTestClient(t, s).Do(context.Background(), testRequest, func(context.Context, *Lease) error { return errFn })
	assert.Same(t, errFn, err)
}

func TestDo_acquireFails(t *testing.T) {
	s := newServer(t, answer(429, `{"error":"rate_limited","message":"no","retry_after_seconds":2}`))
	called := false
	err := newTestClient(t, s).Do(context.Background(), testRequest, func(context.Context, *Lease) error { called = true; return nil })
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.False(t, called)
	assert.Equal(t, 1, s.count())
}

func TestDo_panicRollsBackAndRepanics(t *testing.T) {
	s := newServer(t, answer(200, acquireOK), answer(200, `{}`))
	c := newTestClient(t, s)

	assert.PanicsWithValue(t, "boom", func() {
		_ = c.Do(context.Background(), testRequest, func(context.Context, *Lease) error { panic("boom") })
	})
	reqs := s.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, wire.PathRelease, reqs[1].Path)
	assert.JSONEq(t, `{"lease":"tok-1","rollback":true}`, reqs[1].Body)
}

func TestDo_rollbackDespiteCancelledContext(t *testing.T) {
	s := newServer(t, answer(200, acquireOK), answer(200, `{}`))
	ctx, cancel := context.WithCancel(context.Background())
	err := newTestClient(t, s).Do(ctx, testRequest, func(ctx context.Context, _ *Lease) error {
		cancel()
		return ctx.Err()
	})
	assert.ErrorIs(t, err, context.Canceled)
	reqs := s.requests()
	require.Len(t, reqs, 2)
	assert.JSONEq(t, `{"lease":"tok-1","rollback":true}`, reqs[1].Body)
}
