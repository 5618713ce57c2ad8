package bucket

import (
	"fmt"
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Instants of the clock tests. nov26 is 2026-11-26T12:00:00Z, 329.5 days
// after Epoch: 28 468 800 000 ms, a multiple of 6 and of 3, so the clocks
// of 10 and 100 tokens a minute have no fraction pending there.
const (
	nov26  = Epoch + 28_468_800_000
	before = int64(1_700_000_000_000) // 2023-11-14T22:13:20Z (t0), before Epoch
)

// Rates of the clock tests. 10 tokens a minute is 1 millitoken every 6 ms
// (RefillPeriod a multiple of RefillAmount); 100 tokens a minute is 5
// millitokens every 3 ms (neither a multiple of the other); 60 000 a
// minute is 1000 millitokens every ms (RefillAmount a multiple of
// RefillPeriod).
var (
	rpm10  = perMinute(10, 10)
	rpm100 = perMinute(100, 100)
	rpm60k = perMinute(60_000, 1_000)
)

func TestEpoch(t *testing.T) {
	assert.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), Epoch)
	assert.Equal(t, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixMilli(), nov26)
	assert.Equal(t, t0, before)
	// MaxRate is 5 million tokens a second.
	assert.Equal(t, 5_000_000*tok/sec, MaxRate)
	// At MaxRate the clock reaches its saturation value MaxInt64/2 in
	// 2055: a limit at that rate stops refilling then.
	end := time.UnixMilli(Epoch + math.MaxInt64/2/MaxRate).UTC()
	assert.Equal(t, 2055, end.Year(), "clock horizon at MaxRate: %v", end)
	fast := Params{Capacity: tok, RefillAmount: MaxRate, RefillPeriod: 1}
	assert.Less(t, Clock(fast, end.UnixMilli()-1), int64(math.MaxInt64/2))
	assert.Equal(t, int64(math.MaxInt64/2), Clock(fast, end.UnixMilli()+1))
}

func TestClock(t *testing.T) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	huge := Params{Capacity: 1, RefillAmount: maxI, RefillPeriod: 1}
	slow := Params{Capacity: 1, RefillAmount: 1, RefillPeriod: maxI}
	for _, tt := range []struct {
		name string
		p    Params
		now  int64
		want int64
	}{
		// 100 tokens a minute: 5/3 millitokens a millisecond.
		{"100rpm at Epoch", rpm100, Epoch, 0},
		{"100rpm Epoch+1 (1.67)", rpm100, Epoch + 1, 1},
		{"100rpm Epoch+2 (3.33)", rpm100, Epoch + 2, 3},
		{"100rpm Epoch+3 (5)", rpm100, Epoch + 3, 5},
		{"100rpm Epoch+7 (11.67)", rpm100, Epoch + 7, 11},
		{"100rpm one minute", rpm100, Epoch + minute, 100 * tok},
		{"100rpm Epoch-1 (-1.67)", rpm100, Epoch - 1, -2},
		{"100rpm Epoch-2 (-3.33)", rpm100, Epoch - 2, -4},
		{"100rpm Epoch-3 (-5)", rpm100, Epoch - 3, -5},
		{"100rpm one minute before", rpm100, Epoch - minute, -100 * tok},
		{"100rpm 2026-11-26T12:00Z", rpm100, nov26, 47_448_000_000},
		{"100rpm 2026-11-26T12:00:00.001Z", rpm100, nov26 + 1, 47_448_000_001},
		{"100rpm 2026-11-26T12:00:00.002Z", rpm100, nov26 + 2, 47_448_000_003},
		{"100rpm 2026-11-26T11:59:59.999Z", rpm100, nov26 - 1, 47_447_999_998},
		{"100rpm 2023-11-14T22:13:20Z (-112042666666.67)", rpm100, before, -112_042_666_667},
		// 10 tokens a minute: 1/6 millitoken a millisecond.
		{"10rpm Epoch+5", rpm10, Epoch + 5, 0},
		{"10rpm Epoch+6", rpm10, Epoch + 6, 1},
		{"10rpm Epoch-1", rpm10, Epoch - 1, -1},
		{"10rpm Epoch-6", rpm10, Epoch - 6, -1},
		{"10rpm Epoch-7", rpm10, Epoch - 7, -2},
		{"10rpm 2026-11-26T12:00Z", rpm10, nov26, 4_744_800_000},
		{"10rpm 2026-11-26T12:00:05.999Z", rpm10, nov26 + 5_999, 4_744_800_999},
		{"10rpm 2026-11-26T12:00:06Z", rpm10, nov26 + 6_000, 4_744_801_000},
		// 60 000 tokens a minute: exactly 1000 millitokens a millisecond.
		{"60k rpm 2026-11-26T12:00:00.001Z", rpm60k, nov26 + 1, 28_468_800_001_000},
		{"60k rpm Epoch-1", rpm60k, Epoch - 1, -1000},
		// Saturation at ±MaxInt64/2, whatever the instant.
		{"huge rate, far future", huge, maxI, maxI / 2},
		{"huge rate, Epoch+1", huge, Epoch + 1, maxI / 2},
		{"huge rate, Epoch-1", huge, Epoch - 1, minI / 2},
		{"huge rate, MinInt64", huge, minI, minI / 2},
		{"MaxRate, MaxInt64", Params{1, MaxRate, 1}, maxI, maxI / 2},
		{"MaxRate, MinInt64", Params{1, MaxRate, 1}, minI, minI / 2},
		{"1/ms, MinInt64", Params{1, 1, 1}, minI, minI / 2},
		{"1/ms, MaxInt64", Params{1, 1, 1}, maxI, maxI / 2},
		{"slow, MaxInt64 (0.9999)", slow, maxI, 0},
		{"slow, MinInt64 (-1.0000002)", slow, minI, -2},
		{"slow, Epoch-1", slow, Epoch - 1, -1},
		// Invalid Params never refill.
		{"zero Params", Params{}, nov26, 0},
		{"negative amount", Params{Capacity: 1, RefillAmount: -1, RefillPeriod: 1}, nov26, 0},
		{"zero period", Params{Capacity: 1, RefillAmount: 1, RefillPeriod: 0}, nov26, 0},
		{"zero capacity", Params{Capacity: 0, RefillAmount: 1, RefillPeriod: 1}, nov26, 0},
	} {
		assert.Equalf(t, tt.want, Clock(tt.p, tt.now), "%s: Clock(%+v, Epoch%+d)", tt.name, tt.p, tt.now-Epoch)
	}
}

