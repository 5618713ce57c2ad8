// Package client is the thin Go caller of the zae-limiter acquire HTTP API
// (DECISIONS §4.2): the Lambda Function URL of the acquire function, or the
// same handler served locally by `zae-limiter serve`.
//
// A Client acquires a Lease; the lease's Adjust and Release are written at
// once (they may take the bucket into debt), and the lease ends with Commit
// (keep what was consumed) or Rollback (return the initial amounts and every
// adjustment). Do wraps the three steps around a function. A denial is the
// typed error *RateLimitedError (use errors.As); every other non-200 answer
// is an *APIError matched with errors.Is against ErrLeaseClosed,
// ErrLeaseExpired, ErrInvalidLease, ErrUnavailable and friends.
//
// # Authentication
//
// WithBearerToken sends "Authorization: Bearer <token>" (for
// `zae-limiter serve --token`). WithSigV4 and WithDefaultCredentials sign
// every request with AWS Signature Version 4 for service "lambda", as a
// Function URL with AuthType AWS_IAM requires (the payload hash is sent in
// X-Amz-Content-Sha256 and signed). WithDefaultCredentials signs https URLs
// only: an http:// URL (a local serve) is sent unsigned, so the same option
// works against a Function URL and against `zae-limiter serve` on a machine
// with no AWS region or credentials.
//
// # Retries
//
// A request is retried (at most WithRetry's max times, with exponential
// backoff and full jitter, never past the context) only where a retry cannot
// charge twice:
//
//   - GET /v1/available and GET /healthz are retried on any transport error
//     and on 5xx answers except 501.
//   - POST /v1/leases/release is retried on the same conditions, because the
//     server closes a lease once. If an earlier attempt of the lease's release
//     may have reached the server (a transport error other than a dial
//     failure, or a 5xx answer), a later 409 lease_closed means that attempt
//     landed, and the release reports success. This memory lives on the Lease,
//     so it also covers a second Commit/Rollback call after a failed one.
//   - POST /v1/acquire and POST /v1/leases/adjust are retried only when the
//     error proves the request never left this process (a failure to dial:
//     connection refused, DNS failure, dial timeout). Any other transport
//     error and every answer (including 5xx) is returned to the caller.
//   - 429 is never retried: it is a denial, reported as *RateLimitedError
//     with the server's RetryAfter.
//
// # Dependencies
//
// The package imports only the standard library, shared/wire and the AWS
// SDK's aws, aws/signer/v4 and config packages (for SigV4 and the default
// credential chain; config brings the STS/SSO credential providers along).
// It never depends on DynamoDB, aws-lambda-go, shared/store, shared/limiter
// or any other package of this module. A test enforces this.
package client
