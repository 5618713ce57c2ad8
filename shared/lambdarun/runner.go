package lambdarun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

// Defaults of Options.
const (
	DefaultMemoryMB    = 128
	DefaultTimeout     = 30 * time.Second
	DefaultInitTimeout = 10 * time.Second
	DefaultRegion      = "us-east-1"
	// AccountID is the account in the invoked function ARN.
	AccountID = "123456789012"
	// MaxPayload is Lambda's limit on a synchronous request and response
	// payload (6 MB).
	MaxPayload = 6 << 20
	// stopGrace is how long Close waits after SIGTERM before SIGKILL.
	stopGrace = 2 * time.Second
)

// Options configure a Runner.
type Options struct {
	// Binary is the path of the bootstrap executable (required).
	Binary string
	// Env adds or overrides environment variables, "KEY=VALUE" each; later
	// entries win. AWS_LAMBDA_RUNTIME_API cannot be overridden.
	Env []string
	// InheritEnv starts the function's environment from this process's
	// (Lambda's own variables are then added only where missing). By default
	// the function sees only Lambda's variables and Env, as in Lambda.
	InheritEnv bool
	// Instances is the number of concurrent execution environments (default 1).
	Instances int
	// FunctionName defaults to the binary's directory name when the binary
	// is called "bootstrap" (dist/acquire/bootstrap → "acquire"), else to
	// its file name.
	FunctionName string
	// MemoryMB is AWS_LAMBDA_FUNCTION_MEMORY_SIZE (default 128).
	MemoryMB int
	// Region is AWS_REGION and AWS_DEFAULT_REGION (default us-east-1).
	Region string
	// Timeout is the function timeout of each invocation (default 30 s).
	Timeout time.Duration
	// InitTimeout bounds each instance's init (default 10 s).
	InitTimeout time.Duration
	// Tracing sends sampled X-Ray trace headers (Sampled=1), as Lambda does
	// with active tracing; otherwise the headers say Sampled=0.
	Tracing bool
	// Output receives the processes' stdout and stderr (default os.Stderr).
	Output io.Writer
}

// Result is the outcome of one invocation.
type Result struct {
	// RequestID is the invocation's request id (Lambda-Runtime-Aws-Request-Id).
	RequestID string
	// Payload is the response payload, or the error payload when Err is set.
	Payload []byte
	// Err is the function's error: one it returned (or a panic), a timeout
	// (Sandbox.Timedout) or its process exiting (Runtime.ExitError).
	Err *FunctionError
	// Duration runs from handing the event to the function to its answer.
	Duration time.Duration
	// Instance is the index of the execution environment that ran it.
	Instance int
	// TraceHeader is the X-Ray trace header the function was given.
	TraceHeader string
}

// FunctionError is an error reported by (or about) the function, in the
// JSON shape of the Runtime API.
type FunctionError struct {
	Type       string          `json:"errorType"`
	Message    string          `json:"errorMessage"`
	StackTrace json.RawMessage `json:"stackTrace,omitempty"`
}

func (e *FunctionError) Error() string {
	if e.Type == "" {
		return e.Message
	}
	return e.Type + ": " + e.Message
}

// InitError reports an instance that failed to initialise.
type InitError struct {
	Instance int
	// Err is the error the runtime posted to /runtime/init/error, if any.
	Err *FunctionError
	// Exit is how the process ended (nil if it was still running).
	Exit error
	// TimedOut is set when the instance did not ask for an invocation
	// within Options.InitTimeout.
	TimedOut bool
}

func (e *InitError) Error() string {
	var parts []string
	if e.Err != nil {
		parts = append(parts, "init error "+e.Err.Error())
	}
	if e.TimedOut {
		parts = append(parts, "no /next request within the init timeout")
	}
	if e.Exit != nil {
		parts = append(parts, "process ended: "+e.Exit.Error())
	} else if e.Err == nil && !e.TimedOut {
		parts = append(parts, "process ended before its first /next request")
	}
	return fmt.Sprintf("lambdarun: instance %d failed to initialise: %s", e.Instance, strings.Join(parts, "; "))
}

// ErrClosed is returned by Invoke after Close.
var ErrClosed = errors.New("lambdarun: runner closed")