// TestClockModel checks Clock against floor((now-Epoch)*a/P) in
// arbitrary precision, and that it is monotone and never steps by more
// than ceil(a/P) per millisecond, around Epoch and around 2026-11-26.
func TestClockModel(t *testing.T) {
	for _, p := range []Params{rpm10, rpm100, rpm60k, perMinute(7, 13), {1, 1, 1}, {1, 3, 2}, {1, 2, 3}, {1, MaxRate, 1}, {1, 1, 366 * 86_400_000}} {
		step := (p.RefillAmount + p.RefillPeriod - 1) / p.RefillPeriod
		for _, at := range []int64{Epoch, nov26, before} {
			prev := Clock(p, at-2001)
			for now := at - 2000; now <= at+2000; now++ {
				c := Clock(p, now)
				require.Equalf(t, clockModel(p, now), c, "Clock(%+v, Epoch%+d)", p, now-Epoch)
				require.GreaterOrEqualf(t, c, prev, "Clock(%+v) went back at Epoch%+d", p, now-Epoch)
				require.LessOrEqualf(t, c-prev, step, "Clock(%+v) jumped at Epoch%+d", p, now-Epoch)
				prev = c
			}
		}
	}
}

// TestClockMonotone: Clock is monotone in now across the whole int64
// range, saturation included, for rates from the slowest to the fastest.
func TestClockMonotone(t *testing.T) {
	instants := []int64{math.MinInt64, math.MinInt64 + 1, math.MinInt64 + Epoch - 1, math.MinInt64 + Epoch, math.MinInt64 + Epoch + 1,
		-1 << 62, -1 << 40, -1, 0, 1, before, Epoch - 1, Epoch, Epoch + 1, nov26, 1 << 42, 1 << 62, math.MaxInt64 - 1, math.MaxInt64}
	for _, p := range []Params{rpm100, {1, 1, 1}, {1, MaxRate, 1}, {1, math.MaxInt64, 1}, {1, 1, math.MaxInt64}, {1, math.MaxInt64, math.MaxInt64 - 1}, {1, 3, 1 << 61}} {
		for i := 1; i < len(instants); i++ {
			a, b := Clock(p, instants[i-1]), Clock(p, instants[i])
			assert.LessOrEqualf(t, a, b, "Clock(%+v): %d at %d, %d at %d", p, a, instants[i-1], b, instants[i])
			assert.Equalf(t, clockModel(p, instants[i]), b, "Clock(%+v, %d)", p, instants[i])
		}
	}
}

