package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func TestNewCmdBench(t *testing.T) {
	rpm1 := map[string]int64{"rpm": 1}
	checkParse(t, []string{"bench"}, newCmdBench,
		func(o *benchOptions) { o.env = nil },
		[]parseCase[benchOptions]{
			{name: "defaults", args: []string{"bench", "--requests", "100"},
				want: &benchOptions{EntityID: "bench-entity", Resource: "bench", Concurrency: 1, Requests: 100,
					Consume: rpm1, Output: formatTable}},
			{name: "everything", args: []string{"bench", "--entity", "key-1", "--resource", "gpt-4", "--cascade",
				"--concurrency", "8", "--duration", "20s", "-c", "rpm=1", "-c", "tpm=500", "-l", "rpm:1000", "-l", "tpm:100000",
				"--baseline", "-o", "json"},
				want: &benchOptions{EntityID: "key-1", Resource: "gpt-4", Cascade: true, Concurrency: 8, Duration: 20 * time.Second,
					Consume:  map[string]int64{"rpm": 1, "tpm": 500},
					Limits:   []limits.Limit{limits.PerMinute("rpm", 1000, 0), limits.PerMinute("tpm", 100000, 0)},
					Baseline: true, Output: formatJSON}},
			{name: "short concurrency", args: []string{"bench", "-C", "4", "--requests", "10"},
				want: &benchOptions{EntityID: "bench-entity", Resource: "bench", Concurrency: 4, Requests: 10,
					Consume: rpm1, Output: formatTable}},
			{name: "neither requests nor duration", args: []string{"bench", "--concurrency", "4"},
				wantCode: exitUsage, wantErr: "give exactly one of --requests and --duration"},
			{name: "both requests and duration", args: []string{"bench", "--requests", "10", "--duration", "5s"},
				wantCode: exitUsage, wantErr: "give exactly one of --requests and --duration"},
			{name: "negative requests", args: []string{"bench", "--requests", "-5"},
				wantCode: exitUsage, wantErr: "--requests must be at least 1"},
			{name: "negative requests with duration", args: []string{"bench", "--requests", "-5", "--duration", "5s"},
				wantCode: exitUsage, wantErr: "--requests must be at least 1"},
			{name: "negative duration", args: []string{"bench", "--duration", "-5s"},
				wantCode: exitUsage, wantErr: "--duration must be positive"},
			{name: "zero concurrency", args: []string{"bench", "--concurrency", "0", "--requests", "10"},
				wantCode: exitUsage, wantErr: "--concurrency must be at least 1"},
			{name: "negative concurrency", args: []string{"bench", "-C", "-1", "--requests", "10"},
				wantCode: exitUsage, wantErr: "--concurrency must be at least 1"},
			{name: "bad duration", args: []string{"bench", "--duration", "soon"},
				wantCode: exitUsage, wantErr: `invalid argument "soon"`},
			{name: "bad entity", args: []string{"bench", "--entity", "a#b", "--requests", "10"},
				wantCode: exitError, wantErr: `invalid entity_id "a#b"`},
			{name: "bad resource", args: []string{"bench", "--resource", "9x", "--requests", "10"},
				wantCode: exitError, wantErr: `invalid resource "9x"`},
			{name: "bad consume", args: []string{"bench", "--requests", "10", "-c", "rpm"},
				wantCode: exitError, wantErr: `invalid consume "rpm"`},
			{name: "negative consume", args: []string{"bench", "--requests", "10", "-c", "rpm=-1"},
				wantCode: exitError, wantErr: `invalid consume.rpm "-1"`},
			{name: "bad limit", args: []string{"bench", "--requests", "10", "-l", "rpm:fast"},
				wantCode: exitError, wantErr: `invalid limit rpm rate "fast"`},
			{name: "reserved limit name", args: []string{"bench", "--requests", "10", "-l", "wcu:10"},
				wantCode: exitError, wantErr: `invalid limit name "wcu"`},
			{name: "bad output", args: []string{"bench", "--requests", "10", "-o", "csv"},
				wantCode: exitUsage, wantErr: `invalid argument "csv"`},
			{name: "extra argument", args: []string{"bench", "now", "--requests", "10"},
				wantCode: exitUsage, wantErr: `unexpected argument "now"`},
		})
}

