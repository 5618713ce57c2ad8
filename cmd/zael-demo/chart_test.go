package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestChart(t *testing.T) {
	var at []time.Duration
	for i := range 11 {
		at = append(at, time.Duration(i)*6*time.Second)
	}
	// A burst of 8,000 in the first 6 s (80k a minute), then the 10k a
	// minute the limit refills (1,000 every 6 s).
	burst := Series{Label: "user", Limit: 10_000, Totals: []int64{0, 8000, 9000, 10_000, 11_000, 12_000, 13_000, 14_000, 15_000, 16_000, 17_000}}
	idle := Series{Label: "idle", Limit: 500, Totals: make([]int64, 11)}
	c := Chart{At: at, Series: []Series{burst, idle}}
	assert.Equal(t, []float64{80_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000, 10_000}, c.Rates(burst))
	assert.InDelta(t, 10_000, c.lastThird(burst), 1e-9)

	var out bytes.Buffer
	c.Print(&out, "tpm")
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	require.Len(t, lines, 3, out.String())
	assert.Regexp(t, `^ +0s +1m0s +PEAK +LAST THIRD +LIMIT$`, lines[0])
	assert.Regexp(t, `^user +█▁▁▁▁▁▁▁▁▁ +80k tpm +10k tpm +10k tpm$`, lines[1])
	assert.Regexp(t, `^idle {3}[ ]{10} +0 tpm +0 tpm +500 tpm$`, lines[2])
	assert.Equal(t, strings.Index(lines[0], "0s"), strings.Index(lines[1], "█"), "the axis starts over the first cell")

	for r, want := range map[float64]string{0: "0 tpm", 999: "999 tpm", 1500: "1.5k tpm", 41_234: "41k tpm", 1_250_000: "1.2M tpm"} {
		assert.Equal(t, want, perMinute(r, "tpm"))
	}
	out.Reset()
	Chart{At: at[:1], Series: []Series{burst}}.Print(&out, "tpm")
	assert.Empty(t, out.String(), "one instant has no rate")
}

func TestChartAxisFewCells(t *testing.T) {
	c := Chart{At: []time.Duration{0, 2 * time.Second, 5 * time.Second}, Series: []Series{{Label: "a", Limit: 60, Totals: []int64{0, 2, 5}}}}
	var out bytes.Buffer
	c.Print(&out, "tpm")
	assert.Regexp(t, `^ +5s +PEAK`, out.String(), "two cells hold the span alone")
}

// A total that grows in uneven steps (a writer that batches every other
// read) draws a steady rate when each cell spans two reads.
func TestChartSmooth(t *testing.T) {
	at := []time.Duration{0, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second}
	s := Series{Label: "a", Totals: []int64{0, 0, 2000, 2000, 4000}}
	assert.Equal(t, []float64{0, 120_000, 0, 120_000}, Chart{At: at}.Rates(s))
	assert.Equal(t, []float64{0, 60_000, 60_000, 60_000}, Chart{At: at, Smooth: 2}.Rates(s))
}
