package bucket

import (
	"math"
	"math/bits"
	"time"
)

// Calendar limits (ADR-029). A limit whose RefillPeriod is one of the
// negative codes below refills in steps instead of continuously: it gains
// RefillAmount whole at every boundary of the UTC calendar period, and
// nothing in between. Its clock is a step function,
//
//	Clock(p, now) = Index(period, now) * RefillAmount
//
// (the whole periods begun since Epoch, times the refill), and Level, Take
// and Wait work on it unchanged: at a boundary the clock jumps by the
// refill, so a bucket whose RefillAmount is its Capacity is full again,
// less any debt it carries (a debt D at the boundary leaves Capacity - D).
// Wait is the time to the boundary at which the amount fits, whatever the
// lengths of the months in between.
//
// A negative period code is stored like any period, so every condition and
// fingerprint over a limit's parameters covers its calendar too.
const (
	// CalendarDay: a UTC day, from 00:00.
	CalendarDay int64 = -1
	// CalendarWeek: a UTC week, from Monday 00:00 (ISO 8601).
	CalendarWeek int64 = -2
	// CalendarMonth: a UTC calendar month, from its first day at 00:00.
	CalendarMonth int64 = -3
)

const (
	msDay = 86_400_000
	// firstMonday is 2025-12-29T00:00:00Z, the Monday of Epoch's week:
	// week k begins firstMonday + k weeks.
	firstMonday = Epoch - 3*msDay
	// maxMonths bounds a month index so that its start stays within
	// Epoch ± MaxInt64/4 ms (73 million years), like every saturated
	// instant of this package.
	maxMonths = 800_000_000
)

// IsCalendar reports whether period is a calendar period code.
func IsCalendar(period int64) bool {
	return period == CalendarDay || period == CalendarWeek || period == CalendarMonth
}

// Longest is the longest length of a period in milliseconds: a day, a week,
// 31 days for a month; a continuous period is its own length.
func Longest(period int64) int64 {
	switch period {
	case CalendarDay:
		return msDay
	case CalendarWeek:
		return 7 * msDay
	case CalendarMonth:
		return 31 * msDay
	}
	return period
}

// Index is the number of calendar periods begun between Epoch and now:
// 0 in the period holding Epoch (for weeks, the week of Monday 2025-12-29),
// negative before it. now must be a calendar period's instant (Unix ms).
func Index(period, now int64) int64 {
	switch period {
	case CalendarDay:
		return floorQuo(subSat(now, Epoch), msDay)
	case CalendarWeek:
		return floorQuo(subSat(now, firstMonday), 7*msDay)
	}
	t := time.UnixMilli(now).UTC()
	return int64(t.Year()-2026)*12 + int64(t.Month()-1)
}

// Start is the instant (Unix ms) period k begins (Index(period, Start(k))
// = k), saturated at Epoch ± MaxInt64/4.
func Start(period, k int64) int64 {
	const far = math.MaxInt64 / 4
	switch period {
	case CalendarDay, CalendarWeek:
		length, origin := int64(msDay), int64(Epoch)
		if period == CalendarWeek {
			length, origin = 7*msDay, firstMonday
		}
		if k > far/length {
			return Epoch + far
		}
		if k < -far/length {
			return Epoch - far
		}
		return origin + k*length
	}
	switch {
	case k > maxMonths:
		return Epoch + far
	case k < -maxMonths:
		return Epoch - far
	}
	y, m := 2026+floorQuo(k, 12), k-12*floorQuo(k, 12)
	return time.Date(int(y), time.Month(m+1), 1, 0, 0, 0, 0, time.UTC).UnixMilli()
}

// Next is the first boundary of the calendar period after now: when a
// period that holds now ends.
func Next(period, now int64) int64 { return Start(period, addSat(Index(period, now), 1)) }

// calendarClock is Clock for a calendar limit: Index * RefillAmount,
// saturated at ±MaxInt64/2.
func calendarClock(p Params, now int64) int64 {
	k := Index(p.RefillPeriod, now)
	neg := k < 0
	u := uint64(k)
	if neg {
		u = -u
	}
	hi, lo := bits.Mul64(u, uint64(p.RefillAmount))
	if hi != 0 || lo > math.MaxInt64/2 {
		if neg {
			return math.MinInt64 / 2
		}
		return math.MaxInt64 / 2
	}
	if neg {
		return -int64(lo)
	}
	return int64(lo)
}

// calendarClockTime is ClockTime for a calendar limit: the start of the
// period ceil(c / RefillAmount), when the clock reaches c.
func calendarClockTime(p Params, c int64) int64 {
	k := c / p.RefillAmount // truncated: the ceiling for c <= 0
	if c > 0 && c%p.RefillAmount != 0 {
		k++
	}
	return Start(p.RefillPeriod, k)
}

// calendarFillTime is FillTime for a calendar limit: the periods an empty
// bucket needs to be full, each at its longest.
func calendarFillTime(p Params) int64 {
	periods := uint64(p.Capacity) / uint64(p.RefillAmount)
	if uint64(p.Capacity)%uint64(p.RefillAmount) != 0 {
		periods++
	}
	hi, lo := bits.Mul64(periods, uint64(Longest(p.RefillPeriod)))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}

// floorQuo is a / b rounded towards minus infinity (b > 0).
func floorQuo(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
