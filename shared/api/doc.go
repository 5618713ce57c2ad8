// Package api is the acquire HTTP API (DECISIONS §4.2): one http.Handler
// shared by the acquire Lambda (behind a Function URL) and by
// `zae-limiter serve`. It speaks the JSON of package wire and is a thin
// adapter over package limiter, plus the HTTP leases: signed tokens whose
// changing state lives in a lease-state item.
//
// # Routes and answers
//
//	POST /v1/acquire          200 AcquireResponse | 400 | 404 | 413 | 415 | 429 | 503
//	POST /v1/leases/adjust    200 AdjustResponse  | 400 | 404 | 409 | 410 | 413 | 415 | 503
//	POST /v1/leases/release   200 ReleaseResponse | 400 | 404 | 409 | 410 | 413 | 415 | 503
//	GET  /v1/available        200 AvailableResponse | 400 | 404 | 503
//	GET  /healthz             200 {"status": "ok"} (no DynamoDB call, no token)
//
// Every other answer is {"error": code, "message": text}, the text in our
// own words (causes are logged, never sent):
//
//	400 invalid_request    bad JSON, a second JSON value, unknown fields, wrong
//	                       types, bad ids or names, negative or oversized amounts,
//	                       consume or adjust missing, a limit nobody has
//	400 invalid_lease      a token that is malformed, altered or signed by no key
//	401 unauthorized       Options.Token is set and the bearer token is missing or
//	                       wrong (WWW-Authenticate: Bearer)
//	404 not_found          an unknown path; an unregistered namespace
//	405 method_not_allowed a known path with another method (Allow header)
//	409 lease_closed       adjust or release of a released lease; nothing changes
//	410 lease_expired      the token's expiry has passed
//	413 request_too_large  a body over wire.MaxBodyBytes (64 KiB)
//	415 unsupported_media_type
//	                       a POST whose Content-Type is not application/json
//	                       (parameters such as charset allowed; checked after
//	                       the token): a web page cannot post a form or a
//	                       "simple" request to an unauthenticated serve
//	429 rate_limited       with retry_after_seconds (ms precision), violations,
//	                       retryable (false when the request asks a limit for
//	                       more than its capacity: never admissible at the
//	                       current limits, the message says so) and Retry-After
//	                       (whole seconds, rounded up)
//	503 unavailable        DynamoDB failed (and, on acquire, the namespace's
//	                       on_unavailable policy is block), or the request was
//	                       cancelled
//	500 internal_error     a bug
//
// A lease token is checked in the order signature (400), expiry (410),
// closed (409): an adjust naming a limit the lease does not hold (400) or
// an adjust or rollback release whose namespace is gone (404) first reads
// the lease state (consistently, on that error path only) and answers 409
// if the lease is closed. GET routes also answer HEAD.
//
// 200 and 429 answers of acquire carry RateLimit-Limit (capacity),
// RateLimit-Remaining (available, at least 0) and RateLimit-Reset (whole
// seconds, rounded up). On 200 they describe the tightest limit (lowest
// available/capacity; the first on ties) and Reset is the time until it is
// full again; on 429 they describe the violation that decides the wait and
// Reset equals Retry-After. A degraded acquire (backend down, policy allow)
// has no statuses and so no RateLimit headers; its body says "degraded".
//
// /v1/available reports per limit retry_after_seconds: 0 when at least one
// whole token is there, else how long until one is (a second read, only
// when some limit is depleted). When no limits are configured for the
// entity and resource it answers 200 with no limits, like the CLI's read.
//
// # Namespaces
//
// The handler never registers a namespace, not even "default": an
// unregistered namespace is 404 not_found on every route, with a message
// naming `zae-limiter namespace register`. `zae-limiter local up` and the
// deployment register "default". A namespace name resolves through the
// store's cache; each namespace id gets one limiter, built on first use and
// kept for the life of the handler.
//
// # Lease tokens
//
// A token is base64url(payload) "." base64url(HMAC-SHA256(key, first part)),
// both unpadded; the MAC covers the encoded payload exactly as sent. The
// payload is JSON:
//
//	{"v": 1, "id": lease id (128 random bits, base64url), "ns": namespace id,
//	 "nsn": namespace name, "e": entity, "r": resource, "exp": expiry (unix ms),
//	 "d": true when degraded (omitted otherwise),
//	 "b": [{"e": entity, "r": resource, "s": shard,
//	        "l": [{"n": name, "c": capacity, "a": refill amount, "p": period s}],
//	        "m": {limit: initial consumption in millitokens},
//	        "g": the shard item's generation (refunds go to it only)}]}
//
// "b" holds every bucket shard the acquire wrote (the entity's, then a
// cascading parent's) with all its limits: enough to rebuild the lease with
// limiter.Resume and write adjustments and rollbacks to the exact shards.
// The token never changes: adjust answers with the same string. Keys
// (Options.Keys): the first signs, every one verifies, so a key is rotated
// by putting the new one first and dropping the old one after LeaseTTL.
//
// # Lease state
//
// What changes lives in one item per lease (package leasestate owns it: key,
// attributes, codec and the planner of its conditional writes, ADR-007),
// written only by the first adjust or release (a lease that is acquired and
// left to expire, the normal commit, costs no write beyond the acquire).
//
// Adjust: one conditional UpdateItem (leasestate.Gate) ADDs the deltas of
// every bucket that has the limit and returns the item (ALL_NEW): the
// close-once gate. Its condition is that the lease is open and that every
// delta keeps the lease's net amount of a bucket and limit (initial +
// adjustments) within [0, limits.MaxTokens]: a lease gives back at most
// what it took and holds at most what one acquire may take, so its sums
// never leave int64. A failed condition writes nothing and is told apart
// by the old item (ALL_OLD, leasestate.Lease.Check): closed is 409
// lease_closed, a refund beyond what the lease holds or a charge past the
// bound is 400 invalid_request naming the limit and the amount held. Then
// the deltas go to the buckets through the resumed lease, one bucket per
// write, unchecked (debt is allowed, DECISIONS §3.16). If every bucket
// write landed or is a refund of unknown outcome (booked as done, see Lost
// answers), the answer is 200 with the adjustment as booked. Otherwise the
// whole adjustment is taken back, so that a 503 means nothing changed and a
// retry is safe: the buckets that are counted as having got their deltas
// get the opposite (booked by the same outcome rules), then the gate's ADD
// is taken back (leasestate.Undo) for everything the buckets are not
// counted as keeping, on condition that the lease is still open and its net
// stays within bounds; when that condition fails (a rollback closed the
// lease and may have returned the deltas, or a concurrent adjust gave
// tokens back on the strength of them) the deltas are written to the
// buckets again instead, so the buckets are charged what the state says.
// Exactly: a 503 means nothing is booked, except charges that could not be
// taken back (a retry charges them again: tokens lost, never minted); when
// a refund could not be taken back it stays booked and the answer is 200
// with consumed as booked (a retry would send it again), the shares not
// booked logged at error level. An adjust whose deltas are all zero writes
// nothing: a consistent read says whether the lease is closed. consumed in
// the answer is the initial amounts plus every adjustment booked, whole
// tokens.
//
// Release: the same gate SETs closed = true and rolled_back, returning the
// adjustments; rollback=false stops there (commit), rollback=true gives
// back initial + adjustments on the exact shards. If that rollback fails
// part way, the lease is reopened (leasestate.Reopen) with what was given
// back recorded as adjustments, so a retried release returns exactly the
// rest; the answer is 503. A concurrent adjust and release of one lease are
// ordered by the gate. A state whose adjustments cannot be read exactly (an
// item written before the bound) is never rolled back as if they were 0:
// the lease is reopened, nothing is given back and the answer is 500; a
// commit still closes it.
//
// Lost answers: a refund or a lease-state write whose outcome is unknown
// (a timeout, a lost answer, a 5xx; not a failed condition, throttling or
// a rejected request) is never sent again, neither by the handler nor by
// the SDK's retryer (lease-state writes retry only errors proving nothing
// was applied). It is booked the way that keeps the lease state from
// claiming more than the buckets got: a bucket refund as done, a bucket
// charge as not done (taken back from the state), a gate as done (its
// charges still go to the buckets). So a rollback whose outcome is unknown
// counts as given back: if nothing is left to return the lease stays
// closed, and a retried release is told lease_closed. Where the books
// cannot be balanced for sure, tokens are lost (logged at error level),
// never minted.
//
// A degraded lease holds no bucket: adjust writes nothing (it only checks
// closed), release only closes it.
package api
