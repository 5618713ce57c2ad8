package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/stack"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Exit-1 verdicts of status and check: the document is printed, then the
// command fails with this line (as the reference's status does).
var (
	errNotAvailable = errors.New("infrastructure is not available: no stack and no table (deploy it: zae-limiter deploy)")
	errStackFailed  = errors.New("stack is in a failed state")
)

// status

type statusOptions struct {
	env    *Env
	Output outputFormat
}

func newCmdStatus(env *Env, runF func(*statusOptions) error) *cobra.Command {
	opts := &statusOptions{env: env}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the stack: status, table, functions, stream mappings, policies, roles, versions",
		Long: `Show the stack named by --name: its CloudFormation status, the table (status, item count and
size as DynamoDB reports them, about every six hours), connectivity (one DescribeTable and its
latency), the functions with their versions, stream mappings, the IAM policy and role ARNs to
hand out, the acquire URL and the version record.

Exit 0 when the stack is complete (or an operation is in progress), or when there is no stack
but the table answers (a table made by 'local up'); exit 1 when neither the stack nor the table
exists, or the stack failed or rolled back. With -o json the document is printed either way.`,
		Example: `  zae-limiter status -n limiter
  zae-limiter status -n demo --endpoint-url http://127.0.0.1:5000 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return statusRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func statusRun(ctx context.Context, opts *statusOptions) error {
	env := opts.env
	s, err := env.stack(ctx)
	if err != nil {
		return err
	}
	st, err := s.Status(ctx)
	if err != nil {
		return err
	}
	if opts.Output.json() {
		if err := writeJSON(env.Out, st); err != nil {
			return err
		}
	} else if err := writeStatus(env, st); err != nil {
		return err
	}
	switch {
	case st.Stack == nil && st.Table == nil:
		return errNotAvailable
	case st.Stack != nil && stack.Failed(st.Stack.Status):
		return fmt.Errorf("%w: %s (%s)", errStackFailed, st.Stack.Status, st.Stack.StatusReason)
	case st.Stack != nil && strings.HasSuffix(st.Stack.Status, "_IN_PROGRESS"):
		env.progress("Operation in progress (%s)", st.Stack.Status)
	case st.Stack == nil:
		env.progress("No stack %s: the table was made by other means (local up, or another tool)", st.Name)
	default:
		env.progress("Infrastructure is ready")
	}
	return nil
}

func writeStatus(env *Env, st *stack.Status) error {
	t := newTable(env.Out)
	t.row("Name:", st.Name+" ("+orDash(st.Region)+")")
	if s := st.Stack; s != nil {
		line := s.Status + ", created " + timestamp(s.Created)
		if s.Updated != nil {
			line += ", updated " + timestamp(*s.Updated)
		}
		t.row("Stack:", line)
		if s.StatusReason != "" {
			t.row("", s.StatusReason)
		}
	} else {
		t.row("Stack:", "not found")
	}
	if tb := st.Table; tb != nil {
		line := tb.Status + ", ~" + approxCount(tb.ItemCount) + " items, ~" + approxBytes(tb.SizeBytes)
		if tb.StreamViewType != "" {
			line += ", stream " + tb.StreamViewType
		}
		if tb.DeletionProtection {
			line += ", deletion protection on"
		}
		t.row("Table:", line)
	} else {
		t.row("Table:", "not found")
	}
	if c := st.Connectivity; c.Available {
		t.row("Connectivity:", fmt.Sprintf("available, %.1f ms (DescribeTable)", c.LatencyMS))
	} else {
		t.row("Connectivity:", "not available")
	}
	versions := "client " + version() + ", schema " + schema.Version
	if v := st.Version; v != nil {
		versions += "; table schema " + v.SchemaVersion + ", functions " + orDash(v.LambdaVersion)
	}
	t.row("Versions:", versions)
	if st.AcquireURL != "" {
		t.row("Acquire URL:", st.AcquireURL)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(st.Functions) > 0 {
		fmt.Fprintln(env.Out)
		ft := newTable(env.Out, "FUNCTION", "STATE", "RUNTIME", "MEMORY", "VERSION", "CODE SHA256")
		for _, f := range st.Functions {
			mem := ""
			if f.MemoryMB > 0 {
				mem = strconv.Itoa(int(f.MemoryMB)) + " MB"
			}
			sha := f.CodeSHA256
			if len(sha) > 16 {
				sha = sha[:16]
			}
			ft.row(f.Name, orDash(f.State), orDash(f.Runtime), orDash(mem), orDash(f.Version), orDash(sha))
		}
		if err := ft.flush(); err != nil {
			return err
		}
	}
	if len(st.StreamMappings) > 0 {
		fmt.Fprintln(env.Out)
		mt := newTable(env.Out, "STREAM MAPPING", "FUNCTION", "STATE", "BATCH", "LAST RESULT")
		for _, m := range st.StreamMappings {
			mt.row(m.UUID, m.Function, m.State, strconv.Itoa(int(m.BatchSize)), orDash(m.LastProcessingResult))
		}
		if err := mt.flush(); err != nil {
			return err
		}
	}
	if len(st.Policies)+len(st.Roles) > 0 {
		fmt.Fprintln(env.Out)
		pt := newTable(env.Out, "IAM", "NAME", "ARN")
		for _, k := range sortedKeys(st.Policies) {
			pt.row("policy", k, st.Policies[k])
		}
		for _, k := range sortedKeys(st.Roles) {
			pt.row("role", k, st.Roles[k])
		}
		if err := pt.flush(); err != nil {
			return err
		}
	}
	for _, p := range st.Problems {
		env.progress("Note: %s", oneLine(errors.New(p)))
	}
	return nil
}

// approxCount renders an item count as the reference does: 1,234, 1.2K, 1.2M.
func approxCount(n int64) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return thousands(n)
}

func approxBytes(n int64) string {
	units := []string{"B", "KB", "MB", "GB", "TB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatInt(n, 10) + " B"
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

// list

type listOptions struct {
	env    *Env
	Output outputFormat
}

func newCmdList(env *Env, runF func(*listOptions) error) *cobra.Command {
	opts := &listOptions{env: env}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the limiters deployed in a region",
		Long: `List the stacks of the region that deploy tagged (ManagedBy=zae-limiter,
zae-limiter:type=limiter), with their status, versions and creation date. None found is an
empty result (exit 0). --name is not used.`,
		Example: `  zae-limiter list --region us-east-1
  zae-limiter list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func listRun(ctx context.Context, opts *listOptions) error {
	env := opts.env
	cfg, err := env.AWSConfig(ctx)
	if err != nil {
		return err
	}
	list, err := stack.List(ctx, cfg)
	if err != nil {
		return err
	}
	if opts.Output.json() {
		return writeJSON(env.Out, list)
	}
	if len(list) == 0 {
		env.progress("No rate limiter instances found in %s (deploy one: zae-limiter deploy -n NAME)", orDash(cfg.Region))
		return nil
	}
	fmt.Fprintf(env.Out, "Rate limiter instances (%s)\n\n", cfg.Region)
	t := newTable(env.Out, "NAME", "STATUS", "VERSION", "LAMBDA", "SCHEMA", "CREATED")
	failed, busy := 0, 0
	for _, s := range list {
		mark := "✓"
		switch {
		case s.Failed():
			mark = "✗"
			failed++
		case s.InProgress():
			mark = "⏳"
			busy++
		case !s.Healthy():
			mark = "?"
		}
		t.row(s.Name, mark+" "+s.Status, orDash(s.Version), orDash(s.LambdaVersion), orDash(s.SchemaVersion), s.Created.UTC().Format("2006-01-02"))
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintf(env.Out, "\nTotal: %d instance(s)\n", len(list))
	if failed+busy > 0 {
		fmt.Fprintf(env.Out, "%d instance(s) need attention (%d failed, %d in progress)\n", failed+busy, failed, busy)
	}
	return nil
}

// delete

type deleteOptions struct {
	env *Env
	Yes bool
}

func newCmdDelete(env *Env, runF func(*deleteOptions) error) *cobra.Command {
	opts := &deleteOptions{env: env}
	cmd := &cobra.Command{
		Use:   "delete -n NAME [-y]",
		Short: "Delete the stack, its table and every item in it (waits)",
		Long: `Delete the stack named by --name: the table with all its data, the functions, roles, policies,
alarms, dashboard and lease-key secret, and wait until it is gone, showing its events. No stack
of that name is not an error (exit 0). With deletion protection on, the table's delete fails:
turn it off first (deploy --no-deletion-protection). The artifacts bucket stays (other stacks
of the account and region share it). --name is required.`,
		Example: `  zae-limiter delete -n demo -y`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("name") {
				return usageErrorf("--name is required: the stack to delete")
			}
			if err := stack.ValidateName(env.Name); err != nil {
				return err
			}
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return deleteRun(cmd.Context(), opts)
		},
	}
	addYesFlag(cmd, &opts.Yes)
	return cmd
}

func deleteRun(ctx context.Context, opts *deleteOptions) error {
	env := opts.env
	s, err := env.stack(ctx)
	if err != nil {
		return err
	}
	if err := env.confirm(opts.Yes, fmt.Sprintf("Delete stack %q with its table and all its data?", env.Name)); err != nil {
		return err
	}
	deleted, err := s.Delete(ctx)
	if err != nil {
		return err
	}
	if !deleted {
		env.progress("Stack %s does not exist: nothing to delete", env.Name)
	}
	return nil
}

// cfn-template

func newCmdCfnTemplate(env *Env, runF func() error) *cobra.Command {
	return &cobra.Command{
		Use:   "cfn-template",
		Short: "Print the plain CloudFormation template deploy uses (for aws cloudformation deploy)",
		Long: `Print the CloudFormation template deploy uses: template.yaml with the SAM transform done (JSON,
which YAML tools read too). Its functions take their code from S3: CodeBucket and one
<Function>CodeKey parameter each (default <function>.zip); put the zips there with
lambda-export, or let zae-limiter deploy do all of it.`,
		Example: `  zae-limiter cfn-template > template.json
  zae-limiter lambda-export --function acquire --output acquire.zip
  zae-limiter lambda-export --function provisioner --output provisioner.zip
  aws s3 cp acquire.zip s3://my-bucket/acquire.zip && aws s3 cp provisioner.zip s3://my-bucket/provisioner.zip
  aws cloudformation deploy --template-file template.json --stack-name limiter \
    --parameter-overrides CodeBucket=my-bucket --capabilities CAPABILITY_NAMED_IAM`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF()
			}
			tpl, err := stack.Load()
			if err != nil {
				return err
			}
			_, err = env.Out.Write(tpl.Indented())
			return err
		},
	}
}

