package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// CleanupTimeout bounds the rollback Do runs after fn failed or panicked.
const CleanupTimeout = 10 * time.Second

// Lease is one acquire, open until Commit or Rollback (or its expiry on the
// server). It is safe for concurrent use; the calls that send requests
// (Adjust, Release, Commit, Rollback) run one at a time.
type Lease struct {
	c     *Client
	token string

	// sem serialises the lease's calls (a channel so waiting honours ctx).
	sem chan struct{}
	// mayHaveLanded (guarded by sem) records, per kind (index 0 commit, 1
	// rollback), that a release of this lease may have reached the server
	// without us seeing the answer: a later 409 lease_closed then means one
	// of them landed, and the kind tells what it did to the tokens.
	mayHaveLanded [2]bool

	mu                 sync.Mutex // guards the fields below; closed is written with sem held
	entityID, resource string
	consumed           map[string]int64
	limits             []wire.LimitState
	shadow             []wire.Violation
	rateLimit          RateLimit
	hasRateLimit       bool
	degraded           bool
	closed             bool
}

func (c *Client) newLease(token string) *Lease {
	return &Lease{c: c, token: token, sem: make(chan struct{}, 1)}
}

func (l *Lease) lock(ctx context.Context) error {
	select {
	case l.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Lease) unlock() { <-l.sem }

func (l *Lease) setClosed() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// zeroConsumed records a landed rollback: the lease holds nothing now.
func (l *Lease) zeroConsumed() {
	l.mu.Lock()
	for name := range l.consumed {
		l.consumed[name] = 0
	}
	l.mu.Unlock()
}

// Token is the opaque signed lease token; every copy names the same lease
// (see Client.Lease).
func (l *Lease) Token() string { return l.token }

// EntityID is the entity the lease was acquired for (empty for a lease made
// by Client.Lease).
func (l *Lease) EntityID() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.entityID
}

// Resource is the lease's resource (empty for a lease made by Client.Lease).
func (l *Lease) Resource() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.resource
}

// Consumed is the net amount taken per limit: the acquire plus every
// adjustment so far.
func (l *Lease) Consumed() map[string]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.consumed)
}

// Limits is each limit's state right after the acquire.
func (l *Lease) Limits() []wire.LimitState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.limits)
}

// ShadowViolations are the shadow limits that would have denied the
// acquire (it was admitted: a shadow limit never denies).
func (l *Lease) ShadowViolations() []wire.Violation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.shadow)
}

// RateLimit is the acquire answer's RateLimit-* headers (the tightest
// limit); ok is false when the server sent none.
func (l *Lease) RateLimit() (rl RateLimit, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rateLimit, l.hasRateLimit
}

// Degraded reports that the backend was unavailable and the namespace's
// on_unavailable policy admitted the acquire unchecked: nothing was consumed
// and the lease holds no bucket (its Adjust and Release write nothing).
func (l *Lease) Degraded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.degraded
}

// Closed reports whether this Lease saw itself committed or rolled back (or
// was told lease_closed by the server).
func (l *Lease) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Adjust changes the consumption by deltas (positive takes more, negative
// gives back), written at once; it may take a bucket into debt. Once the
// lease is closed it returns ErrLeaseClosed without a request. Adjust is
// retried only when the request provably never left (a second copy would
// charge twice); after any other failure the adjustment may or may not
// have been applied.
func (l *Lease) Adjust(ctx context.Context, deltas map[string]int64) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.unlock()
	if l.Closed() {
		return ErrLeaseClosed
	}
	if len(deltas) == 0 {
		return nil
	}
	res, err := l.c.post(ctx, wire.PathAdjust, wire.AdjustRequest{Lease: l.token, Adjust: deltas}, retryUnsentOnly, false)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		err := res.err()
		if errors.Is(err, ErrLeaseClosed) {
			l.setClosed()
		}
		return err
	}
	var out wire.AdjustResponse
	if err := res.decode(&out); err != nil {
		return err
	}
	if out.Consumed != nil {
		l.mu.Lock()
		l.consumed = out.Consumed
		l.mu.Unlock()
	}
	return nil
}

