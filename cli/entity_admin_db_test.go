package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Black-box tests of the features beyond the reference (ADR-029 to 032)
// against DynamoDB Local: the CLI runs in process, each test on its own
// table, and results are read back through the CLI.

// availableNow is `available -o json` keyed by entity/limit.
func availableNow(t *testing.T, table, entity, resource string) map[string]wire.LimitState {
	t.Helper()
	return byName(decode[wire.AvailableResponse](t, ok(t, table, "available", entity, resource, "-o", "json").out).Limits)
}

// auditActions are the audit actions of entity, newest first.
func auditActions(t *testing.T, table, entity string) []string {
	t.Helper()
	var out []string
	for _, ev := range decode[[]auditEventJSON](t, ok(t, table, "audit", "list", entity, "-o", "json").out) {
		out = append(out, ev.Action)
	}
	return out
}

func TestEntityReset(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "entity", "set-limits", "u1", "-r", "gpt-4", "-l", "rpm:3/day", "-l", "tpm:100/day")
	ok(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=3", "-c", "tpm=90")
	limited(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=1")

	// Refused resets change nothing.
	fails(t, exitUsage, "--yes is required", table, "entity", "reset", "u1", "--resource", "gpt-4")
	fails(t, exitError, `invalid limit "rpd": no limit "rpd" is configured for u1/gpt-4`,
		table, "entity", "reset", "u1", "-r", "gpt-4", "--limit", "rpd", "-y")
	fails(t, exitError, `no limits configured for entity "u1" and resource "claude"`,
		table, "entity", "reset", "u1", "-r", "claude", "-y")
	av := availableNow(t, table, "u1", "gpt-4")
	assert.Equal(t, int64(0), av["u1/rpm"].Available)
	assert.Equal(t, int64(10), av["u1/tpm"].Available)

	// One limit, then every limit.
	r := ok(t, table, "entity", "reset", "u1", "--resource", "gpt-4", "--limit", "rpm", "-y")
	assert.Contains(t, r.errOut, `Reset rpm of u1/gpt-4 on 1 shard(s) in namespace "default"`)
	assert.Empty(t, r.out)
	av = availableNow(t, table, "u1", "gpt-4")
	assert.Equal(t, int64(3), av["u1/rpm"].Available)
	assert.Equal(t, int64(10), av["u1/tpm"].Available, "tpm untouched")
	ok(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=1")
	r = ok(t, table, "entity", "reset", "u1", "--resource", "gpt-4", "-y")
	assert.Contains(t, r.errOut, "Reset every limit of u1/gpt-4")
	av = availableNow(t, table, "u1", "gpt-4")
	assert.Equal(t, int64(3), av["u1/rpm"].Available)
	assert.Equal(t, int64(100), av["u1/tpm"].Available)
	assert.Equal(t, []string{"bucket_reset", "bucket_reset", "limits_set"}, auditActions(t, table, "u1"))

	// A bucket never used is full already; a namespace never registered
	// holds no bucket and is not registered by a reset.
	ok(t, table, "entity", "set-limits", "u2", "-r", "gpt-4", "-l", "rpm:3/day")
	r = ok(t, table, "entity", "reset", "u2", "-r", "gpt-4", "-y")
	assert.Contains(t, r.errOut, `Bucket u2/gpt-4 holds nothing to reset in namespace "default" (it is full)`)
	r = ok(t, table, "-N", "tenant-x", "entity", "reset", "u1", "-r", "gpt-4", "-y")
	assert.Contains(t, r.errOut, `Nothing to reset: namespace "tenant-x" holds no bucket`)
	for _, n := range decode[[]namespaceJSON](t, ok(t, table, "namespace", "list", "-o", "json").out) {
		assert.NotEqual(t, "tenant-x", n.Name, "a reset registers nothing")
	}
}

func TestEntityGrant(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "entity", "set-limits", "u1", "-r", "gpt-4", "-l", "rpm:100/day", "-l", "tpm:100/day")
	ok(t, table, "acquire", "u1", "gpt-4", "-c", "tpm=100")
	limited(t, table, "acquire", "u1", "gpt-4", "-c", "tpm=50")

	// Refused grants change nothing.
	fails(t, exitError, `invalid limit "tpd": no limit "tpd" is configured for u1/gpt-4`,
		table, "entity", "grant", "u1", "-r", "gpt-4", "-c", "tpd=5")
	fails(t, exitError, `invalid credits.tpm "0"`, table, "entity", "grant", "u1", "-r", "gpt-4", "-c", "tpm=0")
	fails(t, exitError, `namespace "tenant-x" is not registered`, table, "-N", "tenant-x", "entity", "grant", "u1", "-r", "gpt-4", "-c", "tpm=5")
	assert.Zero(t, availableNow(t, table, "u1", "gpt-4")["u1/tpm"].Credit)

	r := ok(t, table, "entity", "grant", "u1", "--resource", "gpt-4", "-c", "tpm=170")
	assert.Contains(t, r.errOut, `Granted tpm=170 to u1/gpt-4`)
	av := availableNow(t, table, "u1", "gpt-4")
	assert.Equal(t, int64(0), av["u1/tpm"].Available)
	assert.Equal(t, int64(170), av["u1/tpm"].Credit)
	rows := lines(ok(t, table, "available", "u1", "gpt-4").out)
	require.Len(t, rows, 3)
	assert.Regexp(t, `^ENTITY\s+LIMIT\s+AVAILABLE\s+CAPACITY\s+WAIT\s+CREDIT$`, rows[0])
	assert.Regexp(t, `^u1\s+tpm\s+0\s+100\s+\S+\s+170$`, rows[2])

	// Credits pay what the bucket cannot, above its capacity if need be,
	// once.
	got := decode[acquiredJSON](t, ok(t, table, "acquire", "u1", "gpt-4", "-c", "tpm=150", "-o", "json").out)
	assert.Equal(t, int64(20), byName(got.Limits)["u1/tpm"].Credit)
	limited(t, table, "acquire", "u1", "gpt-4", "-c", "tpm=21")
	ok(t, table, "acquire", "u1", "gpt-4", "-c", "tpm=20")
	av = availableNow(t, table, "u1", "gpt-4")
	assert.Zero(t, av["u1/tpm"].Credit)
	assert.Equal(t, int64(0), av["u1/tpm"].Available)
	assert.Zero(t, av["u1/rpm"].Credit, "credits are per limit")

	// A bucket that does not exist yet is created full, with the credits.
	ok(t, table, "entity", "set-limits", "u2", "-r", "gpt-4", "-l", "rpm:5/day")
	ok(t, table, "entity", "grant", "u2", "-r", "gpt-4", "-c", "rpm=10")
	av = availableNow(t, table, "u2", "gpt-4")
	assert.Equal(t, int64(5), av["u2/rpm"].Available)
	assert.Equal(t, int64(10), av["u2/rpm"].Credit)
	// A take is paid whole, by the bucket or else by the credits.
	den := decode[wire.Error](t, limited(t, table, "acquire", "u2", "gpt-4", "-c", "rpm=15", "-o", "json").out)
	assert.False(t, *den.Retryable, "15 is above the capacity and the credits")
	ok(t, table, "acquire", "u2", "gpt-4", "-c", "rpm=10")
	ok(t, table, "acquire", "u2", "gpt-4", "-c", "rpm=5")
	limited(t, table, "acquire", "u2", "gpt-4", "-c", "rpm=1")

	evs := decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "u1", "-o", "json").out)
	require.NotEmpty(t, evs)
	assert.Equal(t, "credits_granted", evs[0].Action)
	assert.Equal(t, "gpt-4", evs[0].Resource)
	assert.Len(t, evs, 2, "limits_set and one grant: the refused ones wrote nothing")
}

