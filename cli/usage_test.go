package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/usage"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
)

func TestNewCmdUsageList(t *testing.T) {
	clear := func(o *usageListOptions) { o.env = nil; o.From, o.To = time.Time{}, time.Time{} }
	checkParse(t, []string{"usage", "list"}, newCmdUsageList, clear, []parseCase[usageListOptions]{
		{name: "entity", args: []string{"usage", "list", "-e", "key-1"},
			want: &usageListOptions{usageFilter: usageFilter{EntityID: "key-1"}, Output: formatTable}},
		{name: "both, window, range, plot", args: []string{"usage", "list", "--entity", "key-1", "--resource", "gpt-4", "-w", "daily",
			"--start", "7d", "--end", "2h", "--plot"},
			want: &usageListOptions{usageFilter: usageFilter{EntityID: "key-1", Resource: "gpt-4", Window: usage.Daily, Start: "7d", End: "2h"},
				Plot: true, Output: formatTable}},
		{name: "json", args: []string{"usage", "list", "-r", "gpt-4", "-o", "json"},
			want: &usageListOptions{usageFilter: usageFilter{Resource: "gpt-4"}, Output: formatJSON}},
		{name: "neither -e nor -r", args: []string{"usage", "list", "-w", "hourly"}, wantCode: exitUsage,
			wantErr: "at least one of -e/--entity and -r/--resource is required (see 'zae-limiter usage list --help')"},
		{name: "unknown window", args: []string{"usage", "list", "-e", "a", "-w", "weekly"}, wantCode: exitUsage,
			wantErr: `invalid argument "weekly" for "-w, --window" flag: want hourly, daily or monthly`},
		{name: "bad start", args: []string{"usage", "list", "-e", "a", "--start", "yesterday"}, wantCode: exitError,
			wantErr: `invalid start "yesterday": want RFC 3339 (2026-05-01T00:00:00Z) or a duration ago (2h, 30m, 7d)`},
		{name: "end before start", args: []string{"usage", "list", "-e", "a", "--start", "1h", "--end", "2h"}, wantCode: exitError,
			wantErr: `invalid end "2h": is before --start 1h`},
		{name: "bad entity", args: []string{"usage", "list", "-e", "a b"}, wantCode: exitError, wantErr: `invalid entity_id "a b"`},
		{name: "plot is not json", args: []string{"usage", "list", "-e", "a", "--plot", "-o", "json"}, wantCode: exitUsage,
			wantErr: "--plot draws for people"},
		{name: "no arguments", args: []string{"usage", "list", "key-1"}, wantCode: exitUsage, wantErr: `unexpected argument "key-1"`},
	})
}

func TestNewCmdUsageSummary(t *testing.T) {
	clear := func(o *usageSummaryOptions) { o.env = nil; o.From, o.To = time.Time{}, time.Time{} }
	checkParse(t, []string{"usage", "summary"}, newCmdUsageSummary, clear, []parseCase[usageSummaryOptions]{
		{name: "resource and window", args: []string{"usage", "summary", "-r", "gpt-4", "-w", "monthly", "-o", "json"},
			want: &usageSummaryOptions{usageFilter: usageFilter{Resource: "gpt-4", Window: usage.Monthly}, Output: formatJSON}},
		{name: "neither -e nor -r", args: []string{"usage", "summary"}, wantCode: exitUsage,
			wantErr: "at least one of -e/--entity and -r/--resource is required"},
	})
}

func TestParseTimeArg(t *testing.T) {
	now := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                          {},
		"2h":                        now.Add(-2 * time.Hour),
		"90m":                       now.Add(-90 * time.Minute),
		"7d":                        now.AddDate(0, 0, -7),
		"2026-05-01T00:00:00Z":      time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
		"2026-05-01T02:00:00+02:00": time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := parseTimeArg("start", in, now)
		require.NoError(t, err, in)
		assert.True(t, want.Equal(got), "%q: %v", in, got)
	}
	for _, bad := range []string{"-2h", "d", "2x", "2026-05-01"} {
		_, err := parseTimeArg("start", bad, now)
		assert.Error(t, err, bad)
	}
}