func TestClockTime(t *testing.T) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	for _, tt := range []struct {
		name string
		p    Params
		c    int64
		want int64 // instant
	}{
		{"10rpm 0", rpm10, 0, Epoch},
		{"10rpm 1", rpm10, 1, Epoch + 6},
		{"10rpm 1000", rpm10, 1000, Epoch + 6000},
		{"10rpm -1", rpm10, -1, Epoch - 6},
		{"10rpm -2", rpm10, -2, Epoch - 12},
		{"10rpm 2026-11-26 + 1 token", rpm10, 4_744_801_000, nov26 + 6000},
		{"100rpm 1 (0.6 ms)", rpm100, 1, Epoch + 1},
		{"100rpm 2 (1.2 ms)", rpm100, 2, Epoch + 2},
		{"100rpm 3 (1.8 ms)", rpm100, 3, Epoch + 2},
		{"100rpm 5 (3 ms)", rpm100, 5, Epoch + 3},
		{"100rpm -1 (-0.6 ms)", rpm100, -1, Epoch},
		{"100rpm -2 (-1.2 ms)", rpm100, -2, Epoch - 1},
		{"100rpm -3 (-1.8 ms)", rpm100, -3, Epoch - 1},
		{"100rpm -5 (-3 ms)", rpm100, -5, Epoch - 3},
		{"100rpm 2026-11-26", rpm100, 47_448_000_000, nov26},
		{"100rpm 2026-11-26 + 1", rpm100, 47_448_000_001, nov26 + 1},
		{"100rpm 2026-11-26 + 50 tokens", rpm100, 47_448_000_000 + 50*tok, nov26 + 30*sec},
		{"100rpm 2023-11-14T22:13:20Z", rpm100, -112_042_666_667, before},
		{"60k rpm 1", rpm60k, 1, Epoch + 1},
		{"60k rpm 1000", rpm60k, 1000, Epoch + 1},
		{"60k rpm 1001", rpm60k, 1001, Epoch + 2},
		{"60k rpm -1", rpm60k, -1, Epoch},
		{"60k rpm -1000", rpm60k, -1000, Epoch - 1},
		{"60k rpm -1001", rpm60k, -1001, Epoch - 1},
		// Saturation.
		// Saturation: at Epoch±MaxInt64/4 once ceil(c*P/a) is beyond it,
		// at ±MaxInt64/2 once c*P/a does not fit in 64 bits.
		{"1/ms MaxInt64", Params{1, 1, 1}, maxI, Epoch + maxI/4},
		{"1/ms MinInt64", Params{1, 1, 1}, minI, Epoch - maxI/4},
		{"1 per 5 ms, MaxInt64", Params{1, 1, 5}, maxI, maxI / 2},
		{"1 per 5 ms, MinInt64", Params{1, 1, 5}, minI, minI / 2},
		{"3/ms at the cap", Params{1, 3, 1}, 3 * (maxI / 4), Epoch + maxI/4},
		{"3/ms a third past the cap", Params{1, 3, 1}, 3*(maxI/4) + 1, Epoch + maxI/4},
		{"3/ms 4/3 past the cap", Params{1, 3, 1}, 3*(maxI/4) + 4, Epoch + maxI/4},
		{"1/ms at the cap", Params{1, 1, 1}, maxI / 4, Epoch + maxI/4},
		{"1/ms past the cap", Params{1, 1, 1}, maxI/4 + 1, Epoch + maxI/4},
		{"1/ms at the negative cap", Params{1, 1, 1}, -(maxI / 4), Epoch - maxI/4},
		{"1/ms past the negative cap", Params{1, 1, 1}, -(maxI / 4) - 1, Epoch - maxI/4},
		{"invalid", Params{}, 1, maxI},
		{"invalid 0", Params{Capacity: 1, RefillAmount: 0, RefillPeriod: 1}, 0, maxI},
	} {
		assert.Equalf(t, tt.want, ClockTime(tt.p, tt.c), "%s: ClockTime(%+v, %d)", tt.name, tt.p, tt.c)
	}
}

// TestClockTimeInverse: ClockTime(p, c) is the smallest t with
// Clock(p, t) >= c, for positive and negative c around Epoch, 2026-11-26
// and 2023.
func TestClockTimeInverse(t *testing.T) {
	for _, p := range []Params{rpm10, rpm100, rpm60k, perMinute(7, 13), {1, 1, 1}, {1, 3, 2}, {1, 2, 3}, {1, MaxRate, 1}, {1, 1, 366 * 86_400_000}} {
		for _, at := range []int64{Epoch, nov26, before} {
			base := Clock(p, at)
			for c := base - 3000; c <= base+3000; c++ {
				tc := ClockTime(p, c)
				require.GreaterOrEqualf(t, Clock(p, tc), c, "Clock(%+v, ClockTime(%d) = Epoch%+d) < c", p, c, tc-Epoch)
				require.Lessf(t, Clock(p, tc-1), c, "ClockTime(%+v, %d) = Epoch%+d is not the smallest", p, c, tc-Epoch)
			}
		}
	}
}

func TestQuantum(t *testing.T) {
	for _, tt := range []struct {
		p    Params
		tick int64
		want int64
	}{
		{rpm100, 1, 1},      // 1.67
		{rpm100, 3, 5},      // exact
		{rpm100, 100, 166},  // 166.67
		{rpm100, sec, 1666}, // 1666.67
		{rpm100, minute, 100 * tok},
		{rpm10, 1, 1}, // 0.17, at least 1
		{rpm10, 5, 1}, // 0.83
		{rpm10, 6, 1},
		{rpm10, 7, 1}, // 1.17
		{rpm10, 12, 2},
		{rpm10, sec, 166},
		{rpm60k, 1, 1000},
		{rpm60k, 50, 50_000},
		{rpm10, 0, 1},
		{rpm10, -50, 1},
		{Params{}, 50, 1},
		{Params{1, math.MaxInt64, 1}, math.MaxInt64, math.MaxInt64 / 4},
		{Params{1, math.MaxInt64, 1}, 1, math.MaxInt64 / 4},
		{Params{1, 1 << 62, 1}, 1, math.MaxInt64 / 4}, // just above the cap
		{Params{1, 1 << 60, 1}, 1, 1 << 60},           // just below it
		{Params{1, 1, math.MaxInt64}, math.MaxInt64, 1},
	} {
		assert.Equalf(t, tt.want, Quantum(tt.p, tt.tick), "Quantum(%+v, %d)", tt.p, tt.tick)
	}
}