func TestShadowLimits(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "entity", "set-limits", "u1", "-r", "gpt-4", "-l", "rpm:100/day", "-l", "new:2/day", "--shadow", "new")
	assert.Equal(t, "RESOURCE  LIMIT\ngpt-4     new: 2/day (shadow)\n          rpm: 100/day\n",
		ok(t, table, "entity", "get-limits", "u1").out)
	assert.JSONEq(t, `{"entity_id": "u1", "resource": "gpt-4", "limits": [
		{"name": "new", "capacity": 2, "refill_amount": 2, "refill_period_seconds": 86400, "shadow": true},
		{"name": "rpm", "capacity": 100, "refill_amount": 100, "refill_period_seconds": 86400}]}`,
		ok(t, table, "entity", "get-limits", "u1", "-r", "gpt-4", "-o", "json").out)

	acq := []string{"acquire", "u1", "gpt-4", "-c", "rpm=1", "-c", "new=1"}
	for range 2 {
		r := ok(t, table, append(acq, "-o", "json")...)
		assert.NotContains(t, r.out, "shadow_violations")
	}
	// The third would be denied by new: admitted, reported, new not taken.
	type admitted struct {
		acquiredJSON
		ShadowViolations []wire.Violation `json:"shadow_violations"`
	}
	got := decode[admitted](t, ok(t, table, append(acq, "-o", "json")...).out)
	assert.Equal(t, []wire.Violation{{EntityID: "u1", Resource: "gpt-4", Limit: "new", Available: 0, Requested: 1}}, got.ShadowViolations)
	assert.Equal(t, int64(97), byName(got.Limits)["u1/rpm"].Available)
	assert.True(t, byName(got.Limits)["u1/new"].Shadow)
	r := ok(t, table, acq...)
	assert.Regexp(t, `Shadow limit u1/new would have denied it \(0 available, 1 requested; retry after \d+\.\ds\)`, r.errOut)
	assert.Regexp(t, `(?m)^u1\s+new \(shadow\)\s+0\s+2$`, r.out)
	assert.Equal(t, int64(96), availableNow(t, table, "u1", "gpt-4")["u1/rpm"].Available)

	// Made enforcing (set again without --shadow), it denies.
	ok(t, table, "entity", "set-limits", "u1", "-r", "gpt-4", "-l", "rpm:100/day", "-l", "new:2/day")
	den := decode[wire.Error](t, limited(t, table, append(acq, "-o", "json")...).out)
	assert.Equal(t, []wire.Violation{{EntityID: "u1", Resource: "gpt-4", Limit: "new", Available: 0, Requested: 1}}, den.Violations)

	// Every level takes --shadow.
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:50", "-l", "tpd:1000/calendar-day", "--shadow", "tpd")
	assert.JSONEq(t, `{"resource": "gpt-4", "limits": [
		{"name": "rpm", "capacity": 50, "refill_amount": 50, "refill_period_seconds": 60},
		{"name": "tpd", "capacity": 1000, "refill_amount": 1000, "refill_period_seconds": 86400, "calendar": "day", "shadow": true}]}`,
		ok(t, table, "resource", "get-defaults", "gpt-4", "-o", "json").out)
	ok(t, table, "system", "set-defaults", "-l", "rpm:50", "--shadow", "rpm", "--on-unavailable", "allow")
	assert.JSONEq(t, `{"limits": [{"name": "rpm", "capacity": 50, "refill_amount": 50, "refill_period_seconds": 60, "shadow": true}],
		"on_unavailable": "allow"}`, ok(t, table, "system", "get-defaults", "-o", "json").out)
	assert.Equal(t, "LIMIT                 ON UNAVAILABLE\nrpm: 50/min (shadow)  allow\n",
		ok(t, table, "system", "get-defaults").out)
	// A system shadow limit never denies u3, whatever it asks.
	got = decode[admitted](t, ok(t, table, "acquire", "u3", "claude", "-c", "rpm=60", "-o", "json").out)
	require.Len(t, got.ShadowViolations, 1)
	assert.Equal(t, "rpm", got.ShadowViolations[0].Limit)
}

