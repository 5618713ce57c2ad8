package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func newCmdUsage(env *Env) *cobra.Command {
	return newGroup("usage", "Show usage snapshots (written by the aggregator from the table's stream)",
		`  zae-limiter usage list -e user-premium -r gpt-4 -w hourly --start 24h
  zae-limiter usage summary -r gpt-4 -w daily -o json`,
		newCmdUsageList(env, nil),
		newCmdUsageSummary(env, nil),
	)
}

// usageFilter is what both usage commands select by.
type usageFilter struct {
	EntityID, Resource string
	// Window is -w ("" for every window).
	Window usage.Window
	// Start and End are --start and --end as given, From and To as parsed.
	Start, End string
	From, To   time.Time
}

// windowFlag is -w: hourly, daily or monthly (a bad value is a usage error).
type windowFlag struct{ w *usage.Window }

func (f windowFlag) String() string { return string(*f.w) }
func (f windowFlag) Set(s string) error {
	w, err := usage.ParseWindow(s)
	if err != nil {
		return fmt.Errorf("want hourly, daily or monthly")
	}
	*f.w = w
	return nil
}
func (f windowFlag) Type() string { return "window" }

func addUsageFilterFlags(cmd *cobra.Command, f *usageFilter) {
	fl := cmd.Flags()
	fl.StringVarP(&f.EntityID, "entity", "e", "", "`ENTITY_ID` whose usage to show (e.g. -e user-premium)")
	fl.StringVarP(&f.Resource, "resource", "r", "", "`RESOURCE` whose usage to show (e.g. -r gpt-4)")
	fl.VarP(windowFlag{&f.Window}, "window", "w", "`WINDOW` hourly, daily or monthly (e.g. -w daily; default every window)")
	fl.StringVar(&f.Start, "start", "", "windows from `T`: RFC 3339 or a duration ago (e.g. --start 2h, --start 7d, --start 2026-05-01T00:00:00Z)")
	fl.StringVar(&f.End, "end", "", "windows up to `T`: RFC 3339 or a duration ago (e.g. --end 1h)")
}

// parse checks the filter at parse time: -e or -r (usage), valid ids and
// times (invalid values), a range that is not reversed.
func (f *usageFilter) parse(now time.Time) error {
	if f.EntityID == "" && f.Resource == "" {
		return usageErrorf("at least one of -e/--entity and -r/--resource is required")
	}
	if f.EntityID != "" {
		if err := limits.ValidateEntityID(f.EntityID); err != nil {
			return err
		}
	}
	if f.Resource != "" {
		if err := limits.ValidateResource(f.Resource); err != nil {
			return err
		}
	}
	var err error
	if f.From, err = parseTimeArg("start", f.Start, now); err != nil {
		return err
	}
	if f.To, err = parseTimeArg("end", f.End, now); err != nil {
		return err
	}
	if !f.From.IsZero() && !f.To.IsZero() && f.To.Before(f.From) {
		return limits.Invalid("end", f.End, "is before --start "+f.Start)
	}
	return nil
}

// parseTimeArg reads T: RFC 3339, or a duration ago ("90m", "2h", "7d").
// Empty is the zero time (no bound).
func parseTimeArg(field, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	d, err := time.ParseDuration(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		n, nerr := strconv.Atoi(days)
		d, err = time.Duration(n)*24*time.Hour, nerr
	}
	if err != nil || d < 0 {
		return time.Time{}, limits.Invalid(field, s, "want RFC 3339 (2026-05-01T00:00:00Z) or a duration ago (2h, 30m, 7d)")
	}
	return now.Add(-d).UTC(), nil
}

// list reads the snapshots of the filter in the --namespace (none when it
// is not registered).
func (f *usageFilter) list(ctx context.Context, env *Env) ([]usage.Snapshot, error) {
	ns, err := env.readNS(ctx)
	if err != nil || ns == nil {
		return nil, err
	}
	db, err := env.DynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	uf := usage.Filter{Namespace: ns.ID, EntityID: f.EntityID, Resource: f.Resource, From: f.From, To: f.To}
	if f.Window != "" {
		uf.Windows = []usage.Window{f.Window}
	}
	snaps, err := usage.List(ctx, db, env.Name, uf)
	if err != nil {
		return nil, env.tableErr(err)
	}
	return snaps, nil
}