func TestCeilTo(t *testing.T) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	for _, tt := range []struct{ c, k, want int64 }{
		{7, 5, 10},
		{10, 5, 10},
		{11, 5, 15},
		{0, 5, 0},
		{1, 5, 5},
		{-1, 5, 0},
		{-4, 5, 0},
		{-5, 5, -5},
		{-6, 5, -5},
		{-10, 5, -10},
		{-11, 5, -10},
		{47_448_000_001, 1666, 47_448_001_538}, // 2026-11-26 +1 ms on a 1 s grid at 100 rpm
		{47_448_000_000, 1000, 47_448_000_000},
		{7, 1, 7},
		{-7, 1, -7},
		{7, 0, 7},
		{7, -3, 7},
		{maxI / 2, maxI / 4, 3 * (maxI / 4)},
		{minI, 2, minI},
		{minI + 1, 2, minI + 2},
		{maxI, 1, maxI},
		{maxI - 1, 2, maxI - 1},
		{maxI, 2, maxI}, // no multiple of 2 above: saturates
		{maxI - 5, 10, maxI},
	} {
		assert.Equalf(t, tt.want, CeilTo(tt.c, tt.k), "CeilTo(%d, %d)", tt.c, tt.k)
	}
	// Property: the smallest multiple of k at or above c.
	for _, k := range []int64{1, 2, 3, 7, 1000, 1666} {
		for c := int64(-3000); c <= 3000; c++ {
			got := CeilTo(c, k)
			require.Zerof(t, got%k, "CeilTo(%d, %d) = %d", c, k, got)
			require.GreaterOrEqual(t, got, c)
			require.Less(t, got-c, k)
		}
	}
}

// TestLevelTake is a bucket of 10 tokens refilling 10 a minute, looked at
// on 2026-11-26 at noon; w is given relative to the clock c there.
func TestLevelTake(t *testing.T) {
	p := rpm10
	c := Clock(p, nov26)
	require.Equal(t, int64(4_744_800_000), c)
	for _, tt := range []struct {
		name  string
		w     int64 // relative to c
		n     int64
		level int64
		next  int64 // relative to c
		ok    bool
	}{
		{"idle a minute: full", -minute, 10 * tok, 10 * tok, 10 * tok, true},
		{"idle: one more than capacity", -minute, 10*tok + 1, 10 * tok, 10*tok + 1, false},
		{"idle: zero", -minute, 0, 10 * tok, 0, true},
		{"idle: books at c, not at the old w", -5000, 1 * tok, 10 * tok, 1 * tok, true},
		{"just full (w == c)", 0, 10 * tok, 10 * tok, 10 * tok, true},
		{"just full: one more", 0, 10*tok + 1, 10 * tok, 10*tok + 1, false},
		{"3 tokens used: take the rest", 3 * tok, 7 * tok, 7 * tok, 10 * tok, true},
		{"3 tokens used: one millitoken more", 3 * tok, 7*tok + 1, 7 * tok, 10*tok + 1, false},
		{"3 tokens used: zero", 3 * tok, 0, 7 * tok, 3 * tok, true},
		{"empty: zero", 10 * tok, 0, 0, 10 * tok, true},
		{"empty: one millitoken", 10 * tok, 1, 0, 10*tok + 1, false},
		{"one millitoken left", 10*tok - 1, 1, 1, 10 * tok, true},
		{"debt of 2 tokens: zero is denied, as in Consume", 12 * tok, 0, -2 * tok, 12 * tok, false},
		{"debt of 2 tokens: one token", 12 * tok, 1 * tok, -2 * tok, 13 * tok, false},
		{"negative amount: hands back", 3 * tok, -1 * tok, 7 * tok, 2 * tok, true},
	} {
		w := c + tt.w
		assert.Equalf(t, tt.level, Level(w, c, p), "%s: Level", tt.name)
		next, ok := Take(w, c, tt.n, p)
		assert.Equalf(t, c+tt.next, next, "%s: Take(c%+d, c, %d) next", tt.name, tt.w, tt.n)
		assert.Equalf(t, tt.ok, ok, "%s: Take(c%+d, c, %d) ok", tt.name, tt.w, tt.n)
		assert.Equalf(t, ok, tt.n <= Level(w, c, p), "%s: Take admits iff n <= Level", tt.name)
	}
}

// TestLevelTakeSaturation: the level and the admission are exact for any
// int64 virtual time and clock; only the returned virtual time saturates.
func TestLevelTakeSaturation(t *testing.T) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	wide := Params{Capacity: maxI, RefillAmount: 1, RefillPeriod: 1}
	for _, tt := range []struct {
		name     string
		w, c, n  int64
		p        Params
		level    int64
		next     int64
		admitted bool
	}{
		{"gap MaxInt64+1, capacity MaxInt64", maxI, -1, 0, wide, -1, maxI, false},
		{"gap MaxInt64, capacity MaxInt64", maxI, 0, 0, wide, 0, maxI, true},
		{"widest gap", maxI, minI, 0, wide, minI, maxI, false},
		{"widest gap, capacity 1", maxI, minI, 0, rpm10, minI, maxI, false},
		{"next saturates, n beyond capacity", maxI / 2, maxI / 2, maxI/2 + 20, Params{maxI/2 + 10, 1, 1}, maxI/2 + 10, maxI, false},
		{"next saturates, n within capacity", maxI / 2, maxI / 2, maxI/2 + 5, Params{maxI/2 + 10, 1, 1}, maxI/2 + 10, maxI, true},
		{"MinInt64 request", 0, 0, minI, rpm10, 10 * tok, minI, true},
	} {
		assert.Equalf(t, tt.level, Level(tt.w, tt.c, tt.p), "%s: Level", tt.name)
		next, ok := Take(tt.w, tt.c, tt.n, tt.p)
		assert.Equalf(t, tt.next, next, "%s: next", tt.name)
		assert.Equalf(t, tt.admitted, ok, "%s: admitted", tt.name)
	}
}

