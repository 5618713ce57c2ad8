package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// Demo is one run of the demo against a stack: the limits applied from a
// manifest with the CLI, the workload through the Go client over HTTP, the
// audit trail archived and read back, and a report.
type Demo struct {
	// Name is the stack's name, which is its table's.
	Name string
	// Manifest is the file `limits apply -f` reads; Scenario.Limits is
	// what it holds.
	Manifest string
	Scenario Scenario
	Workload Workload
	// URL is the acquire API: the stack's Function URL.
	URL string
	// DB reaches the table through the stack's endpoint: the demo reads
	// the limits in force and the buckets' counters for its report.
	DB *dynamodb.Client
	// CLI runs `zae-limiter -n Name ARGS...` against the stack, its output
	// on the demo's, and returns the exit code.
	CLI func(ctx context.Context, args ...string) int
	// ApplyFlags are added to `limits apply` (the tests' --direct: there
	// is no provisioner function under them).
	ApplyFlags []string
	// UsageWait bounds the wait for the aggregator to count the workload.
	UsageWait time.Duration
	// Out receives results (the usage chart); Log the steps and progress.
	// The report goes to Run's caller.
	Out, Log io.Writer
}

// counted are the limits every call consumes: the report follows them.
var counted = []string{"rpm", "tpm"}

// Run shows every step and returns the report of the workload.
func (d *Demo) Run(ctx context.Context) (*Report, error) {
	sc := d.Scenario
	d.step("The limits, from a manifest (%s), applied through the stack's provisioner function", d.Manifest)
	if err := d.cli(ctx, append([]string{"limits", "apply", "-f", d.Manifest, "--yes"}, d.ApplyFlags...)...); err != nil {
		return nil, err
	}
	st := store.New(d.DB, store.Options{Table: d.Name})
	ns, err := st.Namespace(ctx, "default")
	if err != nil {
		return nil, err
	}
	d.step("The project and its API keys, which draw on its budget: they cascade to it (a manifest holds limits only)")
	if err := d.createCascading(ctx, ns); err != nil {
		return nil, err
	}
	resolved, err := d.listLimits(ctx, ns)
	if err != nil {
		return nil, err
	}

	ids := make([]string, len(sc.Entities))
	for i, e := range sc.Entities {
		ids[i] = e.ID
	}
	before, err := BucketCounters(ctx, d.DB, d.Name, ns.ID, sc.Resource, ids, counted)
	if err != nil {
		return nil, err
	}
	reads := usageReads{db: d.DB, table: d.Name, nsID: ns.ID, resource: sc.Resource, ids: ids, from: time.Now()}
	usageBefore, err := reads.totals(ctx)
	if err != nil {
		return nil, err
	}
	c, err := client.New(d.URL)
	if err != nil {
		return nil, err
	}
	if err := c.Health(ctx); err != nil {
		return nil, fmt.Errorf("the acquire function at %s: %w", d.URL, err)
	}
	callers := sc.Callers()
	w := d.Workload
	d.step("%d workers call %s as %s for %s (seed %d), through the Go client over HTTP to the acquire function at %s; Ctrl-C stops early",
		w.Workers, sc.Resource, strings.Join(callers, ", "), w.Duration, w.Seed, d.URL)
	sampler := &usageSampler{reads: reads, start: time.Now(), Every: max(time.Second, w.Duration/40)}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { sampler.run(ctx, done) })
	tallies, elapsed := Run(ctx, c, sc.Resource, callers, resolved, w)
	close(done)
	wg.Wait()

	// The report says what happened even when interrupted; the steps after
	// the workload run unless it was.
	interrupted := ctx.Err() != nil
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	for _, id := range callers {
		if err := tallies[id].FirstErr; err != nil {
			d.logf("zael-demo: %s: %d errors, the first: %v\n", id, tallies[id].Errors, err)
		}
	}
	var buckets Counters
	if after, err := BucketCounters(ctx, d.DB, d.Name, ns.ID, sc.Resource, ids, counted); err != nil {
		d.logf("zael-demo: read the buckets' counters: %v\n", err)
	} else {
		buckets = after.Delta(before)
	}
	rep := BuildReport(sc, resolved, tallies, elapsed, buckets)
	if interrupted {
		d.logf("zael-demo: interrupted: the usage and audit steps are skipped\n")
		return rep, nil
	}

	d.step("The usage the aggregator function wrote from the table's stream")
	if buckets != nil {
		rep.UsageBehind = sampler.catchUp(ctx, usageBefore, buckets, d.UsageWait, d.Log)
	}
	if sampler.Err != nil {
		d.logf("zael-demo: read the usage snapshots: %v\n", sampler.Err)
	}
	if n := len(sampler.Samples); n > 0 {
		rep.Usage = sampler.Samples[n-1].Totals.Delta(usageBefore)
	}
	if err := d.cli(ctx, "usage", "list", "-r", sc.Resource, "-w", string(usage.Hourly)); err != nil {
		return rep, err
	}
	if p := sc.Parents(); len(p) > 0 {
		if err := d.cli(ctx, "usage", "summary", "-e", p[0], "-r", sc.Resource); err != nil {
			return rep, err
		}
	}
	chart := sampler.Chart(rep.Rows, "tpm", usageBefore)
	fmt.Fprintf(d.Out, "\nTokens per minute per entity, from the aggregator's snapshots read every %s while the workload ran (%s) "+
		"and until they caught up; each cell over %d reads:\n", sampler.Every, elapsed.Round(100*time.Millisecond), chart.Smooth)
	chart.Print(d.Out, "tpm")

	d.step("The audit trail of these changes, archived to S3 and read back")
	if err := d.cli(ctx, "audit", "archive", "--older-than", "0s"); err != nil {
		return rep, err
	}
	if err := d.cli(ctx, "audit", "list", sc.Callers()[0], "--archived"); err != nil {
		return rep, err
	}
	return rep, nil
}

