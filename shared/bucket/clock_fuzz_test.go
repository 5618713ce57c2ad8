package bucket

import (
	"math"
	"math/big"
	"math/bits"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bounds of the realistic domain of the clock fuzz targets: instants within
// ±2^38 ms (8.7 years) of Epoch, periods of 1 s to 2^36 ms (2.2 years),
// rates up to MaxRate and capacities that fill in at most 2^36 ms and are
// at most 2^52 millitokens. Clocks stay far from saturation there (at
// MaxRate, 8.7 years is 2.7e18 of the 4.6e18 available) and sums of a few
// hundred amounts fit in an int64.
const (
	spanBits   = 38
	periodBits = 36
	capBits    = 52
)

// limitParams maps arbitrary int64s onto Params a limit can have. shape
// picks the kind of rate: 0 any, 1 RefillAmount a multiple of RefillPeriod
// (a whole number of millitokens per ms), 2 RefillPeriod a multiple of
// RefillAmount (a whole number of ms per millitoken).
func limitParams(capacity, amount, period int64, shape uint8) Params {
	var a, per uint64
	switch shape % 3 {
	case 1:
		per = 1000 + uint64(period)%(1<<periodBits)
		a = per * (1 + uint64(amount)%uint64(MaxRate))
	case 2:
		a = 1 + uint64(amount)%1_000_000
		k := 1 + uint64(period)%max(1, (1<<periodBits)/a)
		per = a * max(k, (1000+a-1)/a)
	default:
		per = 1000 + uint64(period)%(1<<periodBits)
		a = 1 + uint64(amount)%(uint64(MaxRate)*per)
	}
	// Fill time at most 2^periodBits ms: capacity <= a*2^periodBits/per.
	hi, lo := bits.Mul64(a, 1<<periodBits)
	most, _ := bits.Div64(hi, lo, per)
	most = min(max(most, 1), 1<<capBits)
	return Params{Capacity: int64(1 + uint64(capacity)%most), RefillAmount: int64(a), RefillPeriod: int64(per)}
}

// instant maps an int64 onto an instant within ±2^spanBits ms of Epoch.
func instant(x int64) int64 {
	return Epoch - 1<<spanBits + int64(uint64(x)%(1<<(spanBits+1)))
}

// decodeMoves turns fuzz bytes into at most 256 moves, 4 bytes each: a
// time step of up to 2^27 ms (1.5 days) on a scale picked by the fuzzer,
// and a request either a fraction of Capacity (0 to ~1.07 Capacity,
// exactly Capacity at 3840) or a literal small amount.
func decodeMoves(p Params, data []byte) []move {
	var moves []move
	for i := 0; i+4 <= len(data) && len(moves) < 256; i += 4 {
		dt := int64(data[i])<<8 | int64(data[i+1])
		dt <<= (data[i+2] >> 4) % 12
		x := int64(data[i+2]&0x0f)<<8 | int64(data[i+3])
		var n int64
		if x >= 3900 {
			n = x - 3900 // 0..195 millitokens
		} else {
			hi, lo := bits.Mul64(uint64(p.Capacity), uint64(x))
			q, _ := bits.Div64(hi, lo, 3840)
			n = int64(q)
		}
		moves = append(moves, move{dt: dt, n: n})
	}
	return moves
}

// seedRuns adds replays shaped like real limits.
func seedRuns(f *testing.F) {
	steady := []byte{0x10, 0x00, 0x20, 0x10, 0x00, 0x10, 0x00, 0x05, 0x17, 0x70, 0x10, 0x00, 0xff, 0xff, 0x0f, 0x00}
	drain := []byte{0, 0, 0x0f, 0x00, 0, 1, 0x0f, 0x3e, 0, 1, 0x0f, 0x3e, 0, 3, 0x0f, 0x41, 0xff, 0xff, 0xbf, 0x00}
	f.Add(nov26, int64(10*tok), int64(10*tok), minute, uint8(0), steady)
	f.Add(nov26, int64(100*tok), int64(100*tok), minute, uint8(0), drain)
	f.Add(nov26+1, int64(10*tok), int64(10*tok), minute, uint8(2), drain)
	f.Add(before, int64(tok*tok), int64(60_000*tok), minute, uint8(1), steady)
	f.Add(int64(0), int64(7), int64(5), int64(3), uint8(0), drain)
	f.Add(int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64), uint8(1), steady)
}

