package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/cli"
	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/archive"
	"github.com/zeroae/zae-limiter-go/shared/archive/s3test"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/stream/streamtest"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// demoOn prepares a Demo of scenario sc against a fresh table standing in
// for the local stack: DynamoDB Local, an S3 server with the archive bucket
// (through AWS_ENDPOINT_URL_S3, as the CLI reads it), the acquire
// function's handler over HTTP, and the CLI in process. The limits are
// applied --direct: no provisioner function runs here (the local stack
// test runs it).
func demoOn(t *testing.T, sc Scenario, log io.Writer) *Demo {
	t.Helper()
	ctx := context.Background()
	table := ddbtest.NewTable(t)
	st := store.New(ddbtest.Client(t), store.Options{Table: table})
	_, err := st.RegisterNamespace(ctx, "default") // as local up does
	require.NoError(t, err)
	t.Setenv("AWS_ENDPOINT_URL_S3", s3test.Start(t, archive.LocalBucketName(table)).URL)
	srv := httptest.NewServer(api.New(api.Options{Store: st, DB: ddbtest.Client(t), Table: table}))
	t.Cleanup(srv.Close)

	file := filepath.Join(t.TempDir(), "limits.json")
	b, err := json.Marshal(sc.Limits)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, b, 0o600))
	aggregate(t, table)
	endpoint := ddbtest.Endpoint(t)
	d := &Demo{Name: table, Manifest: file, Scenario: sc, Workload: DefaultWorkload(), URL: srv.URL,
		DB: ddbtest.Client(t), ApplyFlags: []string{"--direct"}, UsageWait: time.Minute, Out: log, Log: log}
	d.CLI = func(ctx context.Context, args ...string) int {
		args = append([]string{"-n", table, "--endpoint-url", endpoint}, args...)
		return cli.RunContext(ctx, args, strings.NewReader(""), d.Log, d.Log)
	}
	return d
}