// lambda-export

type lambdaExportOptions struct {
	env      *Env
	Output   string
	Function string
	Force    bool
}

func newCmdLambdaExport(env *Env, runF func(*lambdaExportOptions) error) *cobra.Command {
	opts := &lambdaExportOptions{env: env}
	cmd := &cobra.Command{
		Use:   "lambda-export [--output FILE] [--function NAME] [--force]",
		Short: "Write a function's deployment zip (bootstrap for linux/arm64)",
		Long: `Write the zip a function of the stack runs: one executable 'bootstrap' at its root, built for
linux/arm64 (runtime provided.al2023). The function is one of the stack's, named by its folder
under functions/ (its deployed name is {stack}-<function>); the default is the aggregator, as
in the deployment guide. The code comes from where deploy takes it: this binary (make build),
a build of the checkout, or ZAEL_FUNCTION_ZIPS. An existing file is kept unless --force.`,
		Example: `  zae-limiter lambda-export --output lambda.zip
  zae-limiter lambda-export --function acquire --output acquire.zip --force
  aws lambda update-function-code --function-name limiter-acquire --zip-file fileb://acquire.zip`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Output == "" {
				return limits.Invalid("--output", "", "a file name is required")
			}
			if runF != nil {
				return runF(opts)
			}
			return lambdaExportRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Output, "output", "lambda.zip", "`FILE` to write (e.g. --output acquire.zip)")
	cmd.Flags().StringVar(&opts.Function, "function", "aggregator", "`NAME` of the function: its folder under functions/ (e.g. --function acquire)")
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "overwrite an existing file (e.g. -f)")
	return cmd
}

