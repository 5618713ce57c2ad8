package bucket

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Units used throughout the tests: amounts are millitokens, instants are
// epoch milliseconds. tok converts whole tokens, sec and minute convert
// durations, and every step table runs at instants t0+at.
const (
	tok    = MilliPerToken
	sec    = int64(1000)
	minute = 60 * sec
	t0     = int64(1_700_000_000_000) // 2023-11-14T22:13:20Z, an arbitrary instant
)

// perMinute returns Params for rate whole tokens a minute with a capacity
// of burst whole tokens.
func perMinute(rate, burst int64) Params {
	return Params{Capacity: burst * tok, RefillAmount: rate * tok, RefillPeriod: minute}
}

// op names what a step does.
type op int

const (
	opRefill    op = iota // State = Refill(State, now)
	opConsume             // State, Decision = Consume(State, now, n)
	opForce               // State = Force(State, now, n)
	opTimeUntil           // TimeUntil(State, now, n); the State is kept
)

func (o op) String() string {
	return [...]string{"Refill", "Consume", "Force", "TimeUntil"}[o]
}

// step is one row of a replay: at instant t0+at, do op with n
// millitokens, then expect the balance tokens. ok and wait are checked for
// Consume (Decision.OK and Decision.RetryAfter) and wait for TimeUntil.
type step struct {
	at     int64
	op     op
	n      int64
	tokens int64
	ok     bool
	wait   int64
}

// run replays steps against a bucket with params p starting from s and
// returns the final state.
func run(t *testing.T, p Params, s State, steps []step) State {
	t.Helper()
	for i, st := range steps {
		now := t0 + st.at
		switch st.op {
		case opRefill:
			s = Refill(s, p, now)
		case opConsume:
			var d Decision
			s, d = Consume(s, p, now, st.n)
			assert.Equalf(t, st.ok, d.OK, "step %d: Consume(t0+%d, %d).OK", i, st.at, st.n)
			assert.Equalf(t, st.wait, d.RetryAfter, "step %d: Consume(t0+%d, %d).RetryAfter", i, st.at, st.n)
		case opForce:
			s = Force(s, p, now, st.n)
		case opTimeUntil:
			got := TimeUntil(s, p, now, st.n)
			assert.Equalf(t, st.wait, got, "step %d: TimeUntil(t0+%d, %d)", i, st.at, st.n)
			s = Refill(s, p, now)
		}
		assert.Equalf(t, st.tokens, s.Tokens, "step %d: after %v(t0+%d, %d): tokens", i, st.op, st.at, st.n)
		assert.LessOrEqualf(t, s.LastRefill, max(now, s.LastRefill), "step %d: LastRefill past now", i)
	}
	return s
}

func TestParamsValid(t *testing.T) {
	for _, tt := range []struct {
		p    Params
		want bool
	}{
		{Params{}, false},
		{Params{Capacity: 1, RefillAmount: 1, RefillPeriod: 1}, true},
		{Params{Capacity: 0, RefillAmount: 1, RefillPeriod: 1}, false},
		{Params{Capacity: 1, RefillAmount: -1, RefillPeriod: 1}, false},
		{Params{Capacity: 1, RefillAmount: 1, RefillPeriod: 0}, false},
		{Params{Capacity: math.MaxInt64, RefillAmount: math.MaxInt64, RefillPeriod: math.MaxInt64}, true},
	} {
		assert.Equalf(t, tt.want, tt.p.Valid(), "%+v.Valid()", tt.p)
	}
}