// createCascading creates each parent, then each entity that has a parent
// with cascade on; one that exists already must have the same parent.
func (d *Demo) createCascading(ctx context.Context, ns *store.NS) error {
	var todo []EntitySpec
	for _, p := range d.Scenario.Parents() {
		todo = append(todo, EntitySpec{ID: p})
	}
	todo = append(todo, d.Scenario.Cascading()...)
	for _, e := range todo {
		got, err := ns.GetEntity(ctx, e.ID)
		switch {
		case err == nil && got.ParentID == e.Parent && got.Cascade == (e.Parent != ""):
			if e.Parent != "" {
				d.logf("  entity %s exists and cascades to %s already\n", e.ID, e.Parent)
			} else {
				d.logf("  entity %s exists already\n", e.ID)
			}
			continue
		case err == nil:
			return fmt.Errorf("entity %q exists with parent %q (cascade %v), not %q: use a fresh stack", e.ID, got.ParentID, got.Cascade, e.Parent)
		case !errors.Is(err, limits.ErrNotFound):
			return err
		}
		args := []string{"entity", "create", e.ID}
		if e.Parent != "" {
			args = append(args, "--parent", e.Parent, "--cascade")
		}
		if err := d.cli(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// listLimits reads back the limits each entity gets on the resource and
// lists them. It returns them by entity.
func (d *Demo) listLimits(ctx context.Context, ns *store.NS) (map[string][]limits.Limit, error) {
	sc := d.Scenario
	d.logf("zael-demo: what each entity gets on %s now (read back from the table):\n", sc.Resource)
	out := map[string][]limits.Limit{}
	for _, e := range sc.Entities {
		res, err := ns.ResolveLimits(ctx, e.ID, sc.Resource)
		if err != nil {
			return nil, fmt.Errorf("limits of %s: %w", e.ID, err)
		}
		out[e.ID] = res.Limits
		from := "its own limits"
		if sc.OwnLimits(e.ID) == nil {
			from = "the " + sc.Resource + " default"
		}
		note := e.Note
		if e.Parent != "" {
			note += ", cascades to " + e.Parent
		}
		d.logf("  %-12s %-30s %-18s %s\n", e.ID, specs(res.Limits), from, note)
	}
	return out, nil
}

// cli runs one CLI command, shown as typed.
func (d *Demo) cli(ctx context.Context, args ...string) error {
	d.logf("$ zae-limiter -n %s %s\n", d.Name, strings.Join(args, " "))
	if code := d.CLI(ctx, args...); code != 0 {
		return fmt.Errorf("zae-limiter %s: exit code %d", strings.Join(args, " "), code)
	}
	return nil
}

func (d *Demo) step(format string, a ...any) {
	d.logf("\nzael-demo: "+format+"\n", a...)
}

func (d *Demo) logf(format string, a ...any) { fmt.Fprintf(d.Log, format, a...) }
