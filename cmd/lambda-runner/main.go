// Command lambda-runner runs a Lambda bootstrap binary locally behind a
// Lambda Runtime API (package lambdarun) and invokes it with events.
//
//	lambda-runner -binary PATH [-env K=V]... [-event FILE]... [flags]
//
// Each -event (a file, or "-" for stdin; stdin when none is given) is
// invoked in order on the same warm function; every response payload is
// printed on stdout, one per line. A {{NAME}} placeholder in an event is
// filled from the previous response's field "name" (see
// lambdarun.FillPlaceholders): `-event admitted.json -event adjust.json`
// adjusts the lease the first event acquired. The function's own output and
// the timings go to stderr.
//
// Exit status: 0 when every invocation succeeded, 1 when one failed (a
// function error is printed like a response) or the function did not start,
// 2 for bad usage.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	stderr = syncio.NewWriter(stderr) // shared with the function's output
	fs := flag.NewFlagSet("lambda-runner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o      lambdarun.Options
		env    listFlag
		events listFlag
		pretty bool
		quiet  bool
	)
	fs.StringVar(&o.Binary, "binary", "", "`PATH` of the bootstrap binary (required)")
	fs.Var(&env, "env", "`KEY=VALUE` for the function's environment (repeatable)")
	fs.BoolVar(&o.InheritEnv, "inherit-env", false, "start the function's environment from this one's")
	fs.Var(&events, "event", "event `FILE` to invoke, - for stdin (repeatable; default stdin)")
	fs.IntVar(&o.Instances, "instances", 1, "concurrent execution environments")
	fs.StringVar(&o.FunctionName, "name", "", "function name (default: the binary's directory when it is called bootstrap)")
	fs.StringVar(&o.Region, "region", lambdarun.DefaultRegion, "AWS_REGION of the function")
	fs.IntVar(&o.MemoryMB, "memory", lambdarun.DefaultMemoryMB, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
	fs.DurationVar(&o.Timeout, "timeout", lambdarun.DefaultTimeout, "function timeout per invocation")
	fs.DurationVar(&o.InitTimeout, "init-timeout", lambdarun.DefaultInitTimeout, "init timeout")
	fs.BoolVar(&o.Tracing, "tracing", false, "send sampled X-Ray trace headers")
	fs.BoolVar(&pretty, "pretty", false, "indent JSON responses")
	fs.BoolVar(&quiet, "q", false, "no timings on stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lambda-runner -binary PATH [-env K=V]... [-event FILE]... [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.Binary == "" || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	if len(events) == 0 {
		events = listFlag{"-"}
	}
	payloads := make([][]byte, len(events))
	for i, name := range events {
		b, err := readEvent(name, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "lambda-runner: %v\n", err)
			return 1
		}
		payloads[i] = b
	}
	o.Env = env
	o.Output = stderr

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := lambdarun.Start(ctx, o)
	if err != nil {
		fmt.Fprintf(stderr, "lambda-runner: %v\n", err)
		return 1
	}
	defer r.Close()
	logf := func(format string, a ...any) {
		if !quiet {
			fmt.Fprintf(stderr, "lambda-runner: "+format+"\n", a...)
		}
	}
	logf("%s: cold init %v", r.FunctionName(), r.Init().Round(10*time.Microsecond))

	var prev []byte
	code := 0
	for i, p := range payloads {
		p, err := lambdarun.FillPlaceholders(p, prev)
		if err != nil {
			fmt.Fprintf(stderr, "lambda-runner: %s: %v\n", events[i], err)
			return 1
		}
		res, err := r.Invoke(ctx, p)
		if err != nil {
			fmt.Fprintf(stderr, "lambda-runner: %s: %v\n", events[i], err)
			return 1
		}
		out := res.Payload
		if pretty {
			var buf bytes.Buffer
			if json.Indent(&buf, out, "", "  ") == nil {
				out = buf.Bytes()
			}
		}
		fmt.Fprintf(stdout, "%s\n", out)
		if res.Err != nil {
			logf("%s: function error %v after %v", events[i], res.Err, res.Duration.Round(10*time.Microsecond))
			code = 1
			prev = nil
			continue
		}
		logf("%s: %s in %v", events[i], summary(res.Payload), res.Duration.Round(10*time.Microsecond))
		prev = res.Payload
	}
	return code
}

func readEvent(name string, stdin io.Reader) ([]byte, error) {
	var b []byte
	var err error
	if name == "-" {
		b, err = io.ReadAll(stdin)
		name = "stdin"
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read event: %w", err)
	}
	if !json.Valid(b) && len(lambdarun.Placeholders(b)) == 0 {
		return nil, fmt.Errorf("event %s is not valid JSON", name)
	}
	return b, nil
}

// summary describes a response: the status of a Function URL response.
func summary(payload []byte) string {
	var fu struct {
		StatusCode *int `json:"statusCode"`
	}
	if json.Unmarshal(payload, &fu) == nil && fu.StatusCode != nil {
		return fmt.Sprintf("status %d", *fu.StatusCode)
	}
	return fmt.Sprintf("%d bytes", len(payload))
}