// FuzzClockEnvelope: for any load on a realistic limit, the GCRA never
// admits more than Capacity + Clock(j) - Clock(i) millitokens over moves
// i..j, and its decisions are those of Level.
func FuzzClockEnvelope(f *testing.F) {
	seedRuns(f)
	f.Fuzz(func(t *testing.T, start, capacity, amount, period int64, shape uint8, data []byte) {
		p := limitParams(capacity, amount, period, shape)
		now := instant(start)
		moves := decodeMoves(p, data)
		w := Clock(p, now)
		vs := make([]verdict, len(moves))
		clocks := make([]int64, len(moves))
		for i, m := range moves {
			now += m.dt
			c := Clock(p, now)
			require.Less(t, c, int64(math.MaxInt64/2), "left the realistic domain")
			require.GreaterOrEqual(t, c, w-p.Capacity, "an admitted take leaves w <= c+Capacity")
			level := Level(w, c, p)
			next, ok := Take(w, c, m.n, p)
			require.Equal(t, m.n <= level, ok)
			if ok {
				w = next
			}
			vs[i] = verdict{gcra: ok, level: level}
			clocks[i] = c
		}
		checkEnvelope(t, p, moves, vs, clocks)
	})
}

// FuzzClockClassic: the GCRA and the classic Refill/Consume, replayed in
// lockstep on a realistic limit, differ as checkClassic says: by at most
// 1 millitoken at exact rates, and the classic is never more than 1 ahead.
func FuzzClockClassic(f *testing.F) {
	seedRuns(f)
	f.Fuzz(func(t *testing.T, start, capacity, amount, period int64, shape uint8, data []byte) {
		p := limitParams(capacity, amount, period, shape)
		moves := decodeMoves(p, data)
		vs, clocks := lockstep(p, instant(start), moves)
		checkClassic(t, p, moves, vs)
		checkEnvelope(t, p, moves, vs, clocks)
	})
}

// FuzzClockWait: on a realistic limit, for any virtual time from idle to
// deep debt and any request up to Capacity, Take admits at now+Wait and
// denies at now+Wait-1 when Wait > 0. Above Capacity, now+Wait is exactly
// when the clock reaches max(w, c)+n-Capacity, and Take still denies.
func FuzzClockWait(f *testing.F) {
	for _, r := range [][4]int64{
		{nov26, 10 * tok, 10 * tok, minute},
		{nov26 + 1, 100 * tok, 100 * tok, minute},
		{before, tok * tok, 60_000 * tok, minute},
		{0, 7, 5, 3},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64},
	} {
		for _, shape := range []uint8{0, 1, 2} {
			f.Add(r[0], r[1], r[2], r[3], shape, int64(0), int64(1))
			f.Add(r[0], r[1], r[2], r[3], shape, int64(3*r[1]/2), int64(r[1]))
			f.Add(r[0], r[1], r[2], r[3], shape, int64(-1), int64(-1))
		}
	}
	f.Fuzz(func(t *testing.T, at, capacity, amount, period int64, shape uint8, off, n int64) {
		p := limitParams(capacity, amount, period, shape)
		now := instant(at)
		c := Clock(p, now)
		// w-c in [-Capacity/2, 3*Capacity/2]: idle, partial, empty, debt.
		w := c - p.Capacity/2 + int64(uint64(off)%uint64(2*p.Capacity+1))
		n = int64(uint64(n) % uint64(2*p.Capacity+1)) // up to 2*Capacity

		got := Wait(w, n, p, now)
		require.GreaterOrEqual(t, got, int64(0))
		require.Less(t, got, int64(1)<<(periodBits+2), "w %d c %d n %d %+v", w, c, n, p)
		_, nowOK := Take(w, c, n, p)
		assert.Equal(t, nowOK, got == 0, "Wait is 0 iff Take admits now")

		if n > p.Capacity {
			need := max(w, c) + n - p.Capacity
			assert.GreaterOrEqual(t, Clock(p, now+got), need)
			if got > 0 {
				assert.Less(t, Clock(p, now+got-1), need)
			}
			_, ok := Take(w, Clock(p, now+got), n, p)
			assert.False(t, ok, "admitted above capacity")
			return
		}
		_, ok := Take(w, Clock(p, now+got), n, p)
		assert.True(t, ok, "Wait %d not sufficient: w=c%+d n=%d %+v", got, w-c, n, p)
		if got > 0 {
			_, ok = Take(w, Clock(p, now+got-1), n, p)
			assert.False(t, ok, "Wait %d not tight: w=c%+d n=%d %+v", got, w-c, n, p)
		}
	})
}