// aggregate runs the aggregator function's handler on the table's stream
// until the test ends, as the local stack's stream poller does.
func aggregate(t *testing.T, table string) {
	t.Helper()
	r := streamtest.New(t, ddbtest.Config(t), table)
	h := usagetest.Handler(ddbtest.Client(t), table)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tb := &goroutineTB{TB: t}
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var ev stream.Event
			for _, rec := range r.Next(tb) {
				ev.Records = append(ev.Records, stream.Received{DynamoDBEventRecord: rec})
			}
			if len(ev.Records) > 0 {
				resp, err := h.Handle(ctx, ev)
				if ctx.Err() != nil {
					return
				}
				if err != nil || len(resp.BatchItemFailures) > 0 {
					t.Errorf("aggregate %d records: %v %v", len(ev.Records), err, resp.BatchItemFailures)
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// goroutineTB is a TB for a goroutine of the test: Fatalf fails the test
// and ends the goroutine (FailNow is only for the test's own).
type goroutineTB struct{ testing.TB }

func (g *goroutineTB) Fatalf(format string, a ...any) {
	g.Errorf(format, a...)
	runtime.Goexit()
}

// TestDemoInvariants runs the scenario, scaled down so that 6 calls per
// worker meet its limits, and checks the counts against what the limits
// allow.
func TestDemoInvariants(t *testing.T) {
	sc := scenario(t).Scaled(0.05)
	var log syncio.Buffer
	d := demoOn(t, sc, &log)
	d.Workload.Duration, d.Workload.Calls = time.Minute, 6
	rep, err := d.Run(context.Background())
	require.NoError(t, err, log.String())
	t.Log("\n" + log.String())
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())

	// The steps, as typed.
	for _, cmd := range []string{
		"limits apply -f " + d.Manifest + " --yes --direct",
		"entity create proj-acme",
		"entity create key-acme-1 --parent proj-acme --cascade",
		"entity create key-acme-2 --parent proj-acme --cascade",
		"usage list -r gpt-4 -w hourly",
		"usage summary -e proj-acme -r gpt-4",
		"audit archive --older-than 0s",
		"audit list premium --archived",
	} {
		assert.Contains(t, log.String(), "$ zae-limiter -n "+d.Name+" "+cmd+"\n")
	}
	assert.Contains(t, log.String(), "limits_set", "premium's limits read back from the archive")

	var attempts int64
	for _, id := range sc.Callers() {
		tl := rep.Row(id).Tally
		require.NotNil(t, tl, id)
		attempts += tl.Attempts
		assert.Equal(t, tl.Attempts, tl.Admitted+tl.Rejected+tl.Errors, "%s: every attempt is admitted, rejected or an error", id)
		assert.Zero(t, tl.Errors, "%s: first error %v", id, tl.FirstErr)
		assert.LessOrEqual(t, tl.RolledBack, tl.Admitted, id)
		assert.Equal(t, tl.Admitted-tl.RolledBack, tl.Used["rpm"], "%s: rolled-back calls return their rpm", id)
		assert.Len(t, tl.Latencies, int(tl.Attempts), id)
	}
	assert.Equal(t, int64(d.Workload.Workers*d.Workload.Calls), attempts, "every worker made its calls")

	for _, row := range rep.Rows {
		// Positive adjustments are the only consumption not checked on
		// acquire; a parent is charged its children's.
		overshoot := int64(0)
		for _, id := range append([]string{row.ID}, row.Children...) {
			if tl := rep.Row(id).Tally; tl != nil {
				overshoot += tl.Overshoot
			}
		}
		for _, name := range []string{"rpm", "tpm"} {
			l, ok := row.Limit(name)
			require.True(t, ok, "%s has %s", row.ID, name)
			bound := Envelope(l, rep.Elapsed) + 1
			if name == "tpm" {
				bound += overshoot
			}
			assert.LessOrEqual(t, row.Used[name], bound, "%s %s used within capacity + refill over %s", row.ID, name, rep.Elapsed)
		}
		for _, name := range counted {
			assert.Equal(t, row.Used[name], row.Bucket[name], "%s: the bucket's %s counter agrees with the leases", row.ID, name)
		}
	}
	// The aggregator's snapshots count every bucket change once.
	assert.Empty(t, rep.UsageBehind)
	for _, row := range rep.Rows {
		for _, name := range counted {
			assert.Equal(t, row.Bucket[name], rep.Usage[row.ID][name], "%s: the usage snapshots' %s agree with the bucket", row.ID, name)
		}
	}
	assert.Contains(t, out.String(), "no bucket change was lost or counted twice")
	assert.Regexp(t, `(?m)^ENTITY +ADMITTED +REJECTED +ROLLED BACK +RPM USED +TPM USED +BUCKET TPM +USAGE TPM +P50`, out.String())
	assert.Regexp(t, `(?m)^└ key-acme-1 +[ ▁▂▃▄▅▆▇█]+ +\S+ tpm +\S+ tpm +2\.5k tpm$`, log.String(), "the chart")

	// The limits in force are the manifest's, or the resource default.
	for _, e := range sc.Entities {
		want := sc.OwnLimits(e.ID)
		if want == nil {
			want = sc.Limits.Resources[sc.Resource]
		}
		assert.ElementsMatch(t, want, rep.Row(e.ID).Limits, e.ID)
	}

	// The keys' combined use is the project's: bounded by its envelope.
	proj := rep.Row("proj-acme")
	var keysTPM int64
	for _, c := range proj.Children {
		keysTPM += rep.Row(c).Used["tpm"]
	}
	assert.Equal(t, proj.Used["tpm"], keysTPM)

	basic := rep.Row("user-basic").Tally
	assert.Positive(t, basic.Rejected, "user-basic meets its limits")
	assert.Positive(t, basic.BlockedBy["user-basic tpm"]+basic.BlockedBy["user-basic rpm"], "by its own limits: %v", basic.BlockedBy)
	var byProject int64
	for _, c := range proj.Children {
		tl := rep.Row(c).Tally
		byProject += tl.BlockedBy["proj-acme tpm"] + tl.BlockedBy["proj-acme rpm"]
	}
	assert.Positive(t, byProject, "the keys meet the project's limits")
	assert.Contains(t, out.String(), "proj-acme bounded its keys")
}

// A second run on the same stack changes no limit and finds the keys
// cascading already; a key with another parent stops the demo before any
// traffic.
func TestDemoTwice(t *testing.T) {
	sc := scenario(t).Scaled(0.05)
	var first syncio.Buffer
	d := demoOn(t, sc, &first)
	d.Workload.Calls = 1
	_, err := d.Run(context.Background())
	require.NoError(t, err, first.String())
	var second syncio.Buffer
	d.Log = &second
	_, err = d.Run(context.Background())
	require.NoError(t, err, second.String())
	assert.Contains(t, second.String(), "No changes.")
	assert.Contains(t, second.String(), "entity key-acme-1 exists and cascades to proj-acme already")
	assert.Contains(t, second.String(), "entity proj-acme exists already")
	assert.NotContains(t, second.String(), "$ zae-limiter -n "+d.Name+" entity create")

	other := scenario(t).Scaled(0.05)
	other.Entities = slices.Clone(other.Entities)
	other.Entities[2].Parent = "premium"
	d.Scenario = other
	var third syncio.Buffer
	d.Log = &third
	_, err = d.Run(context.Background())
	require.ErrorContains(t, err, `entity "key-acme-1" exists with parent "proj-acme"`)
	assert.NotContains(t, third.String(), "workers call")
}

func scenario(t *testing.T) Scenario {
	t.Helper()
	sc, err := LoadScenario("limits.yaml", "gpt-4", DefaultEntities())
	require.NoError(t, err)
	return sc
}

func TestScenario(t *testing.T) {
	sc := scenario(t)
	assert.Equal(t, []string{"premium", "key-acme-1", "key-acme-2", "user-basic"}, sc.Callers())
	assert.Equal(t, []string{"key-acme-1", "key-acme-2"}, sc.Children("proj-acme"))
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 300, 0), limits.PerMinute("tpm", 120_000, 0)}, sc.OwnLimits("premium"))
	assert.Nil(t, sc.OwnLimits("key-acme-2"), "on the resource default")
	small := sc.Scaled(0.1)
	assert.Equal(t, limits.PerMinute("tpm", 4000, 0), small.Limits.Resources["gpt-4"][1])
	assert.Equal(t, limits.PerMinute("tpm", 10_000, 0), small.Limits.System.Limits[1])
	assert.Equal(t, limits.PerMinute("rpm", 30, 0), small.OwnLimits("premium")[0])
	assert.Nil(t, small.OwnLimits("user-basic"), "an entity on the resource default stays on it")
	assert.Equal(t, int64(40_000), sc.Limits.Resources["gpt-4"][1].Capacity, "Scaled copies")

	_, err := LoadScenario("limits.yaml", "gpt-5", DefaultEntities())
	assert.ErrorContains(t, err, `no defaults for the resource "gpt-5"`)
	_, err = LoadScenario("nope.yaml", "gpt-4", DefaultEntities())
	assert.ErrorContains(t, err, "--manifest")
}

