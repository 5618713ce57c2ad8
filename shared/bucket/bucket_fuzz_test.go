package bucket

import (
	"math"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// params maps three arbitrary int64s onto Valid Params, so that the
// fuzzer spends no inputs on rejected ones.
func params(capacity, amount, period int64) Params {
	pos := func(x int64) int64 {
		if x &= math.MaxInt64; x == 0 {
			return 1
		}
		return x
	}
	return Params{Capacity: pos(capacity), RefillAmount: pos(amount), RefillPeriod: pos(period)}
}

// seed adds corpus entries shaped like real buckets and like the edges.
func seed(f *testing.F, extra ...int64) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	rows := [][6]int64{
		// tokens, lastRefill, now, capacity, amount, period
		{0, t0, t0 + 30*sec, 100_000 * tok, 100_000 * tok, minute},
		{0, 0, 7, 100 * tok, 100 * tok, minute},
		{-1_500 * tok, t0, t0 + 90*sec, 1_000 * tok, 1_000 * tok, minute},
		{150 * tok, t0, t0 + 61, 50 * tok, tok, minute},
		{5, 0, 1, 10, 3, 2},
		{0, 3, 2, 10, 3, 5},
		{minI, minI, maxI, maxI, maxI, 1},
		{maxI, 0, maxI, maxI, 1, maxI},
		{0, -1, maxI - 1, maxI, 1, maxI},
		{minI, 0, 1, 1, maxI, 2},
	}
	for _, r := range rows {
		args := []any{r[0], r[1], r[2], r[3], r[4], r[5]}
		for _, e := range extra {
			args = append(args, e)
		}
		f.Add(args...)
	}
}

// FuzzRefillCapacity: a refill never lifts a balance above Capacity, and
// never lifts one that is already above it (it may clamp it down).
//
//	s.Tokens <= Capacity  =>  Refill(s).Tokens <= Capacity
//	s.Tokens >  Capacity  =>  Refill(s).Tokens in {s.Tokens, Capacity}
func FuzzRefillCapacity(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, tokens, last, now, capacity, amount, period int64) {
		p := params(capacity, amount, period)
		s := State{Tokens: tokens, LastRefill: last}
		r := Refill(s, p, now)
		if s.Tokens <= p.Capacity {
			assert.LessOrEqual(t, r.Tokens, p.Capacity)
		} else if r.Tokens != s.Tokens {
			assert.Equal(t, p.Capacity, r.Tokens, "a balance above capacity is only ever clamped")
		}
		// Consume and Force refill first, so their refills obey the same
		// rule; Consume never adds to what Refill gave.
		c, _ := Consume(s, p, now, 0)
		assert.Equal(t, r, c)
	})
}

// FuzzRefillPieces: refilling at t1 and then at t2 (t1 <= t2) is within
// one millitoken of refilling at t2 once, and never above it:
//
//	once := Refill(s, t2); pieces := Refill(Refill(s, t1), t2)
//	once.Tokens-1 <= pieces.Tokens <= once.Tokens
//
// and the two are equal when RefillAmount is a multiple of RefillPeriod or
// RefillPeriod a multiple of RefillAmount. This holds with the capacity
// clamp and for balances above Capacity: the one-millitoken gap comes from
// a fraction of a millitoken that accrued in less than a millisecond at
// t1 and could not be kept as time.
func FuzzRefillPieces(f *testing.F) {
	seed(f, t0+45*sec)
	f.Fuzz(func(t *testing.T, tokens, last, t2, capacity, amount, period, t1 int64) {
		p := params(capacity, amount, period)
		if t1 > t2 {
			t1, t2 = t2, t1
		}
		s := State{Tokens: tokens, LastRefill: last}
		once := Refill(s, p, t2)
		mid := Refill(s, p, t1)
		pieces := Refill(mid, p, t2)

		require.LessOrEqual(t, pieces.Tokens, once.Tokens, "pieces minted more than once: mid %+v", mid)
		gap := uint64(once.Tokens) - uint64(pieces.Tokens)
		assert.LessOrEqual(t, gap, uint64(1), "once %+v pieces %+v mid %+v", once, pieces, mid)
		if p.RefillAmount%p.RefillPeriod == 0 || p.RefillPeriod%p.RefillAmount == 0 {
			assert.Equal(t, once.Tokens, pieces.Tokens, "exact rates lose nothing")
		}
		// Both end at or before t2 and the pieces never end ahead.
		assert.LessOrEqual(t, pieces.LastRefill, max(t2, last))
		assert.LessOrEqual(t, once.LastRefill, max(t2, last))
	})
}

