package bucket

import (
	"math"
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ms is the Unix millisecond of a UTC wall time.
func ms(y int, mo time.Month, d, h, mi, s, milli int) int64 {
	return time.Date(y, mo, d, h, mi, s, milli*int(time.Millisecond), time.UTC).UnixMilli()
}

func calendar(capacity, period int64) Params {
	return Params{Capacity: capacity * tok, RefillAmount: capacity * tok, RefillPeriod: period}
}

func TestCalendarIndexStart(t *testing.T) {
	for _, tt := range []struct {
		name   string
		period int64
		at     int64
		k      int64
	}{
		{"day at Epoch", CalendarDay, Epoch, 0},
		{"day before Epoch", CalendarDay, Epoch - 1, -1},
		{"day 2026-01-01T23:59:59.999", CalendarDay, ms(2026, 1, 1, 23, 59, 59, 999), 0},
		{"day 2026-01-02", CalendarDay, ms(2026, 1, 2, 0, 0, 0, 0), 1},
		{"day 2026-11-26T12:00", CalendarDay, nov26, 329},
		{"day 2023-11-14", CalendarDay, before, -779},
		// 2026-01-01 is a Thursday: its week began Monday 2025-12-29.
		{"week at Epoch (Thursday)", CalendarWeek, Epoch, 0},
		{"week Monday 2025-12-29", CalendarWeek, ms(2025, 12, 29, 0, 0, 0, 0), 0},
		{"week Sunday 2025-12-28T23:59:59.999", CalendarWeek, ms(2025, 12, 28, 23, 59, 59, 999), -1},
		{"week Sunday 2026-01-04T23:59:59.999", CalendarWeek, ms(2026, 1, 4, 23, 59, 59, 999), 0},
		{"week Monday 2026-01-05", CalendarWeek, ms(2026, 1, 5, 0, 0, 0, 0), 1},
		{"week Thursday 2026-11-26", CalendarWeek, nov26, 47},
		{"month at Epoch", CalendarMonth, Epoch, 0},
		{"month 2026-01-31T23:59:59.999", CalendarMonth, ms(2026, 1, 31, 23, 59, 59, 999), 0},
		{"month 2026-02-01", CalendarMonth, ms(2026, 2, 1, 0, 0, 0, 0), 1},
		{"month 2026-11-26", CalendarMonth, nov26, 10},
		{"month 2025-12-31", CalendarMonth, ms(2025, 12, 31, 12, 0, 0, 0), -1},
		{"month 2028-02-29 (leap day)", CalendarMonth, ms(2028, 2, 29, 12, 0, 0, 0), 25},
		{"month 2028-03-01", CalendarMonth, ms(2028, 3, 1, 0, 0, 0, 0), 26},
		{"month 2000-02-29 (leap century)", CalendarMonth, ms(2000, 2, 29, 0, 0, 0, 0), -311},
	} {
		assert.Equalf(t, tt.k, Index(tt.period, tt.at), "%s: Index", tt.name)
		start := Start(tt.period, tt.k)
		assert.LessOrEqualf(t, start, tt.at, "%s: Start(%d) = %v after the instant", tt.name, tt.k, time.UnixMilli(start).UTC())
		assert.Equalf(t, tt.k, Index(tt.period, start), "%s: Index(Start(k))", tt.name)
		assert.Equalf(t, tt.k-1, Index(tt.period, start-1), "%s: the instant before Start(k) is in k-1", tt.name)
		assert.Greaterf(t, Next(tt.period, tt.at), tt.at, "%s: Next", tt.name)
		assert.Equalf(t, tt.k+1, Index(tt.period, Next(tt.period, tt.at)), "%s: Next begins k+1", tt.name)
	}
}

// TestCalendarLengths: months have their calendar lengths (leap years
// included: 2028 and 2000 are leap, 2100 is not), days and weeks theirs.
func TestCalendarLengths(t *testing.T) {
	days := func(period, at int64) int64 {
		k := Index(period, at)
		return (Start(period, k+1) - Start(period, k)) / msDay
	}
	for _, tt := range []struct {
		at   int64
		want int64
	}{
		{ms(2026, 1, 15, 0, 0, 0, 0), 31},
		{ms(2026, 2, 15, 0, 0, 0, 0), 28},
		{ms(2026, 4, 15, 0, 0, 0, 0), 30},
		{ms(2027, 2, 1, 0, 0, 0, 0), 28},
		{ms(2028, 2, 1, 0, 0, 0, 0), 29},
		{ms(2000, 2, 1, 0, 0, 0, 0), 29},
		{ms(2100, 2, 1, 0, 0, 0, 0), 28},
		{ms(2026, 12, 31, 0, 0, 0, 0), 31},
	} {
		assert.Equalf(t, tt.want, days(CalendarMonth, tt.at), "month of %v", time.UnixMilli(tt.at).UTC())
	}
	for _, at := range []int64{before, Epoch, nov26, ms(2028, 2, 29, 0, 0, 0, 0)} {
		assert.Equal(t, int64(1), days(CalendarDay, at))
		assert.Equal(t, int64(7), days(CalendarWeek, at))
		assert.Equal(t, time.Monday, time.UnixMilli(Start(CalendarWeek, Index(CalendarWeek, at))).UTC().Weekday())
	}
}

// TestCalendarSteps replays a calendar-month quota of 100 tokens across the
// February boundary of 2026 (28 days) and of 2028 (29, a leap year): the
// bucket is full again at 00:00 on the first, not a millisecond earlier;
// Wait names that instant; debt is carried (level = capacity - debt).
func TestCalendarSteps(t *testing.T) {
	p := calendar(100, CalendarMonth)
	for _, year := range []int{2026, 2028} {
		mar1 := ms(year, 3, 1, 0, 0, 0, 0)
		at := ms(year, 2, 27, 10, 0, 0, 0)
		c := Clock(p, at)
		w, ok := Take(Clock(p, at), c, 100*tok, p) // drain February
		require.True(t, ok)
		assert.Equal(t, int64(0), Level(w, c, p))
		_, ok = Take(w, c, tok, p)
		assert.False(t, ok, "%d: February is spent", year)
		assert.Equal(t, mar1-at, Wait(w, tok, p, at), "%d: the wait is to March 1st", year)
		assert.Equal(t, mar1-at, Wait(w, 100*tok, p, at), "%d: the whole quota too", year)
		last := mar1 - 1
		_, ok = Take(w, Clock(p, last), tok, p)
		assert.False(t, ok, "%d: still February at 23:59:59.999", year)
		assert.Equal(t, int64(1), Wait(w, tok, p, last))
		_, ok = Take(w, Clock(p, mar1), 100*tok, p)
		assert.True(t, ok, "%d: full again at March 1st", year)

		// Debt of 30 at the boundary is carried: March holds 70.
		debt := w + 30*tok
		assert.Equal(t, int64(70*tok), Level(debt, Clock(p, mar1), p))
		assert.Equal(t, ms(year, 4, 1, 0, 0, 0, 0)-mar1, Wait(debt, 71*tok, p, mar1), "71 waits for April")
		// A debt of more than a whole quota waits for as many boundaries:
		// -150 in February, -50 in March, 50 in April.
		deep := w + 150*tok
		assert.Equal(t, int64(-50*tok), Level(deep, Clock(p, mar1), p))
		assert.Equal(t, ms(year, 4, 1, 0, 0, 0, 0)-at, Wait(deep, 50*tok, p, at))
	}
	// Leap February: from noon on the 28th the wait is a day and a half.
	feb28 := ms(2028, 2, 28, 12, 0, 0, 0)
	w := Clock(p, feb28) + 100*tok
	assert.Equal(t, int64(36*time.Hour/time.Millisecond), Wait(w, tok, p, feb28))
}

func TestCalendarDayWeek(t *testing.T) {
	day := calendar(10, CalendarDay)
	at := ms(2026, 11, 26, 23, 0, 0, 0)
	w, ok := Take(Clock(day, at), Clock(day, at), 10*tok, day)
	require.True(t, ok)
	assert.Equal(t, int64(time.Hour/time.Millisecond), Wait(w, tok, day, at), "to midnight")
	assert.Equal(t, int64(10*tok), Level(w, Clock(day, ms(2026, 11, 27, 0, 0, 0, 0)), day))

	week := calendar(10, CalendarWeek)
	sun := ms(2026, 11, 29, 23, 0, 0, 0) // a Sunday
	w, ok = Take(Clock(week, sun), Clock(week, sun), 10*tok, week)
	require.True(t, ok)
	assert.Equal(t, int64(time.Hour/time.Millisecond), Wait(w, tok, week, sun), "to Monday 00:00")
	mon := ms(2026, 11, 23, 0, 0, 0, 0) // the Monday the week began
	assert.Equal(t, Clock(week, mon), Clock(week, sun), "one step for the whole week")
	assert.Less(t, Clock(week, mon-1), Clock(week, mon))
}

// TestCalendarClockTimeInverse: ClockTime(p, c) is the smallest instant at
// which Clock(p, t) >= c, for clocks around several boundaries.
func TestCalendarClockTimeInverse(t *testing.T) {
	for _, period := range []int64{CalendarDay, CalendarWeek, CalendarMonth} {
		for _, p := range []Params{calendar(100, period), {Capacity: 7, RefillAmount: 3, RefillPeriod: period}} {
			for _, at := range []int64{before, Epoch, nov26, ms(2028, 2, 29, 0, 0, 0, 0)} {
				base := Clock(p, at)
				for c := base - 5*p.RefillAmount; c <= base+5*p.RefillAmount; c += max(1, p.RefillAmount/7) {
					tc := ClockTime(p, c)
					require.GreaterOrEqualf(t, Clock(p, tc), c, "Clock(%+v, ClockTime(%d))", p, c)
					require.Lessf(t, Clock(p, tc-1), c, "ClockTime(%+v, %d) is not the smallest", p, c)
				}
			}
		}
	}
}

func TestCalendarParams(t *testing.T) {
	for _, period := range []int64{CalendarDay, CalendarWeek, CalendarMonth} {
		p := calendar(5, period)
		assert.True(t, p.Valid())
		assert.Equal(t, int64(1), Quantum(p, 100), "no grid")
		assert.Equal(t, Longest(period), FillTime(p), "one period, at its longest")
		assert.Equal(t, 3*Longest(period), FillTime(Params{Capacity: 7, RefillAmount: 3, RefillPeriod: period}))
	}
	assert.False(t, Params{Capacity: 1, RefillAmount: 1, RefillPeriod: -4}.Valid())
	assert.Equal(t, int64(31*msDay), Longest(CalendarMonth))
	assert.Equal(t, int64(math.MaxInt64), FillTime(Params{Capacity: math.MaxInt64, RefillAmount: 1, RefillPeriod: CalendarMonth}))
	// Saturation: clocks at ±MaxInt64/2, starts at Epoch ± MaxInt64/4.
	huge := Params{Capacity: 1, RefillAmount: math.MaxInt64, RefillPeriod: CalendarDay}
	assert.Equal(t, int64(math.MaxInt64/2), Clock(huge, nov26))
	assert.Equal(t, int64(math.MinInt64/2), Clock(huge, before))
	assert.Equal(t, int64(0), Clock(huge, Epoch))
	for _, period := range []int64{CalendarDay, CalendarWeek, CalendarMonth} {
		assert.Equal(t, Epoch+math.MaxInt64/4, Start(period, math.MaxInt64))
		assert.Equal(t, Epoch-math.MaxInt64/4, Start(period, math.MinInt64))
		assert.NotPanics(t, func() { Index(period, math.MaxInt64); Index(period, math.MinInt64) })
	}
}

// calendarClockModel is Clock of a calendar limit from its documentation:
// the periods begun since Epoch, counted by the calendar, times the refill,
// saturated at ±MaxInt64/2.
func calendarClockModel(p Params, now int64) int64 {
	var k *big.Int
	switch p.RefillPeriod {
	case CalendarMonth:
		tm := time.UnixMilli(now).UTC()
		k = big.NewInt(int64(tm.Year())*12 + int64(tm.Month()) - (2026*12 + 1))
	default:
		length, origin := int64(msDay), Epoch
		if p.RefillPeriod == CalendarWeek {
			length, origin = 7*msDay, ms(2025, 12, 29, 0, 0, 0, 0)
		}
		x := new(big.Int).Sub(big.NewInt(now), big.NewInt(origin))
		k, _ = new(big.Int).DivMod(x, big.NewInt(length), new(big.Int))
	}
	return clampBig(k.Mul(k, big.NewInt(p.RefillAmount)), math.MinInt64/2, math.MaxInt64/2)
}

// calendarClockTimeModel is ClockTime of a calendar limit: the start of
// period ceil(c/a), saturated at Epoch ± MaxInt64/4.
func calendarClockTimeModel(p Params, c int64) int64 {
	a := big.NewInt(p.RefillAmount)
	k := new(big.Int).Add(big.NewInt(c), a)
	k.Sub(k, big.NewInt(1))
	k.Div(k, a) // Euclidean, a > 0: ceil(c/a)
	return Start(p.RefillPeriod, k.Int64())
}

// FuzzCalendar: for calendar limits of realistic sizes at instants within
// 8.7 years of Epoch, the clock is monotone and steps only at boundaries,
// ClockTime inverts it, and Wait is sufficient and the shortest (Take
// admits at now+Wait, not a millisecond earlier).
func FuzzCalendar(f *testing.F) {
	f.Add(uint8(0), int64(100), int64(100), nov26, int64(0), int64(50))
	f.Add(uint8(1), int64(7), int64(3), Epoch, int64(30), int64(7))
	f.Add(uint8(2), int64(100), int64(100), ms(2028, 2, 28, 23, 0, 0, 0), int64(250), int64(1))
	f.Fuzz(func(t *testing.T, which uint8, capacity, amount, at, debt, n int64) {
		period := []int64{CalendarDay, CalendarWeek, CalendarMonth}[which%3]
		a := 1 + amount&(1<<40-1)
		p := Params{Capacity: 1 + int64(uint64(capacity)%uint64(10*a)), RefillAmount: a, RefillPeriod: period}
		now := instant(at)
		c := Clock(p, now)
		require.Equal(t, calendarClockModel(p, now), c)
		require.LessOrEqual(t, c, Clock(p, now+1))
		if Clock(p, now+1) != c {
			require.Equal(t, Start(period, Index(period, now+1)), now+1, "a step away from a boundary")
		}
		ct := ClockTime(p, c+1)
		require.Greater(t, Clock(p, ct), c)
		require.Equal(t, c, Clock(p, ct-1))
		require.Equal(t, Next(period, now), ct, "the next step is the next boundary")

		w := c + p.Capacity + int64(uint64(debt)%uint64(20*p.RefillAmount)) // empty, in debt up to 20 refills
		req := 1 + n&(1<<40-1)
		req = min(req, p.Capacity)
		wait := Wait(w, req, p, now)
		require.Greater(t, wait, int64(0))
		_, ok := Take(w, Clock(p, now+wait), req, p)
		require.True(t, ok, "Wait %d not sufficient", wait)
		_, early := Take(w, Clock(p, now+wait-1), req, p)
		require.False(t, early, "Wait %d not the shortest", wait)
		require.Equal(t, now+wait, Start(period, Index(period, now+wait)), "a wait ends at a boundary")
	})
}
