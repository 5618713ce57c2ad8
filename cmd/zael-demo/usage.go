package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// usageReads reads the usage snapshots the aggregator function writes
// from the table's stream, for the scenario's entities on its resource:
// the reads behind `zae-limiter usage list`.
type usageReads struct {
	db       usage.Querier
	table    string
	nsID     string
	resource string
	ids      []string
	// from keeps the windows that overlap it and later ones.
	from time.Time
}

// totals adds up each entity's snapshots in the finest window it has
// (windows of different lengths hold the same usage).
func (u usageReads) totals(ctx context.Context) (Counters, error) {
	out := Counters{}
	for _, id := range u.ids {
		snaps, err := usage.List(ctx, u.db, u.table, usage.Filter{Namespace: u.nsID, EntityID: id, Resource: u.resource, From: u.from})
		if err != nil {
			return nil, err
		}
		out[id] = map[string]int64{}
		if w := usage.Finest(snaps); w != "" {
			for _, l := range usage.Summarize(snaps, w).Limits {
				out[id][l.Name] = l.Total
			}
		}
	}
	return out, nil
}

// usageSample is what the snapshots held at one instant of the run.
type usageSample struct {
	At     time.Duration // since the workload started
	Totals Counters
}

// usageSampler reads the snapshots every Every.
type usageSampler struct {
	reads   usageReads
	start   time.Time
	Every   time.Duration
	Samples []usageSample
	Err     error // the first failed read
}

// sample reads once and keeps the reading.
func (s *usageSampler) sample(ctx context.Context) (Counters, bool) {
	at := time.Since(s.start)
	t, err := s.reads.totals(ctx)
	if err != nil {
		if s.Err == nil {
			s.Err = err
		}
		return nil, false
	}
	s.Samples = append(s.Samples, usageSample{At: at, Totals: t})
	return t, true
}

// run samples until done is closed.
func (s *usageSampler) run(ctx context.Context, done <-chan struct{}) {
	tick := time.NewTicker(s.Every)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			s.sample(ctx)
		}
	}
}

// catchUp samples until the snapshots' gain over before equals want (the
// buckets' own counters) for every entity and limit, or within passes. It
// reports the entities whose snapshots still differ, showing progress on
// log.
func (s *usageSampler) catchUp(ctx context.Context, before, want Counters, within time.Duration, log io.Writer) []string {
	start := time.Now()
	deadline := start.Add(within)
	tick := time.NewTicker(s.Every)
	defer tick.Stop()
	for {
		var behind []string
		if t, ok := s.sample(ctx); ok {
			got := t.Delta(before)
			for _, id := range s.reads.ids {
				for name, n := range want[id] {
					if got[id][name] != n {
						behind = append(behind, id)
						break
					}
				}
			}
		} else {
			behind = s.reads.ids
		}
		if len(behind) == 0 {
			fmt.Fprintf(log, "  the snapshots of every entity equal its bucket's counters, %.1fs after the workload\n",
				time.Since(start).Seconds())
			return nil
		}
		if time.Now().After(deadline) {
			return behind
		}
		fmt.Fprintf(log, "  waiting for the aggregator: %s not counted in full yet\n", strings.Join(behind, ", "))
		select {
		case <-ctx.Done():
			return behind
		case <-tick.C:
		}
	}
}

// Chart is limit over time, per entity, from before: every sample, the
// ones read while the aggregator caught up included (its snapshots lag the
// traffic by about a batch), each cell's rate over three reads.
func (s *usageSampler) Chart(rows []*Row, limit string, before Counters) Chart {
	c := Chart{At: []time.Duration{0}, Smooth: 3}
	for _, smp := range s.Samples {
		c.At = append(c.At, smp.At)
	}
	for _, row := range rows {
		label := row.ID
		if row.Parent != "" {
			label = "└ " + label
		}
		ser := Series{Label: label, Totals: []int64{0}}
		if l, ok := row.Limit(limit); ok {
			ser.Limit = l.RefillAmount * 60 / l.RefillPeriodSeconds
		}
		for _, smp := range s.Samples {
			ser.Totals = append(ser.Totals, smp.Totals[row.ID][limit]-before[row.ID][limit])
		}
		c.Series = append(c.Series, ser)
	}
	return c
}