// subject names what the filter selects, for messages.
func (f *usageFilter) subject() string {
	var parts []string
	if f.EntityID != "" {
		parts = append(parts, "entity "+quote(f.EntityID))
	}
	if f.Resource != "" {
		parts = append(parts, "resource "+quote(f.Resource))
	}
	return strings.Join(parts, " and ")
}

// usage list

type usageListOptions struct {
	env *Env
	usageFilter
	Plot   bool
	Output outputFormat
}

// snapshotJSON is one element of `usage list -o json`.
type snapshotJSON struct {
	EntityID    string           `json:"entity_id"`
	Resource    string           `json:"resource"`
	Window      string           `json:"window"`
	WindowStart string           `json:"window_start"`
	Counters    map[string]int64 `json:"counters"`
	Events      int64            `json:"events"`
}

func newCmdUsageList(env *Env, runF func(*usageListOptions) error) *cobra.Command {
	opts := &usageListOptions{env: env}
	cmd := &cobra.Command{
		Use:   "list {-e ENTITY_ID | -r RESOURCE} [flags]",
		Short: "List usage snapshots, oldest window first",
		Long: `List the usage snapshots of an entity, a resource, or an entity on a resource (-e and -r narrow
together): per window, each limit's net consumption in whole tokens (refunds and rollbacks
subtracted) and the number of bucket changes (events). The aggregator writes them from the
table's stream. --start and --end keep the windows that overlap the range. With -o json: a list
of {"entity_id", "resource", "window", "window_start", "counters": {"<limit>": n}, "events": n}.
--plot draws each counter over time instead of the table: one window length (-w, else the finest
listed), the snapshots of a window start added up, a window without one as 0.`,
		Example: `  zae-limiter usage list -e user-premium -r gpt-4
  zae-limiter usage list -r gpt-4 -w hourly --start 24h --plot
  zae-limiter usage list -e user-premium -w daily --start 2026-05-01T00:00:00Z --end 2026-05-31T00:00:00Z -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.parse(time.Now()); err != nil {
				return err
			}
			if opts.Plot && opts.Output.json() {
				return usageErrorf("--plot draws for people: use it without -o json")
			}
			if runF != nil {
				return runF(opts)
			}
			return usageListRun(cmd.Context(), opts)
		},
	}
	addUsageFilterFlags(cmd, &opts.usageFilter)
	cmd.Flags().BoolVar(&opts.Plot, "plot", false, "draw each counter over time as an ASCII chart (e.g. --plot)")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func usageListRun(ctx context.Context, opts *usageListOptions) error {
	env := opts.env
	snaps, err := opts.list(ctx, env)
	if err != nil {
		return err
	}
	if opts.Output.json() {
		out := make([]snapshotJSON, 0, len(snaps))
		for _, s := range snaps {
			out = append(out, snapshotJSON{EntityID: s.EntityID, Resource: s.Resource, Window: string(s.Window),
				WindowStart: s.Start.Format(usage.TimeLayout), Counters: s.Counters, Events: s.Events})
		}
		return writeJSON(env.Out, out)
	}
	if len(snaps) == 0 {
		env.progress("No usage snapshots for %s in namespace %q", opts.subject(), env.Namespace)
		return nil
	}
	if opts.Plot {
		return plotUsage(env, &opts.usageFilter, snaps)
	}
	t := newTable(env.Out, "WINDOW START", "WINDOW", "RESOURCE", "ENTITY", "EVENTS", "COUNTERS")
	for _, s := range snaps {
		var cs []string
		for _, n := range s.Limits() {
			cs = append(cs, n+"="+thousands(s.Counters[n]))
		}
		t.row(s.Start.Format(usage.TimeLayout), string(s.Window), s.Resource, s.EntityID, thousands(s.Events), strings.Join(cs, ", "))
	}
	if err := t.flush(); err != nil {
		return err
	}
	env.progress("%d snapshots", len(snaps))
	return nil
}

// plotUsage draws one chart per limit: the counters of the plotted window
// length over time, the snapshots of one window start added up.
func plotUsage(env *Env, f *usageFilter, snaps []usage.Snapshot) error {
	w := f.Window
	if w == "" {
		w = usage.Finest(snaps)
	}
	var starts []time.Time
	sums := map[time.Time]map[string]int64{}
	names := map[string]bool{}
	for _, s := range snaps {
		if s.Window != w {
			continue
		}
		if sums[s.Start] == nil {
			sums[s.Start] = map[string]int64{}
			starts = append(starts, s.Start)
		}
		for n, v := range s.Counters {
			sums[s.Start][n] += v
			names[n] = true
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
	// Every window from the first to the last: one without a snapshot had
	// no traffic (0).
	var axis []time.Time
	for at := starts[0]; !at.After(starts[len(starts)-1]); at = w.End(at) {
		axis = append(axis, at)
	}
	limitsOf := make([]string, 0, len(names))
	for n := range names {
		limitsOf = append(limitsOf, n)
	}
	sort.Strings(limitsOf)
	for i, n := range limitsOf {
		ys := make([]float64, len(axis))
		for j, at := range axis {
			ys[j] = float64(sums[at][n])
		}
		if i > 0 {
			fmt.Fprintln(env.Out)
		}
		title := fmt.Sprintf("%s (%s) of %s", n, w, f.subject())
		if err := writeChart(env.Out, title, axis[0], w.End(axis[len(axis)-1]), ys); err != nil {
			return err
		}
	}
	return nil
}

// usage summary

type usageSummaryOptions struct {
	env *Env
	usageFilter
	Output outputFormat
}

// summaryJSON is `usage summary -o json`.
type summaryJSON struct {
	EntityID  string             `json:"entity_id,omitempty"`
	Resource  string             `json:"resource,omitempty"`
	Window    string             `json:"window"`
	Snapshots int                `json:"snapshots"`
	Limits    []limitSummaryJSON `json:"limits"`
}

type limitSummaryJSON struct {
	Name    string  `json:"name"`
	Total   int64   `json:"total"`
	Average float64 `json:"average"`
}

func newCmdUsageSummary(env *Env, runF func(*usageSummaryOptions) error) *cobra.Command {
	opts := &usageSummaryOptions{env: env}
	cmd := &cobra.Command{
		Use:   "summary {-e ENTITY_ID | -r RESOURCE} [flags]",
		Short: "Add up usage snapshots: each limit's total and average per snapshot",
		Long: `Add up the usage snapshots of an entity, a resource, or an entity on a resource (-e and -r
narrow together) in one window length: -w, else the finest one found (windows of different
lengths cover the same usage, so they are never added together). Per limit: the total net
consumption in whole tokens and the average per snapshot. --start and --end keep the windows
that overlap the range. With -o json: {"entity_id" (with -e), "resource" (with -r), "window",
"snapshots": n, "limits": [{"name", "total", "average"}]}, or {} when there is no snapshot.`,
		Example: `  zae-limiter usage summary -e user-premium -r gpt-4
  zae-limiter usage summary -r gpt-4 -w daily --start 7d -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.parse(time.Now()); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return usageSummaryRun(cmd.Context(), opts)
		},
	}
	addUsageFilterFlags(cmd, &opts.usageFilter)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func usageSummaryRun(ctx context.Context, opts *usageSummaryOptions) error {
	env := opts.env
	snaps, err := opts.list(ctx, env)
	if err != nil {
		return err
	}
	w := opts.Window
	if w == "" {
		w = usage.Finest(snaps)
	}
	sum := usage.Summarize(snaps, w)
	if sum.Snapshots == 0 {
		if opts.Output.json() {
			return writeJSON(env.Out, emptyObject)
		}
		env.progress("No usage snapshots for %s in namespace %q", opts.subject(), env.Namespace)
		return nil
	}
	if opts.Output.json() {
		doc := summaryJSON{EntityID: opts.EntityID, Resource: opts.Resource, Window: string(w), Snapshots: sum.Snapshots,
			Limits: []limitSummaryJSON{}}
		for _, l := range sum.Limits {
			doc.Limits = append(doc.Limits, limitSummaryJSON{Name: l.Name, Total: l.Total, Average: l.Average})
		}
		return writeJSON(env.Out, doc)
	}
	head := newTable(env.Out)
	if opts.EntityID != "" {
		head.row("Entity:", opts.EntityID)
	}
	if opts.Resource != "" {
		head.row("Resource:", opts.Resource)
	}
	head.row("Window:", string(w))
	head.row("Snapshots:", strconv.Itoa(sum.Snapshots))
	head.row("Time range:", sum.From.Format(usage.TimeLayout)+" to "+sum.To.Format(usage.TimeLayout))
	if err := head.flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.Out)
	rows := [][]string{{"LIMIT", "TOTAL", "AVERAGE"}}
	for _, l := range sum.Limits {
		rows = append(rows, []string{l.Name, thousands(l.Total), decimals2(l.Average)})
	}
	return writeNumbers(env.Out, rows)
}
