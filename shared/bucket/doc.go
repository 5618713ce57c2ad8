// Package bucket is the token-bucket arithmetic of the limiter: pure
// functions over plain values, with no clock, no I/O and no locks. The
// bucket state itself lives in DynamoDB; this package only says what a
// state becomes at a given instant.
//
// # Units
//
// Every amount is an int64 count of millitokens (1 token = MilliPerToken =
// 1000 millitokens) and every instant an int64 count of Unix epoch
// milliseconds. Integers rather than floats keep a bucket shared by many
// processes exact and reproducible: two writers that read the same item
// and use the same instant compute the same result, bit for bit.
//
// Time is always a parameter (now). Nothing here calls time.Now, so the
// callers decide which clock to trust and tests replay exact instants.
//
// # The algorithm
//
// A bucket has Params (Capacity, and RefillAmount millitokens per
// RefillPeriod milliseconds) and a State (Tokens, LastRefill). Tokens are
// not added by a timer; they are computed lazily whenever the bucket is
// looked at. Refill at instant now:
//
//	elapsed = now - LastRefill              nothing happens if elapsed <= 0
//	add     = floor(elapsed * RefillAmount / RefillPeriod)
//	                                        nothing happens if add == 0
//	Tokens  = min(Capacity, Tokens + add)
//	LastRefill advances to the earliest instant at which add millitokens
//	had fully accrued: now - floor(rem / RefillAmount), where
//	rem = (elapsed * RefillAmount) mod RefillPeriod
//
// The fraction of a millitoken left over is therefore kept as time (the
// whole milliseconds that accrued less than one millitoken) and is paid out
// by a later refill; this is the drift compensation that stops frequent
// refills from rounding the rate down to nothing. Products are computed in
// 128 bits (math/bits), so decades of idle time at the largest rates
// neither overflow nor need a separate cap.
//
// Consume takes an amount only if the refilled balance covers it; Force
// takes (or, with a negative amount, returns) an amount without any bound
// and is how adjustments, corrections and debt are written. RetryAfter,
// TimeUntil and FillTime turn millitokens into waits.
//
// # Invariants
//
// For Valid Params and any State and instants (all int64 values; the
// arithmetic saturates rather than wraps):
//
//   - Refill never mints tokens for time that has not passed: a clock at or
//     behind LastRefill changes nothing, and LastRefill only moves forward,
//     never past now.
//   - Refill never raises Tokens above Capacity. A balance already above
//     Capacity (after the capacity was lowered, or after Force returned
//     tokens) is left alone while add == 0 and is clamped to Capacity by the
//     first refill that adds anything.
//   - Refill is idempotent: refilling twice at the same instant is the same
//     as refilling once.
//   - Refilling in pieces never yields more than refilling at once. If a
//     refill at t1 and another at t2 (t1 <= t2) yield x, and a single refill
//     at t2 of the same starting state yields y, then y-1 <= x <= y; more
//     generally k refills lose at most k-1 millitokens against one. When
//     RefillAmount is a multiple of RefillPeriod, or RefillPeriod a multiple
//     of RefillAmount, pieces and once are always equal.
//   - A wait returned by TimeUntil or in a Consume Decision is sufficient:
//     refilling the same state at now+wait yields at least the requested
//     amount (unless the bucket's Capacity is below it, see TimeUntil),
//     also when now lags LastRefill. When now does not lag, it exceeds the
//     shortest sufficient wait by at most 1+k ms, where k is the pending
//     time now-LastRefill of the refilled state (k*RefillAmount <
//     RefillPeriod, so k = 0 at a millitoken per millisecond or more).
//
// # Difference from the Python reference
//
// The reference advances LastRefill by floor(add * RefillPeriod /
// RefillAmount), which is the latest instant that accounts for fewer than
// add millitokens. The leftover then accrues again, so a second refill at
// the same instant mints more, and at rates above one millitoken per
// millisecond (100 000 tokens a minute, say) a bucket refilled every
// millisecond gains close to twice its configured rate. This package
// advances to the earliest instant that accounts for add millitokens
// instead. In the reference's own example (100 tokens a minute, refilled 7
// ms after LastRefill) both mint 11 millitokens, but LastRefill moves to 7,
// not 6. The states are interchangeable: a bucket written by either
// implementation is a valid input to the other.
package bucket
