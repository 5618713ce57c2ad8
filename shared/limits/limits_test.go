package limits

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limit
	}{
		{"rpm:100", Limit{Name: "rpm", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 60}},
		{"tpm:10000/min:15000", Limit{Name: "tpm", Capacity: 15000, RefillAmount: 10000, RefillPeriodSeconds: 60}},
		{"rps:5/sec", Limit{Name: "rps", Capacity: 5, RefillAmount: 5, RefillPeriodSeconds: 1}},
		{"rp5m:100/5min", Limit{Name: "rp5m", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 300}},
		{"rph:1000/hour", Limit{Name: "rph", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 3600}},
		{"rpd:50/day:60", Limit{Name: "rpd", Capacity: 60, RefillAmount: 50, RefillPeriodSeconds: 86400}},
		{"gpt-3.5:1/2hour", Limit{Name: "gpt-3.5", Capacity: 1, RefillAmount: 1, RefillPeriodSeconds: 7200}},
	} {
		got, err := Parse(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
		back, err := Parse(got.String())
		require.NoError(t, err, got.String())
		assert.Equal(t, got, back, "String round-trips %s", tc.in)
	}
}

// A burst below the rate is refused, naming the value, the rate and, when
// there is one, the same bucket written with a shorter period (which parses
// to exactly what the refused spec meant).
func TestParseRejectsBurstBelowRate(t *testing.T) {
	_, err := Parse("rpm:10:5")
	require.Error(t, err)
	assert.Equal(t, `invalid limit rpm burst "5": is below the rate 10: a bucket of 5 can never hold one period's refill (10/min); `+
		`for that rate with at most 5 at once write rpm:5/30sec`, err.Error())
	same, err := Parse("rpm:5/30sec")
	require.NoError(t, err)
	assert.Equal(t, Limit{Name: "rpm", Capacity: 5, RefillAmount: 5, RefillPeriodSeconds: 30}, same, "capacity 5, 10 a minute")

	_, err = Parse("rps:3/sec:2")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `invalid limit rps burst "2": is below the rate 3`)
	assert.Contains(t, err.Error(), "give a burst of at least 3, or none", "2/(2/3 s) has no whole period")

	l, err := Parse("rpm:10/min:10")
	require.NoError(t, err, "a burst equal to the rate is the default written out")
	assert.Equal(t, PerMinute("rpm", 10, 0), l)
	// The stored model keeps accepting a capacity below the refill amount
	// (the HTTP API's limits, configurations written before): only the
	// syntax refuses it.
	assert.NoError(t, Limit{Name: "rpm", Capacity: 5, RefillAmount: 10, RefillPeriodSeconds: 60}.Validate())
}

func TestParseRejects(t *testing.T) {
	for in, field := range map[string]string{
		"rpm":                 "limit",
		"rpm:":                "limit rpm rate",
		"rpm:abc":             "limit rpm rate",
		"rpm:-5":              "limit rpm rate",
		"rpm:0":               "limit rpm rate",
		"rpm:10/week":         "limit period",
		"rpm:10/0min":         "limit period",
		"rpm:10/min:0":        "limit rpm burst",
		"rpm:10/min:x":        "limit rpm burst",
		"rpm:10:5":            "limit rpm burst",
		"tpm:10000/day:9999":  "limit tpm burst",
		"a:b:c:d":             "limit",
		"123rpm:10":           "limit name",
		"wcu:10":              "limit name",
		"rpm/tpm:10":          "limit name",
		"rpm@x:10":            "limit name",
		"fast:9999999999/sec": "limit fast rate",
	} {
		_, err := Parse(in)
		var ve *ValidationError
		require.True(t, errors.As(err, &ve), "%s: %v", in, err)
		assert.True(t, errors.Is(err, ErrInvalid))
		assert.Equal(t, field, ve.Field, in)
		assert.NotContains(t, err.Error(), "\n")
	}
}

func TestValidation(t *testing.T) {
	// core.md §12 scenario 31.
	for _, ok := range []string{"user-1", "550e8400-e29b-41d4-a716-446655440000", "sk-proj-abc", "a@b.c", "x:y"} {
		assert.NoError(t, ValidateEntityID(ok), ok)
	}
	for _, bad := range []string{"user#123", "", strings.Repeat("a", 257), "_user123", "-x", "a b"} {
		assert.ErrorIs(t, ValidateEntityID(bad), ErrInvalid, bad)
	}
	for _, ok := range []string{"gpt-3.5", "rate-limit", "tpm_total"} {
		assert.NoError(t, ValidateLimitName(ok), ok)
	}
	for _, bad := range []string{"123rpm", "rpm/tpm", "rpm@x", "wcu", "", strings.Repeat("a", 65)} {
		assert.ErrorIs(t, ValidateLimitName(bad), ErrInvalid, bad)
	}
	for _, ok := range []string{"openai/gpt-4", "a/b/c/d", "openai/"} {
		assert.NoError(t, ValidateResource(ok), ok)
	}
	for _, bad := range []string{"/gpt-4", "123api", "openai#gpt-4", strings.Repeat("a", 65), DefaultResource} {
		assert.ErrorIs(t, ValidateResource(bad), ErrInvalid, bad)
	}
	assert.NoError(t, ValidateConfigResource(DefaultResource))
	assert.NoError(t, ValidatePrincipal("arn:aws:iam::123456789012:user/alice"))
	assert.ErrorIs(t, ValidatePrincipal("user#admin"), ErrInvalid)
	assert.ErrorIs(t, ValidateNamespaceName(ReservedNamespace), ErrInvalid)
	assert.ErrorIs(t, ValidateStackName("my_stack"), ErrInvalid)
	assert.NoError(t, ValidateStackName("prod-limiter"))
	err := ValidateEntityID("user#1")
	assert.Equal(t, `invalid entity_id "user#1": must not contain '#'`, err.Error())
}

