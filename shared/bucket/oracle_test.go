package bucket

// The classic token bucket (tokens plus a refill timestamp) lives here, in
// the tests: it is not what runs (buckets are stored in the GCRA form of
// clock.go) but the oracle the GCRA form is checked against, request for
// request (clock_test.go, clock_fuzz_test.go).

import (
	"math"
	"math/bits"
)

// Share returns the Params of one shard when p is split over n shards:
// Capacity/n and RefillAmount/n, rounded down but never below one
// millitoken, with the same RefillPeriod. n <= 1 returns p unchanged.
//
// Rounding down keeps the sum over the n shards at or below p, both in
// capacity and in rate, as long as Capacity and RefillAmount are each at
// least n millitokens (the one-millitoken floor can only push the sum over
// p when a shard's exact share is below one millitoken).
func (p Params) Share(n int) Params {
	if n <= 1 {
		return p
	}
	d := int64(n)
	return Params{
		Capacity:     max(p.Capacity/d, 1),
		RefillAmount: max(p.RefillAmount/d, 1),
		RefillPeriod: p.RefillPeriod,
	}
}

// State is a bucket's balance as of LastRefill. It is a plain value; the
// functions of this package return a new State and never modify their
// argument.
type State struct {
	Tokens     int64 // millitokens; negative while the bucket is in debt
	LastRefill int64 // epoch ms up to which refill has been accounted for
}

// Full returns a new bucket holding Capacity millitokens as of now.
func Full(p Params, now int64) State {
	return State{Tokens: p.Capacity, LastRefill: now}
}

// Refill returns s brought forward to now: the millitokens that accrued
// since s.LastRefill are added, up to p.Capacity.
//
// If now <= s.LastRefill (a clock behind the last writer's), or less than
// one millitoken has accrued, s is returned unchanged; in particular a
// balance above Capacity is then not clamped. Otherwise the balance becomes
// min(Capacity, Tokens+add) and LastRefill advances to the earliest instant
// at which add millitokens had accrued, so that the fraction of a millitoken
// still pending is paid out by a later refill. Time spent at capacity is
// forfeited: LastRefill advances whether or not add fitted in the bucket.
//
// The package documentation lists the invariants Refill keeps.
func Refill(s State, p Params, now int64) State {
	if now <= s.LastRefill || !p.Valid() {
		return s
	}
	// now > LastRefill, so the difference fits in a uint64 even when it
	// does not fit in an int64.
	elapsed := uint64(now) - uint64(s.LastRefill)
	add, keep := accrue(elapsed, p)
	if add == 0 {
		return s
	}
	s.Tokens = addCapped(s.Tokens, add, p.Capacity)
	// keep < elapsed, so LastRefill strictly advances and stays <= now.
	s.LastRefill = now - int64(keep)
	return s
}

// accrue returns the whole millitokens that accrue in elapsed milliseconds
// (saturated at math.MaxUint64) and keep, the trailing milliseconds of
// elapsed that are not needed to produce them.
//
// With elapsed*RefillAmount = add*RefillPeriod + rem (0 <= rem <
// RefillPeriod), the shortest time that produces add millitokens is
// ceil(add*RefillPeriod/RefillAmount) = elapsed - floor(rem/RefillAmount);
// keep is that floor. keep ms accrue less than one millitoken, and when
// add > 0, keep < elapsed.
func accrue(elapsed uint64, p Params) (add, keep uint64) {
	amount, period := uint64(p.RefillAmount), uint64(p.RefillPeriod)
	hi, lo := bits.Mul64(elapsed, amount)
	var rem uint64
	if hi >= period {
		// The quotient needs more than 64 bits; far more than any
		// Capacity can hold. Reduce hi to get the remainder alone.
		add = math.MaxUint64
		_, rem = bits.Div64(hi%period, lo, period)
	} else {
		add, rem = bits.Div64(hi, lo, period)
	}
	return add, rem / amount
}

// addCapped returns min(capacity, tokens+add), or capacity if tokens is
// already at or above it.
func addCapped(tokens int64, add uint64, capacity int64) int64 {
	if tokens >= capacity {
		return capacity
	}
	// capacity > tokens, so the room fits in a uint64.
	room := uint64(capacity) - uint64(tokens)
	if add >= room {
		return capacity
	}
	// tokens < tokens+add < capacity: the true sum is an int64, so the
	// wrap-around addition gives it exactly.
	return int64(uint64(tokens) + add)
}