// FuzzClockModel feeds any int64s (valid Params or not) to every function
// and checks it against its documentation in arbitrary precision, with the
// saturation it documents: no panic, no wrap-around.
func FuzzClockModel(f *testing.F) {
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	for _, r := range [][7]int64{
		// now, capacity, amount, period, w, n, k (also a clock value)
		{nov26, 10 * tok, 10 * tok, minute, 4_744_810_000, tok, 166},
		{before, 100 * tok, 100 * tok, minute, -112_042_566_667, 50 * tok, -112_042_666_667},
		{Epoch - 1, 7, 5, 3, -3, 2, -2},
		{minI, 1, maxI, 1, maxI, 1, minI},
		{maxI, maxI, 1, maxI, minI, minI, maxI},
		{minI + Epoch - 1, 1, 1, 1, 0, 1, 3*(maxI/4) + 4},
		{maxI, 0, 0, 0, maxI, maxI, 2},
		{-1, maxI, MaxRate, 1, maxI / 2, maxI/2 + 20, maxI / 4},
		// Calendar limits (a day, a week, a month of 100 tokens).
		{nov26, 100 * tok, 100 * tok, CalendarDay, 32_900_000, tok, 33_000_000},
		{nov26, 100 * tok, 100 * tok, CalendarWeek, 4_800_000, 50 * tok, 4_700_001},
		{nov26, 100 * tok, 100 * tok, CalendarMonth, 1_100_000, 100 * tok, -1},
		{maxI, 7, 3, CalendarMonth, minI, 7, maxI},
	} {
		f.Add(r[0], r[1], r[2], r[3], r[4], r[5], r[6])
	}
	f.Fuzz(func(t *testing.T, now, capacity, amount, period, w, n, k int64) {
		for _, p := range []Params{
			{Capacity: capacity, RefillAmount: amount, RefillPeriod: period}, // often invalid
			params(capacity, amount, period),                                 // always valid
		} {
			c := Clock(p, now)
			require.Equal(t, clockModel(p, now), c, "Clock(%+v, %d)", p, now)
			if now < math.MaxInt64 {
				assert.LessOrEqual(t, c, Clock(p, now+1), "Clock not monotone")
			}

			ct := ClockTime(p, k)
			assert.Equal(t, clockTimeModel(p, k), ct, "ClockTime(%+v, %d)", p, k)
			if p.Valid() && k < math.MaxInt64 {
				assert.LessOrEqual(t, ct, ClockTime(p, k+1), "ClockTime not monotone")
			}
			if p.Valid() && k > math.MinInt64/2 && k <= math.MaxInt64/2 && abs64(ct-Epoch) < math.MaxInt64/4 {
				// The exact range: ClockTime inverts Clock.
				assert.GreaterOrEqual(t, Clock(p, ct), k)
				assert.Less(t, Clock(p, ct-1), k)
			}

			assert.Equal(t, quantumModel(p, k), Quantum(p, k), "Quantum(%+v, %d)", p, k)
			assert.Equal(t, ceilToModel(w, k), CeilTo(w, k), "CeilTo(%d, %d)", w, k)

			level := Level(w, c, p)
			assert.Equal(t, levelModel(w, c, p), level, "Level(%d, %d, %+v)", w, c, p)
			next, ok := Take(w, c, n, p)
			wantNext, wantOK := takeModel(w, c, n, p)
			assert.Equal(t, wantNext, next, "Take(%d, %d, %d, %+v) next", w, c, n, p)
			assert.Equal(t, wantOK, ok, "Take(%d, %d, %d, %+v) ok", w, c, n, p)
			if n > math.MinInt64 || level > math.MinInt64 {
				assert.Equal(t, n <= level, ok, "Take admits iff n <= Level")
			}

			wait := Wait(w, n, p, now)
			assert.GreaterOrEqual(t, wait, int64(0))
			assert.Equal(t, ok, wait == 0, "Wait is 0 iff Take admits now")
			if !p.Valid() {
				if !ok {
					assert.Equal(t, int64(math.MaxInt64), wait, "invalid Params wait forever")
				}
				continue
			}
			// A finite wait that does not overflow the instant is
			// sufficient for a request up to Capacity: never too early.
			if wait > 0 && wait < math.MaxInt64 && n <= p.Capacity && n >= 0 && now <= math.MaxInt64-wait {
				_, later := Take(w, Clock(p, now+wait), n, p)
				assert.True(t, later, "Wait %d not sufficient", wait)
			}
		}
	})
}