func TestValidateSet(t *testing.T) {
	assert.NoError(t, ValidateSet([]Limit{PerMinute("rpm", 10, 0), PerHour("tpm", 100, 200)}))
	assert.ErrorIs(t, ValidateSet([]Limit{PerMinute("rpm", 10, 0), PerDay("rpm", 1, 0)}), ErrInvalid)
	assert.ErrorIs(t, ValidateSet([]Limit{{Name: "rpm", Capacity: 1, RefillAmount: 0, RefillPeriodSeconds: 60}}), ErrInvalid)
	assert.ErrorIs(t, ValidateSet([]Limit{PerSecond("huge", MaxRatePerSecond+1, 0)}), ErrInvalid)
	assert.NoError(t, ValidateSet([]Limit{PerSecond("max", MaxRatePerSecond, 0)}))
}

func TestExceededError(t *testing.T) {
	ex := NewExceeded([]Status{
		{EntityID: "u", Resource: "gpt-4", Limit: PerMinute("rpm", 10, 0), Available: 5, Requested: 1},
		{EntityID: "u", Resource: "gpt-4", Limit: PerMinute("tpm", 100, 0), Available: 0, Requested: 50, Exceeded: true, RetryAfter: 30 * time.Second},
		{EntityID: "p", Resource: "gpt-4", Limit: PerMinute("tpm", 100, 0), Available: 0, Requested: 50, Exceeded: true, RetryAfter: 30*time.Second + time.Millisecond},
	})
	assert.Len(t, ex.Violations(), 2)
	assert.Equal(t, "p", ex.Primary().EntityID, "the longest wait decides")
	assert.Equal(t, 30*time.Second+time.Millisecond, ex.RetryAfter())
	assert.Equal(t, "31", ex.RetryAfterHeader(), "whole seconds, rounded up")
	assert.Equal(t, "rate limit exceeded for p/gpt-4: [u/tpm, p/tpm]; retry after 30.0s", ex.Error())
	assert.True(t, ex.Retryable(), "every violation fits its capacity: waiting helps")
	on, err := ParseOnUnavailable("allow")
	assert.NoError(t, err)
	assert.Equal(t, Allow, on)
	_, err = ParseOnUnavailable("maybe")
	assert.ErrorIs(t, err, ErrInvalid)
}

func TestFormatSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0.0s", time.Millisecond: "0.001s", 49 * time.Millisecond: "0.049s", 50 * time.Millisecond: "0.1s",
		6 * time.Second: "6.0s", 60400 * time.Millisecond: "60.4s", 1500 * time.Microsecond: "0.002s",
	} {
		assert.Equal(t, want, FormatSeconds(d), d.String())
	}
}

func TestExceededErrorNamesNeverAdmissible(t *testing.T) {
	ex := &ExceededError{Statuses: []Status{{
		EntityID: "u", Resource: "r", Limit: PerMinute("rpm", 10, 0), Available: 10, Requested: 20,
		Exceeded: true, RetryAfter: 60 * time.Second,
	}}}
	assert.Equal(t, "rate limit exceeded for u/r: [u/rpm]; retry after 60.0s; u/rpm: requested 20 exceeds the capacity 10, so it can never be admitted", ex.Error())
	assert.False(t, ex.Retryable())
}

// One violation above capacity makes the whole request never admissible,
// whatever the others; a request at exactly the capacity is retryable, and
// a non-violated status above capacity (impossible in practice) is ignored.
func TestExceededErrorRetryable(t *testing.T) {
	within := Status{EntityID: "u", Resource: "r", Limit: PerMinute("tpm", 100, 0), Requested: 100, Exceeded: true, RetryAfter: time.Minute}
	above := Status{EntityID: "p", Resource: "r", Limit: PerMinute("tpm", 50, 0), Requested: 100, Exceeded: true, RetryAfter: time.Minute}
	assert.True(t, NewExceeded([]Status{within}).Retryable())
	assert.False(t, NewExceeded([]Status{within, above}).Retryable())
	above.Exceeded = false
	assert.True(t, NewExceeded([]Status{within, above}).Retryable())
}