// FuzzRefillModel checks every function against a math/big model of the
// documented formulas, for any State, any instant and any Valid Params,
// and checks the invariants that do not need a model:
//
//   - no panic, no wrap-around;
//   - Refill never lowers a balance at or below Capacity;
//   - LastRefill never moves backwards and never past now;
//   - Refill is idempotent at a given instant;
//   - Consume's decision and state agree with its definition, and its
//     RetryAfter is a sufficient wait for any amount up to Capacity, and
//     at most 1+k ms more than the shortest one (k = pending time).
func FuzzRefillModel(f *testing.F) {
	seed(f, 1000)
	f.Fuzz(func(t *testing.T, tokens, last, now, capacity, amount, period, n int64) {
		p := params(capacity, amount, period)
		s := State{Tokens: tokens, LastRefill: last}

		r := Refill(s, p, now)
		require.Equal(t, refillModel(s, p, now), r, "Refill(%+v, %+v, %d)", s, p, now)
		if s.Tokens <= p.Capacity {
			assert.GreaterOrEqual(t, r.Tokens, s.Tokens, "Refill lowered a balance")
		}
		assert.GreaterOrEqual(t, r.LastRefill, s.LastRefill, "LastRefill moved backwards")
		assert.LessOrEqual(t, r.LastRefill, max(now, s.LastRefill), "LastRefill moved past now")
		assert.Equal(t, r, Refill(r, p, now), "Refill is not idempotent")

		assert.Equal(t, retryModel(n, p), RetryAfter(n, p), "RetryAfter(%d, %+v)", n, p)
		assert.Equal(t, fillModel(p), FillTime(p), "FillTime(%+v)", p)
		assert.Equal(t, floorDiv(n, 1000), Whole(n))

		fs := Force(s, p, now, n)
		want := new(big.Int).Sub(big.NewInt(r.Tokens), big.NewInt(n))
		assert.Equal(t, State{Tokens: clamp64(want), LastRefill: r.LastRefill}, fs, "Force")

		c, d := Consume(s, p, now, n)
		amt := max(n, 0)
		assert.Equal(t, r.Tokens, d.Available)
		assert.Equal(t, r.Tokens >= amt, d.OK)
		assert.Equal(t, r.LastRefill, c.LastRefill)
		if d.OK {
			assert.Equal(t, r.Tokens-amt, c.Tokens)
			assert.Zero(t, d.RetryAfter)
			return
		}
		assert.Equal(t, r, c, "a denial returns the refilled state")
		deficit := new(big.Int).Sub(big.NewInt(amt), big.NewInt(r.Tokens))
		wait := new(big.Int).Mul(deficit, big.NewInt(p.RefillPeriod))
		wait.Quo(wait, big.NewInt(p.RefillAmount)).Add(wait, big.NewInt(1))
		if now < r.LastRefill { // the caller's clock lags: add the lag
			wait.Add(wait, new(big.Int).Sub(big.NewInt(r.LastRefill), big.NewInt(now)))
		}
		assert.Equal(t, clamp64(wait), d.RetryAfter)
		assert.Equal(t, d.RetryAfter, TimeUntil(s, p, now, amt))
		// Check sufficiency wherever now+RetryAfter is an unsaturated int64.
		if amt <= p.Capacity && d.RetryAfter < math.MaxInt64 && (now < 0 || d.RetryAfter <= math.MaxInt64-now) {
			later := Refill(c, p, now+d.RetryAfter)
			assert.GreaterOrEqual(t, later.Tokens, amt, "RetryAfter %d was not enough", d.RetryAfter)
			// ... and at most 1+k ms longer than needed (k: pending time).
			if k := now - r.LastRefill; k >= 0 && d.RetryAfter >= 2+k {
				early := Refill(c, p, now+d.RetryAfter-2-k)
				assert.Less(t, early.Tokens, amt, "RetryAfter %d is more than 1+%d ms too long", d.RetryAfter, k)
			}
		}
	})
}

// refillModel is Refill written directly from its documentation in
// arbitrary precision: add = floor(elapsed*amount/period), LastRefill
// advances by ceil(add*period/amount).
func refillModel(s State, p Params, now int64) State {
	if now <= s.LastRefill {
		return s
	}
	amount, period := big.NewInt(p.RefillAmount), big.NewInt(p.RefillPeriod)
	elapsed := new(big.Int).Sub(big.NewInt(now), big.NewInt(s.LastRefill))
	add := new(big.Int).Mul(elapsed, amount)
	add.Quo(add, period) // operands >= 0: Quo is floor
	if add.Sign() == 0 {
		return s
	}
	spent := new(big.Int).Mul(add, period)
	spent.Add(spent, amount).Sub(spent, big.NewInt(1)).Quo(spent, amount) // ceil
	tokens := new(big.Int).Add(big.NewInt(s.Tokens), add)
	if c := big.NewInt(p.Capacity); tokens.Cmp(c) > 0 {
		tokens = c
	}
	rf := spent.Add(spent, big.NewInt(s.LastRefill))
	return State{Tokens: tokens.Int64(), LastRefill: rf.Int64()}
}

// retryModel is RetryAfter from its documentation.
func retryModel(deficit int64, p Params) int64 {
	if deficit <= 0 {
		return 0
	}
	return retryBig(big.NewInt(deficit), p)
}

// retryBig is floor(deficit*period/amount)+1 saturated, for deficit > 0.
func retryBig(deficit *big.Int, p Params) int64 {
	w := new(big.Int).Mul(deficit, big.NewInt(p.RefillPeriod))
	w.Quo(w, big.NewInt(p.RefillAmount)).Add(w, big.NewInt(1))
	return clamp64(w)
}

// fillModel is ceil(capacity*period/amount) saturated.
func fillModel(p Params) int64 {
	amount := big.NewInt(p.RefillAmount)
	w := new(big.Int).Mul(big.NewInt(p.Capacity), big.NewInt(p.RefillPeriod))
	w.Add(w, amount).Sub(w, big.NewInt(1)).Quo(w, amount)
	return clamp64(w)
}

// clamp64 saturates x to the int64 range.
func clamp64(x *big.Int) int64 {
	switch {
	case x.IsInt64():
		return x.Int64()
	case x.Sign() > 0:
		return math.MaxInt64
	default:
		return math.MinInt64
	}
}

// floorDiv is a/b rounded toward negative infinity, via math/big.
func floorDiv(a, b int64) int64 {
	q, m := new(big.Int), new(big.Int)
	q.DivMod(big.NewInt(a), big.NewInt(b), m) // Euclidean: floor for b > 0
	return q.Int64()
}