// nextBoundary is the next UTC calendar boundary after now (weeks start
// Monday).
func nextBoundary(now time.Time, cal string) time.Time {
	now = now.UTC()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	switch cal {
	case limits.CalendarDay:
		return day.AddDate(0, 0, 1)
	case limits.CalendarWeek:
		return day.AddDate(0, 0, 7-(int(now.Weekday())+6)%7)
	}
	return time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
}

// Calendar quotas through the CLI: what is left and the denial's wait name
// the next UTC boundary (the boundary arithmetic itself is tested with a
// test clock in shared/bucket, shared/limiter and shared/api).
func TestCalendarQuotaCLI(t *testing.T) {
	for _, cal := range []string{limits.CalendarDay, limits.CalendarWeek, limits.CalendarMonth} {
		t.Run(cal, func(t *testing.T) {
			table, _ := freshTable(t)
			ok(t, table, "entity", "set-limits", "org", "-r", "gpt-4", "-l", "tpq:1000/calendar-"+cal)
			assert.Equal(t, "RESOURCE  LIMIT\ngpt-4     tpq: 1,000/calendar-"+cal+"\n", ok(t, table, "entity", "get-limits", "org").out)

			before := time.Now()
			got := decode[acquiredJSON](t, ok(t, table, "acquire", "org", "gpt-4", "-c", "tpq=600", "-o", "json").out)
			after := time.Now()
			st := got.Limits[0]
			assert.Equal(t, cal, st.Calendar)
			assert.Equal(t, int64(400), st.Available)
			b0, b1 := nextBoundary(before, cal), nextBoundary(after, cal)
			assert.Contains(t, []string{b0.Format(time.RFC3339), b1.Format(time.RFC3339)}, st.ResetsAt, "the boundary")

			before = time.Now()
			r := limited(t, table, "acquire", "org", "gpt-4", "-c", "tpq=401", "-o", "json")
			after = time.Now()
			den := decode[wire.Error](t, r.out)
			assert.Equal(t, []wire.Violation{{EntityID: "org", Resource: "gpt-4", Limit: "tpq", Available: 400, Requested: 401}}, den.Violations)
			// The wait is to the boundary, not a continuous refill's.
			lo, hi := nextBoundary(before, cal).Sub(after).Seconds(), nextBoundary(after, cal).Sub(before).Seconds()
			assert.GreaterOrEqual(t, den.RetryAfterSeconds, lo-0.1)
			assert.LessOrEqual(t, den.RetryAfterSeconds, hi+0.1)

			av := availableNow(t, table, "org", "gpt-4")["org/tpq"]
			assert.Equal(t, int64(400), av.Available)
			assert.Equal(t, st.ResetsAt, av.ResetsAt)
			rows := lines(ok(t, table, "available", "org", "gpt-4", "-c", "tpq=500").out)
			require.Len(t, rows, 2)
			assert.Regexp(t, `^ENTITY\s+LIMIT\s+AVAILABLE\s+CAPACITY\s+WAIT\s+RESETS$`, rows[0])
			assert.Regexp(t, `^org\s+tpq\s+400\s+1,000\s+\d+\.\ds\s+`+st.ResetsAt+`$`, rows[1])
		})
	}
}

