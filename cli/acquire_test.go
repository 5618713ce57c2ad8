package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Parse-only tests of acquire and available (no AWS).

func TestNewCmdAcquire(t *testing.T) {
	checkParse(t, []string{"acquire"}, newCmdAcquire,
		func(o *acquireOptions) { o.env = nil },
		[]parseCase[acquireOptions]{
			{name: "stored limits", args: []string{"acquire", "user-123", "gpt-4", "-c", "rpm=1", "-c", "tpm=500"},
				want: &acquireOptions{EntityID: "user-123", Resource: "gpt-4",
					Consume: map[string]int64{"rpm": 1, "tpm": 500}, Output: formatTable}},
			{name: "override, policy and json", args: []string{"acquire", "u1", "api/v1", "--consume", "rpm=1",
				"-l", "rpm:10", "-l", "tpm:1000/hour:2000", "--on-unavailable", "allow", "-o", "json"},
				want: &acquireOptions{EntityID: "u1", Resource: "api/v1", Consume: map[string]int64{"rpm": 1},
					Limits:        []limits.Limit{limits.PerMinute("rpm", 10, 0), limits.PerHour("tpm", 1000, 2000)},
					OnUnavailable: limits.Allow, Output: formatJSON}},
			{name: "repeated name adds up", args: []string{"acquire", "u1", "gpt-4", "-c", "tpm=100", "-c", "tpm=50"},
				want: &acquireOptions{EntityID: "u1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 150}, Output: formatTable}},
			{name: "zero amount", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm=0"},
				want: &acquireOptions{EntityID: "u1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 0}, Output: formatTable}},
			{name: "missing consume", args: []string{"acquire", "u1", "gpt-4"},
				wantCode: exitUsage, wantErr: "at least one -c/--consume is required"},
			{name: "missing resource", args: []string{"acquire", "u1", "-c", "rpm=1"},
				wantCode: exitUsage, wantErr: "missing argument RESOURCE"},
			{name: "missing entity", args: []string{"acquire"},
				wantCode: exitUsage, wantErr: "missing argument ENTITY_ID"},
			{name: "extra argument", args: []string{"acquire", "u1", "gpt-4", "more", "-c", "rpm=1"},
				wantCode: exitUsage, wantErr: `unexpected argument "more"`},
			{name: "consume without =", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm"},
				wantCode: exitError, wantErr: `invalid consume "rpm": want NAME=AMOUNT`},
			{name: "consume with :", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm:1"},
				wantCode: exitError, wantErr: `invalid consume "rpm:1"`},
			{name: "negative amount", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm=-1"},
				wantCode: exitError, wantErr: `invalid consume.rpm "-1": must be a whole number >= 0`},
			{name: "fractional amount", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm=1.5"},
				wantCode: exitError, wantErr: `invalid consume.rpm "1.5"`},
			{name: "empty amount", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm="},
				wantCode: exitError, wantErr: `invalid consume.rpm: must be`},
			{name: "bad consume name", args: []string{"acquire", "u1", "gpt-4", "-c", "9rpm=1"},
				wantCode: exitError, wantErr: `invalid limit name "9rpm"`},
			{name: "reserved consume name", args: []string{"acquire", "u1", "gpt-4", "-c", "wcu=1"},
				wantCode: exitError, wantErr: `invalid limit name "wcu": is reserved`},
			{name: "bad limit syntax", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm=1", "-l", "rpm"},
				wantCode: exitError, wantErr: `invalid limit "rpm"`},
			{name: "bad limit name", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm=1", "-l", "wcu:10"},
				wantCode: exitError, wantErr: `invalid limit name "wcu"`},
			{name: "bad entity", args: []string{"acquire", "user#1", "gpt-4", "-c", "rpm=1"},
				wantCode: exitError, wantErr: `invalid entity_id "user#1"`},
			{name: "bad resource", args: []string{"acquire", "u1", "9lives", "-c", "rpm=1"},
				wantCode: exitError, wantErr: `invalid resource "9lives"`},
			{name: "bad policy", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm=1", "--on-unavailable", "maybe"},
				wantCode: exitError, wantErr: `invalid on_unavailable "maybe"`},
			{name: "bad output", args: []string{"acquire", "u1", "gpt-4", "-c", "rpm=1", "-o", "yaml"},
				wantCode: exitUsage, wantErr: `invalid argument "yaml" for "-o, --output" flag`},
		})
}

func TestNewCmdAvailable(t *testing.T) {
	checkParse(t, []string{"available"}, newCmdAvailable,
		func(o *availableOptions) { o.env = nil },
		[]parseCase[availableOptions]{
			{name: "plain", args: []string{"available", "u1", "gpt-4"},
				want: &availableOptions{EntityID: "u1", Resource: "gpt-4", Needed: map[string]int64{}, Output: formatTable}},
			{name: "needed, override and json", args: []string{"available", "u1", "gpt-4", "-c", "tpm=5000", "-l", "tpm:100/sec", "-o", "json"},
				want: &availableOptions{EntityID: "u1", Resource: "gpt-4", Needed: map[string]int64{"tpm": 5000},
					Limits: []limits.Limit{limits.PerSecond("tpm", 100, 0)}, Output: formatJSON}},
			{name: "missing resource", args: []string{"available", "u1"},
				wantCode: exitUsage, wantErr: "missing argument RESOURCE"},
			{name: "bad consume", args: []string{"available", "u1", "gpt-4", "-c", "tpm"},
				wantCode: exitError, wantErr: `invalid consume "tpm"`},
			{name: "negative amount", args: []string{"available", "u1", "gpt-4", "-c", "tpm=-5"},
				wantCode: exitError, wantErr: `invalid consume.tpm "-5"`},
			{name: "bad limit", args: []string{"available", "u1", "gpt-4", "-l", "rpm:0"},
				wantCode: exitError, wantErr: `invalid limit rpm rate "0"`},
			{name: "bad entity", args: []string{"available", "a b", "gpt-4"},
				wantCode: exitError, wantErr: `invalid entity_id "a b"`},
			{name: "bad resource", args: []string{"available", "u1", "gpt#4"},
				wantCode: exitError, wantErr: `invalid resource "gpt#4"`},
			{name: "bad output", args: []string{"available", "u1", "gpt-4", "-o", "xml"},
				wantCode: exitUsage, wantErr: `invalid argument "xml"`},
		})
}

// Behaviour against DynamoDB Local.

// The CLI's JSON of an admitted acquire; a denial is the HTTP API's 429 body
// (wire.Error) and a read of what is available its answer
// (wire.AvailableResponse).
type acquiredJSON struct {
	EntityID string            `json:"entity_id"`
	Resource string            `json:"resource"`
	Consumed map[string]int64  `json:"consumed"`
	Limits   []wire.LimitState `json:"limits"`
}

// limited runs the CLI and requires exit 3: the denial on stdout and one
// "Error:" line on stderr.
func limited(t *testing.T, table string, args ...string) result {
	t.Helper()
	r := zl(t, table, args...)
	require.Equal(t, exitLimited, r.code, "%v: stderr %s", args, r.errOut)
	require.Len(t, lines(r.errOut), 1, "one line on stderr: %q", r.errOut)
	assert.True(t, strings.HasPrefix(r.errOut, "Error: rate limit exceeded"), r.errOut)
	assert.NotEmpty(t, r.out, "the denial goes to stdout")
	return r
}

func byName(ls []wire.LimitState) map[string]wire.LimitState {
	out := map[string]wire.LimitState{}
	for _, l := range ls {
		out[l.EntityID+"/"+l.Name] = l
	}
	return out
}

func TestAcquireAdmittedAndLimited(t *testing.T) {
	table, _ := freshTable(t)
	args := []string{"acquire", "u1", "gpt-4", "-c", "rpm=1", "-c", "tpm=40", "-l", "rpm:3/day", "-l", "tpm:100/day"}

	r := ok(t, table, append(args, "-o", "json")...)
	got := decode[acquiredJSON](t, r.out)
	assert.Equal(t, "u1", got.EntityID)
	assert.Equal(t, "gpt-4", got.Resource)
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 40}, got.Consumed)
	assert.Equal(t, []wire.LimitState{
		{EntityID: "u1", Name: "rpm", Available: 2, Capacity: 3},
		{EntityID: "u1", Name: "tpm", Available: 60, Capacity: 100},
	}, got.Limits)
	assert.NotContains(t, r.out, "retry_after_seconds", "an admitted acquire has no wait")
	assert.Empty(t, r.errOut, "nothing on stderr with -o json")

	// Table output: the rows on stdout, "Admitted" on stderr.
	r = ok(t, table, args...)
	assert.Contains(t, r.errOut, "Admitted rpm=1 tpm=40 for u1/gpt-4")
	rows := lines(r.out)
	require.Len(t, rows, 3, r.out)
	assert.Regexp(t, `^ENTITY\s+LIMIT\s+AVAILABLE\s+CAPACITY$`, rows[0])
	assert.Regexp(t, `^u1\s+rpm\s+1\s+3$`, rows[1])
	assert.Regexp(t, `^u1\s+tpm\s+20\s+100$`, rows[2])

	// tpm has 20 left: 40 more is denied, exit 3, denial on stdout.
	r = limited(t, table, append(args, "-o", "json")...)
	den := decode[wire.Error](t, r.out)
	assert.Equal(t, "rate_limited", den.Code)
	assert.Greater(t, den.RetryAfterSeconds, 0.0)
	require.NotNil(t, den.Retryable)
	assert.True(t, *den.Retryable, "40 fits the capacity of 100")
	assert.Equal(t, []wire.Violation{{EntityID: "u1", Resource: "gpt-4", Limit: "tpm", Available: 20, Requested: 40}}, den.Violations)
	assert.Contains(t, den.Message, "u1/tpm")
	assert.Contains(t, r.errOut, "[u1/tpm]")

	// Nothing was taken by the denial; the table form of a denial.
	r = limited(t, table, args...)
	rows = lines(r.out)
	require.Len(t, rows, 2, r.out)
	assert.Regexp(t, `^ENTITY\s+RESOURCE\s+LIMIT\s+AVAILABLE\s+REQUESTED\s+RETRY AFTER$`, rows[0])
	assert.Regexp(t, `^u1\s+gpt-4\s+tpm\s+20\s+40\s+\d+\.\ds$`, rows[1])

	// What is left can still be taken; then rpm is out too.
	ok(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=1", "-c", "tpm=20", "-l", "rpm:3/day", "-l", "tpm:100/day")
	r = limited(t, table, append(args, "-o", "json")...)
	den = decode[wire.Error](t, r.out)
	require.Len(t, den.Violations, 2)
	assert.Equal(t, "rpm", den.Violations[0].Limit)
	assert.Equal(t, int64(0), den.Violations[0].Available)
	assert.Equal(t, "tpm", den.Violations[1].Limit)
	assert.Equal(t, int64(0), den.Violations[1].Available)
	// rpm refills one in 8h, tpm 40 in 9.6h: the longest wait is reported.
	assert.InDelta(t, 0.4*86400, den.RetryAfterSeconds, 60)
}

// A request above a limit's capacity is a denial (exit 3) whose JSON, the
// HTTP API's 429 body, says it can never be admitted: retryable false.
func TestAcquireNeverAdmissible(t *testing.T) {
	table, _ := freshTable(t)
	r := limited(t, table, "acquire", "u1", "gpt-4", "-c", "tpm=500", "-l", "tpm:100/day", "-o", "json")
	den := decode[wire.Error](t, r.out)
	require.NotNil(t, den.Retryable)
	assert.False(t, *den.Retryable)
	assert.Contains(t, den.Message, "can never be admitted at the current limits (u1/tpm: requested 500 exceeds the capacity 100)")
	assert.Positive(t, den.RetryAfterSeconds, "the wait stays finite, as over HTTP")
	assert.Contains(t, r.errOut, "can never be admitted")
}

// Stored limits apply in order entity > entity default > resource > system;
// -l overrides them for the call.
func TestAcquireStoredLimits(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "system", "set-defaults", "-l", "rpm:100/day")
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:50/day")
	ok(t, table, "entity", "set-limits", "u1", "--resource", "gpt-4", "-l", "rpm:5/day")
	ok(t, table, "entity", "set-limits", "u2", "-l", "rpm:7/day") // entity default

	capacity := func(entity, resource string) int64 {
		t.Helper()
		got := decode[acquiredJSON](t, ok(t, table, "acquire", entity, resource, "-c", "rpm=1", "-o", "json").out)
		require.Len(t, got.Limits, 1)
		assert.Equal(t, got.Limits[0].Capacity-1, got.Limits[0].Available, "%s/%s", entity, resource)
		return got.Limits[0].Capacity
	}
	assert.Equal(t, int64(5), capacity("u1", "gpt-4"), "entity limits")
	assert.Equal(t, int64(7), capacity("u2", "gpt-4"), "entity default")
	assert.Equal(t, int64(50), capacity("u3", "gpt-4"), "resource defaults")
	assert.Equal(t, int64(100), capacity("u3", "claude"), "system defaults")

	// u1's stored limit (4 of 5 left) denies 5; -l gives a fresh entity 1000.
	r := limited(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=5", "-o", "json")
	assert.Equal(t, []wire.Violation{{EntityID: "u1", Resource: "gpt-4", Limit: "rpm", Available: 4, Requested: 5}},
		decode[wire.Error](t, r.out).Violations)
	got := decode[acquiredJSON](t, ok(t, table, "acquire", "u4", "gpt-4", "-c", "rpm=10", "-l", "rpm:1000/day", "-o", "json").out)
	assert.Equal(t, []wire.LimitState{{EntityID: "u4", Name: "rpm", Available: 990, Capacity: 1000}}, got.Limits)
	// On a bucket in use, new limits carry its tokens over (the limiter's
	// rule): u1 still holds 4, now of 1000.
	limited(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=5", "-l", "rpm:1000/day")
	got = decode[acquiredJSON](t, ok(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=4", "-l", "rpm:1000/day", "-o", "json").out)
	assert.Equal(t, []wire.LimitState{{EntityID: "u1", Name: "rpm", Available: 0, Capacity: 1000}}, got.Limits)

	u4 := []string{"acquire", "u4", "gpt-4", "-c", "rpm=1", "-o", "json"}
	got = decode[acquiredJSON](t, ok(t, table, u4...).out)
	assert.Equal(t, []wire.LimitState{{EntityID: "u4", Name: "rpm", Available: 49, Capacity: 50}}, got.Limits,
		"without -l u4 is back on the resource defaults (989 tokens clamped to 50)")
}

// A consume name that no limit has is invalid: exit 1 naming it.
func TestAcquireUnknownName(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:10")
	fails(t, exitError, `invalid consume "tpm": no limit "tpm" applies to entity "u1" and resource "gpt-4"`,
		table, "acquire", "u1", "gpt-4", "-c", "tpm=1", "-o", "json")
	fails(t, exitError, `no limit "tpm" among those given with -l`, table, "acquire", "u1", "gpt-4", "-c", "rpm=1", "-c", "tpm=1", "-l", "rpm:5")
	// No limits anywhere for the resource.
	fails(t, exitError, `no limits configured for entity "u1" and resource "claude"`,
		table, "acquire", "u1", "claude", "-c", "rpm=1")
}

// A cascading entity also consumes from its parent: the parent's limit
// denies, names the parent, and the child's share is given back.
func TestAcquireCascade(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "entity", "create", "org-acme")
	ok(t, table, "entity", "create", "key-1", "--parent", "org-acme", "--cascade")
	ok(t, table, "entity", "set-limits", "org-acme", "--resource", "gpt-4", "-l", "rpm:2/day")
	ok(t, table, "entity", "set-limits", "key-1", "--resource", "gpt-4", "-l", "rpm:100/day")

	got := decode[acquiredJSON](t, ok(t, table, "acquire", "key-1", "gpt-4", "-c", "rpm=1", "-o", "json").out)
	assert.ElementsMatch(t, []wire.LimitState{
		{EntityID: "key-1", Name: "rpm", Available: 99, Capacity: 100},
		{EntityID: "org-acme", Name: "rpm", Available: 1, Capacity: 2},
	}, got.Limits)
	ok(t, table, "acquire", "key-1", "gpt-4", "-c", "rpm=1")

	r := limited(t, table, "acquire", "key-1", "gpt-4", "-c", "rpm=1", "-o", "json")
	den := decode[wire.Error](t, r.out)
	assert.Equal(t, []wire.Violation{{EntityID: "org-acme", Resource: "gpt-4", Limit: "rpm", Available: 0, Requested: 1}}, den.Violations)
	assert.Greater(t, den.RetryAfterSeconds, 0.0)
	assert.Contains(t, r.errOut, "org-acme/rpm")

	av := byName(decode[wire.AvailableResponse](t, ok(t, table, "available", "key-1", "gpt-4", "-o", "json").out).Limits)
	assert.Equal(t, int64(98), av["key-1/rpm"].Available, "the denied acquire gave the child's share back")
	assert.Equal(t, int64(0), av["org-acme/rpm"].Available)

	// A non-cascading child is not held back by its parent.
	ok(t, table, "entity", "create", "key-2", "--parent", "org-acme")
	ok(t, table, "acquire", "key-2", "gpt-4", "-c", "rpm=1", "-l", "rpm:5/day")
}

func TestAvailable(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "entity", "set-limits", "u1", "--resource", "gpt-4", "-l", "rpm:10/day", "-l", "tpm:1000/day")

	// Before any acquire: full, no wait.
	r := ok(t, table, "available", "u1", "gpt-4", "-o", "json")
	assert.JSONEq(t, `{"limits": [
		{"entity_id": "u1", "name": "rpm", "available": 10, "capacity": 10, "retry_after_seconds": 0},
		{"entity_id": "u1", "name": "tpm", "available": 1000, "capacity": 1000, "retry_after_seconds": 0}]}`, r.out)
	assert.Empty(t, r.errOut)

	ok(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=3", "-c", "tpm=400")
	got := decode[wire.AvailableResponse](t, ok(t, table, "available", "u1", "gpt-4", "-o", "json").out)
	assert.Equal(t, []wire.LimitState{
		{EntityID: "u1", Name: "rpm", Available: 7, Capacity: 10, RetryAfterSeconds: ptr(0.0)},
		{EntityID: "u1", Name: "tpm", Available: 600, Capacity: 1000, RetryAfterSeconds: ptr(0.0)},
	}, got.Limits)

	// -c asks how long until that much is there: 100 tpm more at 1000/day.
	got = decode[wire.AvailableResponse](t, ok(t, table, "available", "u1", "gpt-4", "-c", "tpm=700", "-c", "rpm=1", "-o", "json").out)
	m := byName(got.Limits)
	assert.Equal(t, 0.0, *m["u1/rpm"].RetryAfterSeconds)
	assert.InDelta(t, 100*86.4, *m["u1/tpm"].RetryAfterSeconds, 10)

	// More than the bucket can hold: the wait is shown, with a note that
	// it never comes at once.
	r = ok(t, table, "available", "u1", "gpt-4", "-c", "tpm=5000", "-o", "json")
	assert.Contains(t, r.errOut, `Note: u1/tpm: 5000 exceeds the 1000 one acquire can take, so it is never available at once`)
	assert.NotContains(t, ok(t, table, "available", "u1", "gpt-4", "-c", "tpm=700").errOut, "exceeds")

	// Table output.
	rows := lines(ok(t, table, "available", "u1", "gpt-4", "-c", "tpm=700").out)
	require.Len(t, rows, 3)
	assert.Regexp(t, `^ENTITY\s+LIMIT\s+AVAILABLE\s+CAPACITY\s+WAIT$`, rows[0])
	assert.Regexp(t, `^u1\s+rpm\s+7\s+10\s+0\.0s$`, rows[1])
	assert.Regexp(t, `^u1\s+tpm\s+600\s+1,000\s+86\d\d\.\ds$`, rows[2])

	// -l overrides the stored limits; another entity's bucket is untouched.
	got = decode[wire.AvailableResponse](t, ok(t, table, "available", "u2", "gpt-4", "-l", "rpm:5", "-o", "json").out)
	assert.Equal(t, []wire.LimitState{{EntityID: "u2", Name: "rpm", Available: 5, Capacity: 5, RetryAfterSeconds: ptr(0.0)}}, got.Limits)

	// available only reads.
	before := itemCount(t, table)
	ok(t, table, "available", "u3", "gpt-4", "-l", "rpm:5")
	ok(t, table, "available", "u1", "gpt-4")
	assert.Equal(t, before, itemCount(t, table))

	fails(t, exitError, `no limit "xpm" applies`, table, "available", "u1", "gpt-4", "-c", "xpm=1")
}

// available on a table or namespace with nothing in it: an empty result,
// exit 0, and nothing written (not even the default namespace).
func TestAvailableEmpty(t *testing.T) {
	table, st := freshTable(t)
	check := func(t *testing.T) {
		r := ok(t, table, "available", "u1", "gpt-4", "-o", "json")
		assert.JSONEq(t, `{"limits": []}`, r.out)
		assert.Empty(t, r.errOut)
		r = ok(t, table, "available", "u1", "gpt-4")
		assert.Empty(t, r.out, "table output of nothing")
		assert.Contains(t, r.errOut, `No limits for entity "u1" and resource "gpt-4"`)
		// With -l, the limits as a bucket that was never used has them: full.
		r = ok(t, table, "available", "u1", "gpt-4", "-l", "rpm:5", "-c", "rpm=1", "-o", "json")
		assert.JSONEq(t, `{"limits": [{"entity_id": "u1", "name": "rpm", "available": 5, "capacity": 5, "retry_after_seconds": 0}]}`, r.out)
		assert.JSONEq(t, `{"limits": []}`, ok(t, table, "available", "u1", "gpt-4", "-N", "nope", "-o", "json").out)
	}
	t.Run("no namespace yet", func(t *testing.T) {
		check(t)
		nss, err := st.ListNamespaces(context.Background())
		require.NoError(t, err)
		assert.Empty(t, nss, "available registers nothing")
		assert.Zero(t, itemCount(t, table), "nothing written")
	})
	t.Run("default registered", func(t *testing.T) {
		ok(t, table, "namespace", "register", "default")
		before := itemCount(t, table)
		check(t)
		assert.Equal(t, before, itemCount(t, table), "nothing written")
	})
}

func ptr[T any](v T) *T { return &v }

// A missing table is one line naming it, for every command that needs it.
func TestAcquireNoTable(t *testing.T) {
	const table = "zael-no-such-table"
	want := `table "zael-no-such-table" not found`
	fails(t, exitError, want, table, "acquire", "u1", "gpt-4", "-c", "rpm=1", "-l", "rpm:5")
	fails(t, exitError, want, table, "available", "u1", "gpt-4", "-o", "json")
	fails(t, exitError, want, table, "bench", "--requests", "5")
}

// With DynamoDB out of reach even the namespace cannot be read: a per-call
// --on-unavailable allow admits without a check, block (the default) fails.
func TestAcquireUnreachable(t *testing.T) {
	dead := deadURL(t)
	run := func(args ...string) result {
		var out, errw bytes.Buffer
		args = append([]string{"acquire", "u1", "gpt-4", "-c", "rpm=1", "--endpoint-url", dead}, args...)
		return result{Run(args, strings.NewReader(""), &out, &errw), out.String(), errw.String()}
	}
	r := run("--on-unavailable", "allow", "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.JSONEq(t, `{"entity_id":"u1","resource":"gpt-4","consumed":{},"limits":[],"degraded":true}`, r.out)
	assert.Contains(t, r.errOut, "admitted without a check")
	r = run("--on-unavailable", "allow")
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Equal(t, "Admitted without a check: DynamoDB unavailable (on_unavailable=allow); nothing consumed\n", r.out)

	r = run("-o", "json")
	assert.Equal(t, exitError, r.code)
	assert.Empty(t, r.out)
	assert.Len(t, lines(r.errOut), 1, r.errOut)
}