// TestAlgorithmUnits is scenario 32 of the reference: a bucket of 100 000
// tokens refilling 100 000 tokens a minute.
func TestAlgorithmUnits(t *testing.T) {
	p := perMinute(100_000, 100_000)
	require.Equal(t, int64(100_000_000), p.RefillAmount, "100k tokens are 1e8 millitokens")

	t.Run("refill 30s from empty", func(t *testing.T) {
		run(t, p, State{Tokens: 0, LastRefill: t0}, []step{
			{at: 30 * sec, op: opRefill, tokens: 50_000 * tok},
		})
	})
	t.Run("refill 2min from empty is capped", func(t *testing.T) {
		run(t, p, State{Tokens: 0, LastRefill: t0}, []step{
			{at: 2 * minute, op: opRefill, tokens: 100_000 * tok},
		})
	})
	t.Run("debt of 50k refills to 0 in 30s", func(t *testing.T) {
		run(t, p, State{Tokens: -50_000 * tok, LastRefill: t0}, []step{
			{at: 30 * sec, op: opRefill, tokens: 0},
		})
	})
	t.Run("retry for 10k deficit", func(t *testing.T) {
		assert.Equal(t, 6*sec+1, RetryAfter(10_000*tok, p))
	})
	t.Run("force 150k of 100k", func(t *testing.T) {
		run(t, p, Full(p, t0), []step{
			{at: 0, op: opForce, n: 150_000 * tok, tokens: -50_000 * tok},
		})
	})
}