// TestWait: on 2026-11-26 at noon (no fraction of a millitoken pending in
// either clock) the waits are exact: the GCRA needs no safety millisecond,
// unlike RetryAfter, because ClockTime inverts Clock exactly.
func TestWait(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Params
		now  int64
		w    int64 // relative to Clock(p, now)
		n    int64
		want int64
	}{
		// 1 milli per 6 ms: need = c+1000, ClockTime = Epoch+6*(c+1000)
		// = now+6000. TimeUntil says 6001 for the same bucket.
		{"10rpm empty, need 1", rpm10, nov26, 10 * tok, 1 * tok, 6 * sec},
		// 1 ms already accrued towards the next millitoken.
		{"10rpm empty 1 ms later, need 1", rpm10, nov26 + 1, 10 * tok, 1 * tok, 6*sec - 1},
		{"10rpm empty 5 ms later, need 1", rpm10, nov26 + 5, 10 * tok, 1 * tok, 6*sec - 5},
		{"10rpm empty 6 ms later, need 1", rpm10, nov26 + 6, 10 * tok, 1 * tok, 6 * sec},
		{"10rpm empty, need 1 millitoken", rpm10, nov26, 10 * tok, 1, 6},
		// 5 milli per 3 ms: need = c+50000, 30 000 ms exactly.
		{"100rpm empty, need 50", rpm100, nov26, 100 * tok, 50 * tok, 30 * sec},
		{"100rpm empty, need 1 millitoken (0.6 ms)", rpm100, nov26, 100 * tok, 1, 1},
		{"100rpm empty, need 2 millitokens (1.2 ms)", rpm100, nov26, 100 * tok, 2, 2},
		{"100rpm empty, need 3 millitokens (1.8 ms)", rpm100, nov26, 100 * tok, 3, 2},
		{"100rpm empty in 2023, need 50", rpm100, before, 100 * tok, 50 * tok, 30 * sec},
		{"60k rpm empty, need 1 token", rpm60k, nov26, tok * tok, 1 * tok, 1},
		{"60k rpm empty, need 1001 millitokens", rpm60k, nov26, tok * tok, tok + 1, 2},
		{"10rpm full, need all", rpm10, nov26, 0, 10 * tok, 0},
		{"10rpm idle, need all", rpm10, nov26, -minute, 10 * tok, 0},
		{"10rpm partial, enough", rpm10, nov26, 4 * tok, 6 * tok, 0},
		{"10rpm partial, 1 token short", rpm10, nov26, 4 * tok, 7 * tok, 6 * sec},
		{"10rpm debt 2, need 0", rpm10, nov26, 12 * tok, 0, 12 * sec},
		{"10rpm debt 2, need 1", rpm10, nov26, 12 * tok, 1 * tok, 18 * sec},
		// Above capacity: the wait until the bucket would hold n if it
		// could grow. Take never admits it.
		{"10rpm full, need 20 of 10", rpm10, nov26, 0, 20 * tok, minute},
		{"10rpm empty, need 20 of 10", rpm10, nov26, 10 * tok, 20 * tok, 2 * minute},
		{"10rpm idle, need 10.001 of 10", rpm10, nov26, -minute, 10*tok + 1, 6},
	} {
		c := Clock(tt.p, tt.now)
		w := c + tt.w
		got := Wait(w, tt.n, tt.p, tt.now)
		if !assert.Equalf(t, tt.want, got, "%s: Wait", tt.name) {
			continue
		}
		_, now := Take(w, c, tt.n, tt.p)
		assert.Equalf(t, got == 0, now, "%s: Wait is 0 iff Take admits now", tt.name)
		if tt.n > tt.p.Capacity {
			// Never admitted; the wait is when the clock reaches w+n-Capacity.
			need := max(w, c) + tt.n - tt.p.Capacity
			assert.GreaterOrEqualf(t, Clock(tt.p, tt.now+got), need, "%s", tt.name)
			assert.Lessf(t, Clock(tt.p, tt.now+got-1), need, "%s", tt.name)
			for _, later := range []int64{got, got + minute, 1000 * minute} {
				_, ok := Take(w, Clock(tt.p, tt.now+later), tt.n, tt.p)
				assert.Falsef(t, ok, "%s: admitted %d ms later", tt.name, later)
			}
			continue
		}
		_, ok := Take(w, Clock(tt.p, tt.now+got), tt.n, tt.p)
		assert.Truef(t, ok, "%s: not admitted after the wait", tt.name)
		if got > 0 {
			_, ok := Take(w, Clock(tt.p, tt.now+got-1), tt.n, tt.p)
			assert.Falsef(t, ok, "%s: admitted 1 ms before the wait", tt.name)
		}
	}
}