func TestBlocker(t *testing.T) {
	limitsOf := map[string][]limits.Limit{
		"key": {limits.PerMinute("rpm", 100, 0), limits.PerMinute("tpm", 6000, 0)},
		"prj": {limits.PerMinute("tpm", 600, 0)},
	}
	// 10 tpm short on the key is 0.1 s; 10 short on the project 1 s.
	vs := []wire.Violation{
		{EntityID: "key", Limit: "tpm", Available: 0, Requested: 10},
		{EntityID: "prj", Limit: "tpm", Available: 0, Requested: 10},
	}
	assert.Equal(t, "prj tpm", blocker(vs, limitsOf))
	vs[0].Requested = 200 // 2 s
	assert.Equal(t, "key tpm", blocker(vs, limitsOf))
	assert.Equal(t, "contention", blocker(nil, limitsOf))
}

func TestCalls(t *testing.T) {
	w := DefaultWorkload()
	rng := rand.New(rand.NewPCG(1, 2))
	var fails, over int
	const n = 10_000
	for range n {
		c := newCall(rng, w)
		require.GreaterOrEqual(t, c.estimate, int64(356))
		require.Less(t, c.estimate, int64(900+512))
		require.Positive(t, c.actual)
		if c.fails {
			fails++
		}
		if c.actual > c.estimate {
			over++
		}
	}
	assert.InDelta(t, 0.07, float64(fails)/n, 0.015, "about 7%% of calls fail")
	assert.Positive(t, over, "some calls use more than estimated")
	assert.Less(t, over, n/10, "most calls return tokens")
	// The same seed draws the same calls.
	a, b := rand.New(rand.NewPCG(7, 0)), rand.New(rand.NewPCG(7, 0))
	for range 100 {
		require.Equal(t, newCall(a, w), newCall(b, w))
	}
}

func TestFlags(t *testing.T) {
	var out, errs bytes.Buffer
	assert.Equal(t, 2, run([]string{"--workers", "0", "--endpoint-url", "http://127.0.0.1:1"}, &out, &errs))
	assert.Equal(t, 2, run([]string{"--bogus"}, &out, &errs))
	assert.Equal(t, 2, run([]string{"--endpoint-url", "https://dynamodb.us-east-1.amazonaws.com"}, &out, &errs), "never against AWS")
	assert.Contains(t, errs.String(), "point it at a local stack")
	assert.Equal(t, 0, run([]string{"--help"}, &out, &errs))
	assert.True(t, strings.Contains(errs.String(), "--duration"), errs.String())
}

func TestNum(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4200: "-4,200"} {
		assert.Equal(t, want, num(in))
	}
}