// The new commands' usage errors through the real tree (cf. TestUsageErrors).
func TestUsageErrorsAcquireBench(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
	}{
		{"acquire", "missing argument ENTITY_ID"},
		{"acquire u1", "missing argument RESOURCE"},
		{"acquire u1 gpt-4", "at least one -c/--consume is required"},
		{"acquire u1 gpt-4 -c rpm=1 -o yaml", `invalid argument "yaml"`},
		{"acquire u1 gpt-4 -c", "flag needs an argument"},
		{"available u1", "missing argument RESOURCE"},
		{"available u1 gpt-4 -o yaml", `invalid argument "yaml"`},
		{"bench", "give exactly one of --requests and --duration"},
		{"bench --requests 1 --duration 1s", "give exactly one of --requests and --duration"},
		{"bench --requests 1 --concurrency 0", "--concurrency must be at least 1"},
		{"bench --requests 1 -o yaml", `invalid argument "yaml"`},
		{"bench --requests 1 --bogus", "unknown flag: --bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) { usageFails(t, tt.args, tt.wantErr) })
	}
}

// Behaviour against DynamoDB Local.

type benchJSON struct {
	Acquires       int64            `json:"acquires"`
	Admitted       int64            `json:"admitted"`
	Rejected       int64            `json:"rejected"`
	Errors         int64            `json:"errors"`
	P50ms          float64          `json:"p50_ms"`
	P99ms          float64          `json:"p99_ms"`
	PerSecond      float64          `json:"acquires_per_second"`
	RequestsPerAcq float64          `json:"ddb_requests_per_acquire"`
	Requests       map[string]int64 `json:"ddb_requests"`
	URL            string           `json:"url"`
	Concurrency    int              `json:"concurrency"`
	Cascade        bool             `json:"cascade"`
	ElapsedSeconds float64          `json:"elapsed_seconds"`
	Baselines      []baselineReport `json:"baselines"`
	FirstError     string           `json:"first_error"`
}

func bench(t *testing.T, table string, args ...string) (benchJSON, result) {
	t.Helper()
	r := ok(t, table, append(append([]string{"bench"}, args...), "-o", "json")...)
	b := decode[benchJSON](t, r.out)
	assert.Empty(t, b.FirstError)
	assert.Zero(t, b.Errors)
	return b, r
}

func TestBench(t *testing.T) {
	table, _ := freshTable(t)
	b, r := bench(t, table, "--requests", "200", "--concurrency", "4")
	assert.Equal(t, int64(200), b.Acquires)
	assert.Equal(t, int64(200), b.Admitted)
	assert.Zero(t, b.Rejected)
	assert.Greater(t, b.P50ms, 0.0)
	assert.GreaterOrEqual(t, b.P99ms, b.P50ms)
	assert.Greater(t, b.PerSecond, 0.0)
	assert.Greater(t, b.ElapsedSeconds, 0.0)
	assert.Equal(t, 4, b.Concurrency)
	assert.False(t, b.Cascade)
	// With 4 workers on one bucket and the real clock, a write can lose a
	// race and retry (how often depends on the machine's load): bounded.
	assert.GreaterOrEqual(t, b.RequestsPerAcq, 1.0)
	assert.LessOrEqual(t, b.RequestsPerAcq, 12.0, "at most MaxAttempts writes per acquire")
	assert.GreaterOrEqual(t, b.Requests["UpdateItem"], int64(200), "%v", b.Requests)
	assert.Empty(t, b.Baselines)
	assert.Contains(t, r.errOut, "Bench: rpm=1 on bench-entity/bench")

	// One worker never races: one write per acquire, plus the few cached
	// config reads of a cold start.
	b, _ = bench(t, table, "--requests", "200", "--concurrency", "1")
	assert.InDelta(t, 1.0, b.RequestsPerAcq, 0.05, "%v", b.Requests)
	assert.Equal(t, int64(200), b.Requests["UpdateItem"], "%v", b.Requests)

	// Table output: the report on stdout, progress on stderr.
	r = ok(t, table, "bench", "--requests", "20")
	rows := lines(r.out)
	assert.Regexp(t, `^METRIC\s+VALUE$`, rows[0])
	assert.Contains(t, r.out, "DynamoDB requests/acquire")
	assert.Regexp(t, `(?m)^admitted\s+20$`, r.out)
	assert.Contains(t, r.errOut, "acquires")
}