// TestWaitExhaustive checks that Wait is sufficient and tight for every
// level from idle to deep debt, every request up to capacity and every
// phase of the clock, on small buckets of awkward rates.
func TestWaitExhaustive(t *testing.T) {
	for _, p := range []Params{{7, 5, 3}, {7, 3, 5}, {10, 1, 6}, {5, 4, 1}, {1, 1, 1000}, {13, 7, 13}} {
		for phase := int64(0); phase < 2*p.RefillPeriod; phase++ {
			now := nov26 + phase
			c := Clock(p, now)
			for w := c - 3; w <= c+3*p.Capacity; w++ {
				for n := int64(0); n <= p.Capacity; n++ {
					got := Wait(w, n, p, now)
					require.GreaterOrEqual(t, got, int64(0))
					_, ok := Take(w, Clock(p, now+got), n, p)
					require.Truef(t, ok, "%+v now+%d w=c%+d n=%d: Wait %d is not enough", p, phase, w-c, n, got)
					if got > 0 {
						_, ok = Take(w, Clock(p, now+got-1), n, p)
						require.Falsef(t, ok, "%+v now+%d w=c%+d n=%d: Wait %d is not tight", p, phase, w-c, n, got)
					}
				}
			}
		}
	}
}

// TestWaitSaturation: a wait that the clock can never satisfy is forever
// (math.MaxInt64), and a wait from a far-past instant does not wrap.
func TestWaitSaturation(t *testing.T) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	fast := Params{Capacity: tok, RefillAmount: MaxRate, RefillPeriod: 1}
	// In 2056 the clock of a MaxRate limit is saturated: a bucket in debt
	// never refills, and Wait says so rather than 0.
	y2041 := time.Date(2056, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	c := Clock(fast, y2041)
	require.Equal(t, maxI/2, c)
	_, ok := Take(c+tok, c, 1, fast)
	require.False(t, ok)
	assert.Equal(t, maxI, Wait(c+tok, 1, fast, y2041))
	assert.Zero(t, Wait(c, 1, fast, y2041), "a full bucket is still full")

	for _, tt := range []struct {
		name string
		w, n int64
		p    Params
		now  int64
		want int64
	}{
		{"invalid Params, not admitted", 0, 1, Params{}, nov26, maxI},
		{"invalid Params, admitted", 0, 0, Params{}, nov26, 0},
		{"from the far past", maxI / 2, 1, Params{1, 1, 1}, minI, maxI},
		{"beyond the clock's range", maxI / 2, maxI, Params{1, 1, 1}, nov26, maxI},
		{"MinInt64 instant, debt", 0, 1, Params{1, 1, 1}, minI, maxI},
	} {
		got := Wait(tt.w, tt.n, tt.p, tt.now)
		assert.Equalf(t, tt.want, got, "%s", tt.name)
	}
}

// move is one step of a replay: advance the clock by dt ms, then request
// n millitokens.
type move struct{ dt, n int64 }

// verdict is what both forms of the bucket said to one move: whether each
// admitted it, the GCRA level and the classic refilled balance (both
// before consuming).
type verdict struct {
	gcra, classic bool
	level, avail  int64
}

func (v verdict) String() string {
	return fmt.Sprintf("gcra %v (level %d), classic %v (available %d)", v.gcra, v.level, v.classic, v.avail)
}

// lockstep replays moves from start against both forms of one bucket, full
// at start: the GCRA (virtual time w, updated by Take at Clock(p, now) when
// admitted) and the classic State, refilled and consumed by Consume. The
// classic form then follows the GCRA's decision (Force when only the GCRA
// admitted, Force of -n to undo when only the classic did), so that one
// rounding difference does not make the two forms diverge for the rest of
// the run. It returns the verdicts and the clocks at each move.
func lockstep(p Params, start int64, moves []move) ([]verdict, []int64) {
	now := start
	w := Clock(p, now)
	s := Full(p, now)
	out := make([]verdict, len(moves))
	clocks := make([]int64, len(moves))
	for i, m := range moves {
		now += m.dt
		c := Clock(p, now)
		v := verdict{level: Level(w, c, p)}
		var next int64
		next, v.gcra = Take(w, c, m.n, p)
		if v.gcra {
			w = next
		}
		var d Decision
		s, d = Consume(s, p, now, m.n)
		v.classic, v.avail = d.OK, d.Available
		switch {
		case v.gcra && !v.classic:
			s = Force(s, p, now, m.n)
		case !v.gcra && v.classic:
			s = Force(s, p, now, -m.n)
		}
		out[i], clocks[i] = v, c
	}
	return out, clocks
}