// Decision is the outcome of a Consume.
type Decision struct {
	// OK reports whether the amount was taken.
	OK bool
	// Available is the balance after refill and before consuming, in
	// millitokens; negative while the bucket is in debt.
	Available int64
	// RetryAfter is how many milliseconds after now the amount will be
	// available: RetryAfter of the shortfall, plus the lag if now is behind
	// the state's LastRefill (see TimeUntil); 0 when OK.
	RetryAfter int64
}

// Consume refills s at now, then takes amount millitokens if the balance
// covers them. On denial the refilled state is returned (still worth
// writing back, or not: it represents the same bucket) together with the
// wait until the amount would be available.
//
// A zero amount succeeds if and only if the refilled balance is >= 0: a
// bucket in debt denies even a request for nothing. Callers that want
// unrequested limits to be ignored should not consult them at all. A
// negative amount is treated as zero; Consume never adds tokens (use Force
// to return them).
func Consume(s State, p Params, now, amount int64) (State, Decision) {
	s = Refill(s, p, now)
	amount = max(amount, 0)
	d := Decision{Available: s.Tokens}
	if s.Tokens >= amount {
		s.Tokens -= amount // 0 <= amount <= Tokens: cannot overflow
		d.OK = true
		return s, d
	}
	d.RetryAfter = waitFor(s, p, now, uint64(amount)-uint64(s.Tokens))
	return s, d
}

// Force refills s at now, then subtracts amount millitokens without any
// bound: the balance may go negative (debt) and, with a negative amount
// (tokens handed back), above Capacity until the next refill clamps it.
// The subtraction saturates at the int64 limits instead of wrapping.
func Force(s State, p Params, now, amount int64) State {
	s = Refill(s, p, now)
	s.Tokens = subSat(s.Tokens, amount)
	return s
}

// RetryAfter returns how many milliseconds it takes to accrue deficit
// millitokens at p's rate: 0 if deficit <= 0, else
// floor(deficit*RefillPeriod/RefillAmount) + 1. The extra millisecond makes
// the wait sufficient whatever the rounding (it may exceed the shortest
// sufficient wait by one millisecond). The result saturates at
// math.MaxInt64, which is also returned for invalid Params.
func RetryAfter(deficit int64, p Params) int64 {
	if deficit <= 0 {
		return 0
	}
	return retryAfter(uint64(deficit), p)
}

// retryAfter is RetryAfter for a positive deficit that may exceed
// math.MaxInt64 (the gap between two int64 balances).
func retryAfter(deficit uint64, p Params) int64 {
	if deficit == 0 {
		return 0
	}
	if !p.Valid() {
		return math.MaxInt64
	}
	amount, period := uint64(p.RefillAmount), uint64(p.RefillPeriod)
	hi, lo := bits.Mul64(deficit, period)
	if hi >= amount {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, amount)
	if q >= math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q) + 1
}

// TimeUntil returns how many milliseconds after now the bucket will hold
// needed millitokens: 0 if it already does once refilled at now, else
// RetryAfter of the shortfall. If now is behind s.LastRefill (the caller's
// clock lags the last writer's), the lag is added: nothing accrues until
// the caller's clock reaches LastRefill, and a wait counted from a lagging
// now would otherwise be too short. The sum saturates at math.MaxInt64.
//
// The capacity is not considered: if needed exceeds p.Capacity the result
// is the time the shortfall would take to accrue in a bucket without a
// ceiling, although the balance will never reach needed. Callers that care
// compare needed with Capacity first.
func TimeUntil(s State, p Params, now, needed int64) int64 {
	s = Refill(s, p, now)
	if s.Tokens >= needed {
		return 0
	}
	return waitFor(s, p, now, uint64(needed)-uint64(s.Tokens))
}

// waitFor is the wait, counted from now, until a refilled state s has
// accrued deficit more millitokens: RetryAfter of the deficit, plus the
// lag when now is behind s.LastRefill (nothing accrues until the caller's
// clock has caught up with the last writer's). Saturates at MaxInt64.
func waitFor(s State, p Params, now int64, deficit uint64) int64 {
	w := retryAfter(deficit, p)
	if now >= s.LastRefill {
		return w
	}
	lag := uint64(s.LastRefill) - uint64(now)
	if lag >= math.MaxInt64-uint64(w) {
		return math.MaxInt64
	}
	return w + int64(lag)
}
