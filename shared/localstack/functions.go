package localstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/localstack/invokeapi"
	"github.com/zeroae/zae-limiter-go/shared/localstack/samtpl"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

// BuildFunctions builds each function's bootstrap natively (CGO_ENABLED=0,
// -tags lambda.norpc) from its CodeUri under root into dir/<name>/bootstrap.
// `go build` itself skips a binary that is up to date.
func BuildFunctions(ctx context.Context, root, dir string, fns []samtpl.Function, progress io.Writer) error {
	for _, fn := range fns {
		out := filepath.Join(dir, fn.Name, "bootstrap")
		before, _ := os.Stat(out)
		start := time.Now()
		err := lambdarun.Build(ctx, lambdarun.BuildOptions{Package: "./" + filepath.ToSlash(filepath.Clean(fn.CodeURI)), Output: out, Dir: root})
		if err != nil {
			return fmt.Errorf("build function %s: %w", fn.Name, err)
		}
		after, _ := os.Stat(out)
		if before == nil || after == nil || !after.ModTime().Equal(before.ModTime()) {
			fmt.Fprintf(progress, "Built function %s (%s) in %v\n", fn.Name, out, time.Since(start).Round(10*time.Millisecond))
		}
	}
	return nil
}

// function is one template function hosted by the daemon: its runner
// (replaced when it dies), its log and its settings.
type function struct {
	spec    samtpl.Function
	binary  string
	env     []string
	log     io.Writer
	logFile string
	inst    int

	mu      sync.Mutex
	runner  *lambdarun.Runner
	err     string // why it is not running
	restart int
}

var errNotRunning = errors.New("the function is not running")

// Invoke runs one invocation and writes Lambda's platform report line to
// the function's log.
func (f *function) Invoke(ctx context.Context, payload []byte) (lambdarun.Result, error) {
	f.mu.Lock()
	r := f.runner
	f.mu.Unlock()
	if r == nil {
		return lambdarun.Result{}, fmt.Errorf("%s: %w", f.spec.Name, errNotRunning)
	}
	res, err := r.Invoke(ctx, payload)
	if err == nil {
		f.report(res)
	}
	return res, err
}

func (f *function) report(res lambdarun.Result) {
	status := "success"
	if res.Err != nil {
		status = "error"
		if res.Err.Type == "Sandbox.Timedout" {
			status = "timeout"
		}
	}
	ms := float64(res.Duration.Microseconds()) / 1000
	b, _ := json.Marshal(map[string]any{
		"time": time.Now().UTC().Format(time.RFC3339Nano), "type": "platform.report",
		"record": map[string]any{
			"requestId": res.RequestID, "status": status,
			"metrics": map[string]any{"durationMs": ms, "billedDurationMs": int(ms) + 1, "memorySizeMB": f.spec.MemoryMB},
		},
	})
	_, _ = f.log.Write(append(b, '\n'))
}

// Config describes the function for the Lambda API.
func (f *function) Config() invokeapi.Config {
	c := invokeapi.Config{
		FunctionName: f.spec.FunctionName, FunctionArn: f.spec.ARN, Runtime: "provided.al2023", Handler: "bootstrap",
		MemorySize: f.spec.MemoryMB, Timeout: int(f.spec.Timeout / time.Second), Version: "$LATEST", State: "Active",
	}
	if !f.running() {
		c.State = "Failed"
	}
	c.Environment = &struct {
		Variables map[string]string `json:"Variables"`
	}{Variables: f.spec.Env}
	return c
}

func (f *function) running() bool {
	f.mu.Lock()
	r := f.runner
	f.mu.Unlock()
	if r == nil {
		return false
	}
	select {
	case <-r.Dead():
		return false
	default:
		return true
	}
}

// start starts (or restarts) the runner.
func (f *function) start(ctx context.Context) error {
	if _, err := os.Stat(f.binary); err != nil {
		f.setErr(fmt.Sprintf("no bootstrap at %s (run `zae-limiter local up` in the checkout to build it)", f.binary))
		return err
	}
	r, err := lambdarun.Start(ctx, lambdarun.Options{
		Binary: f.binary, FunctionName: f.spec.FunctionName, Env: f.env, Instances: f.inst,
		MemoryMB: f.spec.MemoryMB, Timeout: f.spec.Timeout, Region: samtpl.Region, Tracing: false,
		Output: f.log,
	})
	if err != nil {
		f.setErr(err.Error())
		return err
	}
	f.mu.Lock()
	old := f.runner
	f.runner, f.err = r, ""
	f.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}

func (f *function) setErr(msg string) {
	f.mu.Lock()
	f.err = msg
	f.mu.Unlock()
	fmt.Fprintf(f.log, "localstack: function %s is not running: %s\n", f.spec.Name, msg)
}

// supervise restarts a runner that died (every instance failed to start
// again), backing off, until ctx ends.
func (f *function) supervise(ctx context.Context) {
	backoff := time.Second
	for {
		f.mu.Lock()
		r := f.runner
		f.mu.Unlock()
		var dead <-chan struct{}
		if r != nil {
			dead = r.Dead()
		}
		if r != nil {
			select {
			case <-ctx.Done():
				return
			case <-dead:
				f.setErr("every execution environment failed; restarting")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if f.start(context.WithoutCancel(ctx)) == nil {
			f.mu.Lock()
			f.restart++
			f.mu.Unlock()
			backoff = time.Second
		} else {
			backoff = min(2*backoff, 30*time.Second)
		}
	}
}

func (f *function) close() {
	f.mu.Lock()
	r := f.runner
	f.runner = nil
	f.mu.Unlock()
	if r != nil {
		_ = r.Close()
	}
}

// FunctionStatus is a function in `local status`.
type FunctionStatus struct {
	Name         string `json:"name"`
	Running      bool   `json:"running"`
	FunctionName string `json:"function_name"`
	Instances    int    `json:"instances,omitempty"`
	Restarts     int    `json:"restarts"`
	LogFile      string `json:"log_file"`
	URL          string `json:"url,omitempty"`
	Error        string `json:"error,omitempty"`
	Triggers     []any  `json:"triggers,omitempty"`
}

func (f *function) status() FunctionStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := FunctionStatus{Name: f.spec.Name, FunctionName: f.spec.FunctionName, LogFile: f.logFile, Error: f.err, Restarts: f.restart}
	if f.runner != nil {
		select {
		case <-f.runner.Dead():
		default:
			st.Running = true
			st.Instances = f.inst
		}
		st.Restarts += f.runner.Restarts()
	}
	return st
}

// environ builds a function's environment on the local stack.
func environ(spec samtpl.Function, cfg Config, endpoint string) []string {
	env := map[string]string{}
	for k, v := range spec.Env {
		env[k] = v
	}
	for _, fn := range []string{"*", spec.Name} {
		for _, k := range cfg.Unset[fn] {
			delete(env, k)
		}
		for k, v := range cfg.Env[fn] {
			env[k] = v
		}
	}
	env["AWS_ENDPOINT_URL"] = endpoint
	env["AWS_ACCESS_KEY_ID"] = dummyKey
	env["AWS_SECRET_ACCESS_KEY"] = dummyKey
	if spec.LogFormat == "JSON" {
		env["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+env[k])
	}
	return out
}

// dummyKey is the local access key and secret (awsenv's dummy credentials).
const dummyKey = "dummy"

// openLog opens a log file for appending, shared by concurrent writers.
func openLog(path string) (io.Writer, *os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	return syncio.NewWriter(f), f, nil
}