// checkClassic asserts how far the GCRA may differ from the classic form
// in a lockstep replay (requests >= 0, time never going back):
//
//   - at any rate, the classic balance is at most the GCRA level + 1. The
//     classic form never accrues more than the GCRA over any interval
//     plus the one millitoken of a phase difference (it loses the
//     fraction of a millisecond at each refill, the GCRA loses nothing).
//     So when only the classic form admits, its balance is exactly n and
//     the level n-1;
//   - when RefillPeriod is a multiple of RefillAmount, or RefillAmount of
//     RefillPeriod, the classic form keeps its fraction exactly and the two
//     are within 1 millitoken both ways: whenever they disagree, the
//     classic balance is within 1 of n (n-1 when only the GCRA admits);
//   - when RefillAmount is a multiple of RefillPeriod they are equal and
//     always agree.
//
// At other rates the classic form may fall behind by more (100 tokens a
// minute refilled every millisecond accrues 1 millitoken per ms instead of
// 5/3, see TestClockClassic), so only the first bullet holds.
func checkClassic(t *testing.T, p Params, moves []move, vs []verdict) {
	t.Helper()
	exact := p.RefillPeriod%p.RefillAmount == 0 || p.RefillAmount%p.RefillPeriod == 0
	for i, v := range vs {
		n := moves[i].n
		require.Equalf(t, n <= v.level, v.gcra, "move %d: GCRA decision vs level: %v", i, v)
		require.Equalf(t, v.avail >= n, v.classic, "move %d: classic decision vs balance: %v", i, v)
		assert.LessOrEqualf(t, v.avail, v.level+1, "move %d (%+v): classic above the GCRA: %v", i, moves[i], v)
		if v.classic && !v.gcra {
			assert.Equalf(t, n, v.avail, "move %d (%+v): only the classic admits: %v", i, moves[i], v)
		}
		if exact {
			assert.GreaterOrEqualf(t, v.avail, v.level-1, "move %d (%+v): classic below the GCRA: %v", i, moves[i], v)
			if v.gcra != v.classic {
				assert.LessOrEqualf(t, abs64(v.avail-n), int64(1), "move %d (%+v): disagree away from the boundary: %v", i, moves[i], v)
			}
		}
		if p.RefillAmount%p.RefillPeriod == 0 {
			assert.Equalf(t, v.level, v.avail, "move %d (%+v): integer rate", i, moves[i])
			assert.Equalf(t, v.gcra, v.classic, "move %d (%+v): integer rate", i, moves[i])
		}
	}
}