func TestExceededErrorNamesShardShare(t *testing.T) {
	ex := &ExceededError{Statuses: []Status{{
		EntityID: "u", Resource: "r", Limit: PerMinute("tpm", 1000, 0), Available: 200, Requested: 300,
		Exceeded: true, RetryAfter: 6 * time.Second, Shards: 4,
	}}}
	assert.Equal(t, int64(250), ex.Statuses[0].ShardCapacity())
	assert.Equal(t, "rate limit exceeded for u/r: [u/tpm]; retry after 6.0s; u/tpm: requested 300 exceeds the 250 that each of the bucket's 4 shards holds, so it cannot be admitted while the bucket is sharded", ex.Error())
	assert.True(t, ex.Retryable(), "the limit itself can hold it")
	ex.Statuses[0].Requested = 200
	assert.Equal(t, "rate limit exceeded for u/r: [u/tpm]; retry after 6.0s", ex.Error())
}

func TestParseCalendar(t *testing.T) {
	for in, want := range map[string]Limit{
		"rpd:1000/calendar-day":      {Name: "rpd", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 86400, Calendar: CalendarDay},
		"rpw:7000/calendar-week":     {Name: "rpw", Capacity: 7000, RefillAmount: 7000, RefillPeriodSeconds: 604800, Calendar: CalendarWeek},
		"tpm:5000000/calendar-month": {Name: "tpm", Capacity: 5000000, RefillAmount: 5000000, RefillPeriodSeconds: 2678400, Calendar: CalendarMonth},
	} {
		got, err := Parse(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
		assert.Equal(t, in, got.String(), "String round-trips")
		assert.Equal(t, PerCalendar(want.Name, want.Capacity, want.Calendar), got)
	}
	for in, field := range map[string]string{
		"rpd:10/calendar-year":   "limit period",
		"rpd:10/calendar-":       "limit period",
		"rpd:10/2calendar-day":   "limit period",
		"rpd:10/calendar-day:20": "limit rpd burst",
		"rpd:0/calendar-day":     "limit rpd rate",
		"rpd:-1/calendar-month":  "limit rpd rate",
	} {
		_, err := Parse(in)
		var ve *ValidationError
		require.True(t, errors.As(err, &ve), "%s: %v", in, err)
		assert.Equal(t, field, ve.Field, in)
	}
}

func TestValidateCalendar(t *testing.T) {
	ok := PerCalendar("q", 100, CalendarMonth)
	assert.NoError(t, ok.Validate())
	for _, tc := range []struct {
		l     Limit
		field string
	}{
		{Limit{Name: "q", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 86400, Calendar: "year"}, "limit q calendar"},
		{Limit{Name: "q", Capacity: 100, RefillAmount: 50, RefillPeriodSeconds: 86400, Calendar: CalendarDay}, "limit q refill_amount"},
		{Limit{Name: "q", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 60, Calendar: CalendarDay}, "limit q refill_period_seconds"},
		{Limit{Name: "q", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 2592000, Calendar: CalendarMonth}, "limit q refill_period_seconds"},
	} {
		var ve *ValidationError
		require.True(t, errors.As(tc.l.Validate(), &ve), "%+v", tc.l)
		assert.Equal(t, tc.field, ve.Field)
	}
	err := Limit{Name: "q", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 60, Calendar: CalendarDay}.Validate()
	assert.Equal(t, `invalid limit q refill_period_seconds "60": must be 86400 for a calendar day (its longest length)`, err.Error())
	assert.Equal(t, int64(0), CalendarSeconds("fortnight"))
}

func TestShadowViolations(t *testing.T) {
	shadow := PerMinute("new", 10, 0)
	shadow.Shadow = true
	sts := []Status{
		{EntityID: "u", Resource: "r", Limit: shadow, Requested: 20, Exceeded: true, RetryAfter: time.Hour},
		{EntityID: "u", Resource: "r", Limit: PerMinute("rpm", 10, 0), Requested: 5, Exceeded: true, RetryAfter: time.Second},
	}
	ex := NewExceeded(sts)
	assert.Equal(t, []Status{sts[1]}, ex.Violations(), "a shadow limit never denies")
	assert.Equal(t, "rpm", ex.Primary().Limit.Name)
	assert.Equal(t, time.Second, ex.RetryAfter())
	assert.True(t, ex.Retryable(), "the shadow limit's request above capacity does not count")
	assert.Equal(t, []Status{sts[0]}, ShadowViolations(sts))
}

func TestBlocked(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	forever := NewBlocked("org-acme", time.Time{}, now)
	assert.Equal(t, ReasonBlocked, forever.Reason)
	assert.False(t, forever.Retryable(), "only an unblock admits again")
	assert.Equal(t, BlockedRetryAfter, forever.RetryAfter())
	assert.Equal(t, `rate limited: entity "org-acme" is blocked (blocked) until it is unblocked`, forever.Error())
	timed := NewBlocked("key-1", now.Add(90*time.Minute), now)
	assert.True(t, timed.Retryable())
	assert.Equal(t, 90*time.Minute, timed.RetryAfter())
	assert.Equal(t, "5400", timed.RetryAfterHeader())
	assert.Equal(t, `rate limited: entity "key-1" is blocked (blocked) until 2026-11-26T13:30:00Z; retry after 5400.0s`, timed.Error())
	assert.Empty(t, timed.Violations())
}