func TestWaits(t *testing.T) {
	for _, tt := range []struct {
		name   string
		p      Params
		s      State
		needed int64
		want   int64
	}{
		{"10 rpm, empty, need 1", perMinute(10, 10), State{0, t0}, 1 * tok, 6*sec + 1},
		{"100 rpm, empty, need 50", perMinute(100, 100), State{0, t0}, 50 * tok, 30*sec + 1},
		{"10 rpm, full, need 20 (beyond capacity)", perMinute(10, 10), State{10 * tok, t0}, 20 * tok, 60*sec + 1},
		{"10 rpm, full, need 10", perMinute(10, 10), State{10 * tok, t0}, 10 * tok, 0},
		{"10 rpm, in debt, need 0", perMinute(10, 10), State{-1 * tok, t0}, 0, 6*sec + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, TimeUntil(tt.s, tt.p, t0, tt.needed))
			if tt.want > 0 {
				// The wait is sufficient for any reachable amount.
				later := Refill(tt.s, tt.p, t0+tt.want)
				assert.GreaterOrEqual(t, later.Tokens, min(tt.needed, tt.p.Capacity))
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	p := perMinute(10, 10) // 10 000 milli per 60 000 ms: 1 milli every 6 ms
	for _, tt := range []struct {
		deficit, want int64
	}{
		{math.MinInt64, 0},
		{-1, 0},
		{0, 0},
		{1, 7},  // floor(6)+1
		{2, 13}, // floor(12)+1
		{1000, 6001},
		{math.MaxInt64, math.MaxInt64}, // 6*MaxInt64 saturates
	} {
		assert.Equalf(t, tt.want, RetryAfter(tt.deficit, p), "RetryAfter(%d)", tt.deficit)
	}
	assert.Equal(t, int64(math.MaxInt64), RetryAfter(1, Params{}), "invalid params never refill")
}

// TestDriftCompensation follows the reference's example: 100 tokens a
// minute (100 000 milli per 60 000 ms, 5/3 milli per ms), refilled 7 ms
// after LastRefill, accrues 11.67 millitokens.
func TestDriftCompensation(t *testing.T) {
	p := perMinute(100, 100)
	s := Refill(State{Tokens: 0, LastRefill: 0}, p, 7)
	assert.Equal(t, int64(11), s.Tokens, "add = floor(7*100000/60000)")
	// 11 millitokens take 6.6 ms: LastRefill moves to 7, the earliest
	// instant at which they had accrued. (The reference moves it to 6,
	// the latest instant before they had, so it pays out 1 ms = 1.67
	// milli again; see TestRefillIdempotent.)
	assert.Equal(t, int64(7), s.LastRefill)

	// The fraction is kept when it is worth whole milliseconds. At 1
	// milli per second, 1.5 s accrue 1.5 milli: 1 is paid, 500 ms kept.
	slow := Params{Capacity: tok, RefillAmount: 1, RefillPeriod: sec}
	s = Refill(State{Tokens: 0, LastRefill: 0}, slow, 1500)
	assert.Equal(t, State{Tokens: 1, LastRefill: 1000}, s)
	s = Refill(s, slow, 2000)
	assert.Equal(t, State{Tokens: 2, LastRefill: 2000}, s, "pieces equal once")

	// Refilling in pieces: 7 ms then 12 ms gives 11 + floor(5*5/3) = 19,
	// once at 12 ms gives 20. The 0.67 milli fraction at 7 ms was worth
	// less than a millisecond and is lost; pieces never give more.
	pieces := Refill(Refill(State{0, 0}, p, 7), p, 12)
	once := Refill(State{0, 0}, p, 12)
	assert.Equal(t, int64(19), pieces.Tokens)
	assert.Equal(t, int64(20), once.Tokens)
}

// TestRefillIdempotent: a second refill at the same instant changes
// nothing. Under the reference's rounding the second call would mint 1
// more millitoken here, and at 100k tokens a minute 1 666 more per call.
func TestRefillIdempotent(t *testing.T) {
	for _, p := range []Params{perMinute(100, 100), perMinute(100_000, 100_000), perMinute(7, 13)} {
		for _, at := range []int64{1, 7, 999, 59_999} {
			s := Refill(State{Tokens: 0, LastRefill: t0}, p, t0+at)
			assert.Equalf(t, s, Refill(s, p, t0+at), "%+v at t0+%d", p, at)
		}
	}
}

// TestRefillEveryMillisecond: under sustained load a bucket refilled (and
// drained) every millisecond for a minute never receives more than its
// configured rate, and loses less than one millitoken per refill.
func TestRefillEveryMillisecond(t *testing.T) {
	for _, p := range []Params{perMinute(100_000, 100_000), perMinute(100, 100), perMinute(1_000, 1_000)} {
		s := State{Tokens: 0, LastRefill: t0}
		var minted int64
		for at := int64(1); at <= minute; at++ {
			s = Refill(s, p, t0+at)
			minted += s.Tokens
			s.Tokens = 0 // drained by a consumer
		}
		assert.LessOrEqualf(t, minted, p.RefillAmount, "%+v", p)
		assert.Greaterf(t, minted, p.RefillAmount-minute, "%+v", p)
	}
}

func TestJumpBackwards(t *testing.T) {
	p := perMinute(60, 60) // 1 token a second
	s := State{Tokens: 5 * tok, LastRefill: t0 + 1000}
	run(t, p, s, []step{
		{at: 800, op: opRefill, tokens: 5 * tok},                                  // 200 ms behind: nothing
		{at: 800, op: opConsume, n: 5 * tok, tokens: 0, ok: true},                 // spends what is there
		{at: 900, op: opConsume, n: 1, tokens: 0, wait: 100 + 2},                  // still behind: nothing minted; wait includes the lag
		{at: 1000, op: opRefill, tokens: 0},                                       // caught up: still nothing
		{at: 2000, op: opConsume, n: 1 * tok, tokens: 0, ok: true},                // one second later: one token
		{at: 1500, op: opTimeUntil, n: 1 * tok, tokens: 0, wait: 500 + 1*sec + 1}, // behind again
	})
}

func TestConsume(t *testing.T) {
	p := perMinute(60, 10) // 1 token a second, 10 tokens capacity
	run(t, p, Full(p, t0), []step{
		{at: 0, op: opConsume, n: 4 * tok, tokens: 6 * tok, ok: true},
		{at: 0, op: opConsume, n: 7 * tok, tokens: 6 * tok, wait: 1*sec + 1},
		{at: 1000, op: opConsume, n: 7 * tok, tokens: 0, ok: true},
		{at: 1000, op: opConsume, n: 0, tokens: 0, ok: true}, // zero succeeds at a zero balance
		{at: 1000, op: opConsume, n: -5 * tok, tokens: 0, ok: true},
		{at: 1000, op: opForce, n: 2 * tok, tokens: -2 * tok},
		{at: 1000, op: opConsume, n: 0, tokens: -2 * tok, wait: 2*sec + 1}, // debt fails even zero
		{at: 2500, op: opConsume, n: 0, tokens: -500, wait: 501},
		{at: 3000, op: opConsume, n: 0, tokens: 0, ok: true},
		{at: 3000, op: opForce, n: -20 * tok, tokens: 20 * tok}, // returned tokens may exceed capacity
		{at: 3000, op: opConsume, n: 15 * tok, tokens: 5 * tok, ok: true},
	})

	s, d := Consume(State{Tokens: 3 * tok, LastRefill: t0}, p, t0, 5*tok)
	assert.Equal(t, Decision{OK: false, Available: 3 * tok, RetryAfter: 2*sec + 1}, d)
	assert.Equal(t, State{Tokens: 3 * tok, LastRefill: t0}, s, "denial returns the refilled state")

	s, d = Consume(State{Tokens: 3 * tok, LastRefill: t0}, p, t0+sec, 4*tok)
	assert.Equal(t, Decision{OK: true, Available: 4 * tok}, d, "Available is before consuming")
	assert.Equal(t, State{Tokens: 0, LastRefill: t0 + sec}, s)
}

func TestCapacityDecrease(t *testing.T) {
	// The bucket was written with capacity 100 and still holds 100 when
	// the limit drops to 50 tokens; 1 token a minute: 1 milli per 60 ms.
	p := Params{Capacity: 50 * tok, RefillAmount: tok, RefillPeriod: minute}
	run(t, p, State{Tokens: 100 * tok, LastRefill: t0}, []step{
		{at: 0, op: opRefill, tokens: 100 * tok},
		{at: 59, op: opRefill, tokens: 100 * tok},                        // add == 0: not clamped
		{at: 59, op: opConsume, n: 70 * tok, tokens: 30 * tok, ok: true}, // the excess is spendable
		{at: 59, op: opForce, n: -70 * tok, tokens: 100 * tok},
		{at: 60, op: opRefill, tokens: 50 * tok}, // first refill that adds anything clamps
		{at: 120, op: opRefill, tokens: 50 * tok},
	})
}

// TestBurstAndDebt are the reference's burst and debt examples.
func TestBurstAndDebt(t *testing.T) {
	t.Run("burst", func(t *testing.T) {
		p := perMinute(10_000, 15_000)
		run(t, p, Full(p, t0), []step{
			{at: 0, op: opConsume, n: 15_000 * tok, tokens: 0, ok: true},
			{at: 0, op: opTimeUntil, n: 15_000 * tok, wait: 90*sec + 1},
			{at: 60 * sec, op: opRefill, tokens: 10_000 * tok},
			{at: 90 * sec, op: opRefill, tokens: 15_000 * tok},
			{at: 120 * sec, op: opRefill, tokens: 15_000 * tok},
			{at: 120 * sec, op: opConsume, n: 15_000 * tok, tokens: 0, ok: true},
			{at: 150 * sec, op: opRefill, tokens: 5_000 * tok}, // time spent full is not banked
		})
	})
	t.Run("debt", func(t *testing.T) {
		p := perMinute(1_000, 1_000)
		run(t, p, State{Tokens: -1_500 * tok, LastRefill: t0}, []step{
			{at: 30 * sec, op: opRefill, tokens: -1_000 * tok},
			{at: 30 * sec, op: opTimeUntil, n: 0, tokens: -1_000 * tok, wait: 60*sec + 1},
			{at: 90 * sec, op: opRefill, tokens: 0},
		})
	})
}

func TestHugeValues(t *testing.T) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	decades := 50 * 366 * 24 * 3600 * sec

	for _, tt := range []struct {
		name string
		p    Params
		s    State
		now  int64
		want State
	}{
		{
			name: "decades idle at 1e15 milli per ms",
			p:    Params{Capacity: 1 << 50, RefillAmount: 1 << 50, RefillPeriod: 1},
			s:    State{Tokens: 0, LastRefill: t0},
			now:  t0 + decades,
			want: State{Tokens: 1 << 50, LastRefill: t0 + decades},
		},
		{
			name: "whole int64 clock range at the largest rate",
			p:    Params{Capacity: maxI, RefillAmount: maxI, RefillPeriod: 1},
			s:    State{Tokens: minI, LastRefill: minI},
			now:  maxI,
			want: State{Tokens: maxI, LastRefill: maxI},
		},
		{
			name: "largest period: nothing accrues in a millisecond",
			p:    Params{Capacity: maxI, RefillAmount: 1, RefillPeriod: maxI},
			s:    State{Tokens: 0, LastRefill: 0},
			now:  maxI - 1,
			want: State{Tokens: 0, LastRefill: 0},
		},
		{
			name: "largest period, whole range: one millitoken",
			p:    Params{Capacity: maxI, RefillAmount: 1, RefillPeriod: maxI},
			s:    State{Tokens: 0, LastRefill: -1},
			now:  maxI - 1,
			want: State{Tokens: 1, LastRefill: maxI - 1},
		},
		{
			name: "deepest debt refills without wrapping",
			p:    Params{Capacity: 1, RefillAmount: maxI, RefillPeriod: 2},
			s:    State{Tokens: minI, LastRefill: 0},
			now:  1,
			want: State{Tokens: minI + maxI/2, LastRefill: 1},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, Refill(tt.s, tt.p, tt.now))
		})
	}

	p := Params{Capacity: maxI, RefillAmount: 1, RefillPeriod: maxI}
	assert.Equal(t, maxI, RetryAfter(maxI, p))
	assert.Equal(t, maxI, FillTime(p))
	assert.Equal(t, maxI, TimeUntil(State{Tokens: minI, LastRefill: t0}, p, t0, maxI), "a 2^64 shortfall saturates")
	assert.Equal(t, minI, Force(State{Tokens: minI + 1}, p, 0, 5).Tokens)
	assert.Equal(t, maxI, Force(State{Tokens: maxI - 1}, p, 0, -5).Tokens)
	assert.Equal(t, maxI, Force(State{Tokens: 0}, p, 0, minI).Tokens, "-MinInt64 saturates")

	_, d := Consume(State{Tokens: minI, LastRefill: t0}, perMinute(1, 1), t0, maxI)
	assert.False(t, d.OK)
	assert.Equal(t, maxI, d.RetryAfter)
}

