// Package wire is the JSON contract of the acquire HTTP API (pinned in
// DECISIONS §4.2): the request and response bodies, error codes and header
// names shared by the handler (package api) and the Go client. It imports
// only the standard library, so the client stays free of AWS service SDKs.
package wire

// Paths of the API.
const (
	PathAcquire   = "/v1/acquire"
	PathAdjust    = "/v1/leases/adjust"
	PathRelease   = "/v1/leases/release"
	PathAvailable = "/v1/available"
	PathHealth    = "/healthz"
)

// MaxBodyBytes is the largest request body accepted (413 beyond).
const MaxBodyBytes = 64 << 10

// ContentType is the media type every POST body must declare (415
// otherwise); parameters such as charset=utf-8 are allowed.
const ContentType = "application/json"

// Limit is one limit in JSON. The four numbers are required in a request
// (the `required` tag is read by the handler's strict decoder). Calendar
// ("day", "week" or "month") makes it a calendar quota (refill_amount equal
// to capacity, refill_period_seconds the period's longest length: 86400,
// 604800, 2678400); Shadow makes it count without ever denying.
type Limit struct {
	Name                string `json:"name" required:"true"`
	Capacity            int64  `json:"capacity" required:"true"`
	RefillAmount        int64  `json:"refill_amount" required:"true"`
	RefillPeriodSeconds int64  `json:"refill_period_seconds" required:"true"`
	Calendar            string `json:"calendar,omitempty"`
	Shadow              bool   `json:"shadow,omitempty"`
}

// AcquireRequest is the body of POST /v1/acquire.
type AcquireRequest struct {
	Namespace string           `json:"namespace,omitempty"`
	EntityID  string           `json:"entity_id"`
	Resource  string           `json:"resource"`
	Consume   map[string]int64 `json:"consume"`
	Limits    []Limit          `json:"limits,omitempty"`
}

// LimitState is one limit's state after an acquire, or in /v1/available.
type LimitState struct {
	EntityID          string   `json:"entity_id"`
	Name              string   `json:"name"`
	Available         int64    `json:"available"`
	Capacity          int64    `json:"capacity"`
	RetryAfterSeconds *float64 `json:"retry_after_seconds,omitempty"`
	// Calendar is a calendar quota's period and ResetsAt (RFC 3339, UTC)
	// its next boundary, when it is full again.
	Calendar string `json:"calendar,omitempty"`
	ResetsAt string `json:"resets_at,omitempty"`
	// Credit is the granted tokens the bucket holds besides Available.
	Credit int64 `json:"credit,omitempty"`
	// Shadow marks a limit that counts but never denies.
	Shadow bool `json:"shadow,omitempty"`
}

// AcquireResponse is the 200 body of POST /v1/acquire.
type AcquireResponse struct {
	Lease    string           `json:"lease"`
	EntityID string           `json:"entity_id"`
	Resource string           `json:"resource"`
	Consumed map[string]int64 `json:"consumed"`
	Limits   []LimitState     `json:"limits"`
	// Degraded is true when the backend was unavailable and the
	// namespace's on_unavailable policy admitted the request without a
	// check: nothing was consumed and the lease holds no bucket.
	Degraded bool `json:"degraded,omitempty"`
	// ShadowViolations are the shadow limits that would have denied the
	// request (it was admitted: they never deny), shaped like a 429's
	// violations.
	ShadowViolations []Violation `json:"shadow_violations,omitempty"`
}

// AdjustRequest is the body of POST /v1/leases/adjust.
type AdjustRequest struct {
	Lease  string           `json:"lease"`
	Adjust map[string]int64 `json:"adjust"`
}

// AdjustResponse is its 200 body: the same token and the net consumption.
type AdjustResponse struct {
	Lease    string           `json:"lease"`
	Consumed map[string]int64 `json:"consumed"`
}

// ReleaseRequest is the body of POST /v1/leases/release.
type ReleaseRequest struct {
	Lease    string `json:"lease"`
	Rollback bool   `json:"rollback"`
}

// ReleaseResponse is its 200 body.
type ReleaseResponse struct {
	Lease      string `json:"lease"`
	RolledBack bool   `json:"rolled_back"`
}

// AvailableResponse is the 200 body of GET /v1/available.
type AvailableResponse struct {
	Limits []LimitState `json:"limits"`
}

// Violation is one limit that denied a request.
type Violation struct {
	EntityID  string `json:"entity_id"`
	Resource  string `json:"resource"`
	Limit     string `json:"limit"`
	Available int64  `json:"available"`
	Requested int64  `json:"requested"`
}

// Error is every non-200 body. RetryAfterSeconds, Violations and
// Retryable are set on 429 only.
type Error struct {
	Code              string      `json:"error"`
	Message           string      `json:"message"`
	RetryAfterSeconds float64     `json:"retry_after_seconds,omitempty"`
	Violations        []Violation `json:"violations,omitempty"`
	// Retryable is false when the request can never be admitted at the
	// current limits (it asks a limit for more than its capacity): the
	// 429's wait is then no promise, and a retry loop should stop. A 429
	// always carries it; absent (an older server) means true.
	Retryable *bool `json:"retryable,omitempty"`
	// Reason is why a 429 was given without judging the limits afresh:
	// "cached" (the bucket was seen unable to take the request, no
	// DynamoDB request was made), "contention" (the bucket kept changing
	// under every attempt: retry soon) or "blocked" (the entity or the
	// parent it cascades to is blocked; Blocked names it). Absent for a
	// plain denial.
	Reason  string `json:"reason,omitempty"`
	Blocked string `json:"blocked,omitempty"`
}

// Error codes.
const (
	CodeRateLimited      = "rate_limited"
	CodeInvalidRequest   = "invalid_request"
	CodeInvalidLease     = "invalid_lease"
	CodeLeaseExpired     = "lease_expired"
	CodeLeaseClosed      = "lease_closed"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooLarge         = "request_too_large"
	CodeUnsupportedType  = "unsupported_media_type"
	CodeUnauthorized     = "unauthorized"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal_error"
)

// Headers of successful and limited acquires (the tightest limit).
const (
	HeaderLimit      = "RateLimit-Limit"
	HeaderRemaining  = "RateLimit-Remaining"
	HeaderReset      = "RateLimit-Reset"
	HeaderRetryAfter = "Retry-After"
)
