package limits

import (
	"fmt"
	"strconv"
	"strings"
)

// Limit is one token bucket's configuration, in whole tokens and seconds.
//
// Capacity is the bucket ceiling (the burst). RefillAmount tokens are added
// every RefillPeriodSeconds, continuously (lazily) rather than in steps.
//
// A calendar limit (Calendar "day", "week" or "month"; ADR-029) is a quota
// instead: Capacity tokens per UTC calendar period (weeks start Monday),
// whole again at each boundary, debt carried over. Its RefillAmount equals
// its Capacity and its RefillPeriodSeconds is the period's longest length
// (CalendarSeconds).
//
// A shadow limit (ADR-031) is counted like any other and reports the denial
// it would have made, but never denies.
type Limit struct {
	Name                string `json:"name" yaml:"name"`
	Capacity            int64  `json:"capacity" yaml:"capacity"`
	RefillAmount        int64  `json:"refill_amount" yaml:"refill_amount"`
	RefillPeriodSeconds int64  `json:"refill_period_seconds" yaml:"refill_period_seconds"`
	Calendar            string `json:"calendar,omitempty" yaml:"calendar,omitempty"`
	Shadow              bool   `json:"shadow,omitempty" yaml:"shadow,omitempty"`
}

// Calendar periods of a calendar limit.
const (
	CalendarDay   = "day"
	CalendarWeek  = "week"
	CalendarMonth = "month"
)

// CalendarSeconds is the longest length of a calendar period in seconds
// (a day, a week, 31 days), 0 for anything else: a calendar limit's
// RefillPeriodSeconds.
func CalendarSeconds(cal string) int64 {
	switch cal {
	case CalendarDay:
		return 86400
	case CalendarWeek:
		return 7 * 86400
	case CalendarMonth:
		return 31 * 86400
	}
	return 0
}

// PerCalendar builds a calendar quota of amount tokens per period (day,
// week or month).
func PerCalendar(name string, amount int64, period string) Limit {
	return Limit{Name: name, Capacity: amount, RefillAmount: amount, RefillPeriodSeconds: CalendarSeconds(period), Calendar: period}
}

// MaxTokens bounds every amount so that millitoken arithmetic (x1000) and
// sums of a few of them stay far from int64 overflow.
const MaxTokens int64 = 1 << 50 / 1000

// MaxLimits bounds the limits of one bucket (one config level, one
// request's own limits, one acquire's consume names): every write of a
// bucket stays far below DynamoDB's 4 KB expression limit (32 limits take
// about 2.3 KB in the largest write the limiter sends).
const MaxLimits = 32

// MaxPeriodSeconds bounds a refill period (one year).
const MaxPeriodSeconds int64 = 366 * 86400

// MaxRatePerSecond bounds a limit's refill rate (300 million tokens a
// minute): bucket clocks count refilled millitokens in an int64 until 2055.
const MaxRatePerSecond int64 = 5_000_000

// PerSecond, PerMinute, PerHour and PerDay build a limit that refills rate
// tokens per period with capacity rate (burst 0 means "same as rate").
func PerSecond(name string, rate, burst int64) Limit { return per(name, rate, burst, 1) }
func PerMinute(name string, rate, burst int64) Limit { return per(name, rate, burst, 60) }
func PerHour(name string, rate, burst int64) Limit   { return per(name, rate, burst, 3600) }
func PerDay(name string, rate, burst int64) Limit    { return per(name, rate, burst, 86400) }

func per(name string, rate, burst, period int64) Limit {
	c := rate
	if burst > 0 {
		c = burst
	}
	return Limit{Name: name, Capacity: c, RefillAmount: rate, RefillPeriodSeconds: period}
}