func TestBenchCascade(t *testing.T) {
	table, st := freshTable(t)
	b, _ := bench(t, table, "--entity", "key-1", "--resource", "gpt-4", "--cascade", "--requests", "200", "--concurrency", "1")
	assert.Equal(t, int64(200), b.Admitted)
	assert.True(t, b.Cascade)
	assert.InDelta(t, 2.0, b.RequestsPerAcq, 0.05, "one write to the entity's bucket and one to the parent's: %v", b.Requests)
	assert.Equal(t, int64(400), b.Requests["UpdateItem"], "%v", b.Requests)

	e, err := ns(t, st, "default").GetEntity(t.Context(), "key-1")
	require.NoError(t, err)
	assert.Equal(t, "key-1-parent", e.ParentID)
	assert.True(t, e.Cascade)

	// An entity that exists without cascading is not changed.
	ok(t, table, "entity", "create", "plain")
	fails(t, exitError, `entity "plain" exists without cascading to "plain-parent"`,
		table, "bench", "--entity", "plain", "--cascade", "--requests", "10")
}

func TestBenchBaseline(t *testing.T) {
	table, _ := freshTable(t)
	b, _ := bench(t, table, "--requests", "50", "--concurrency", "2", "--baseline")
	assert.Equal(t, int64(50), b.Admitted)
	require.Len(t, b.Baselines, 2)
	assert.Equal(t, "direct_update_same_shape", b.Baselines[0].Name)
	assert.Equal(t, "direct_update_bare_item", b.Baselines[1].Name)
	for _, bl := range b.Baselines {
		assert.Greater(t, bl.P50ms, 0.0, bl.Name)
		assert.Greater(t, bl.PerSecond, 0.0, bl.Name)
	}
	assert.LessOrEqual(t, b.RequestsPerAcq, 12.0, "the baselines' requests are not counted (at most MaxAttempts per acquire)")
	assert.Less(t, b.Requests["UpdateItem"], int64(50*3), "the baselines' writes are not counted: %v", b.Requests)
}

// With -l the bench measures that limit: 50 a day admits exactly 50 of 100.
func TestBenchLimited(t *testing.T) {
	table, _ := freshTable(t)
	b, _ := bench(t, table, "-l", "rpm:50/day", "--requests", "100", "--concurrency", "4")
	assert.Equal(t, int64(100), b.Acquires)
	assert.Equal(t, int64(50), b.Admitted)
	assert.Equal(t, int64(50), b.Rejected)
	got := decode[wire.AvailableResponse](t, ok(t, table, "available", "bench-entity", "bench", "-o", "json").out)
	assert.Equal(t, []wire.LimitState{{EntityID: "bench-entity", Name: "rpm", Available: 0, Capacity: 50, RetryAfterSeconds: ptr(0.0)}}, got.Limits)
}

func TestBenchDuration(t *testing.T) {
	table, _ := freshTable(t)
	b, _ := bench(t, table, "--duration", "1s", "--concurrency", "2")
	assert.Greater(t, b.Acquires, int64(0))
	assert.Equal(t, b.Acquires, b.Admitted)
	assert.InDelta(t, 1.0, b.ElapsedSeconds, 0.5)
}

// A consume name without a limit fails before the run: exit 1 naming it.
func TestBenchUnknownName(t *testing.T) {
	table, _ := freshTable(t)
	r := zl(t, table, "bench", "--requests", "10", "-c", "xpm=1")
	assert.Equal(t, exitError, r.code, r.errOut)
	errs := lines(r.errOut)
	require.NotEmpty(t, errs)
	assert.Contains(t, errs[len(errs)-1], `Error: invalid consume "xpm": no limit "xpm" applies`)
	assert.Empty(t, r.out)
}

// bench --url drives a served acquire API through the Go client with a
// bearer token: its limits set up on the table first, then exactly the
// acquires asked for, every one admitted and committed, visible on the
// table; the DynamoDB requests are not counted (they are the server's).
func TestBenchURL(t *testing.T) {
	table, _ := freshTable(t)
	srv := startServe(t, "--token", "s3cret", "--endpoint-url", ddbtest.Endpoint(t), "-n", table)
	b, r := bench(t, table, "--url", srv.url, "--token", "s3cret", "--entity", "web-1", "-l", "rpm:1000/day", "-c", "rpm=2", "--requests", "40", "--concurrency", "4")
	assert.Equal(t, int64(40), b.Acquires)
	assert.Equal(t, int64(40), b.Admitted)
	assert.Equal(t, srv.url, b.URL)
	assert.Zero(t, b.RequestsPerAcq, "the server's requests are not this process's")
	assert.Contains(t, r.errOut, "web-1")
	got := decode[wire.AvailableResponse](t, ok(t, table, "available", "web-1", "bench", "-o", "json").out)
	require.Len(t, got.Limits, 1)
	assert.InDelta(t, 920, got.Limits[0].Available, 1, "40 acquires of 2 committed")

	fails(t, exitError, "unauthorized", table, "bench", "--url", srv.url, "--token", "wrong", "--requests", "1", "--no-setup")
}
