package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// acquire serves POST /v1/acquire.
func (h *Handler) acquire(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	req, err := decodeAcquire(http.MaxBytesReader(w, r.Body, wire.MaxBodyBytes))
	if err != nil {
		return nil, err
	}
	ns, lim, err := h.namespace(ctx, req.Namespace)
	if err != nil {
		return nil, err
	}
	lease, err := lim.Acquire(ctx, limiter.Request{
		EntityID: req.EntityID, Resource: req.Resource, Consume: req.Consume, Limits: limitsOf(req.Limits),
	})
	var ex *limits.ExceededError
	switch {
	case errors.As(err, &ex), errors.Is(err, limits.ErrInvalid), errors.Is(err, limits.ErrUnavailable):
		return nil, err
	case err != nil:
		return nil, unavailable("acquire", err)
	}
	exp := h.o.Now().Add(h.o.LeaseTTL)
	tok := sign(claimsFor(newLeaseID(), ns.ID, ns.Name, req, lease, exp), h.o.Keys[0])
	sts := lease.Statuses()
	if s, ok := tightest(sts); ok {
		setRateLimit(w.Header(), s, untilFull(s, h.o.Now()))
	}
	resp := wire.AcquireResponse{
		Lease: tok, EntityID: req.EntityID, Resource: req.Resource,
		Consumed: lease.Consumed(), Limits: make([]wire.LimitState, 0, len(sts)),
		Degraded: lease.Degraded(),
	}
	for _, s := range sts {
		resp.Limits = append(resp.Limits, LimitState(s))
	}
	if shadow := limits.ShadowViolations(sts); len(shadow) > 0 {
		// Counted and reported, never denied (ADR-031): the answer, a
		// log line and a metric say what the limit would have done.
		resp.ShadowViolations = Violations(shadow)
		h.logShadow(ctx, ns.Name, req.EntityID, req.Resource, shadow)
	}
	return resp, nil
}

// available serves GET /v1/available: every limit's tokens now and, per
// limit, how long until one whole token is there (0 when one is).
func (h *Handler) available(_ http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	q, err := decodeAvailable(r.URL.RawQuery)
	if err != nil {
		return nil, err
	}
	_, lim, err := h.namespace(ctx, q.Namespace)
	if err != nil {
		return nil, err
	}
	read := func(needed map[string]int64) ([]limits.Status, error) {
		sts, err := lim.Available(ctx, q.EntityID, q.Resource, needed, nil)
		if err != nil && !errors.Is(err, limits.ErrInvalid) {
			return nil, unavailable("read available", err)
		}
		return sts, err
	}
	resp := wire.AvailableResponse{Limits: []wire.LimitState{}}
	sts, err := read(nil)
	if errors.Is(err, limits.ErrInvalid) {
		// Ids are valid: the only invalid outcome is "no limits configured
		// for this entity and resource", a read that finds nothing.
		return resp, nil
	}
	if err != nil {
		return nil, err
	}
	// Only for depleted limits, a second read asks how long one token takes.
	needed := map[string]int64{}
	for _, s := range sts {
		if s.Available < 1 {
			needed[s.Limit.Name] = 1
		}
	}
	wait := map[[2]string]time.Duration{}
	if len(needed) > 0 {
		again, err := read(needed)
		if err != nil {
			return nil, err
		}
		for _, s := range again {
			if s.Exceeded {
				wait[[2]string{s.EntityID, s.Limit.Name}] = s.RetryAfter
			}
		}
	}
	for _, s := range sts {
		secs := seconds(wait[[2]string{s.EntityID, s.Limit.Name}])
		l := LimitState(s)
		l.RetryAfterSeconds = &secs
		resp.Limits = append(resp.Limits, l)
	}
	return resp, nil
}

// denial is the 429 body; it also sets Retry-After and the RateLimit
// headers of the violation that decides the wait.
func denial(ex *limits.ExceededError, hdr http.Header) wire.Error {
	hdr.Set(wire.HeaderRetryAfter, ex.RetryAfterHeader())
	if ex.Reason != limits.ReasonBlocked { // a block judges no limit
		setRateLimit(hdr, ex.Primary(), int64(math.Ceil(ex.RetryAfter().Seconds())))
	}
	return Denial(ex)
}

