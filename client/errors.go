package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Sentinels matched with errors.Is against the errors of this package.
var (
	// ErrRateLimited matches every *RateLimitedError.
	ErrRateLimited = errors.New("client: rate limited")
	// ErrLeaseClosed: the lease was already committed or rolled back (409
	// lease_closed), or this Lease knows it closed it (no request is sent).
	ErrLeaseClosed = errors.New("client: lease closed")
	// ErrLeaseExpired: the lease's expiry passed (410 lease_expired).
	ErrLeaseExpired = errors.New("client: lease expired")
	// ErrInvalidLease: the token's signature does not verify (400
	// invalid_lease).
	ErrInvalidLease = errors.New("client: invalid lease")
	// ErrInvalidRequest: the server rejected the request (400
	// invalid_request: bad ids, unknown limit names, negative amounts, ...).
	ErrInvalidRequest = errors.New("client: invalid request")
	// ErrUnauthorized: 401 or 403 (bad bearer token, bad or missing SigV4
	// signature, no lambda:InvokeFunctionUrl permission).
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrUnavailable: 503 (the backend is down and the policy blocks).
	ErrUnavailable = errors.New("client: service unavailable")
)

// RateLimitedError is a denial (429): nothing was taken.
type RateLimitedError struct {
	// RetryAfter is when the request could pass, from the body's
	// retry_after_seconds (else the Retry-After header).
	RetryAfter time.Duration
	// Violations are the limits that denied the request.
	Violations []wire.Violation
	// Message is the server's message.
	Message string
	// RateLimit is the tightest limit's RateLimit-* headers, when sent.
	RateLimit *RateLimit
	// Reason is why the request was denied without judging the limits
	// ("contention", "blocked"), "" for a denial by the limits; Blocked
	// names the blocked entity (the one asked for, or its parent).
	Reason, Blocked string

	// never: the body said "retryable": false.
	never bool
}

// Retryable reports whether waiting RetryAfter can admit the request: false
// when the server said it can never be admitted at the current limits (it
// asks a limit for more than its capacity). A retry loop stops on false.
// An answer that does not say (an older server) counts as retryable.
func (e *RateLimitedError) Retryable() bool { return !e.never }

func (e *RateLimitedError) Error() string {
	var b strings.Builder
	b.WriteString("client: rate limited")
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.never {
		b.WriteString(" (not retryable)")
	} else {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitedError) Is(target error) bool { return target == ErrRateLimited }

// APIError is every non-200 answer other than 429.
type APIError struct {
	Status  int    // HTTP status
	Code    string // wire error code (wire.Code*); empty when the body is not ours
	Message string
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = strings.ToLower(http.StatusText(e.Status))
	}
	if e.Message == "" {
		return fmt.Sprintf("client: %d %s", e.Status, code)
	}
	return fmt.Sprintf("client: %d %s: %s", e.Status, code, e.Message)
}

// Is matches the sentinels by code, or by status when the body carried none
// (e.g. an answer from the Function URL front end rather than our handler).
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrLeaseClosed:
		return e.Code == wire.CodeLeaseClosed || (e.Code == "" && e.Status == http.StatusConflict)
	case ErrLeaseExpired:
		return e.Code == wire.CodeLeaseExpired || (e.Code == "" && e.Status == http.StatusGone)
	case ErrInvalidLease:
		return e.Code == wire.CodeInvalidLease
	case ErrInvalidRequest:
		return e.Code == wire.CodeInvalidRequest
	case ErrUnauthorized:
		return e.Code == wire.CodeUnauthorized || e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrUnavailable:
		return e.Code == wire.CodeUnavailable || e.Status == http.StatusServiceUnavailable
	}
	return false
}

// maxMessage bounds a message taken from a body that is not ours.
const maxMessage = 256

// err turns a non-200 answer into the package's error.
func (r *result) err() error {
	var body wire.Error
	ours := json.Unmarshal(r.body, &body) == nil
	msg := body.Message
	if !ours {
		msg = strings.TrimSpace(string(r.body))
		if len(msg) > maxMessage {
			msg = msg[:maxMessage] + "…"
		}
	}
	if r.status == http.StatusTooManyRequests {
		e := &RateLimitedError{Message: msg, Violations: body.Violations, Reason: body.Reason, Blocked: body.Blocked,
			never: body.Retryable != nil && !*body.Retryable}
		switch {
		case body.RetryAfterSeconds > 0:
			e.RetryAfter = secondsToDuration(body.RetryAfterSeconds)
		default:
			if s, err := strconv.ParseFloat(r.header.Get(wire.HeaderRetryAfter), 64); err == nil && s > 0 {
				e.RetryAfter = secondsToDuration(s)
			}
		}
		if rl, ok := parseRateLimit(r.header); ok {
			e.RateLimit = &rl
		}
		return e
	}
	return &APIError{Status: r.status, Code: body.Code, Message: msg}
}

// secondsToDuration converts without overflowing.
func secondsToDuration(s float64) time.Duration {
	if math.IsNaN(s) || s <= 0 {
		return 0
	}
	if s >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

// RateLimit is the RateLimit-* headers of an acquire: the tightest limit.
type RateLimit struct {
	Limit     int64         // RateLimit-Limit: the limit's capacity
	Remaining int64         // RateLimit-Remaining: what it holds after the call
	Reset     time.Duration // RateLimit-Reset: until it is full again
}

// parseRateLimit reads the RateLimit-* headers; ok is false unless all three
// parse.
func parseRateLimit(h http.Header) (rl RateLimit, ok bool) {
	lim, err1 := strconv.ParseInt(strings.TrimSpace(h.Get(wire.HeaderLimit)), 10, 64)
	rem, err2 := strconv.ParseInt(strings.TrimSpace(h.Get(wire.HeaderRemaining)), 10, 64)
	rst, err3 := strconv.ParseFloat(strings.TrimSpace(h.Get(wire.HeaderReset)), 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return RateLimit{}, false
	}
	return RateLimit{Limit: lim, Remaining: rem, Reset: secondsToDuration(rst)}, true
}
