// Command zael-demo shows the rate limiter at work on a local stack: it
// configures a few LLM customers, runs a concurrent estimate-then-reconcile
// workload against gpt-4 for a while and prints what the limiter admitted,
// denied and holds. `make demo` starts DynamoDB Local, runs it and stops it.
//
//	zael-demo --endpoint-url http://localhost:8000 -n demo --duration 20s
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
	flag "github.com/spf13/pflag"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	w := DefaultWorkload()
	var endpoint, table string
	fs := flag.NewFlagSet("zael-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&endpoint, "endpoint-url", "", "DynamoDB endpoint of the local stack (e.g. http://localhost:8000)")
	fs.StringVarP(&table, "name", "n", "demo", "table name")
	fs.DurationVar(&w.Duration, "duration", w.Duration, "how long the workload runs")
	fs.IntVar(&w.Workers, "workers", w.Workers, "concurrent workers (they take the calling entities in turn)")
	fs.Uint64Var(&w.Seed, "seed", w.Seed, "seed of the simulated requests")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if w.Workers < 1 || w.Duration <= 0 {
		fmt.Fprintln(stderr, "zael-demo: --workers and --duration must be positive")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := awsenv.Load(ctx, awsenv.Options{EndpointURL: endpoint, Logger: logging.Nop{}})
	if err != nil {
		fmt.Fprintln(stderr, "zael-demo:", err)
		return 1
	}
	if !awsenv.IsLocal(cfg) {
		fmt.Fprintln(stderr, "zael-demo: it rewrites the limits of namespace \"default\"; "+
			"point it at a local stack with --endpoint-url (make demo does)")
		return 2
	}
	w.Progress = progressPrinter(stderr)
	rep, err := Demo(ctx, awsenv.NewDynamoDB(cfg), table, DefaultScenario(), w, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "zael-demo:", err)
		return 1
	}
	rep.Print(stdout)
	return 0
}

// Demo configures the scenario in the default namespace of table, runs the
// workload and reports. Setup and progress go to log.
func Demo(ctx context.Context, db *dynamodb.Client, table string, sc Scenario, w Workload, log io.Writer) (*Report, error) {
	st := store.New(db, store.Options{Table: table, Principal: "zael-demo"})
	if _, err := st.CreateTable(ctx); err != nil {
		return nil, err
	}
	if err := st.EnsureVersion(ctx, "zael-demo"); err != nil {
		return nil, err
	}
	if _, err := st.RegisterNamespace(ctx, "default"); err != nil {
		return nil, err
	}
	ns, err := st.Namespace(ctx, "default")
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "zael-demo: configuring table %q, namespace %q:\n", table, ns.Name)
	if err := Setup(ctx, ns, sc, log); err != nil {
		return nil, err
	}
	ids := make([]string, len(sc.Entities))
	for i, e := range sc.Entities {
		ids[i] = e.ID
	}
	before, err := BucketCounters(ctx, db, table, ns.ID, sc.Resource, ids)
	if err != nil {
		return nil, err
	}
	callers := sc.Callers()
	fmt.Fprintf(log, "zael-demo: %d workers call %s as %v for %s (seed %d); Ctrl-C stops early\n",
		w.Workers, sc.Resource, callers, w.Duration, w.Seed)
	lim := limiter.New(db, ns, limiter.Options{Table: table, Namespace: ns.ID})
	// Warm the limiter's config and entity caches (a read, no consumption).
	for _, id := range callers {
		if _, err := lim.Available(ctx, id, sc.Resource, nil, nil); err != nil {
			return nil, err
		}
	}
	tallies, elapsed := Run(ctx, lim, sc.Resource, callers, w)

	// Report even when interrupted.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, id := range callers {
		if err := tallies[id].FirstErr; err != nil {
			fmt.Fprintf(log, "zael-demo: %s: %d errors, the first: %v\n", id, tallies[id].Errors, err)
		}
	}
	after, err := BucketCounters(ctx, db, table, ns.ID, sc.Resource, ids)
	if err != nil {
		fmt.Fprintln(log, "zael-demo: read bucket counters:", err)
		after = nil
	}
	return BuildReport(ctx, ns, sc, tallies, elapsed, before, after)
}

// progressPrinter rewrites one status line on a terminal, and prints a line
// every few seconds otherwise.
func progressPrinter(out io.Writer) func(Progress) {
	tty := false
	if f, ok := out.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	var last time.Duration
	return func(p Progress) {
		line := fmt.Sprintf("%5.1fs  acquires %5d  admitted %5d  rejected %5d  rolled back %4d  %5.1f/s",
			p.Elapsed.Seconds(), p.Attempts, p.Admitted, p.Rejected, p.RolledBack,
			float64(p.Attempts)/max(p.Elapsed.Seconds(), 1e-9))
		if p.Errors > 0 {
			line += fmt.Sprintf("  errors %d", p.Errors)
		}
		switch {
		case tty && p.Done:
			fmt.Fprintf(out, "\r%s\033[K\n", line)
		case tty:
			fmt.Fprintf(out, "\r%s\033[K", line)
		case p.Elapsed-last >= 2*time.Second || (p.Done && p.Elapsed-last > 100*time.Millisecond):
			last = p.Elapsed
			fmt.Fprintln(out, line)
		}
	}
}
