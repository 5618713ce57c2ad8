package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/spf13/cobra"

	zaelimiter "github.com/zeroae/zae-limiter-go"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/localstack"
	"github.com/zeroae/zae-limiter-go/shared/localstack/s3local"
	"github.com/zeroae/zae-limiter-go/shared/localstack/samtpl"
)

// module is this project's module path: a go.mod naming it marks a checkout.
const module = "github.com/zeroae/zae-limiter-go"

// localExeEnv names a zae-limiter binary to run the daemon with instead of
// this executable (tests, whose executable is the test binary).
const localExeEnv = "ZAEL_LOCAL_EXE"

func newCmdLocal(env *Env) *cobra.Command {
	c := newGroup("local", "Run the whole stack on this machine: one endpoint for DynamoDB, S3 and Lambda",
		`  export AWS_ENDPOINT_URL=$(zae-limiter local up)
  zae-limiter local status -o json
  zae-limiter local logs acquire -f
  zae-limiter local invoke acquire -e events/acquire/admitted.json
  zae-limiter local down`,
		newCmdLocalUp(env, nil),
		newCmdLocalDown(env, nil),
		newCmdLocalStatus(env, nil),
		newCmdLocalLogs(env, nil),
		newCmdLocalInvoke(env, nil),
		newCmdLocalDaemon(env),
	)
	return c
}

// local up

type localUpOptions struct {
	env        *Env
	Port       int
	URLPort    int
	URLAuth    string
	Persist    bool
	Instances  int
	Params     []string
	Template   string
	NoBuild    bool
	ScheduleEv time.Duration
}