// Validate checks the name and that every number is positive and bounded.
func (l Limit) Validate() error {
	if err := ValidateLimitName(l.Name); err != nil {
		return err
	}
	for _, f := range []struct {
		field string
		v     int64
		max   int64
	}{
		{"capacity", l.Capacity, MaxTokens},
		{"refill_amount", l.RefillAmount, MaxTokens},
		{"refill_period_seconds", l.RefillPeriodSeconds, MaxPeriodSeconds},
	} {
		if f.v <= 0 {
			return Invalid("limit "+l.Name+" "+f.field, strconv.FormatInt(f.v, 10), "must be positive")
		}
		if f.v > f.max {
			return Invalid("limit "+l.Name+" "+f.field, strconv.FormatInt(f.v, 10),
				fmt.Sprintf("must be at most %d", f.max))
		}
	}
	if l.Calendar != "" {
		if err := l.validateCalendar(); err != nil {
			return err
		}
	}
	if l.RefillAmount/l.RefillPeriodSeconds > MaxRatePerSecond {
		return Invalid("limit "+l.Name+" rate", strconv.FormatInt(l.RefillAmount, 10)+"/"+FormatPeriod(l.RefillPeriodSeconds),
			fmt.Sprintf("must refill at most %d tokens per second", MaxRatePerSecond))
	}
	return nil
}

// validateCalendar checks a calendar quota: a known period, refilled whole
// (refill_amount = capacity), refill_period_seconds its longest length.
func (l Limit) validateCalendar() error {
	want := CalendarSeconds(l.Calendar)
	switch {
	case want == 0:
		return Invalid("limit "+l.Name+" calendar", l.Calendar, "must be day, week or month")
	case l.RefillAmount != l.Capacity:
		return Invalid("limit "+l.Name+" refill_amount", strconv.FormatInt(l.RefillAmount, 10),
			fmt.Sprintf("a calendar quota refills whole at each boundary: must equal the capacity %d", l.Capacity))
	case l.RefillPeriodSeconds != want:
		return Invalid("limit "+l.Name+" refill_period_seconds", strconv.FormatInt(l.RefillPeriodSeconds, 10),
			fmt.Sprintf("must be %d for a calendar %s (its longest length)", want, l.Calendar))
	}
	return nil
}

// ValidateSet validates every limit and rejects duplicate names.
func ValidateSet(ls []Limit) error {
	if len(ls) > MaxLimits {
		return Invalid("limits", strconv.Itoa(len(ls))+" limits", fmt.Sprintf("at most %d limits apply to one bucket", MaxLimits))
	}
	seen := make(map[string]bool, len(ls))
	for _, l := range ls {
		if err := l.Validate(); err != nil {
			return err
		}
		if seen[l.Name] {
			return Invalid("limit name", l.Name, "appears more than once")
		}
		seen[l.Name] = true
	}
	return nil
}

// Parse reads the CLI limit syntax `name:rate[/period][:burst]` where period
// is `[N]sec|min|hour|day` (default `min`) and burst is the capacity, or a
// calendar quota `name:amount/calendar-day|calendar-week|calendar-month`.
// Examples: `rpm:100`, `tpm:10000/min:15000`, `rps:5/sec`, `rp5m:100/5min`,
// `tpm:5000000/calendar-month`.
func Parse(spec string) (Limit, error) {
	parts := strings.Split(spec, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Limit{}, Invalid("limit", spec, "want name:rate[/period][:burst], e.g. rpm:100 or tpm:10000/min:15000")
	}
	name := parts[0]
	if err := ValidateLimitName(name); err != nil {
		return Limit{}, err
	}
	rateStr, periodStr, hasPeriod := strings.Cut(parts[1], "/")
	rate, err := strconv.ParseInt(rateStr, 10, 64)
	if err != nil || rate <= 0 {
		return Limit{}, Invalid("limit "+name+" rate", rateStr, "must be a positive whole number")
	}
	if cal, ok := strings.CutPrefix(periodStr, "calendar-"); ok && hasPeriod {
		l := PerCalendar(name, rate, cal)
		if CalendarSeconds(cal) == 0 {
			return Limit{}, Invalid("limit period", "/"+periodStr, "use /calendar-day, /calendar-week or /calendar-month")
		}
		if len(parts) == 3 {
			return Limit{}, Invalid("limit "+name+" burst", parts[2], "a calendar quota has no burst: it holds its amount per period")
		}
		return l, l.Validate()
	}
	period := int64(60)
	if hasPeriod {
		period, err = ParsePeriod(periodStr)
		if err != nil {
			return Limit{}, err
		}
	}
	l := Limit{Name: name, Capacity: rate, RefillAmount: rate, RefillPeriodSeconds: period}
	if len(parts) == 3 {
		burst, err := strconv.ParseInt(parts[2], 10, 64)
		if err != nil || burst <= 0 {
			return Limit{}, Invalid("limit "+name+" burst", parts[2], "must be a positive whole number")
		}
		if burst < rate {
			return Limit{}, Invalid("limit "+name+" burst", parts[2], burstBelowRate(l, burst))
		}
		l.Capacity = burst
	}
	return l, l.Validate()
}

