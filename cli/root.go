// Package cli is the zae-limiter command line: a cobra tree with one file per
// noun (local.go, system.go, resource.go, entity.go, namespace.go, audit.go,
// version.go). Each command follows gh's shape: an options struct filled by
// the cobra command, a run function doing the work, and a runF seam so tests
// can check parsing without touching DynamoDB.
//
// Adding a command (e.g. acquire.go, available.go, bench.go): write
// newCmdX(env *Env, runF func(*xOptions) error) in its own file and add one
// line to commands() below. The helpers to use:
//
//   - Env (env.go): IO streams (results to Out, progress to Err via
//     env.progress), the global flags, lazy AWSConfig/DynamoDB/Store, and
//     readNS (reads: nil namespace = empty result) / writeNS (writes:
//     registers "default") for the --namespace handle; tableErr turns a
//     missing table into the one-line hint; requireYes/confirm for
//     destructive commands, and deleteInNS for their whole
//     read-confirm-delete flow on the namespace.
//   - Flags and output (output.go): addOutputFlag (-o table|json),
//     addLimitFlag + parseLimits (-l; addLimitOverrideFlag +
//     parseOptionalLimits where -l overrides the stored limits), addYesFlag,
//     writeJSON, newTable, writeLimits, formatLimit, timestamp.
//   - Args (this file): noArgs, exactArgs, minArgs (usage errors, exit 2).
//   - Errors (exit.go): return them from RunE; usageErrorf gives exit 2, a
//     *limits.ExceededError anywhere in the chain exit 3, anything else 1.
//     Main prints them as one "Error: ..." line.
package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is the CLI version; release builds set it with
// -ldflags "-X github.com/zeroae/zae-limiter-go/cli.Version=v1.2.3".
var Version = ""

// version returns Version, else the module version from the build info.
func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// Main runs the CLI with the process's arguments and streams and returns the
// exit code. Interrupts cancel the context of the running command.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], newEnv(os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// Run is the testable seam of Main: it runs the CLI with args (without the
// program name) and the given streams, and returns the exit code.
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return RunContext(context.Background(), args, stdin, stdout, stderr)
}

// RunContext is Run under ctx: cancelling it cancels the running command,
// as an interrupt does under Main (the demo runs commands this way).
func RunContext(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, args, newEnv(stdin, stdout, stderr, os.Getenv))
}

func run(ctx context.Context, args []string, env *Env) int {
	return execute(ctx, newRootCmd(env), env, args)
}

// execute runs an assembled command tree and maps its error to an exit code.
func execute(ctx context.Context, root *cobra.Command, env *Env, args []string) int {
	root.SetArgs(args)
	root.SetIn(env.In)
	root.SetOut(env.Out)
	root.SetErr(env.Err)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		return reportError(env.Err, cmd, err)
	}
	for _, n := range env.notes {
		env.progress("Note: %s", n)
	}
	return exitOK
}

// commands lists the top-level nouns. Add new commands here.
func commands(env *Env) []*cobra.Command {
	return []*cobra.Command{
		newCmdLocal(env),
		newCmdSystem(env),
		newCmdResource(env),
		newCmdEntity(env),
		newCmdNamespace(env),
		newCmdAudit(env),
		newCmdUsage(env),
		newCmdLimits(env),
		newCmdAcquire(env, nil),
		newCmdAvailable(env, nil),
		newCmdBench(env, nil),
		newCmdServe(env, nil),
		newCmdVersion(env, nil),
		newCmdDeploy(env, nil),
		newCmdStatus(env, nil),
		newCmdList(env, nil),
		newCmdDelete(env, nil),
		newCmdCfnTemplate(env, nil),
		newCmdLambdaExport(env, nil),
		newCmdCheck(env, nil),
		newCmdUpgrade(env, nil),
		newCmdLeaseKeys(env),
	}
}

func newRootCmd(env *Env) *cobra.Command {
	root := &cobra.Command{
		Use:   "zae-limiter",
		Short: "Distributed token-bucket rate limiter on DynamoDB",
		Long: `zae-limiter manages a distributed token-bucket rate limiter stored in one DynamoDB table:
the local stack, system, resource and entity limits, namespaces and the audit trail.

Global flags may be given before or after the subcommand. With --endpoint-url (e.g. DynamoDB
Local) and no AWS credentials configured, dummy credentials and region us-east-1 are used.`,
		Example: `  # start DynamoDB Local with a table named "limiter"
  zae-limiter local up

  # configure limits against it
  zae-limiter system set-defaults -l rpm:100 -l tpm:10000 --endpoint-url http://localhost:8000
  zae-limiter entity set-limits user-premium --resource gpt-4 -l rpm:500 --endpoint-url http://localhost:8000`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          noArgsGroup,
		RunE:          groupRunE,
	}
	root.Version = version()
	root.SetVersionTemplate("zae-limiter {{.Version}}\n")
	root.CompletionOptions.HiddenDefaultCmd = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageErr(err) })

	pf := root.PersistentFlags()
	pf.StringVarP(&env.Name, "name", "n", defaultName,
		"stack and table `NAME` (e.g. -n prod)")
	pf.StringVar(&env.Region, "region", "",
		"AWS `REGION` (e.g. --region us-east-1; default from the AWS config)")
	pf.StringVar(&env.EndpointURL, "endpoint-url", "",
		"`URL` of every AWS service without its own AWS_ENDPOINT_URL_<SERVICE> (e.g. --endpoint-url http://localhost:8000)")
	pf.StringVarP(&env.Namespace, "namespace", "N", defaultNamespace,
		"`NAMESPACE` of the limits and entities (e.g. -N tenant-a)")
	pf.StringVar(&env.Principal, "principal", "",
		"`PRINCIPAL` recorded in audit events (e.g. --principal alice@example.com; env ZAEL_PRINCIPAL; default: the caller's AWS identity, else unknown)")

	for _, c := range commands(env) {
		root.AddCommand(c)
	}
	return root
}

// newGroup builds a noun command that only holds subcommands: run bare it
// prints its help; an unknown subcommand is a usage error.
func newGroup(use, short, example string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    noArgsGroup,
		RunE:    groupRunE,
	}
	c.AddCommand(subs...)
	return c
}

func noArgsGroup(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

func groupRunE(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// noArgs rejects positional arguments (usage error).
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q", args[0])
	}
	return nil
}

// exactArgs requires one positional argument per name (usage error).
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		switch {
		case len(args) < len(names):
			return usageErrorf("missing argument %s", names[len(args)])
		case len(args) > len(names):
			return usageErrorf("unexpected argument %q", args[len(names)])
		}
		return nil
	}
}

// minArgs requires at least one positional argument (usage error).
func minArgs(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usageErrorf("missing argument %s", name)
		}
		return nil
	}
}

func quote(s string) string { return strconv.Quote(s) }