// Denial renders a denial in the wire contract: the body of a 429, which
// the CLI's `acquire -o json` prints too. retry_after_seconds stays finite
// even when the request can never be admitted (the reference's contract);
// retryable and the message say so then.
func Denial(ex *limits.ExceededError) wire.Error {
	retryable := ex.Retryable()
	body := wire.Error{Code: wire.CodeRateLimited, Message: denialMessage(ex),
		RetryAfterSeconds: seconds(ex.RetryAfter()), Retryable: &retryable,
		Violations: Violations(ex.Violations()), Reason: ex.Reason, Blocked: ex.Blocked}
	return body
}

// Violations renders statuses as the wire's violations (the CLI's JSON too).
func Violations(sts []limits.Status) []wire.Violation {
	var out []wire.Violation
	for _, v := range sts {
		out = append(out, wire.Violation{EntityID: v.EntityID, Resource: v.Resource,
			Limit: v.Limit.Name, Available: v.Available, Requested: v.Requested})
	}
	return out
}

// denialMessage is the denial's own text or, when waiting cannot help, a
// text that says so and names no wait.
func denialMessage(ex *limits.ExceededError) string {
	if ex.Retryable() || ex.Reason == limits.ReasonBlocked {
		return ex.Error()
	}
	var over []string
	for _, v := range ex.Violations() {
		if v.Requested > v.Limit.Capacity {
			over = append(over, fmt.Sprintf("%s/%s: requested %d exceeds the capacity %d",
				v.EntityID, v.Limit.Name, v.Requested, v.Limit.Capacity))
		}
	}
	p := ex.Primary()
	return fmt.Sprintf("rate limit exceeded for %s/%s, and the request can never be admitted at the current limits (%s); do not retry it",
		p.EntityID, p.Resource, strings.Join(over, "; "))
}

// LimitState renders one limit's status in the wire contract (without a
// wait); the CLI's JSON of a limit is this type too.
func LimitState(s limits.Status) wire.LimitState {
	l := wire.LimitState{EntityID: s.EntityID, Name: s.Limit.Name, Available: s.Available, Capacity: s.Limit.Capacity,
		Calendar: s.Limit.Calendar, Credit: s.Credit, Shadow: s.Limit.Shadow}
	if !s.ResetAt.IsZero() {
		l.ResetsAt = s.ResetAt.UTC().Format(time.RFC3339)
	}
	return l
}

// tightest is the status with the lowest available/capacity ratio (the
// first on ties); shadow limits never deny, so they are not considered.
func tightest(sts []limits.Status) (limits.Status, bool) {
	var best limits.Status
	bestRatio := math.Inf(1)
	for _, s := range sts {
		if s.Limit.Capacity <= 0 || s.Limit.Shadow {
			continue
		}
		if r := float64(s.Available) / float64(s.Limit.Capacity); r < bestRatio {
			best, bestRatio = s, r
		}
	}
	return best, !math.IsInf(bestRatio, 1)
}

// untilFull is how many seconds (rounded up) the limit takes to refill to
// capacity: for a calendar quota, until its next boundary (ADR-029).
func untilFull(s limits.Status, now time.Time) int64 {
	missing := s.Limit.Capacity - s.Available
	if !s.ResetAt.IsZero() && missing > 0 {
		return int64(math.Ceil(s.ResetAt.Sub(now).Seconds()))
	}
	if missing <= 0 || s.Limit.RefillAmount <= 0 {
		return 0
	}
	secs := float64(missing) * float64(s.Limit.RefillPeriodSeconds) / float64(s.Limit.RefillAmount)
	return int64(math.Min(math.Ceil(secs), 1<<53))
}

// setRateLimit sets the RateLimit-* headers of one limit; reset is in
// whole seconds.
func setRateLimit(hdr http.Header, s limits.Status, reset int64) {
	hdr.Set(wire.HeaderLimit, strconv.FormatInt(s.Limit.Capacity, 10))
	hdr.Set(wire.HeaderRemaining, strconv.FormatInt(max(s.Available, 0), 10))
	hdr.Set(wire.HeaderReset, strconv.FormatInt(reset, 10))
}

// seconds renders a duration as seconds with millisecond precision.
func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }
