package bucket

import (
	"math"
	"math/bits"
)

// This file is the form in which buckets are stored: the generic cell rate
// algorithm (GCRA), written in millitokens.
//
// Each limit has a clock that counts the millitokens its refill rate has
// produced since Epoch:
//
//	clock(now) = floor((now - Epoch) * RefillAmount / RefillPeriod)
//
// and the stored state is one number, the virtual time W, in the same unit.
// The bucket holds
//
//	Capacity - max(0, W - clock(now))
//
// millitokens: W at or behind the clock means full, each consumption pushes
// W forward, refill is the clock catching up. Taking n millitokens at clock
// c sets W to max(W, c) + n and is admitted iff that is at most c+Capacity.
// This is the token bucket of Refill/Consume with no refill timestamp to
// share between limits or writers, which is what lets a store apply it with
// one conditional write: ADD n where W > c (the "busy" form, commutative, so
// concurrent writers never invalidate each other) and SET c+n where W <= c
// (the "idle" form).

// Epoch is the origin of every bucket clock: 2026-01-01T00:00:00Z, Unix ms.
// Clock saturates at MaxInt64/2, which a clock at MaxRate reaches in 2055
// (and one at a tenth of it in about 2318).
const Epoch int64 = 1_767_225_600_000

// MaxRate is the fastest refill, in millitokens per millisecond, that a
// clock supports (5 million tokens a second, 300 million a minute).
const MaxRate int64 = 5_000_000

// Clock returns the millitokens p has refilled between Epoch and now,
// rounded down (towards minus infinity before Epoch); for a calendar limit
// the refill of every period begun since Epoch (a step function). It
// saturates.
func Clock(p Params, now int64) int64 {
	if !p.Valid() {
		return 0
	}
	if p.RefillPeriod < 0 {
		return calendarClock(p, now)
	}
	// |now - Epoch| fits in a uint64 (not always in an int64).
	neg := now < Epoch
	d := uint64(now) - uint64(Epoch)
	if neg {
		d = uint64(Epoch) - uint64(now)
	}
	hi, lo := bits.Mul64(d, uint64(p.RefillAmount))
	if hi >= uint64(p.RefillPeriod) {
		if neg {
			return math.MinInt64 / 2
		}
		return math.MaxInt64 / 2
	}
	q, r := bits.Div64(hi, lo, uint64(p.RefillPeriod))
	if q > math.MaxInt64/2 {
		if neg {
			return math.MinInt64 / 2
		}
		return math.MaxInt64 / 2
	}
	c := int64(q)
	if neg {
		c = -c
		if r != 0 {
			c-- // floor
		}
	}
	return c
}

// ClockTime returns the earliest instant (Unix ms) at which Clock(p, t) >= c.
func ClockTime(p Params, c int64) int64 {
	if !p.Valid() {
		return math.MaxInt64
	}
	if p.RefillPeriod < 0 {
		return calendarClockTime(p, c)
	}
	neg := c < 0
	u := c
	if neg {
		u = -c
	}
	hi, lo := bits.Mul64(uint64(u), uint64(p.RefillPeriod))
	if hi >= uint64(p.RefillAmount) {
		if neg {
			return math.MinInt64 / 2
		}
		return math.MaxInt64 / 2
	}
	q, r := bits.Div64(hi, lo, uint64(p.RefillAmount))
	if q >= math.MaxInt64/4 {
		q, r = math.MaxInt64/4, 0 // saturate; do not round past the cap
	}
	t := int64(q)
	if neg {
		t = -t // ceil of a negative quotient
	} else if r != 0 {
		t++
	}
	return Epoch + t
}

// Quantum is the grid, in millitokens, on which idle-form writes book
// consumption: what p refills in tick milliseconds, at least 1. Writers that
// share a grid step share the same booking instant, so after the first
// idle-form write of a step every other writer in that step takes the
// commutative busy form instead of racing it. A calendar limit needs no
// grid (every writer of a period books at the same clock already): 1.
func Quantum(p Params, tick int64) int64 {
	if !p.Valid() || tick <= 0 || p.RefillPeriod < 0 {
		return 1
	}
	hi, lo := bits.Mul64(uint64(tick), uint64(p.RefillAmount))
	if hi >= uint64(p.RefillPeriod) {
		return math.MaxInt64 / 4
	}
	q, _ := bits.Div64(hi, lo, uint64(p.RefillPeriod))
	if q < 1 {
		return 1
	}
	if q > math.MaxInt64/4 {
		return math.MaxInt64 / 4
	}
	return int64(q)
}

// CeilTo rounds c up to a multiple of k (k >= 1).
func CeilTo(c, k int64) int64 {
	if k <= 1 {
		return c
	}
	r := c % k
	if r == 0 {
		return c
	}
	if r < 0 {
		return c - r
	}
	return addSat(c, k-r) // MaxInt64 if no multiple of k is above c
}

// Level is what a bucket with virtual time w holds at clock c, in
// millitokens: Capacity - max(0, w-c). It is negative while in debt.
func Level(w, c int64, p Params) int64 {
	if w <= c {
		return p.Capacity
	}
	// w > c: the gap is exact as a uint64, and Capacity-gap is below
	// MinInt64 iff gap > Capacity+2^63 (also exact, mod 2^64).
	gap := uint64(w) - uint64(c)
	if gap > uint64(p.Capacity)+1<<63 {
		return math.MinInt64
	}
	return int64(uint64(p.Capacity) - gap)
}

// Take is the exact consumption of n millitokens at clock c from virtual
// time w: the new virtual time and whether it is admitted (n <= the level).
// A request of 0 is admitted unless the bucket is in debt (Level < 0), as
// in Consume; callers check only requested limits. The decision is exact
// for any int64s; the new virtual time saturates.
func Take(w, c, n int64, p Params) (int64, bool) {
	base := w
	if base < c {
		base = c
	}
	// Admitted iff base+n <= c+Capacity, i.e. n <= Capacity and
	// base-c <= Capacity-n, both differences exact as uint64s.
	ok := n <= p.Capacity && uint64(base)-uint64(c) <= uint64(p.Capacity)-uint64(n)
	return addSat(base, n), ok
}

// Wait is how long after now (Unix ms) a bucket with virtual time w holds
// n millitokens. It is 0 when it does already (Take admits n at
// Clock(p, now)), and it ignores Capacity (a request above Capacity waits
// as if the bucket could grow). It is math.MaxInt64 when the clock never
// gets there: it saturates first, or p is invalid.
func Wait(w, n int64, p Params, now int64) int64 {
	c := Clock(p, now)
	if _, ok := Take(w, c, n, p); ok {
		return 0
	}
	base := w
	if base < c {
		base = c
	}
	// Admitted at clock c' once base+n <= c'+Capacity.
	need := addSat(base, subSat(n, p.Capacity))
	t := ClockTime(p, need)
	if t <= now || Clock(p, t) < need {
		return math.MaxInt64
	}
	return subSat(t, now)
}

func addSat(a, b int64) int64 {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		if b > 0 {
			return math.MaxInt64
		}
		return math.MinInt64
	}
	return s
}
