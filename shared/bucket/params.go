package bucket

import (
	"math"
	"math/bits"
)

// MilliPerToken is the number of millitokens in one whole token.
const MilliPerToken int64 = 1000

// Params are the parameters of one limit on one bucket shard: the bucket
// holds at most Capacity millitokens and regains RefillAmount millitokens
// every RefillPeriod milliseconds, continuously rather than in steps; or,
// when RefillPeriod is a calendar code (CalendarDay, CalendarWeek,
// CalendarMonth, see calendar.go), whole at every boundary of that UTC
// calendar period.
//
// The zero Params is not Valid. A bucket with invalid Params never refills
// and every wait computed for it is math.MaxInt64 (forever).
type Params struct {
	Capacity     int64 // millitokens, > 0
	RefillAmount int64 // millitokens added per RefillPeriod, > 0
	RefillPeriod int64 // milliseconds, > 0, or a calendar code (< 0)
}

// Valid reports whether every field of p is positive, or RefillPeriod a
// calendar code. Any positive int64 is accepted: the arithmetic of this
// package does not overflow for any of them.
func (p Params) Valid() bool {
	return p.Capacity > 0 && p.RefillAmount > 0 && (p.RefillPeriod > 0 || IsCalendar(p.RefillPeriod))
}

// subSat returns a-b, saturated to [math.MinInt64, math.MaxInt64].
func subSat(a, b int64) int64 {
	d := a - b
	// Overflow iff a and b differ in sign and the result's sign is not a's.
	if (a^b) < 0 && (a^d) < 0 {
		if a < 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return d
}

// Whole converts millitokens to whole tokens, rounding toward negative
// infinity: 1999 is 1 token and -500 is -1 (a bucket in debt by half a
// token has less than zero whole tokens available).
func Whole(milli int64) int64 {
	q := milli / MilliPerToken
	if milli%MilliPerToken < 0 {
		q--
	}
	return q
}

// FillTime returns the milliseconds an empty bucket (0 millitokens) takes
// to reach Capacity: ceil(Capacity*RefillPeriod/RefillAmount), saturated at
// math.MaxInt64 (also the result for invalid Params); for a calendar limit
// the periods it takes, each at its longest (Longest). It bounds how long
// an idle bucket stays distinguishable from a new, full one, which is what
// a bucket's time to live is derived from.
func FillTime(p Params) int64 {
	if !p.Valid() {
		return math.MaxInt64
	}
	if p.RefillPeriod < 0 {
		return calendarFillTime(p)
	}
	c, period, amount := uint64(p.Capacity), uint64(p.RefillPeriod), uint64(p.RefillAmount)
	hi, lo := bits.Mul64(c, period)
	if hi >= amount {
		return math.MaxInt64
	}
	q, r := bits.Div64(hi, lo, amount)
	if q >= math.MaxInt64 {
		return math.MaxInt64 // also keeps q+1 from wrapping below
	}
	if r != 0 {
		q++
	}
	return int64(q)
}