func lambdaExportRun(ctx context.Context, opts *lambdaExportOptions) error {
	env := opts.env
	tpl, err := stack.Load()
	if err != nil {
		return err
	}
	if _, ok := tpl.Function(opts.Function); !ok {
		return limits.Invalid("--function", opts.Function,
			"not a function of this build (its functions: "+strings.Join(tpl.FunctionNames(), ", ")+")")
	}
	if _, err := os.Stat(opts.Output); err == nil && !opts.Force {
		return fmt.Errorf("%s exists: pass --force to overwrite it", opts.Output)
	}
	code, where, err := env.functionCode()
	if err != nil {
		return err
	}
	zip, err := code.Zip(ctx, opts.Function)
	if err != nil {
		return err
	}
	if err := os.WriteFile(opts.Output, zip, 0o644); err != nil {
		return err
	}
	env.progress("Exported the %s function to %s (%s, bootstrap for linux/arm64, from %s)",
		opts.Function, opts.Output, approxBytes(int64(len(zip))), where)
	return nil
}

// check

type checkOptions struct {
	env    *Env
	Output outputFormat
}

type checkJSON struct {
	CLI     string               `json:"cli_version"`
	Schema  string               `json:"schema_version"`
	Table   *store.VersionRecord `json:"table"`
	Result  stack.Compatibility  `json:"result"`
	Message string               `json:"message"`
}

