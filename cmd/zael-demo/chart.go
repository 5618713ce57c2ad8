package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// levels draw a value from 0 (a space: nothing) to the row's peak (█).
var levels = []rune(" ▁▂▃▄▅▆▇█")

// Series is one entity's consumption over time, read at the instants At
// (since the workload started): Totals[i] is the running total then.
type Series struct {
	Label string
	// Limit is the per-minute rate the entity's limit refills at.
	Limit int64
	// Totals are running totals at the chart's instants.
	Totals []int64
}

// Chart is several series read at the same instants.
type Chart struct {
	At     []time.Duration
	Series []Series
	// Smooth is how many intervals each cell's rate spans, ending at the
	// cell's instant (0 or 1: one): totals that grow in uneven steps (a
	// writer that batches) draw a steadier rate over a few.
	Smooth int
}

// Rates are a series' rates per minute, one per interval between
// consecutive instants, each over up to Smooth intervals ending there.
func (c Chart) Rates(s Series) []float64 {
	k := max(1, c.Smooth)
	out := make([]float64, 0, len(c.At))
	for i := 1; i < len(c.At) && i < len(s.Totals); i++ {
		j := max(0, i-k)
		dt := (c.At[i] - c.At[j]).Minutes()
		if dt <= 0 {
			out = append(out, 0)
			continue
		}
		out = append(out, float64(s.Totals[i]-s.Totals[j])/dt)
	}
	return out
}

// Print draws one line per series: its rate per minute over time, scaled
// to its own peak, then the peak, the rate over the last third of the
// time and the limit's rate.
func (c Chart) Print(w io.Writer, unit string) {
	if len(c.At) < 2 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// The time axis over the cells: "0s", then the span at the right end
	// (alone when the cells are too few for both).
	cells := len(c.At) - 1
	span := c.At[len(c.At)-1].Round(time.Second).String()
	axis := fmt.Sprintf("%*s", cells, span)
	if cells >= len(span)+3 {
		axis = "0s" + fmt.Sprintf("%*s", cells-2, span)
	}
	fmt.Fprintf(tw, "\t%s\tPEAK\tLAST THIRD\tLIMIT\n", axis)
	for _, s := range c.Series {
		rates := c.Rates(s)
		peak := 0.0
		for _, r := range rates {
			peak = max(peak, r)
		}
		var line strings.Builder
		for _, r := range rates {
			i := 0
			if peak > 0 && r > 0 {
				i = max(1, int(r/peak*float64(len(levels)-1)+0.5))
			}
			line.WriteRune(levels[i])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Label, line.String(), perMinute(peak, unit),
			perMinute(c.lastThird(s), unit), perMinute(float64(s.Limit), unit))
	}
	_ = tw.Flush()
}

// lastThird is the series' rate per minute over the last third of the
// chart's time.
func (c Chart) lastThird(s Series) float64 {
	n := min(len(c.At), len(s.Totals))
	if n < 2 {
		return 0
	}
	end := c.At[n-1]
	i := n - 1
	for i > 0 && c.At[i-1] >= end-end/3 {
		i--
	}
	if i == n-1 {
		i = n - 2
	}
	dt := (end - c.At[i]).Minutes()
	return float64(s.Totals[n-1]-s.Totals[i]) / dt
}

// perMinute renders a rate as "41k tpm".
func perMinute(r float64, unit string) string {
	switch {
	case r >= 999_500:
		return fmt.Sprintf("%.1fM %s", r/1e6, unit)
	case r >= 9_950:
		return fmt.Sprintf("%.0fk %s", r/1e3, unit)
	case r >= 1000:
		return fmt.Sprintf("%.1fk %s", r/1e3, unit)
	}
	return fmt.Sprintf("%.0f %s", r, unit)
}
