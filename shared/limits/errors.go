package limits

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors, checked with errors.Is. They are always wrapped with the
// object they concern.
var (
	// ErrNotFound: the named entity, namespace or config does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the object to create exists already.
	ErrExists = errors.New("already exists")
	// ErrUnavailable: the backend could not decide (network, throttling,
	// service errors) and the on_unavailable policy is block.
	ErrUnavailable = errors.New("rate limiter unavailable")
	// ErrLeaseClosed: the lease was committed or rolled back already.
	ErrLeaseClosed = errors.New("lease is closed")
	// ErrInvalid matches every *ValidationError.
	ErrInvalid = errors.New("invalid input")
)

// ValidationError names the field and value that were rejected.
type ValidationError struct {
	Field  string
	Value  string
	Reason string
}

// Invalid builds a *ValidationError.
func Invalid(field, value, reason string) *ValidationError {
	return &ValidationError{Field: field, Value: value, Reason: reason}
}

func (e *ValidationError) Error() string {
	v := e.Value
	if len(v) > 50 {
		v = v[:50] + "..."
	}
	if v == "" {
		// Nothing was given (or nothing names the value): the field alone.
		return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("invalid %s %q: %s", e.Field, v, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true for every validation error.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// OnUnavailable is the policy when the backend cannot decide.
type OnUnavailable string

const (
	// Block rejects with ErrUnavailable (the default).
	Block OnUnavailable = "block"
	// Allow admits with a no-op lease.
	Allow OnUnavailable = "allow"
)

// ParseOnUnavailable accepts "block" or "allow".
func ParseOnUnavailable(s string) (OnUnavailable, error) {
	switch OnUnavailable(s) {
	case Block, Allow:
		return OnUnavailable(s), nil
	}
	return "", Invalid("on_unavailable", s, "must be block or allow")
}

// Status is one limit's state as seen by an acquire or a capacity query.
type Status struct {
	EntityID   string        `json:"entity_id"`
	Resource   string        `json:"resource"`
	Limit      Limit         `json:"limit"`
	Available  int64         `json:"available"` // whole tokens, may be negative (debt)
	Requested  int64         `json:"requested"`
	Exceeded   bool          `json:"exceeded"`
	RetryAfter time.Duration `json:"retry_after"`
	// Shards is how many shards the bucket had when an acquire judged this
	// limit on one of them (each holds Capacity/Shards); 0 or 1 unsharded.
	Shards int `json:"shards,omitempty"`
	// Credit is the granted tokens the bucket holds besides Available
	// (ADR-030): an acquire the bucket cannot take is paid from them.
	Credit int64 `json:"credit,omitempty"`
	// ResetAt is, for a calendar limit, the next boundary of its period:
	// when it is full again (less any debt).
	ResetAt time.Time `json:"reset_at,omitzero"`
}

// ShardCapacity is the most one acquire can take of this limit: the whole
// capacity, or one shard's share of it.
func (s Status) ShardCapacity() int64 {
	if s.Shards > 1 {
		return s.Limit.Capacity / int64(s.Shards)
	}
	return s.Limit.Capacity
}

// Reasons a denial can have besides the limits themselves.
const (
	// ReasonContention: the bucket changed under every attempt to write it
	// (writers racing each other, e.g. with different limits in their
	// caches). Nothing was taken; retrying soon is expected to succeed.
	ReasonContention = "contention"
	// ReasonBlocked: the entity, or the parent it cascades to, is blocked
	// by an admin (`entity block`): nothing was judged or taken (ADR-032).
	ReasonBlocked = "blocked"
	// ReasonCached: denied without a request, on the state of the bucket
	// the limiter last saw (its denial cache): the request could not fit
	// it, and cannot before refill makes it (unless another process gave
	// tokens back meanwhile).
	ReasonCached = "cached"
)

// BlockedRetryAfter is the wait a denial by an open-ended block suggests
// (it is not retryable: only an unblock admits again).
const BlockedRetryAfter = time.Hour

// ContentionRetryAfter is the wait a contention denial suggests.
const ContentionRetryAfter = 100 * time.Millisecond

// ExceededError is the denial of an acquire: every checked limit's status,
// the violations and how long to wait until all requested capacity exists.
type ExceededError struct {
	Statuses []Status
	// Reason is "" for a denial by the limits, else why the request was
	// denied without being judged (ReasonContention, ReasonBlocked).
	Reason string
	// Blocked is the entity whose block denied the request (ReasonBlocked):
	// the entity itself or the parent it cascades to. Until is when the
	// block ends (zero: until unblocked) and Wait how long that was from the
	// denial.
	Blocked string
	Until   time.Time
	Wait    time.Duration
}

// NewBlocked is the denial of a request by entity's block, judged at now.
func NewBlocked(entity string, until, now time.Time) *ExceededError {
	e := &ExceededError{Reason: ReasonBlocked, Blocked: entity, Until: until, Wait: BlockedRetryAfter}
	if !until.IsZero() {
		e.Wait = max(until.Sub(now), time.Millisecond)
	}
	return e
}

// NewExceeded builds the denial; statuses must contain a violation.
func NewExceeded(statuses []Status) *ExceededError {
	return &ExceededError{Statuses: statuses}
}

// NewExceededBecause builds a denial with a reason ("" for the limits').
func NewExceededBecause(reason string, statuses []Status) *ExceededError {
	return &ExceededError{Statuses: statuses, Reason: reason}
}

// Violations are the statuses whose limit could not satisfy the request
// (shadow limits never deny: see ShadowViolations).
func (e *ExceededError) Violations() []Status {
	var v []Status
	for _, s := range e.Statuses {
		if s.Exceeded && !s.Limit.Shadow {
			v = append(v, s)
		}
	}
	return v
}

// ShadowViolations are the statuses of shadow limits that would have denied
// the request.
func ShadowViolations(sts []Status) []Status {
	var v []Status
	for _, s := range sts {
		if s.Exceeded && s.Limit.Shadow {
			v = append(v, s)
		}
	}
	return v
}

// Primary is the violation with the longest wait (the first on ties).
func (e *ExceededError) Primary() Status {
	var p Status
	found := false
	for _, s := range e.Statuses {
		if s.Exceeded && !s.Limit.Shadow && (!found || s.RetryAfter > p.RetryAfter) {
			p, found = s, true
		}
	}
	return p
}

// RetryAfter is the wait after which every requested amount is available.
func (e *ExceededError) RetryAfter() time.Duration {
	if e.Reason == ReasonBlocked {
		return e.Wait
	}
	if e.Reason == ReasonContention {
		return max(e.Primary().RetryAfter, ContentionRetryAfter)
	}
	return e.Primary().RetryAfter
}

// Retryable reports whether waiting can ever admit the request at the
// current limits: false when a violation requests more than its limit's
// whole capacity, which no bucket ever holds. RetryAfter is then still
// finite (when that much would have accrued) but the request is denied
// again then. A request above one shard's share of a sharded bucket is
// retryable: the limit itself can hold it (a shard count is not a limit).
// A denial by an open-ended block is not retryable; one by a block with an
// end is, after RetryAfter.
func (e *ExceededError) Retryable() bool {
	if e.Reason == ReasonBlocked {
		return !e.Until.IsZero() // an open-ended block ends only by an unblock
	}
	for _, v := range e.Violations() {
		if v.Requested > v.Limit.Capacity {
			return false
		}
	}
	return true
}

// RetryAfterHeader renders RetryAfter as whole seconds rounded up.
func (e *ExceededError) RetryAfterHeader() string {
	return fmt.Sprintf("%d", int64(math.Ceil(e.RetryAfter().Seconds())))
}

func (e *ExceededError) Error() string {
	if e.Reason == ReasonBlocked {
		if e.Until.IsZero() {
			return fmt.Sprintf("rate limited: entity %q is blocked (%s) until it is unblocked", e.Blocked, ReasonBlocked)
		}
		return fmt.Sprintf("rate limited: entity %q is blocked (%s) until %s; retry after %s",
			e.Blocked, ReasonBlocked, e.Until.UTC().Format(time.RFC3339), FormatSeconds(e.Wait))
	}
	p := e.Primary()
	if e.Reason == ReasonContention && len(e.Violations()) == 0 {
		return fmt.Sprintf("rate limited: the bucket kept changing under every attempt (%s); retry after %s",
			ReasonContention, FormatSeconds(e.RetryAfter()))
	}
	var names []string
	for _, v := range e.Violations() {
		names = append(names, v.EntityID+"/"+v.Limit.Name)
	}
	msg := fmt.Sprintf("rate limit exceeded for %s/%s: [%s]; retry after %s",
		p.EntityID, p.Resource, strings.Join(names, ", "), FormatSeconds(p.RetryAfter))
	for _, v := range e.Violations() {
		switch {
		case v.Requested > v.Limit.Capacity:
			// Denied like any other (the reference's contract), but
			// waiting will not help: say so.
			msg += fmt.Sprintf("; %s/%s: requested %d exceeds the capacity %d, so it can never be admitted",
				v.EntityID, v.Limit.Name, v.Requested, v.Limit.Capacity)
		case v.Requested > v.ShardCapacity():
			msg += fmt.Sprintf("; %s/%s: requested %d exceeds the %d that each of the bucket's %d shards holds, so it cannot be admitted while the bucket is sharded",
				v.EntityID, v.Limit.Name, v.Requested, v.ShardCapacity(), v.Shards)
		}
	}
	return msg
}

// FormatSeconds renders d in seconds with one decimal ("6.0s", "60.4s"),
// or to the millisecond when shorter than 0.05 s ("0.001s"), so a wait that
// exists never reads as "0.0s".
func FormatSeconds(d time.Duration) string {
	if d > 0 && d < 50*time.Millisecond {
		return strconv.FormatFloat(math.Ceil(d.Seconds()*1000)/1000, 'f', 3, 64) + "s"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
}