func TestFillTime(t *testing.T) {
	for _, tt := range []struct {
		p    Params
		want int64
	}{
		{perMinute(100, 100), minute},
		{perMinute(10_000, 15_000), 90 * sec},
		{Params{Capacity: 1000 * tok, RefillAmount: 10 * tok, RefillPeriod: minute}, 100 * minute},
		{Params{Capacity: 10, RefillAmount: 3, RefillPeriod: 1}, 4}, // ceil(10/3)
		{Params{}, math.MaxInt64},
		{Params{Capacity: math.MaxInt64, RefillAmount: 2, RefillPeriod: math.MaxInt64}, math.MaxInt64},
	} {
		got := FillTime(tt.p)
		assert.Equalf(t, tt.want, got, "FillTime(%+v)", tt.p)
		if tt.p.Valid() && got < math.MaxInt64 {
			assert.Equal(t, tt.p.Capacity, Refill(State{0, 0}, tt.p, got).Tokens, "full after FillTime")
			assert.Less(t, Refill(State{0, 0}, tt.p, got-1).Tokens, tt.p.Capacity, "not full before")
		}
	}
}

func TestWhole(t *testing.T) {
	for _, tt := range []struct{ milli, want int64 }{
		{0, 0}, {1, 0}, {999, 0}, {1000, 1}, {1999, 1},
		{-1, -1}, {-500, -1}, {-1000, -1}, {-1001, -2},
		{math.MaxInt64, math.MaxInt64 / 1000},
		{math.MinInt64, math.MinInt64/1000 - 1},
	} {
		assert.Equalf(t, tt.want, Whole(tt.milli), "Whole(%d)", tt.milli)
	}
}