func newCmdLocalUp(env *Env, runF func(*localUpOptions) error) *cobra.Command {
	opts := &localUpOptions{env: env}
	cmd := &cobra.Command{
		Use:   "up [--port P]",
		Short: "Start the local stack and print its one endpoint (idempotent)",
		Long: `Start the local stack named by --name: DynamoDB Local (in-memory, -sharedDb) with the
template's tables, an S3 server (versitygw) with its buckets, and a daemon hosting the one
endpoint (DynamoDB, DynamoDB Streams, S3 and the Lambda Invoke API on one port, any
credentials), every function of template.yaml as its real bootstrap behind the Lambda Runtime
API runner, their DynamoDB stream mappings and schedules, and the acquire function's Function
URL on a port of its own. The endpoint is printed on stdout, progress goes to stderr.

Inside the checkout the template is the checkout's and each function's bootstrap is built
(CGO_ENABLED=0, -tags lambda.norpc) into dist/local/<function>/ when missing or outdated;
elsewhere the template built into this binary is used. DynamoDB Local and versitygw come from
the project's tools/ in a checkout, else from the user's cache, where they are installed when
missing (java, npm and go are needed then).

Already running on the same port (or with no --port): exit 0, nothing changes. Running on
another port: exit 1.`,
		Example: `  export AWS_ENDPOINT_URL=$(zae-limiter local up)
  zae-limiter local up --port 8001 -n dev
  zae-limiter local up --url-auth AWS_IAM      # the Function URL checks SigV4 (keys dummy/dummy)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for name, p := range map[string]int{"port": opts.Port, "url-port": opts.URLPort} {
				if p < 0 || p > 65535 {
					return limits.Invalid(name, strconv.Itoa(p), "must be between 1 and 65535")
				}
			}
			switch opts.URLAuth {
			case "", "NONE", "AWS_IAM":
			default:
				return limits.Invalid("url-auth", opts.URLAuth, "must be NONE or AWS_IAM")
			}
			if opts.Instances < 1 || opts.Instances > 64 {
				return limits.Invalid("instances", strconv.Itoa(opts.Instances), "must be between 1 and 64")
			}
			if err := validateTableName(env.Name); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return localUpRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Port, "port", 0, "`PORT` of the one endpoint (e.g. --port 8001; default 8000, or a free port when 8000 is taken)")
	f.IntVar(&opts.URLPort, "url-port", 0, "`PORT` of the acquire Function URL (e.g. --url-port 9001; default a free port)")
	f.StringVar(&opts.URLAuth, "url-auth", "NONE", "`AUTH` type of the Function URLs locally: NONE or AWS_IAM, SigV4 with the keys dummy/dummy (e.g. --url-auth AWS_IAM)")
	f.BoolVar(&opts.Persist, "persist", false, "keep DynamoDB's and S3's data on disk across 'local down' (e.g. --persist; default: in memory, gone with down)")
	f.IntVar(&opts.Instances, "instances", 4, "`N` execution environments per function (e.g. --instances 16 for load tests)")
	f.StringArrayVar(&opts.Params, "parameter", nil, "template parameter `KEY=VALUE` (repeatable; e.g. --parameter LeaseTTLSeconds=60)")
	f.StringVar(&opts.Template, "template", "", "SAM template `FILE` (e.g. --template my-template.yaml; default: the checkout's template.yaml, else the built-in one)")
	f.BoolVar(&opts.NoBuild, "no-build", false, "do not build the functions' bootstraps, use what dist/local holds (e.g. --no-build)")
	f.DurationVar(&opts.ScheduleEv, "schedule-every", 0, "fire every schedule at this `INTERVAL` instead of its rate (e.g. 10s for a demo)")
	return cmd
}

func localUpRun(ctx context.Context, opts *localUpOptions) error {
	env := opts.env
	if st, err := localstack.ReadState(env.Name); err == nil && localstack.DaemonAlive(st) && st.Phase == localstack.PhaseReady {
		if opts.Port != 0 && opts.Port != st.Port {
			return &localstack.RunningError{Name: env.Name, State: st}
		}
		env.progress("The local stack %q is already running (daemon pid %d)", env.Name, st.DaemonPID)
		return printLocalEndpoint(env, st)
	}
	cfg, err := localConfig(ctx, opts)
	if err != nil {
		return err
	}
	exe, err := localExe()
	if err != nil {
		return err
	}
	start := time.Now()
	st, started, err := localstack.Up(ctx, localstack.UpOptions{
		Config:   cfg,
		Command:  []string{exe, "local", "daemon", "-n", env.Name},
		Progress: env.Err,
	})
	if err != nil {
		return err
	}
	if started {
		env.progress("The local stack %q is ready in %v (daemon pid %d)", env.Name, time.Since(start).Round(10*time.Millisecond), st.DaemonPID)
		env.progress("Note: DynamoDB Local (port %d) cannot be told to listen on 127.0.0.1 only and listens on every "+
			"interface; everything else listens on 127.0.0.1. Use it on a trusted network, or firewall port %d.",
			st.DynamoDB.Port, st.DynamoDB.Port)
	}
	return printLocalEndpoint(env, st)
}

func printLocalEndpoint(env *Env, st localstack.State) error {
	flags := "--endpoint-url " + st.Endpoint
	if env.Name != defaultName {
		flags = "-n " + env.Name + " " + flags
	}
	msg := fmt.Sprintf(`Use it with:
  zae-limiter %s ...
or set for every AWS client (our CLI, the Go SDK, the AWS CLI):
  export AWS_ENDPOINT_URL=%s`, flags, st.Endpoint)
	if u := st.URLs["acquire"]; u != "" {
		msg += "\nThe acquire API (Function URL): " + u
	}
	env.progress("%s", msg)
	_, err := fmt.Fprintln(env.Out, st.Endpoint)
	return err
}

// localExe is the zae-limiter executable that runs the daemon.
func localExe() (string, error) {
	if exe := os.Getenv(localExeEnv); exe != "" {
		return exe, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this executable to run the local stack's daemon: %w", err)
	}
	return exe, nil
}

// checkout returns the project checkout holding the working directory.
func checkout() (string, bool) {
	root, ok := ddblocal.ProjectRoot("")
	if !ok {
		return "", false
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.Contains(b, []byte("module "+module+"\n")) {
		return "", false
	}
	return root, true
}

// localConfig prepares everything the daemon needs: the servers installed,
// the template read and checked, the functions built.
func localConfig(ctx context.Context, opts *localUpOptions) (localstack.Config, error) {
	env := opts.env
	cfg := localstack.Config{Name: env.Name, Port: opts.Port, URLPort: opts.URLPort, URLAuth: opts.URLAuth,
		Persist: opts.Persist, Instances: opts.Instances, ScheduleEvery: opts.ScheduleEv,
		Env: map[string]map[string]string{}, Unset: map[string][]string{}, Parameters: map[string]string{}}
	for _, kv := range opts.Params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return cfg, limits.Invalid("parameter", kv, "want KEY=VALUE")
		}
		cfg.Parameters[k] = v
	}
	if _, err := exec.LookPath("java"); err != nil && os.Getenv("JAVA_HOME") == "" {
		return cfg, ddblocal.ErrNoJava
	}
	jar, err := ddblocal.FindJar("")
	if errors.Is(err, ddblocal.ErrJarNotFound) {
		env.progress("DynamoDB Local is not installed here.")
		jar, err = ddblocal.Install(ctx, "", env.Err)
	}
	if err != nil {
		return cfg, err
	}
	cfg.DynamoDBJarDir = jar
	if cfg.S3Binary, err = s3local.FindOrInstall(ctx, "", env.Err); err != nil {
		return cfg, err
	}

	root, inCheckout := checkout()
	tpl, file := zaelimiter.Template, "the built-in template.yaml"
	switch {
	case opts.Template != "":
		if tpl, err = os.ReadFile(opts.Template); err != nil {
			return cfg, fmt.Errorf("read the template: %w", err)
		}
		file = opts.Template
		if root == "" {
			root = filepath.Dir(opts.Template)
		}
	case inCheckout:
		file = filepath.Join(root, "template.yaml")
		if tpl, err = os.ReadFile(file); err != nil {
			return cfg, fmt.Errorf("read the template: %w", err)
		}
	}
	cfg.Template, cfg.TemplateFile = string(tpl), file
	parsed, err := samtpl.Parse(tpl)
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", file, err)
	}
	stack, err := parsed.Load(samtpl.Options{StackName: env.Name, Parameters: cfg.Parameters})
	if err != nil {
		return cfg, fmt.Errorf("%s: %w", file, err)
	}
	for _, w := range stack.Warnings {
		env.progress("Note: %s", w)
	}
	if inCheckout || opts.Template != "" {
		cfg.FunctionsDir = filepath.Join(root, "dist", "local")
		if !opts.NoBuild {
			if err := localstack.BuildFunctions(ctx, root, cfg.FunctionsDir, stack.Functions, env.Err); err != nil {
				return cfg, err
			}
		}
	} else {
		cache, err := os.UserCacheDir()
		if err != nil {
			return cfg, err
		}
		cfg.FunctionsDir = filepath.Join(cache, "zae-limiter", "functions")
		env.progress("Note: outside the checkout the functions run from %s/<function>/bootstrap when present "+
			"(build them in the checkout with `make build` and `zae-limiter local up` there)", cfg.FunctionsDir)
	}
	// No SSM or Secrets Manager locally: a function that reads its lease
	// keys from a parameter or a secret gets the stack's own key instead.
	for _, fn := range stack.Functions {
		var sources []string
		for _, k := range []string{"LEASE_KEYS_PARAMETER", "LEASE_KEYS_SECRET"} {
			if _, ok := fn.Env[k]; ok {
				sources = append(sources, k)
			}
		}
		if len(sources) > 0 {
			key, err := localLeaseKey(env.Name)
			if err != nil {
				return cfg, err
			}
			cfg.Unset[fn.Name] = append(cfg.Unset[fn.Name], sources...)
			cfg.Env[fn.Name] = map[string]string{"LEASE_KEYS": key}
		}
	}
	return cfg, nil
}

// localLeaseKey is the stack's lease-signing key, made once and kept in the
// stack's directory (it survives down, so tokens stay verifiable).
func localLeaseKey(name string) (string, error) {
	dir, err := localstack.StackDir(name)
	if err != nil {
		return "", err
	}
	file := filepath.Join(dir, "lease-key")
	if b, err := os.ReadFile(file); err == nil && len(bytes.TrimSpace(b)) >= 32 {
		return string(bytes.TrimSpace(b)), nil
	}
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return "", err
	}
	key := base64.StdEncoding.EncodeToString(k[:])
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	return key, os.WriteFile(file, []byte(key+"\n"), 0o600)
}

// local daemon (hidden): the long-running process `local up` starts.

func newCmdLocalDaemon(env *Env) *cobra.Command {
	return &cobra.Command{
		Use:    "daemon",
		Short:  "Run the local stack in the foreground (started by 'local up')",
		Hidden: true,
		Args:   noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := localstack.ReadConfig(env.Name)
			if err != nil {
				return err
			}
			progress := io.Writer(env.Err)
			if fd, err := strconv.Atoi(os.Getenv(localstack.ReadyFDEnv)); err == nil {
				p := os.NewFile(uintptr(fd), "ready")
				defer p.Close()
				progress = io.MultiWriter(env.Err, p)
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return localstack.Run(ctx, cfg, localstack.RunOptions{
				Progress: progress,
				Log:      slogTo(env.Err),
				Seed: func(ctx context.Context, endpoint string) error {
					e := newEnv(strings.NewReader(""), io.Discard, io.Discard, env.Getenv)
					e.Name = env.Name
					return initLocalTable(ctx, e, endpoint)
				},
			})
		},
	}
}

// initLocalTable writes the version record and registers the default
// namespace in the table at endpoint (the daemon created the table); each
// step is idempotent.
func initLocalTable(ctx context.Context, env *Env, endpoint string) error {
	env.EndpointURL = endpoint
	s, err := env.Store(ctx)
	if err != nil {
		return err
	}
	if err := s.EnsureVersion(ctx, "cli:"+version()); err != nil {
		return err
	}
	_, err = s.RegisterNamespace(ctx, defaultNamespace)
	return err
}

// local down

type localDownOptions struct {
	env  *Env
	Port int // only checked against the state file
}

func newCmdLocalDown(env *Env, runF func(*localDownOptions) error) *cobra.Command {
	opts := &localDownOptions{env: env}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop everything 'local up' started (its in-memory data goes with it)",
		Long: `Stop the local stack named by --name: the daemon (the endpoint, the functions, the stream
mappings, the schedules, the Function URLs), DynamoDB Local and the S3 server, as its state file
names them, even after a crash of 'local up' or of the daemon. The data goes with them (DynamoDB
Local runs in memory; the S3 data and on-failure records are removed) unless the stack was
started with --persist. Logs stay. Nothing running is not an error.`,
		Example: `  zae-limiter local down
  zae-limiter local down -n dev`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return localDownRun(opts)
		},
	}
	cmd.Flags().IntVar(&opts.Port, "port", 0,
		"`PORT` given to 'local up' (optional; e.g. --port 8001): a different recorded port is reported")
	return cmd
}

func localDownRun(opts *localDownOptions) error {
	env := opts.env
	if opts.Port != 0 {
		if st, err := localstack.ReadState(env.Name); err == nil && st.Port != 0 && st.Port != opts.Port {
			env.progress("Note: the local stack %q was started on port %d, not %d; stopping it", env.Name, st.Port, opts.Port)
		}
	}
	stopped, err := localstack.Down(env.Name)
	if err != nil {
		return err
	}
	if !stopped.Any() {
		env.progress("The local stack %q is not running", env.Name)
		return nil
	}
	var parts []string
	for _, p := range []struct {
		on   bool
		name string
	}{{stopped.Daemon, "the daemon and its functions"}, {stopped.DynamoDB || stopped.Legacy, "DynamoDB Local"}, {stopped.S3, "the S3 server"}} {
		if p.on {
			parts = append(parts, p.name)
		}
	}
	env.progress("Stopped the local stack %q: %s", env.Name, strings.Join(parts, ", "))
	if stopped.Persist {
		dir, _ := localstack.StackDir(env.Name)
		env.progress("Its data is kept in %s (started with --persist)", dir)
	} else {
		env.progress("Its data went with it (DynamoDB Local ran in memory; the S3 data was removed)")
	}
	return nil
}

// local status

type localStatusOptions struct {
	env    *Env
	Output outputFormat
}

// localStatusJSON is the JSON of `local status`.
type localStatusJSON struct {
	Name         string                         `json:"name"`
	Running      bool                           `json:"running"`
	Phase        string                         `json:"phase,omitempty"`
	Endpoint     string                         `json:"endpoint,omitempty"`
	AcquireURL   string                         `json:"acquire_url,omitempty"`
	StartedAt    string                         `json:"started_at,omitempty"`
	Table        *bool                          `json:"table_exists,omitempty"`
	Functions    []localstack.FunctionStatus    `json:"functions"`
	Parts        []localPartJSON                `json:"parts"`
	Mappings     []localstack.MappingStatus     `json:"stream_mappings,omitempty"`
	Schedules    []localstack.ScheduleStatus    `json:"schedules,omitempty"`
	Destinations []localstack.DestinationStatus `json:"destinations,omitempty"`
	Warnings     []string                       `json:"warnings,omitempty"`
}

// localPartJSON is one part of `local status -o json`: every key pinned by
// DECISIONS §4.1 is always there, null when unknown (a part not started).
type localPartJSON struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	PID     int    `json:"pid"`
	Port    int    `json:"port"`
	LogFile string `json:"log_file"`
}

func (p localPartJSON) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name    string  `json:"name"`
		Running bool    `json:"running"`
		PID     *int    `json:"pid"`
		Port    *int    `json:"port"`
		LogFile *string `json:"log_file"`
	}{p.Name, p.Running, nonZero(p.PID), nonZero(p.Port), nonZero(p.LogFile)})
}

// nonZero is &v, or nil for v's zero value.
func nonZero[T comparable](v T) *T {
	var zero T
	if v == zero {
		return nil
	}
	return &v
}

func newCmdLocalStatus(env *Env, runF func(*localStatusOptions) error) *cobra.Command {
	opts := &localStatusOptions{env: env}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every part of the local stack: state, port, pid, log file",
		Long: `Show the local stack named by --name: the one endpoint, the acquire Function URL, each
function (running when the runner has it and can invoke it) and each part (the endpoint, the
Lambda runner, the stream poller, the scheduler, the Invoke API, the Function URLs, DynamoDB
Local, the S3 server) with its state, port, pid and log file, the stream mappings' counters and
the on-failure destinations. Not running is reported (running: false) with exit code 0.`,
		Example: `  zae-limiter local status
  zae-limiter local status -o json -n dev`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return localStatusRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func localStatus(ctx context.Context, env *Env) (localStatusJSON, error) {
	doc := localStatusJSON{Name: env.Name, Functions: []localstack.FunctionStatus{}, Parts: []localPartJSON{}}
	st, err := localstack.ReadState(env.Name)
	if errors.Is(err, localstack.ErrNoStack) {
		return doc, nil
	}
	if err != nil {
		return doc, err
	}
	dir, _ := localstack.StackDir(env.Name)
	daemon := localstack.DaemonAlive(st)
	var hosted localstack.Status
	answering := false
	if daemon {
		hosted, err = localstack.QueryStatus(ctx, st.Endpoint)
		answering = err == nil
	}
	doc.Running = daemon && answering && st.Phase == localstack.PhaseReady
	doc.Phase, doc.Endpoint, doc.AcquireURL = st.Phase, st.Endpoint, st.URLs["acquire"]
	if !daemon {
		doc.Phase = "daemon not running"
	}
	if !st.StartedAt.IsZero() {
		doc.StartedAt = timestamp(st.StartedAt)
	}
	daemonLog := filepath.Join(dir, "daemon.log")
	part := func(name string, running bool, pid, port int, log string) {
		doc.Parts = append(doc.Parts, localPartJSON{Name: name, Running: running, PID: pid, Port: port, LogFile: log})
	}
	part("endpoint", answering, st.DaemonPID, st.Port, daemonLog)
	part("dynamodb", ddblocal.IsDynamoDBLocal(st.DynamoDB.PID) && ddblocal.Ping(ctx, st.DynamoDB.Endpoint) == nil,
		st.DynamoDB.PID, st.DynamoDB.Port, st.DynamoDB.LogFile)
	part("s3", s3local.IsVersity(st.S3.PID) && s3local.Ping(ctx, st.S3.Endpoint) == nil, st.S3.PID, st.S3.Port, st.S3.LogFile)
	part("lambda-runner", answering, st.DaemonPID, 0, daemonLog)
	part("invoke-api", answering, st.DaemonPID, st.Port, daemonLog)
	part("stream-poller", answering && len(hosted.Mappings) > 0, st.DaemonPID, 0, daemonLog)
	part("scheduler", answering && len(hosted.Schedules) > 0, st.DaemonPID, 0, daemonLog)
	for _, fn := range sortedKeys(st.URLs) {
		port := 0
		if i := strings.LastIndexByte(strings.TrimSuffix(st.URLs[fn], "/"), ':'); i >= 0 {
			port, _ = strconv.Atoi(strings.TrimSuffix(st.URLs[fn], "/")[i+1:])
		}
		part("function-url:"+fn, answering, st.DaemonPID, port, daemonLog)
	}
	if answering {
		doc.Functions = hosted.Functions
		doc.Mappings, doc.Schedules, doc.Destinations, doc.Warnings = hosted.Mappings, hosted.Schedules, hosted.Destinations, hosted.Warnings
		exists, err := localTableExists(ctx, env, st.Endpoint)
		if err == nil {
			doc.Table = &exists
		}
	}
	return doc, nil
}

func localStatusRun(ctx context.Context, opts *localStatusOptions) error {
	env := opts.env
	doc, err := localStatus(ctx, env)
	if err != nil {
		return err
	}
	if opts.Output.json() {
		return writeJSON(env.Out, doc)
	}
	t := newTable(env.Out)
	t.row("Name:", doc.Name)
	if doc.Endpoint == "" {
		t.row("Status:", "not running")
		return t.flush()
	}
	t.row("Status:", map[bool]string{true: "running", false: "not running (" + doc.Phase + ")"}[doc.Running])
	t.row("Endpoint:", doc.Endpoint)
	t.row("Acquire URL:", orDash(doc.AcquireURL))
	t.row("Started:", orDash(doc.StartedAt))
	if doc.Table != nil {
		t.row("Table:", map[bool]string{true: "exists", false: "missing (run 'zae-limiter local up')"}[*doc.Table])
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.Out)
	t = newTable(env.Out)
	t.row("PART", "STATE", "PID", "PORT", "LOG")
	for _, p := range doc.Parts {
		t.row(p.Name, runState(p.Running), pidOrDash(p.PID), pidOrDash(p.Port), orDash(p.LogFile))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(env.Out)
	t = newTable(env.Out)
	t.row("FUNCTION", "STATE", "NAME", "RESTARTS", "LOG")
	for _, f := range doc.Functions {
		state := runState(f.Running)
		if f.Error != "" && !f.Running {
			state += ": " + f.Error
		}
		t.row(f.Name, state, f.FunctionName, strconv.Itoa(f.Restarts), f.LogFile)
	}
	for _, m := range doc.Mappings {
		t.row("", "", "stream "+m.Event+": "+strconv.Itoa(m.Records)+" records, "+strconv.Itoa(m.Filtered)+" filtered, "+
			strconv.Itoa(m.Retries)+" retries, "+strconv.Itoa(m.Failed)+" failed batches", "", "")
	}
	for _, d := range doc.Destinations {
		t.row("", "", "on-failure "+d.Name+": "+strconv.Itoa(d.Messages)+" batch(es)", "", d.File)
	}
	for _, w := range doc.Warnings {
		t.row("", "", "note: "+w, "", "")
	}
	return t.flush()
}

func runState(b bool) string { return map[bool]string{true: "running", false: "stopped"}[b] }

func pidOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func localTableExists(ctx context.Context, env *Env, endpoint string) (bool, error) {
	env.EndpointURL = endpoint
	s, err := env.Store(ctx)
	if err != nil {
		return false, err
	}
	err = s.Ping(ctx)
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return false, nil
	}
	return err == nil, err
}

// local logs

type localLogsOptions struct {
	env      *Env
	Function string
	Follow   bool
}

func newCmdLocalLogs(env *Env, runF func(*localLogsOptions) error) *cobra.Command {
	opts := &localLogsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "logs [FUNCTION] [-f]",
		Short: "Show the functions' logs (JSON lines), or one part's",
		Long: `Show the log of FUNCTION (a folder under functions/, e.g. acquire): its JSON log lines and
Lambda's platform.report line for each invocation. Without FUNCTION every function's log is
shown, each line prefixed with the function's name. FUNCTION may also be a part: daemon,
dynamodb or s3. With -f, new lines are printed as they come until interrupted.`,
		Example: `  zae-limiter local logs acquire
  zae-limiter local logs -f`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("unexpected argument %q", args[1])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				opts.Function = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return localLogsRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines (e.g. -f)")
	return cmd
}

func localLogsRun(ctx context.Context, opts *localLogsOptions) error {
	env := opts.env
	dir, err := localstack.StackDir(env.Name)
	if err != nil {
		return err
	}
	files, err := localstack.LogFiles(dir, opts.Function)
	if err != nil {
		return err
	}
	return localstack.ShowLogs(ctx, files, opts.Function == "", opts.Follow, env.Out)
}

// local invoke

type localInvokeOptions struct {
	env      *Env
	Function string
	Events   []string
	Type     string
	Pretty   bool
}

func newCmdLocalInvoke(env *Env, runF func(*localInvokeOptions) error) *cobra.Command {
	opts := &localInvokeOptions{env: env}
	cmd := &cobra.Command{
		Use:   "invoke FUNCTION [-e FILE]...",
		Short: "Invoke a function of the local stack with events (what 'make invoke' runs)",
		Long: `Invoke FUNCTION (a folder under functions/, or its deployed FunctionName) of the running local
stack through its Lambda Invoke API, once per -e event file (- or none: stdin), in order, and
print each response payload on stdout. A {{NAME}} placeholder in an event is filled from the
previous response's field "name" (events/acquire/README.md). Exit 1 when an invocation returns
a function error.`,
		Example: `  zae-limiter local invoke acquire -e events/acquire/admitted.json -e events/acquire/adjust.json
  zae-limiter local invoke aggregator -e events/aggregator/batch.json`,
		Args: exactArgs("FUNCTION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Function = args[0]
			switch opts.Type {
			case "RequestResponse", "Event", "DryRun":
			default:
				return limits.Invalid("type", opts.Type, "must be RequestResponse, Event or DryRun")
			}
			if runF != nil {
				return runF(opts)
			}
			return localInvokeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringArrayVarP(&opts.Events, "event", "e", nil, "event `FILE` (repeatable; - for stdin; e.g. -e events/acquire/admitted.json)")
	cmd.Flags().StringVar(&opts.Type, "type", "RequestResponse", "invocation `TYPE`: RequestResponse, Event or DryRun (e.g. --type Event)")
	cmd.Flags().BoolVar(&opts.Pretty, "pretty", false, "indent JSON responses (e.g. --pretty)")
	return cmd
}

func localInvokeRun(ctx context.Context, opts *localInvokeOptions) error {
	env := opts.env
	st, err := localstack.ReadState(env.Name)
	if err != nil || !localstack.DaemonAlive(st) {
		return fmt.Errorf("the local stack %q is not running: run 'zae-limiter local up -n %s' first", env.Name, env.Name)
	}
	hosted, err := localstack.QueryStatus(ctx, st.Endpoint)
	if err != nil {
		return err
	}
	name := opts.Function
	for _, f := range hosted.Functions {
		if f.Name == opts.Function {
			name = f.FunctionName
		}
	}
	if len(opts.Events) == 0 {
		opts.Events = []string{"-"}
	}
	var prev []byte
	failed := false
	for _, file := range opts.Events {
		var payload []byte
		if file == "-" {
			payload, err = io.ReadAll(env.In)
		} else {
			payload, err = os.ReadFile(file)
		}
		if err != nil {
			return fmt.Errorf("read event: %w", err)
		}
		if payload, err = lambdarun.FillPlaceholders(payload, prev); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			st.Endpoint+"/2015-03-31/functions/"+name+"/invocations", bytes.NewReader(payload))
		if err != nil {
			return err
		}
		req.Header.Set("X-Amz-Invocation-Type", opts.Type)
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("invoke %s: %w", name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode >= 300 {
			return fmt.Errorf("invoke %s: %s: %s", name, resp.Status, strings.TrimSpace(string(body)))
		}
		out := body
		if opts.Pretty {
			var buf bytes.Buffer
			if json.Indent(&buf, body, "", "  ") == nil {
				out = buf.Bytes()
			}
		}
		if len(out) > 0 {
			fmt.Fprintf(env.Out, "%s\n", out)
		}
		if fe := resp.Header.Get("X-Amz-Function-Error"); fe != "" {
			env.progress("%s: function error (%s) after %v", file, fe, time.Since(start).Round(10*time.Microsecond))
			failed, prev = true, nil
			continue
		}
		env.progress("%s: %s in %v", file, resp.Status, time.Since(start).Round(10*time.Microsecond))
		prev = body
	}
	if failed {
		return errors.New("an invocation returned a function error")
	}
	return nil
}

// slogTo is a text logger on w (the daemon's log).
func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