// burstBelowRate explains why the syntax refuses a burst below the rate:
// in `name:rate/period:burst` the burst is what the bucket holds on top of
// a steady rate, and a bucket that holds less than one period's refill
// almost always means the two numbers were swapped. The same bucket can
// still be written with a shorter period, which the reason names when one
// exists. (Limits given as capacity and refill_amount, in the HTTP API and
// stored configurations, may have a capacity below the refill amount.)
func burstBelowRate(l Limit, burst int64) string {
	reason := fmt.Sprintf("is below the rate %d: a bucket of %d can never hold one period's refill (%d/%s)",
		l.RefillAmount, burst, l.RefillAmount, FormatPeriod(l.RefillPeriodSeconds))
	if p := l.RefillPeriodSeconds * burst; p%l.RefillAmount == 0 {
		return reason + fmt.Sprintf("; for that rate with at most %d at once write %s:%d/%s", burst, l.Name, burst, FormatPeriod(p/l.RefillAmount))
	}
	return reason + fmt.Sprintf("; give a burst of at least %d, or none", l.RefillAmount)
}

var units = []struct {
	name    string
	seconds int64
}{{"day", 86400}, {"hour", 3600}, {"min", 60}, {"sec", 1}}

// ParsePeriod reads `[N]sec|min|hour|day` and returns seconds.
func ParsePeriod(s string) (int64, error) {
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.name); ok {
			n := int64(1)
			if num != "" {
				v, err := strconv.ParseInt(num, 10, 64)
				if err != nil || v <= 0 {
					break
				}
				n = v
			}
			if n > MaxPeriodSeconds/u.seconds {
				break
			}
			return n * u.seconds, nil
		}
	}
	return 0, Invalid("limit period", "/"+s, "use /[N]sec, /[N]min, /[N]hour or /[N]day")
}

// String renders the limit in the CLI syntax accepted by Parse, choosing the
// largest unit that divides the period (Shadow is not part of the syntax).
func (l Limit) String() string {
	if l.Calendar != "" {
		return l.Name + ":" + strconv.FormatInt(l.Capacity, 10) + "/calendar-" + l.Calendar
	}
	s := l.Name + ":" + strconv.FormatInt(l.RefillAmount, 10) + "/" + FormatPeriod(l.RefillPeriodSeconds)
	if l.Capacity != l.RefillAmount {
		s += ":" + strconv.FormatInt(l.Capacity, 10)
	}
	return s
}

// FormatPeriod renders seconds as `[N]unit`, e.g. 60 -> "min", 300 -> "5min".
func FormatPeriod(seconds int64) string {
	for _, u := range units {
		if seconds%u.seconds == 0 {
			n := seconds / u.seconds
			if n == 1 {
				return u.name
			}
			return strconv.FormatInt(n, 10) + u.name
		}
	}
	return strconv.FormatInt(seconds, 10) + "sec"
}