// checkEnvelope asserts the token-bucket envelope of a GCRA replay: over
// any window of moves i..j, the GCRA admits at most
// Capacity + Clock(j) - Clock(i) millitokens.
//
// With S(j) the admitted total of moves 0..j, that is
// S(j) - Clock(j) - min over i <= j of (S(i-1) - Clock(i)) <= Capacity.
func checkEnvelope(t *testing.T, p Params, moves []move, vs []verdict, clocks []int64) {
	t.Helper()
	var sum, low int64 // S(j) and the minimum of S(i-1)-Clock(i), i <= j
	from := 0          // the i of low
	for j := range vs {
		if j == 0 || sum-clocks[j] < low {
			low, from = sum-clocks[j], j
		}
		if vs[j].gcra {
			sum += moves[j].n
		}
		if got := sum - clocks[j] - low; got > p.Capacity {
			assert.Failf(t, "envelope exceeded", "moves %d..%d admitted %d millitokens over a clock advance of %d, capacity %d",
				from, j, got+clocks[j]-clocks[from], clocks[j]-clocks[from], p.Capacity)
			return
		}
	}
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestClockClassic(t *testing.T) {
	for _, tt := range []struct {
		name  string
		p     Params
		start int64
		moves []move
		want  []verdict
	}{
		{
			// Same phase: the classic form starts where the GCRA clock
			// has no fraction pending, so both agree exactly.
			name: "10rpm, in phase", p: rpm10, start: nov26,
			moves: []move{{0, 10 * tok}, {5999, tok}, {1, tok}, {1, 1}, {6, 1}, {minute, 11 * tok}, {0, 10 * tok}},
			want: []verdict{
				{true, true, 10 * tok, 10 * tok},
				{false, false, 999, 999},
				{true, true, tok, tok},
				{false, false, 0, 0},
				{true, true, 1, 1},
				{false, false, 10 * tok, 10 * tok},
				{true, true, 10 * tok, 10 * tok},
			},
		},
		{
			// Out of phase by 1 ms: the classic form starts at nov26+1, so
			// its millitokens accrue at 1 mod 6 ms, the GCRA's at 0 mod 6.
			// After a fresh start the GCRA is ahead (its clock had 1/6
			// pending); after both drain at a GCRA tick the classic is.
			name: "10rpm, 1 ms out of phase", p: rpm10, start: nov26 + 1,
			moves: []move{
				{0, 10 * tok},
				{5999, tok}, // nov26+6000: GCRA 1000, classic 999
				{1, 1},      // nov26+6001: classic forced to -1, catches up to 0
				{5, 1},      // nov26+6006: the GCRA's next millitoken
				{1, 1},      // nov26+6007: the classic's, but it was forced
				{minute, 10 * tok},
				{2*minute - 7, 10 * tok}, // nov26+186000: both full, drain at a GCRA tick
				{1, 1},                   // nov26+186001: the classic's tick comes first
				{5, 1},                   // nov26+186006: the GCRA's
			},
			want: []verdict{
				{true, true, 10 * tok, 10 * tok},
				{true, false, tok, 999},
				{false, false, 0, 0},
				{true, false, 1, 0},
				{false, false, 0, 0},
				{true, true, 10 * tok, 10 * tok},
				{true, true, 10 * tok, 10 * tok},
				{false, true, 0, 1}, // undone: the classic keeps its 1
				{true, true, 1, 1},
			},
		},
		{
			// 100 tokens a minute is 5/3 millitokens a millisecond: the
			// classic form keeps whole milliseconds only and loses 2/3
			// millitoken at each 1 ms refill.
			name: "100rpm, drain and refill", p: rpm100, start: nov26,
			moves: []move{{0, 100 * tok}, {1, 2}, {1, 2}, {1, 2}, {3, 5}, {30 * sec, 50*tok + 1}},
			want: []verdict{
				{true, true, 100 * tok, 100 * tok},
				{false, false, 1, 1},
				{true, true, 3, 2},            // classic 1+1: the 2/3 fraction lost
				{true, false, 3, 1},           // GCRA 5-2, classic 2-2+1: forced to -1
				{true, false, 6, 4},           // classic 2 behind now
				{true, false, 50_001, 49_999}, // and stays 2 behind
			},
		},
		{
			name: "60k rpm (1000 milli per ms), equal", p: rpm60k, start: nov26 + 17,
			moves: []move{{0, tok * tok}, {1, tok}, {0, 1}, {3, 3*tok + 1}, {0, 3 * tok}, {1000, tok * tok}},
			want: []verdict{
				{true, true, tok * tok, tok * tok},
				{true, true, tok, tok},
				{false, false, 0, 0},
				{false, false, 3 * tok, 3 * tok},
				{true, true, 3 * tok, 3 * tok},
				{true, true, tok * tok, tok * tok},
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vs, clocks := lockstep(tt.p, tt.start, tt.moves)
			assert.Equal(t, tt.want, vs)
			checkClassic(t, tt.p, tt.moves, vs)
			checkEnvelope(t, tt.p, tt.moves, vs, clocks)
		})
	}
}

// TestClockClassicDrift: under sustained load at 100 tokens a minute (5
// millitokens every 3 ms) with a request for 2 millitokens every
// millisecond, the GCRA admits the configured rate exactly while the
// classic form, refilled every millisecond, keeps only whole milliseconds
// and admits 1 millitoken a millisecond: 60 tokens a minute.
func TestClockClassicDrift(t *testing.T) {
	p := rpm100
	moves := []move{{0, 100 * tok}}
	for range 3 * sec {
		moves = append(moves, move{1, 2})
	}

	// Each form on its own.
	now, w, s := nov26, Clock(p, nov26), Full(p, nov26)
	var gcra, classic int64
	for _, m := range moves {
		now += m.dt
		if next, ok := Take(w, Clock(p, now), m.n, p); ok {
			w, gcra = next, gcra+m.n
		}
		var d Decision
		if s, d = Consume(s, p, now, m.n); d.OK {
			classic += m.n
		}
	}
	assert.Equal(t, 100*tok+5*tok, gcra, "GCRA: capacity + 5/3 millitokens a ms for 3 s")
	assert.Equal(t, 100*tok+3*tok, classic, "classic: capacity + 1 millitoken a ms")

	vs, clocks := lockstep(p, nov26, moves)
	checkClassic(t, p, moves, vs)
	checkEnvelope(t, p, moves, vs, clocks)
}

// TestClockClassicTables replays deterministic pseudo-random loads at
// several rates and checks the lockstep and envelope properties.
func TestClockClassicTables(t *testing.T) {
	for _, p := range []Params{rpm10, rpm100, rpm60k, perMinute(7, 13), {7, 5, 3}, {7, 3, 5}, {10, 1, 6}, {1000, 1, 1000}, {5, 4, 1}, {1, 1, 1000}} {
		for seed := uint64(1); seed <= 20; seed++ {
			x := seed * 0x9e3779b97f4a7c15
			rnd := func(m uint64) int64 { // xorshift
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				return int64(x % m)
			}
			var moves []move
			for range 300 {
				dt := rnd(uint64(FillTime(p))/2 + 2)
				if rnd(4) == 0 {
					dt = rnd(3)
				}
				moves = append(moves, move{dt, rnd(uint64(p.Capacity) + 2)})
			}
			start := nov26 + rnd(uint64(p.RefillPeriod))
			vs, clocks := lockstep(p, start, moves)
			checkClassic(t, p, moves, vs)
			checkEnvelope(t, p, moves, vs, clocks)
		}
	}
}

// clockModel is Clock from its documentation, in arbitrary precision:
// floor((now-Epoch)*RefillAmount/RefillPeriod) saturated to
// [MinInt64/2, MaxInt64/2], and 0 for invalid Params.
func clockModel(p Params, now int64) int64 {
	if !p.Valid() {
		return 0
	}
	if p.RefillPeriod < 0 {
		return calendarClockModel(p, now)
	}
	x := new(big.Int).Sub(big.NewInt(now), big.NewInt(Epoch))
	x.Mul(x, big.NewInt(p.RefillAmount))
	m := new(big.Int)
	x.DivMod(x, big.NewInt(p.RefillPeriod), m) // Euclidean: floor for a positive divisor
	return clampBig(x, math.MinInt64/2, math.MaxInt64/2)
}

// clampBig returns x clamped to [lo, hi].
func clampBig(x *big.Int, lo, hi int64) int64 {
	switch {
	case x.Cmp(big.NewInt(lo)) < 0:
		return lo
	case x.Cmp(big.NewInt(hi)) > 0:
		return hi
	}
	return x.Int64()
}
