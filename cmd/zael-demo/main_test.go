package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// TestDemoInvariants runs the scenario, scaled down so that a 2 s run meets
// its limits, and checks the counts against what the limits allow.
func TestDemoInvariants(t *testing.T) {
	table := ddbtest.NewTable(t)
	sc := DefaultScenario().Scaled(0.05)
	w := DefaultWorkload()
	w.Duration = 2 * time.Second
	var log bytes.Buffer
	rep, err := Demo(context.Background(), ddbtest.Client(t), table, sc, w, &log)
	require.NoError(t, err, log.String())
	t.Log("\n" + log.String())
	var out bytes.Buffer
	rep.Print(&out)
	t.Log("\n" + out.String())

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
	assert.GreaterOrEqual(t, attempts, int64(12), "the workload ran")

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
		assert.Equal(t, row.Used["tpm"], row.BucketTPM, "%s: the bucket's consumed counter agrees with the leases", row.ID)
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

func TestScenario(t *testing.T) {
	sc := DefaultScenario()
	assert.Equal(t, []string{"premium", "key-acme-1", "key-acme-2", "user-basic"}, sc.Callers())
	assert.Equal(t, []string{"key-acme-1", "key-acme-2"}, sc.Children("proj-acme"))
	small := sc.Scaled(0.1)
	assert.Equal(t, int64(4000), small.ResourceDefaults[1].Capacity)
	assert.Equal(t, int64(4000), small.ResourceDefaults[1].RefillAmount)
	assert.Nil(t, small.Entities[3].Limits, "an entity on the resource default stays on it")
	assert.Equal(t, int64(40_000), sc.ResourceDefaults[1].Capacity, "Scaled copies")
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
	assert.Equal(t, 0, run([]string{"--help"}, &out, &errs))
	assert.True(t, strings.Contains(errs.String(), "--duration"), errs.String())
}

func TestNum(t *testing.T) {
	for in, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4200: "-4,200"} {
		assert.Equal(t, want, num(in))
	}
}