func TestShare(t *testing.T) {
	p := perMinute(100, 150)
	assert.Equal(t, p, p.Share(1))
	assert.Equal(t, p, p.Share(0), "n <= 1 is one shard")
	assert.Equal(t, Params{Capacity: 75 * tok, RefillAmount: 50 * tok, RefillPeriod: minute}, p.Share(2))
	assert.Equal(t, Params{Capacity: 1, RefillAmount: 1, RefillPeriod: 7}, Params{Capacity: 3, RefillAmount: 2, RefillPeriod: 7}.Share(4), "never below one millitoken")

	for _, p := range []Params{
		perMinute(100, 150), perMinute(7, 7), {Capacity: 1001, RefillAmount: 999, RefillPeriod: 1},
		{Capacity: math.MaxInt64, RefillAmount: math.MaxInt64, RefillPeriod: math.MaxInt64},
	} {
		for _, n := range []int{2, 3, 4, 8, 32, 64, 999, 1000} {
			if int64(n) > min(p.Capacity, p.RefillAmount) {
				continue // the one-millitoken floor applies; see Share
			}
			s := p.Share(n)
			require.Truef(t, s.Valid(), "%+v.Share(%d)", p, n)
			assert.LessOrEqualf(t, s.Capacity, p.Capacity/int64(n), "%+v.Share(%d) capacity", p, n)
			assert.LessOrEqualf(t, s.RefillAmount, p.RefillAmount/int64(n), "%+v.Share(%d) rate", p, n)
			assert.Equal(t, p.RefillPeriod, s.RefillPeriod)
			// share <= total/n (floor) is exactly n*share <= total,
			// checked without multiplying so MaxInt64 cannot overflow.
		}
	}
}