// Runner runs the instances of one function. Its methods are safe for
// concurrent use.
type Runner struct {
	o      Options
	bin    string // absolute path
	dir    string
	name   string
	out    io.Writer
	queue  chan *invocation
	closed chan struct{}
	dead   chan struct{} // closed when no instance is left
	insts  []*instance
	wg     sync.WaitGroup

	closeOnce sync.Once
	mu        sync.Mutex
	alive     int
	deadErr   error
}

// Start validates the options, starts the instances and waits (within ctx
// and Options.InitTimeout) until each has asked for its first invocation.
// The processes outlive ctx: stop them with Close.
func Start(ctx context.Context, o Options) (*Runner, error) {
	if o.Binary == "" {
		return nil, errors.New("lambdarun: Options.Binary is required")
	}
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, fmt.Errorf("lambdarun: binary %s: %w", o.Binary, err)
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return nil, fmt.Errorf("lambdarun: binary: %w", err)
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return nil, fmt.Errorf("lambdarun: binary %s is not an executable file", bin)
	}
	for _, kv := range o.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("lambdarun: environment entry %q: want KEY=VALUE", kv)
		}
	}
	if o.Instances <= 0 {
		o.Instances = 1
	}
	if o.MemoryMB <= 0 {
		o.MemoryMB = DefaultMemoryMB
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.InitTimeout <= 0 {
		o.InitTimeout = DefaultInitTimeout
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	r := &Runner{
		o:      o,
		bin:    bin,
		dir:    filepath.Dir(bin),
		name:   o.FunctionName,
		out:    syncio.NewWriter(o.Output), // several processes' pipes
		queue:  make(chan *invocation),
		closed: make(chan struct{}),
		dead:   make(chan struct{}),
		alive:  o.Instances,
	}
	if o.Output == nil {
		r.out = syncio.NewWriter(os.Stderr)
	}
	if r.name == "" {
		r.name = defaultName(bin)
	}

	ready := make(chan error, o.Instances)
	for i := range o.Instances {
		in := &instance{r: r, n: i}
		r.insts = append(r.insts, in)
		r.wg.Add(1)
		go in.supervise(ready)
	}
	var first error
	for range o.Instances {
		select {
		case err := <-ready:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			if first == nil {
				first = fmt.Errorf("lambdarun: start: %w", ctx.Err())
			}
		}
		if first != nil {
			break
		}
	}
	if first != nil {
		r.Close()
		return nil, first
	}
	return r, nil
}

func defaultName(bin string) string {
	if filepath.Base(bin) == "bootstrap" {
		return filepath.Base(filepath.Dir(bin))
	}
	return strings.TrimSuffix(filepath.Base(bin), filepath.Ext(bin))
}

// Dead is closed once no instance is left (every one failed to start
// again); Invoke then fails. A supervisor starts a new Runner.
func (r *Runner) Dead() <-chan struct{} { return r.dead }

// FunctionName is the function's name (AWS_LAMBDA_FUNCTION_NAME).
func (r *Runner) FunctionName() string { return r.name }

// Init is the longest cold init among the instances' first processes:
// from process start to its first /next request.
func (r *Runner) Init() time.Duration {
	var d time.Duration
	for _, v := range r.Inits() {
		d = max(d, v)
	}
	return d
}

// Inits lists each instance's cold init time (its first process).
func (r *Runner) Inits() []time.Duration {
	out := make([]time.Duration, len(r.insts))
	for i, in := range r.insts {
		in.mu.Lock()
		out[i] = in.firstInit
		in.mu.Unlock()
	}
	return out
}

// Restarts counts the processes started to replace ones that exited or timed
// out.
func (r *Runner) Restarts() int {
	n := 0
	for _, in := range r.insts {
		in.mu.Lock()
		n += in.restarts
		in.mu.Unlock()
	}
	return n
}

// Invoke sends payload to the function and waits for its answer. The error
// is non-nil only when the runner could not get an answer (ctx ended, the
// runner closed, no instance left, payload over 6 MB); a function error is
// Result.Err.
func (r *Runner) Invoke(ctx context.Context, payload []byte) (Result, error) {
	if len(payload) > MaxPayload {
		return Result{}, fmt.Errorf("lambdarun: payload of %d bytes exceeds Lambda's limit of %d", len(payload), MaxPayload)
	}
	inv := &invocation{
		id:      newRequestID(),
		payload: payload,
		trace:   newTraceHeader(r.o.Tracing),
		done:    make(chan Result, 1),
	}
	if err := r.enqueue(ctx, inv); err != nil {
		return Result{}, err
	}
	select {
	case res := <-inv.done:
		return res, nil
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-r.closed:
		return Result{}, ErrClosed
	}
}

// enqueue hands inv to the next instance that asks for work.
func (r *Runner) enqueue(ctx context.Context, inv *invocation) error {
	select {
	case r.queue <- inv:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-r.closed:
		return ErrClosed
	case <-r.dead:
		return r.deadError()
	}
}

// requeue puts back an invocation whose hand-out failed.
func (r *Runner) requeue(inv *invocation) {
	go func() {
		select {
		case r.queue <- inv:
		case <-r.closed:
		case <-r.dead:
			inv.complete(Result{RequestID: inv.id, Err: &FunctionError{
				Type: "Runtime.Unavailable", Message: r.deadError().Error(),
			}})
		}
	}()
}

func (r *Runner) deadError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Errorf("lambdarun: no instance left: %w", r.deadErr)
}