func TestEntityBlock(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:100/day")
	ok(t, table, "entity", "create", "org")
	ok(t, table, "entity", "create", "key", "--parent", "org", "--cascade")
	ok(t, table, "entity", "create", "solo", "--parent", "org")
	ok(t, table, "acquire", "key", "gpt-4", "-c", "rpm=1")

	r := ok(t, table, "entity", "block", "org")
	assert.Contains(t, r.errOut, `Blocked entity "org" in namespace "default" until it is unblocked`)
	shown := decode[entityJSON](t, ok(t, table, "entity", "show", "org", "-o", "json").out)
	assert.True(t, shown.Blocked)
	assert.Empty(t, shown.BlockedUntil)
	assert.Regexp(t, `(?m)^Blocked:\s+until unblocked$`, ok(t, table, "entity", "show", "org").out)

	// The parent's block reaches the child that cascades to it, not the
	// one that does not.
	for _, id := range []string{"org", "key"} {
		r = zl(t, table, "acquire", id, "gpt-4", "-c", "rpm=1", "-o", "json")
		require.Equal(t, exitLimited, r.code, r.errOut)
		den := decode[wire.Error](t, r.out)
		assert.Equal(t, "blocked", den.Reason)
		assert.Equal(t, "org", den.Blocked)
		require.NotNil(t, den.Retryable)
		assert.False(t, *den.Retryable, "only an unblock admits again")
		assert.Empty(t, den.Violations)
		assert.Equal(t, `Error: rate limited: entity "org" is blocked (blocked) until it is unblocked`+"\n", r.errOut)
	}
	r = zl(t, table, "acquire", "key", "gpt-4", "-c", "rpm=1")
	assert.Equal(t, exitLimited, r.code)
	assert.Empty(t, r.out, "no violations to list: the error line says why")
	ok(t, table, "acquire", "solo", "gpt-4", "-c", "rpm=1")
	assert.Equal(t, int64(99), availableNow(t, table, "key", "gpt-4")["key/rpm"].Available, "a blocked acquire takes nothing")

	// A block with an end: retryable after it.
	ok(t, table, "entity", "block", "key", "--until", "2h")
	ok(t, table, "entity", "unblock", "org")
	r = zl(t, table, "acquire", "key", "gpt-4", "-c", "rpm=1", "-o", "json")
	require.Equal(t, exitLimited, r.code, r.errOut)
	den := decode[wire.Error](t, r.out)
	assert.Equal(t, "key", den.Blocked)
	assert.True(t, *den.Retryable)
	assert.InDelta(t, 7200, den.RetryAfterSeconds, 10)
	shown = decode[entityJSON](t, ok(t, table, "entity", "show", "key", "-o", "json").out)
	until, err := time.Parse(time.RFC3339, shown.BlockedUntil)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(2*time.Hour), until, 10*time.Second)
	ok(t, table, "acquire", "org", "gpt-4", "-c", "rpm=1")

	r = ok(t, table, "entity", "unblock", "key")
	assert.Contains(t, r.errOut, `Unblocked entity "key"`)
	ok(t, table, "acquire", "key", "gpt-4", "-c", "rpm=1")
	r = ok(t, table, "entity", "unblock", "key")
	assert.Contains(t, r.errOut, `Entity "key" was not blocked in namespace "default": nothing changed`)
	fails(t, exitError, `entity "nobody" not found in namespace "default"`, table, "entity", "unblock", "nobody")
	assert.Equal(t, []string{"entity_unblocked", "entity_blocked", "entity_created"}, auditActions(t, table, "key"))

	// Any key an acquire can name can be blocked: one without a record
	// gets one.
	ok(t, table, "entity", "block", "sk-abuse")
	r = zl(t, table, "acquire", "sk-abuse", "gpt-4", "-c", "rpm=1", "-o", "json")
	assert.Equal(t, exitLimited, r.code)
	assert.Equal(t, "blocked", decode[wire.Error](t, r.out).Reason)
	shown = decode[entityJSON](t, ok(t, table, "entity", "show", "sk-abuse", "-o", "json").out)
	assert.True(t, shown.Blocked)

	// A bad block writes nothing.
	before := itemCount(t, table)
	fails(t, exitError, `invalid until "2001-01-01T00:00:00Z": must be in the future`, table, "entity", "block", "x", "--until", "2001-01-01T00:00:00Z")
	fails(t, exitError, `invalid entity_id "a#b"`, table, "entity", "block", "a#b")
	assert.Equal(t, before, itemCount(t, table))
}
