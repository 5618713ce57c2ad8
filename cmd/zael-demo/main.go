// Command zael-demo shows the rate limiter at work on a local stack, the
// way a deployed application uses it: it applies the demo's limits from a
// manifest through the stack's provisioner function, makes the project's
// API keys cascade to it, runs a concurrent estimate-then-reconcile LLM
// workload through the Go client over HTTP against the acquire function's
// Function URL, archives the audit trail to S3 and reads it back, and
// prints what the limiter admitted, denied and holds. `make demo` starts
// the local stack (zae-limiter local up), runs it and stops the stack.
//
//	zael-demo --endpoint-url http://127.0.0.1:8000 -n demo --duration 20s
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/smithy-go/logging"
	flag "github.com/spf13/pflag"

	"github.com/zeroae/zae-limiter-go/cli"
	"github.com/zeroae/zae-limiter-go/shared/awsenv"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	w := DefaultWorkload()
	var endpoint, name, url, file string
	fs := flag.NewFlagSet("zael-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&endpoint, "endpoint-url", "", "the local stack's endpoint, as `zae-limiter local up` printed it (default $AWS_ENDPOINT_URL; e.g. http://127.0.0.1:8000)")
	fs.StringVarP(&name, "name", "n", "demo", "the local stack's name (its table's)")
	fs.StringVar(&url, "url", "", "the acquire API's URL (default: the stack's Function URL, from `zae-limiter local status -o json`)")
	fs.StringVar(&file, "manifest", DefaultManifest, "the limits manifest to apply")
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

	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	if !awsenv.IsLoopback(endpoint) {
		fmt.Fprintln(stderr, "zael-demo: it rewrites the limits of namespace \"default\"; "+
			"point it at a local stack with --endpoint-url http://127.0.0.1:PORT (make demo does)")
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := awsenv.Load(ctx, awsenv.Options{EndpointURL: endpoint, Logger: logging.Nop{}})
	if err != nil {
		fmt.Fprintln(stderr, "zael-demo:", err)
		return 1
	}
	sc, err := LoadScenario(file, "gpt-4", DefaultEntities())
	if err != nil {
		fmt.Fprintln(stderr, "zael-demo:", err)
		return 1
	}
	runCLI := func(ctx context.Context, args ...string) int {
		full := append([]string{"-n", name, "--endpoint-url", endpoint}, args...)
		return cli.RunContext(ctx, full, strings.NewReader(""), stdout, stderr)
	}
	if url == "" {
		if url, err = acquireURL(ctx, name, endpoint, stderr); err != nil {
			fmt.Fprintln(stderr, "zael-demo:", err)
			return 1
		}
	}
	w.Progress = progressPrinter(stderr)
	d := &Demo{Name: name, Manifest: file, Scenario: sc, Workload: w, URL: url,
		DB: awsenv.NewDynamoDB(cfg), CLI: runCLI, UsageWait: 30 * time.Second, Out: stdout, Log: stderr}
	fmt.Fprintf(stderr, "zael-demo: the local stack %q at %s; every command below runs with --endpoint-url %s "+
		"(or export AWS_ENDPOINT_URL=%s)\n", name, endpoint, endpoint, endpoint)
	start := time.Now()
	rep, err := d.Run(ctx)
	if rep != nil {
		fmt.Fprintf(stderr, "\nzael-demo: what happened (the demo took %s)\n", time.Since(start).Round(100*time.Millisecond))
		rep.Print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "zael-demo:", err)
		return 1
	}
	return 0
}

// acquireURL asks `zae-limiter local status -o json` for the stack's
// acquire Function URL.
func acquireURL(ctx context.Context, name, endpoint string, stderr io.Writer) (string, error) {
	var out bytes.Buffer
	args := []string{"local", "status", "-n", name, "-o", "json"}
	if code := cli.RunContext(ctx, args, strings.NewReader(""), &out, stderr); code != 0 {
		return "", fmt.Errorf("zae-limiter %s: exit code %d", strings.Join(args, " "), code)
	}
	var st struct {
		Running    bool   `json:"running"`
		Endpoint   string `json:"endpoint"`
		AcquireURL string `json:"acquire_url"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		return "", fmt.Errorf("zae-limiter %s: %w", strings.Join(args, " "), err)
	}
	switch {
	case !st.Running:
		return "", fmt.Errorf("the local stack %q is not running: start it with `zae-limiter local up -n %s`", name, name)
	case st.Endpoint != endpoint:
		return "", fmt.Errorf("the local stack %q serves %s, not --endpoint-url %s", name, st.Endpoint, endpoint)
	case st.AcquireURL == "":
		return "", fmt.Errorf("the local stack %q has no acquire Function URL: pass --url", name)
	}
	return st.AcquireURL, nil
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