// Release gives amounts back to the limits at once: Adjust with the amounts
// negated. Amounts must be ≥ 0.
func (l *Lease) Release(ctx context.Context, amounts map[string]int64) error {
	deltas := make(map[string]int64, len(amounts))
	for name, n := range amounts {
		if n < 0 {
			// Checked here, as the server would: nothing is sent.
			return fmt.Errorf("%w: release.%s %d must be a whole number >= 0", ErrInvalidRequest, name, n)
		}
		deltas[name] = -n
	}
	return l.Adjust(ctx, deltas)
}

// Commit closes the lease keeping what it consumed. A second Commit or
// Rollback returns ErrLeaseClosed without a request.
func (l *Lease) Commit(ctx context.Context) error { return l.release(ctx, false) }

// Rollback closes the lease returning the initial amounts and every
// adjustment. A second Commit or Rollback returns ErrLeaseClosed without a
// request.
func (l *Lease) Rollback(ctx context.Context) error { return l.release(ctx, true) }

// releaseKind indexes Lease.mayHaveLanded.
func releaseKind(rollback bool) int {
	if rollback {
		return 1
	}
	return 0
}

func kindName(kind int) string {
	if kind == 1 {
		return "rollback"
	}
	return "commit"
}

// rollbackDetached rolls back even when ctx is done, within CleanupTimeout.
func (l *Lease) rollbackDetached(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), CleanupTimeout)
	defer cancel()
	return l.Rollback(ctx)
}

// release is POST /v1/leases/release, retried like a GET: the server closes
// a lease once, so a second copy changes nothing. If an earlier attempt (of
// this call or an earlier call on this Lease) may have reached the server,
// a 409 lease_closed is that attempt's success: this call's own when only
// its kind (commit or rollback) may have landed, else an ErrLeaseClosed
// naming what closed the lease.
func (l *Lease) release(ctx context.Context, rollback bool) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.unlock()
	if l.Closed() {
		return ErrLeaseClosed
	}
	kind := releaseKind(rollback)
	res, landed, err := l.c.send(ctx, call{
		method: http.MethodPost,
		path:   wire.PathRelease,
		body:   mustJSON(wire.ReleaseRequest{Lease: l.token, Rollback: rollback}),
		policy: retryIdempotent,
	}, false)
	if landed {
		l.mayHaveLanded[kind] = true
	}
	if err != nil {
		return err
	}
	switch {
	case res.status == http.StatusOK:
		l.setClosed()
		if rollback {
			l.zeroConsumed()
		}
		return nil
	case res.status == http.StatusConflict && (l.mayHaveLanded[0] || l.mayHaveLanded[1]):
		apiErr := res.err()
		if !errors.Is(apiErr, ErrLeaseClosed) {
			return apiErr
		}
		// An earlier attempt landed and closed the lease.
		l.setClosed()
		same, other := l.mayHaveLanded[kind], l.mayHaveLanded[1-kind]
		switch {
		case same && !other:
			if rollback {
				l.zeroConsumed()
			}
			return nil // this very release landed
		case other && !same:
			if !rollback {
				l.zeroConsumed() // the rollback that landed returned everything
			}
			return fmt.Errorf("%w: an earlier %s whose answer was lost closed it", ErrLeaseClosed, kindName(1-kind))
		}
		return fmt.Errorf("%w: an earlier commit or rollback whose answer was lost closed it, which one is unknown", ErrLeaseClosed)
	case retryableStatus(res.status):
		// A 5xx after the retries: the release may have been applied.
		l.mayHaveLanded[kind] = true
		return res.err()
	default:
		err := res.err()
		if errors.Is(err, ErrLeaseClosed) {
			l.setClosed()
		}
		return err
	}
}