// instanceDied records an instance that could not be restarted.
func (r *Runner) instanceDied(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alive--
	r.deadErr = err
	if r.alive == 0 {
		close(r.dead)
	}
}

func (r *Runner) isClosed() bool {
	select {
	case <-r.closed:
		return true
	default:
		return false
	}
}

// Close stops every process and waits for them. Pending invocations return
// ErrClosed. It is safe to call more than once.
func (r *Runner) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		for _, in := range r.insts {
			in.stop()
		}
		r.wg.Wait()
	})
	return nil
}

// environ is the environment of a process whose Runtime API is at api.
func (r *Runner) environ(api string) []string {
	env := map[string]string{}
	var order []string
	set := func(k, v string, override bool) {
		if _, ok := env[k]; !ok {
			order = append(order, k)
		} else if !override {
			return
		}
		env[k] = v
	}
	if r.o.InheritEnv {
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			set(k, v, true)
		}
	}
	stream := time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + randomHex(16)
	defaults := [][2]string{
		{"AWS_LAMBDA_FUNCTION_NAME", r.name},
		{"AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"},
		{"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", strconv.Itoa(r.o.MemoryMB)},
		{"AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/" + r.name},
		{"AWS_LAMBDA_LOG_STREAM_NAME", stream},
		{"AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"},
		{"AWS_REGION", r.o.Region},
		{"AWS_DEFAULT_REGION", r.o.Region},
		{"LAMBDA_TASK_ROOT", r.dir},
		{"_HANDLER", "bootstrap"},
		{"TZ", ":UTC"},
		{"LANG", "en_US.UTF-8"},
		{"PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin"},
	}
	for _, d := range defaults {
		set(d[0], d[1], !r.o.InheritEnv)
	}
	for _, kv := range r.o.Env {
		k, v, _ := strings.Cut(kv, "=")
		set(k, v, true)
	}
	set("AWS_LAMBDA_RUNTIME_API", api, true)
	sort.Strings(order)
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+env[k])
	}
	return out
}

// invocation is one queued or running Invoke.
type invocation struct {
	id      string
	payload []byte
	trace   string
	done    chan Result // buffered; written once by complete

	once  sync.Once
	start time.Time
	timer *time.Timer
	inst  int
}

// complete delivers the result (only the first call counts).
func (inv *invocation) complete(res Result) {
	inv.once.Do(func() {
		if inv.timer != nil {
			inv.timer.Stop()
		}
		res.RequestID = inv.id
		res.TraceHeader = inv.trace
		if !inv.start.IsZero() {
			res.Duration = time.Since(inv.start)
			res.Instance = inv.inst
		}
		inv.done <- res
	})
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newRequestID returns a random UUID (version 4), the shape of Lambda's ids.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// newTraceHeader returns an X-Ray trace header as Lambda passes it.
func newTraceHeader(sampled bool) string {
	s := "0"
	if sampled {
		s = "1"
	}
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=%s", time.Now().Unix(), randomHex(24), randomHex(16), s)
}