func newCmdCheck(env *Env, runF func(*checkOptions) error) *cobra.Command {
	opts := &checkOptions{env: env}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check this CLI against the table's version record",
		Long: `Compare this CLI (and the functions it deploys) with the version record of the table named by
--name. Results: COMPATIBLE, UPDATE_AVAILABLE (compatible; 'upgrade' deploys this build's
functions), INCOMPATIBLE (schema major differs, or this CLI is below the table's minimum) and
NOT_INITIALIZED (no record: deploy first). The last two exit 1.`,
		Example: `  zae-limiter check -n limiter
  zae-limiter check -n limiter -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return checkRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func checkRun(ctx context.Context, opts *checkOptions) error {
	env := opts.env
	rec, err := versionRecord(ctx, env)
	if err != nil {
		return err
	}
	result, msg := stack.CheckVersion(version(), rec)
	doc := checkJSON{CLI: version(), Schema: schema.Version, Table: rec, Result: result, Message: msg}
	if opts.Output.json() {
		if err := writeJSON(env.Out, doc); err != nil {
			return err
		}
	} else {
		t := newTable(env.Out)
		t.row("Client:", version()+" (schema "+schema.Version+")")
		if rec != nil {
			t.row("Table "+quote(env.Name)+":", "schema "+rec.SchemaVersion+", functions "+orDash(rec.LambdaVersion)+
				", min client "+orDash(rec.ClientMinVersion))
		}
		t.row("Result:", string(result))
		if err := t.flush(); err != nil {
			return err
		}
		env.progress("%s", msg)
	}
	switch result {
	case stack.Incompatible, stack.NotInitialized:
		return fmt.Errorf("%s: %s", result, msg)
	}
	return nil
}

// versionRecord reads the table's record; nil when it has none.
func versionRecord(ctx context.Context, env *Env) (*store.VersionRecord, error) {
	st, err := env.Store(ctx)
	if err != nil {
		return nil, err
	}
	rec, err := st.Version(ctx)
	switch {
	case errors.Is(err, limits.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, env.tableErr(err)
	}
	return &rec, nil
}

// upgrade

type upgradeOptions struct {
	env   *Env
	Force bool
}

func newCmdUpgrade(env *Env, runF func(*upgradeOptions) error) *cobra.Command {
	opts := &upgradeOptions{env: env}
	cmd := &cobra.Command{
		Use:   "upgrade [--force]",
		Short: "Deploy this build's functions and template to the stack, keeping its options",
		Long: `Update the stack named by --name to this CLI's template and functions, keeping every option it
was deployed with (unlike deploy, which is declarative), then record this build in the table's
version record. Already up to date: nothing is done unless --force. A table whose schema this
build cannot use (a major version apart) is left alone (exit 1).`,
		Example: `  zae-limiter check -n limiter && zae-limiter upgrade -n limiter`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := stack.ValidateName(env.Name); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return upgradeRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Force, "force", false, "upgrade even when the record says this build is deployed (e.g. --force)")
	return cmd
}

func upgradeRun(ctx context.Context, opts *upgradeOptions) error {
	env := opts.env
	rec, err := versionRecord(ctx, env)
	if err != nil {
		return err
	}
	result, msg := stack.CheckVersion(version(), rec)
	switch {
	case result == stack.Incompatible || result == stack.NotInitialized:
		return fmt.Errorf("%s: %s", result, msg)
	case result == stack.Compatible && !opts.Force:
		env.progress("Already up to date: %s (--force upgrades anyway)", msg)
		return nil
	}
	s, code, where, err := env.deployer(ctx)
	if err != nil {
		return err
	}
	env.progress("[1/2] Deploying this build's template and functions (from %s), keeping the stack's options", where)
	res, err := s.Ensure(ctx, stack.Options{KeepParameters: true, Code: code})
	if err != nil {
		return fmt.Errorf("upgrade failed: %w", err)
	}
	env.progress("[2/2] The version record says functions %s", version())
	env.progress("Upgrade complete: stack %s is %s", env.Name, res.Status)
	return nil
}

// lease-keys rotate

type leaseKeysRotateOptions struct{ env *Env }

func newCmdLeaseKeys(env *Env) *cobra.Command {
	return newGroup("lease-keys", "The acquire API's lease-signing keys",
		`  zae-limiter lease-keys rotate -n limiter`,
		newCmdLeaseKeysRotate(env, nil))
}

func newCmdLeaseKeysRotate(env *Env, runF func(*leaseKeysRotateOptions) error) *cobra.Command {
	opts := &leaseKeysRotateOptions{env: env}
	return &cobra.Command{
		Use:   "rotate",
		Short: "Replace the stack's lease-signing key without failing a lease in flight",
		Long: `Replace the stack's lease-signing key in two steps, each a stack update that replaces every
acquire instance and keeps every option: first the new key is added for verifying only, then it
signs while the old key still verifies. The keys are where the stack reads them: the secret it
generated (LeaseKeysSecret), or your SSM parameter (--lease-keys-parameter, kept a
SecureString). Keys older than the current one are dropped: rotate again only after the lease
TTL has passed.`,
		Example: `  zae-limiter lease-keys rotate -n limiter --region us-east-1`,
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := stack.ValidateName(env.Name); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			s, code, _, err := env.deployer(cmd.Context())
			if err != nil {
				return err
			}
			return s.RotateLeaseKey(cmd.Context(), code)
		},
	}
}