// The usage commands on the snapshots of real traffic: the totals are each
// bucket's net consumption, in the pinned JSON shapes.
func TestUsageCommands(t *testing.T) {
	e := usagetest.New(t, "")
	usagetest.Deliver(t, usagetest.Handler(e.DB, e.Table), usagetest.Busy(e))
	want := e.ConsumedBy(usagetest.BusyBuckets...)

	// summary: every window adds up to the same totals.
	for _, w := range []string{"hourly", "daily", "monthly"} {
		got := decode[summaryJSON](t, ok(t, e.Table, "usage", "summary", "-e", "key-1", "-r", "gpt", "-w", w, "-o", "json").out)
		assert.Equal(t, "key-1", got.EntityID)
		assert.Equal(t, "gpt", got.Resource)
		assert.Equal(t, w, got.Window)
		require.Positive(t, got.Snapshots)
		totals := map[string]int64{}
		for _, l := range got.Limits {
			totals[l.Name] = l.Total
			assert.InDelta(t, float64(l.Total)/float64(got.Snapshots), l.Average, 0.005)
		}
		assert.Equal(t, want["key-1"], totals, w)
	}
	// Without -w: the finest window; the pinned keys, no entity_id when
	// not asked for.
	out := ok(t, e.Table, "usage", "summary", "-r", "gpt", "-o", "json").out
	doc := decode[map[string]any](t, out)
	assert.NotContains(t, doc, "entity_id")
	assert.Equal(t, "hourly", doc["window"])
	assert.ElementsMatch(t, []string{"resource", "window", "snapshots", "limits"}, keys(doc))
	var all map[string]int64 = map[string]int64{}
	for _, b := range usagetest.BusyBuckets {
		for n, v := range want[b] {
			all[n] += v
		}
	}
	for _, l := range doc["limits"].([]any) {
		m := l.(map[string]any)
		assert.ElementsMatch(t, []string{"name", "total", "average"}, keys(m))
		assert.Equal(t, float64(all[m["name"].(string)]), m["total"], "a resource's total is every entity's")
	}

	// list: the pinned element shape; the hourly counters of hot add up to
	// its consumption over four shards.
	list := decode[[]map[string]any](t, ok(t, e.Table, "usage", "list", "-e", "hot", "-r", "gpt", "-w", "hourly", "--start", "2h", "-o", "json").out)
	require.NotEmpty(t, list)
	sum := map[string]int64{}
	var evs int64
	for _, s := range list {
		assert.ElementsMatch(t, []string{"entity_id", "resource", "window", "window_start", "counters", "events"}, keys(s))
		assert.Equal(t, "hot", s["entity_id"])
		assert.Equal(t, "hourly", s["window"])
		_, err := time.Parse(time.RFC3339, s["window_start"].(string))
		assert.NoError(t, err)
		for n, v := range s["counters"].(map[string]any) {
			sum[n] += int64(v.(float64))
		}
		evs += int64(s["events"].(float64))
	}
	assert.Equal(t, want["hot"], sum)
	assert.Equal(t, int64(5), evs)

	// The table: a header, one row per snapshot, the count on stderr.
	r := ok(t, e.Table, "usage", "list", "-e", "solo", "-r", "gpt", "-w", "daily")
	rows := lines(r.out)
	require.Len(t, rows, 2)
	assert.Regexp(t, `^WINDOW START\s+WINDOW\s+RESOURCE\s+ENTITY\s+EVENTS\s+COUNTERS$`, rows[0])
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT00:00:00Z\s+daily\s+gpt\s+solo\s+3\s+rpm=1, tpm=40$`, rows[1])
	assert.Equal(t, "1 snapshots\n", r.errOut)

	sr := ok(t, e.Table, "usage", "summary", "-e", "solo", "-r", "gpt", "-w", "daily")
	assert.Contains(t, sr.out, "Entity:      solo\nResource:    gpt\nWindow:      daily\nSnapshots:   1\n")
	assert.Contains(t, sr.out, "\nLIMIT  TOTAL  AVERAGE\nrpm        1     1.00\ntpm       40    40.00\n")

	// Nothing found: empty results, exit 0; a namespace never registered
	// reads as empty.
	assert.Equal(t, "[]\n", ok(t, e.Table, "usage", "list", "-e", "nobody", "-o", "json").out)
	assert.Equal(t, "{}\n", ok(t, e.Table, "usage", "summary", "-e", "nobody", "-o", "json").out)
	assert.Equal(t, "[]\n", ok(t, e.Table, "usage", "list", "-e", "key-1", "--start", "2020-01-01T00:00:00Z",
		"--end", "2020-01-02T00:00:00Z", "-o", "json").out)
	assert.Equal(t, "[]\n", ok(t, e.Table, "usage", "list", "-r", "gpt", "-N", "other", "-o", "json").out)
	r = ok(t, e.Table, "usage", "list", "-e", "nobody")
	assert.Empty(t, r.out)
	assert.Equal(t, "No usage snapshots for entity \"nobody\" in namespace \"default\"\n", r.errOut)

	// Neither -e nor -r: a usage error, before any AWS call.
	fails(t, exitUsage, "at least one of -e/--entity and -r/--resource is required", e.Table, "usage", "summary", "-w", "daily")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// --plot draws one chart per limit over the windows of the range.
func TestUsageListPlot(t *testing.T) {
	table, st := freshTable(t)
	ok(t, table, "entity", "create", "alice") // registers "default"
	nsID := ns(t, st, "default").ID
	h0 := time.Now().UTC().Truncate(time.Hour).Add(-5 * time.Hour)
	var changes []usage.Change
	for hr, tpm := range []int64{100, 300, 0, 1000, 500} {
		if tpm == 0 {
			continue // an hour without traffic: no snapshot
		}
		pos, _ := stream.Position(fmt.Sprint(100 + hr))
		changes = append(changes, usage.Change{Shard: shard.ID{Namespace: nsID, Entity: "alice", Resource: "gpt"},
			Seq: fmt.Sprint(100 + hr), Position: pos, Time: h0.Add(time.Duration(hr)*time.Hour + time.Minute),
			Tokens: map[string]int64{"tpm": tpm, "rpm": 1}})
	}
	a := &usage.Aggregator{DB: ddbtest.Client(t), Table: table, Windows: []usage.Window{usage.Hourly}}
	require.Empty(t, a.Apply(context.Background(), changes).Errors)

	out := ok(t, table, "usage", "list", "-e", "alice", "-r", "gpt", "--start", "6h", "--plot").out
	charts := strings.Split(strings.TrimSpace(out), "\n\n")
	require.Len(t, charts, 2, out)
	assert.True(t, strings.HasPrefix(charts[0], `rpm (hourly) of entity "alice" and resource "gpt" (5 points)`), charts[0])
	tpm := strings.Split(charts[1], "\n")
	require.Len(t, tpm, 1+chartHeight+2, charts[1])
	t.Logf("the chart:\n%s", charts[1])
	assert.Equal(t, `tpm (hourly) of entity "alice" and resource "gpt" (5 points)`, tpm[0])
	assert.Equal(t, "1,000 |   # ", tpm[1], "only the 1,000 hour reaches the top")
	assert.Equal(t, "      |   # ", tpm[5], "500 is below the upper half")
	assert.Equal(t, "      |   ##", tpm[6], "500 reaches half way")
	assert.Equal(t, "    0 |## ##", tpm[chartHeight], "the hour without traffic is 0")
	assert.Equal(t, "      +-----", tpm[chartHeight+1])
	assert.Contains(t, tpm[chartHeight+2], h0.Format(time.RFC3339)+" to "+h0.Add(5*time.Hour).Format(time.RFC3339))
}
