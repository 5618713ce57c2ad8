package api

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Calendar quotas over HTTP (ADR-029): RateLimit-Reset on an admit and
// Retry-After on a denial are the time to the boundary, /v1/available names
// it, across the ends of months of 28, 29 (2028, a leap year), 30 and 31
// days (into a new year), a week (Sunday to Monday) and a day; a calendar
// limit in a request's own limits works the same.
func TestCalendarQuotaHTTP(t *testing.T) {
	for _, tc := range []struct {
		name     string
		limit    limits.Limit
		at, next time.Time
	}{
		{"leap february", limits.PerCalendar("tpm", 1000, limits.CalendarMonth),
			time.Date(2028, 2, 28, 12, 0, 0, 0, time.UTC), time.Date(2028, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"february", limits.PerCalendar("tpm", 1000, limits.CalendarMonth),
			time.Date(2027, 2, 28, 12, 0, 0, 0, time.UTC), time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"april", limits.PerCalendar("tpm", 1000, limits.CalendarMonth),
			time.Date(2027, 4, 30, 23, 59, 30, 0, time.UTC), time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC)},
		{"december", limits.PerCalendar("tpm", 1000, limits.CalendarMonth),
			time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{"sunday", limits.PerCalendar("tpm", 1000, limits.CalendarWeek),
			time.Date(2026, 11, 29, 23, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)},
		{"day", limits.PerCalendar("tpm", 1000, limits.CalendarDay),
			time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.clock.Set(tc.at)
			wait := int64(tc.next.Sub(tc.at) / time.Second)
			f.setDefaults("", tc.limit)
			rec := f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"tpm": 600}})
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			resp := decode[wire.AcquireResponse](t, rec)
			assert.Equal(t, []wire.LimitState{{EntityID: "u", Name: "tpm", Available: 400, Capacity: 1000,
				Calendar: tc.limit.Calendar, ResetsAt: tc.next.Format(time.RFC3339)}}, resp.Limits)
			assert.Equal(t, strconv.FormatInt(wait, 10), rec.Header().Get(wire.HeaderReset), "full again at the boundary")

			rec = f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"tpm": 401}})
			e := errorBody(t, rec, http.StatusTooManyRequests, wire.CodeRateLimited)
			assert.Equal(t, float64(wait), e.RetryAfterSeconds)
			assert.Equal(t, strconv.FormatInt(wait, 10), rec.Header().Get(wire.HeaderRetryAfter))
			assert.Equal(t, strconv.FormatInt(wait, 10), rec.Header().Get(wire.HeaderReset))

			rec = f.do(nil, http.MethodGet, wire.PathAvailable+"?entity_id=u&resource=gpt-4", nil)
			av := decode[wire.AvailableResponse](t, rec)
			zero := 0.0
			assert.Equal(t, []wire.LimitState{{EntityID: "u", Name: "tpm", Available: 400, Capacity: 1000, RetryAfterSeconds: &zero,
				Calendar: tc.limit.Calendar, ResetsAt: tc.next.Format(time.RFC3339)}}, av.Limits)

			// The request's own limits may be calendar quotas too.
			own := wire.Limit{Name: "q", Capacity: 5, RefillAmount: 5, RefillPeriodSeconds: limits.CalendarSeconds(tc.limit.Calendar), Calendar: tc.limit.Calendar}
			f.acquire(wire.AcquireRequest{EntityID: "v", Resource: "gpt-4", Consume: map[string]int64{"q": 5}, Limits: []wire.Limit{own}})
			rec = f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "v", Resource: "gpt-4", Consume: map[string]int64{"q": 1}, Limits: []wire.Limit{own}})
			assert.Equal(t, strconv.FormatInt(wait, 10), rec.Header().Get(wire.HeaderRetryAfter))
			own.RefillPeriodSeconds = 60
			rec = f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "v", Resource: "gpt-4", Consume: map[string]int64{"q": 1}, Limits: []wire.Limit{own}})
			e = errorBody(t, rec, http.StatusBadRequest, wire.CodeInvalidRequest)
			assert.Contains(t, e.Message, "refill_period_seconds")

			f.clock.Set(tc.next)
			f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"tpm": 1000}})
		})
	}
}

// A shadow limit that would deny is reported in the 200 (and logged with a
// metric); it never drives the RateLimit headers.
func TestShadowHTTP(t *testing.T) {
	f := newFixture(t)
	shadow := limits.PerMinute("new", 1, 0)
	shadow.Shadow = true
	f.setDefaults("", limits.PerMinute("rpm", 100, 0), shadow)
	f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "new": 1}})
	rec := f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "new": 1}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	resp := decode[wire.AcquireResponse](t, rec)
	assert.Equal(t, []wire.Violation{{EntityID: "u", Resource: "gpt-4", Limit: "new", Available: 0, Requested: 1}}, resp.ShadowViolations)
	assert.Equal(t, map[string]int64{"rpm": 1}, resp.Consumed, "the shadow limit took nothing")
	assert.Equal(t, "100", rec.Header().Get(wire.HeaderLimit), "the headers are the enforced limit's")
	assert.Contains(t, f.logs.String(), `"msg":"shadow limit would have denied"`)
	assert.Contains(t, f.logs.String(), `"ShadowDenials":1`)
	assert.Contains(t, f.logs.String(), `"Limit":"new"`)
}

// A blocked entity's 429 says why, whom, and until when.
func TestBlockedHTTP(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 100, 0))
	_, err := f.ns.BlockEntity(f.ctx, "u", f.clock.Now().Add(30*time.Minute))
	require.NoError(t, err)
	rec := f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
	e := errorBody(t, rec, http.StatusTooManyRequests, wire.CodeRateLimited)
	assert.Equal(t, limits.ReasonBlocked, e.Reason)
	assert.Equal(t, "u", e.Blocked)
	assert.Equal(t, 1800.0, e.RetryAfterSeconds)
	assert.Equal(t, "1800", rec.Header().Get(wire.HeaderRetryAfter))
	assert.Empty(t, rec.Header().Get(wire.HeaderLimit), "a block judges no limit")
	require.NotNil(t, e.Retryable)
	assert.True(t, *e.Retryable)
	assert.Contains(t, e.Message, "blocked")
	assert.Empty(t, e.Violations)
}