// ExampleConsume shows a request against a bucket of 10 tokens refilling
// one token a second.
func ExampleConsume() {
	p := Params{Capacity: 10 * MilliPerToken, RefillAmount: MilliPerToken, RefillPeriod: 1000}
	now := int64(1_700_000_000_000)
	s := Full(p, now)

	s, d := Consume(s, p, now, 8*MilliPerToken)
	fmt.Println(d.OK, Whole(s.Tokens))

	s, d = Consume(s, p, now+500, 3*MilliPerToken)
	fmt.Println(d.OK, d.Available, d.RetryAfter)

	s = Force(s, p, now+500, 5*MilliPerToken) // an adjustment may go into debt
	fmt.Println(Whole(s.Tokens), TimeUntil(s, p, now+500, 0))
	// Output:
	// true 2
	// false 2500 501
	// -3 2501
}

// TestRefillPiecesExhaustive checks the pieces bound of the package
// documentation on every small case, where the rounding is densest:
// Refill at t1 then t2 gives once-1 <= pieces <= once, with equality when
// one of RefillAmount and RefillPeriod divides the other.
func TestRefillPiecesExhaustive(t *testing.T) {
	var lossy int
	for amount := int64(1); amount <= 12; amount++ {
		for period := int64(1); period <= 12; period++ {
			exact := amount%period == 0 || period%amount == 0
			for _, capacity := range []int64{1, 5, 1000} {
				p := Params{Capacity: capacity, RefillAmount: amount, RefillPeriod: period}
				for _, tokens := range []int64{-7, 0, 3, capacity, capacity + 4} {
					s := State{Tokens: tokens, LastRefill: 0}
					for t2 := int64(-1); t2 <= 30; t2++ {
						once := Refill(s, p, t2)
						for t1 := int64(-1); t1 <= t2; t1++ {
							pieces := Refill(Refill(s, p, t1), p, t2)
							if pieces.Tokens > once.Tokens || pieces.Tokens < once.Tokens-1 ||
								(exact && pieces.Tokens != once.Tokens) {
								t.Fatalf("%+v from %+v: at t1=%d then t2=%d gives %d, once at t2 gives %d",
									p, s, t1, t2, pieces.Tokens, once.Tokens)
							}
							if pieces.Tokens != once.Tokens {
								lossy++
							}
						}
					}
				}
			}
		}
	}
	assert.Positive(t, lossy, "the bound is tight: some splits do lose a millitoken")
}

func BenchmarkRefill(b *testing.B) {
	p := perMinute(100_000, 100_000)
	s := State{Tokens: 0, LastRefill: t0}
	now := t0
	for b.Loop() {
		now += 3
		s = Refill(s, p, now)
		s.Tokens = 0
	}
}

func BenchmarkConsume(b *testing.B) {
	p := perMinute(100_000, 150_000)
	s := Full(p, t0)
	now := t0
	var d Decision
	for b.Loop() {
		now++
		s, d = Consume(s, p, now, 2*tok)
		if !d.OK {
			s = Force(s, p, now, -100*tok)
		}
	}
}

func BenchmarkTimeUntil(b *testing.B) {
	p := perMinute(100, 100)
	s := State{Tokens: -5 * tok, LastRefill: t0}
	var w int64
	for b.Loop() {
		w = TimeUntil(s, p, t0+7, 50*tok)
	}
	_ = w
}