// clockTimeModel is ClockTime from its documentation: Epoch +
// ceil(c*P/a), saturated at Epoch±MaxInt64/4 when the rounded quotient is
// beyond MaxInt64/4 and at ±MaxInt64/2 when c*P/a does not fit in 64 bits;
// MaxInt64 for invalid Params.
func clockTimeModel(p Params, c int64) int64 {
	if !p.Valid() {
		return math.MaxInt64
	}
	if p.RefillPeriod < 0 {
		return calendarClockTimeModel(p, c)
	}
	x := new(big.Int).Mul(big.NewInt(c), big.NewInt(p.RefillPeriod))
	a := big.NewInt(p.RefillAmount)
	mag := new(big.Int).Abs(x)
	mag.Quo(mag, a) // floor of the magnitude
	if mag.BitLen() > 64 {
		if c < 0 {
			return math.MinInt64 / 2
		}
		return math.MaxInt64 / 2
	}
	q := new(big.Int).Add(x, a)
	q.Sub(q, big.NewInt(1))
	if c >= 0 {
		q.Quo(q, a) // ceil for x >= 0
	} else {
		q.Quo(x, a) // truncation is ceil for x < 0
	}
	const cap4 = math.MaxInt64 / 4
	if q.Cmp(big.NewInt(cap4)) > 0 {
		return Epoch + cap4
	}
	if q.Cmp(big.NewInt(-cap4)) < 0 {
		return Epoch - cap4
	}
	return Epoch + q.Int64()
}

// quantumModel is max(1, floor(tick*a/P)) capped at MaxInt64/4, and 1 for
// invalid Params or tick <= 0.
func quantumModel(p Params, tick int64) int64 {
	if !p.Valid() || tick <= 0 || p.RefillPeriod < 0 {
		return 1
	}
	x := new(big.Int).Mul(big.NewInt(tick), big.NewInt(p.RefillAmount))
	x.Quo(x, big.NewInt(p.RefillPeriod))
	return clampBig(x, 1, math.MaxInt64/4)
}

// ceilToModel is the smallest multiple of k at or above c, saturated at
// MaxInt64; c itself for k <= 1.
func ceilToModel(c, k int64) int64 {
	if k <= 1 {
		return c
	}
	bk := big.NewInt(k)
	x := new(big.Int).Add(big.NewInt(c), bk)
	x.Sub(x, big.NewInt(1))
	m := new(big.Int)
	x.DivMod(x, bk, m) // floor((c+k-1)/k)
	x.Mul(x, bk)
	return clamp64(x)
}

// levelModel is Capacity - max(0, w-c), saturated.
func levelModel(w, c int64, p Params) int64 {
	gap := new(big.Int).Sub(big.NewInt(w), big.NewInt(c))
	if gap.Sign() < 0 {
		gap.SetInt64(0)
	}
	return clamp64(gap.Sub(big.NewInt(p.Capacity), gap))
}

// takeModel is (max(w, c)+n saturated, max(w, c)+n <= c+Capacity).
func takeModel(w, c, n int64, p Params) (int64, bool) {
	next := new(big.Int).Add(big.NewInt(max(w, c)), big.NewInt(n))
	bound := new(big.Int).Add(big.NewInt(c), big.NewInt(p.Capacity))
	return clamp64(next), next.Cmp(bound) <= 0
}
