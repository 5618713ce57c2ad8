package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/manifest"
	"github.com/zeroae/zae-limiter-go/shared/provision"
)

func newCmdLimits(env *Env) *cobra.Command {
	return newGroup("limits", "Manage limits declaratively from a YAML manifest",
		`  zae-limiter limits plan -f limits.yaml
  zae-limiter limits apply -f limits.yaml --yes
  zae-limiter limits diff -f limits.yaml -o json
  zae-limiter limits cfn-template -f limits.yaml > limits-stack.yaml`,
		newCmdLimitsRun(env, provision.EventPlan, nil),
		newCmdLimitsRun(env, provision.EventApply, nil),
		newCmdLimitsRun(env, provision.EventDiff, nil),
		newCmdLimitsCFNTemplate(env, nil),
	)
}

// limitsOptions are the options of limits plan, apply and diff.
type limitsOptions struct {
	env      *Env
	Action   string // provision.EventPlan, EventApply or EventDiff
	File     string
	Output   outputFormat
	Direct   bool
	Yes      bool
	Manifest *manifest.Manifest // read and validated at parse time
}

const manifestHelp = `The manifest is one namespace's limits (the namespace it names, else -N):

  namespace: default
  system:
    on_unavailable: block
    limits: {rpm: {capacity: 1000}, tpm: {capacity: 100000}}
  resources:
    gpt-4:
      limits:
        rpm: {capacity: 500, refill_amount: 100, refill_period: 12}
        tpm: 50000/min:75000            # the -l syntax: rate[/period][:burst]
  entities:
    user-premium:
      resources:
        gpt-4: {limits: {rpm: {capacity: 1000}}}   # _default_: every resource

capacity is the bucket ceiling; refill_amount defaults to capacity and refill_period to 60
seconds (or [N]sec|min|hour|day). With burst, capacity is the amount refilled and burst the
ceiling. Top-level keys starting with x- are ignored (a place for YAML anchors). The file is
checked strictly first: every problem is named by file, line and field, and nothing is sent.

The namespace's managed set is kept in its #PROVISIONER record: apply creates what the record
lacks, updates what the manifest changed and deletes what it dropped. Items set with the
imperative commands and never in a manifest are never touched. By default the commands run the
stack's provisioner function ({name}-provisioner, Lambda Invoke; invoke permission is enough);
--direct runs the same engine here with your own DynamoDB credentials.`

func newCmdLimitsRun(env *Env, action string, runF func(*limitsOptions) error) *cobra.Command {
	opts := &limitsOptions{env: env, Action: action}
	cmd := &cobra.Command{Args: noArgs}
	switch action {
	case provision.EventPlan:
		cmd.Use = "plan -f FILE"
		cmd.Short = "Show the changes an apply of a limits manifest would make"
		cmd.Long = "Show the changes an apply would make: a content diff of the manifest against the\n" +
			"namespace's managed set. It writes nothing. \"No changes.\" when the manifest is applied.\n\n" + manifestHelp
		cmd.Example = `  zae-limiter limits plan -f limits.yaml
  zae-limiter limits plan -f tenant-a.yaml -N tenant-a -o json
  zae-limiter limits plan -f limits.yaml --direct --endpoint-url http://localhost:8000`
	case provision.EventApply:
		cmd.Use = "apply -f FILE"
		cmd.Short = "Apply a limits manifest: create, update and delete the managed limits"
		cmd.Long = "Apply a manifest: make the planned changes (at most 8 at a time) through the same admin\n" +
			"calls as the imperative commands, so they are audited and reach buckets alike. On a terminal\n" +
			"it shows the plan and asks; otherwise --yes is required. An unchanged manifest writes\n" +
			"nothing. Changes that fail are listed on stderr (exit 1); only what landed is recorded, so\n" +
			"the next apply tries the rest again.\n\n" + manifestHelp
		cmd.Example = `  zae-limiter limits apply -f limits.yaml --yes
  zae-limiter limits apply -f limits.yaml -y -o json
  zae-limiter limits apply -f limits.yaml -y --direct   # your own credentials, no function`
	case provision.EventDiff:
		cmd.Use = "diff -f FILE"
		cmd.Short = "Show drift: where the live limits differ from a manifest"
		cmd.Long = "Compare the manifest with the live config items (not the record), so changes made with\n" +
			"the imperative commands to managed items show: + missing, ~ different, - managed but\n" +
			"dropped from the manifest and still there. It writes nothing.\n\n" + manifestHelp
		cmd.Example = `  zae-limiter limits diff -f limits.yaml
  zae-limiter limits diff -f limits.yaml -o json`
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if action == provision.EventApply && opts.File != "" {
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
		}
		m, err := fileManifest(cmd, env, opts.File)
		if err != nil {
			return err
		}
		opts.Manifest = m
		if runF != nil {
			return runF(opts)
		}
		return limitsRun(cmd.Context(), opts)
	}
	addFileFlag(cmd, &opts.File)
	addOutputFlag(cmd, &opts.Output)
	cmd.Flags().BoolVar(&opts.Direct, "direct", false,
		"run here with your own DynamoDB credentials instead of the stack's provisioner function (e.g. --direct --endpoint-url http://localhost:8000)")
	if action == provision.EventApply {
		addYesFlag(cmd, &opts.Yes)
	}
	return cmd
}

func addFileFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVarP(file, "file", "f", "", "limits manifest `FILE` (YAML; e.g. -f limits.yaml)")
}

// fileManifest is the -f manifest of cmd, read and checked (-f is required).
func fileManifest(cmd *cobra.Command, env *Env, file string) (*manifest.Manifest, error) {
	if file == "" {
		return nil, usageErrorf("-f/--file is required")
	}
	return readManifest(env, file, cmd.Flags().Changed("namespace"))
}

// readManifest reads and checks the file, and settles its namespace with
// -N (explicit when the flag was given). Every problem is listed on
// stderr before the error.
func readManifest(env *Env, file string, explicitNS bool) (*manifest.Manifest, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the manifest: %w", err)
	}
	m, err := manifest.Parse(file, data)
	var me *manifest.Error
	if errors.As(err, &me) && len(me.Problems) > 1 {
		for _, p := range me.Problems {
			env.progress("%s", p)
		}
		return nil, fmt.Errorf("%s: %d problems (listed above); nothing was sent", file, len(me.Problems))
	}
	if err != nil {
		return nil, err
	}
	ns, err := m.WithNamespace(env.Namespace, explicitNS)
	if err != nil {
		return nil, err
	}
	m.Namespace = ns
	env.Namespace = ns
	return m, nil
}

// limitsResultJSON is the JSON of plan, apply and diff (DECISIONS §4.1).
type limitsResultJSON struct {
	Namespace string             `json:"namespace"`
	Changes   []provision.Change `json:"changes"`
	Created   int                `json:"created"`
	Updated   int                `json:"updated"`
	Deleted   int                `json:"deleted"`
	Errors    []string           `json:"errors"`
}

func limitsRun(ctx context.Context, opts *limitsOptions) error {
	env := opts.env
	if err := validateTableName(env.Name); err != nil {
		return err
	}
	run := opts.runner()
	if opts.Action == provision.EventApply && !opts.Yes {
		// A terminal: show the plan, then ask.
		plan, err := run(ctx, provision.EventPlan)
		if err != nil {
			return err
		}
		if len(plan.Changes) == 0 {
			return writeLimitsResult(env, opts, plan)
		}
		writeChanges(env, plan.Changes)
		if err := env.confirm(false, fmt.Sprintf("Apply %d change%s to namespace %q of %q?",
			len(plan.Changes), plural(len(plan.Changes)), opts.Manifest.Namespace, env.Name)); err != nil {
			return err
		}
	}
	res, err := run(ctx, opts.Action)
	if err != nil {
		return err
	}
	return writeLimitsResult(env, opts, res)
}

// runner returns how the options' commands run: through the function, or
// here with --direct.
func (opts *limitsOptions) runner() func(context.Context, string) (*provision.Result, error) {
	if opts.Direct {
		return opts.runDirect
	}
	return opts.invoke
}

func (opts *limitsOptions) runDirect(ctx context.Context, action string) (*provision.Result, error) {
	env := opts.env
	db, err := env.DynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	eng := &provision.Engine{DB: db, Table: env.Name, PrincipalFunc: env.principal}
	req := provision.Request{Manifest: opts.Manifest, Namespace: opts.Manifest.Namespace, Principal: env.Principal}
	var res *provision.Result
	switch action {
	case provision.EventPlan:
		res, err = eng.Plan(ctx, req)
	case provision.EventDiff:
		res, err = eng.Diff(ctx, req)
	default:
		req.Progress = env.applyProgress()
		res, err = eng.Apply(ctx, req)
	}
	if err != nil {
		return nil, env.tableErr(err)
	}
	return res, nil
}

// applyProgress prints "Applied n/total changes" on stderr every 10% of a
// large apply, at most every second.
func (e *Env) applyProgress() func(done, total int) {
	var last time.Time
	return func(done, total int) {
		if total < 100 {
			return
		}
		if done == total || (done%max(total/10, 1) == 0 && time.Since(last) >= time.Second) {
			last = time.Now()
			e.progress("Applied %d/%d changes", done, total)
		}
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

var changeSymbols = map[string]string{
	provision.ActionCreate: "+", provision.ActionUpdate: "~", provision.ActionDelete: "-",
}

// writeChanges prints one line per change: "  + create entity: u1/gpt-4".
func writeChanges(env *Env, cs []provision.Change) {
	for _, c := range cs {
		target := c.Target.String()
		if target == "" {
			target = "(system defaults)"
		}
		fmt.Fprintf(env.Out, "  %s %s %s: %s\n", changeSymbols[c.Action], c.Action, c.Level, target)
	}
}

func writeLimitsResult(env *Env, opts *limitsOptions, res *provision.Result) error {
	var failed error
	if len(res.Errors) > 0 {
		failed = fmt.Errorf("%d of %d changes failed (listed above); what landed is recorded: apply again to retry the rest",
			len(res.Errors), len(res.Changes))
	}
	if opts.Output.json() {
		if failed != nil {
			for _, e := range res.Errors {
				env.progress("  %s", e)
			}
		}
		if err := writeJSON(env.Out, limitsResultJSON{Namespace: res.Namespace, Changes: res.Changes,
			Created: res.Created, Updated: res.Updated, Deleted: res.Deleted, Errors: res.Errors}); err != nil {
			return err
		}
		return failed
	}
	n := len(res.Changes)
	switch {
	case opts.Action == provision.EventDiff && n == 0:
		fmt.Fprintf(env.Out, "No drift: the live limits of namespace %q match %s.\n", res.Namespace, opts.File)
		return nil
	case n == 0:
		fmt.Fprintf(env.Out, "No changes. Namespace %q matches %s.\n", res.Namespace, opts.File)
		return nil
	case opts.Action == provision.EventDiff:
		fmt.Fprintf(env.Out, "Drift in namespace %q: %d difference%s from %s\n", res.Namespace, n, plural(n), opts.File)
	case opts.Action == provision.EventPlan:
		fmt.Fprintf(env.Out, "Plan: %d change%s in namespace %q\n", n, plural(n), res.Namespace)
	}
	writeChanges(env, res.Changes)
	if opts.Action == provision.EventApply {
		fmt.Fprintf(env.Out, "Applied: %d created, %d updated, %d deleted.\n", res.Created, res.Updated, res.Deleted)
	}
	if failed != nil {
		env.progress("Errors (%d):", len(res.Errors))
		for _, e := range res.Errors {
			env.progress("  %s", e)
		}
	}
	return failed
}

// limits cfn-template

type limitsCFNTemplateOptions struct {
	env      *Env
	File     string
	Manifest *manifest.Manifest
}

// cfnInlineMax is the largest template CloudFormation takes inline
// (--template-body); beyond it the template must be uploaded to S3.
const (
	cfnInlineMax = 51_200
	cfnMax       = 1_000_000
)

func newCmdLimitsCFNTemplate(env *Env, runF func(*limitsCFNTemplateOptions) error) *cobra.Command {
	opts := &limitsCFNTemplateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "cfn-template -f FILE",
		Short: "Print a CloudFormation template that applies a limits manifest",
		Long: `Print a CloudFormation template with one Custom::ZaeLimiterLimits resource holding the
manifest, served by the provisioner of the stack named by -n (ServiceToken !ImportValue
{name}-ProvisionerArn). Create applies it, Update applies the new manifest, Delete removes
every limit it manages. Makes no network call.

` + manifestHelp,
		Example: `  zae-limiter limits cfn-template -n my-app -f limits.yaml > limits-stack.yaml
  aws cloudformation deploy --template-file limits-stack.yaml --stack-name my-app-limits`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateTableName(env.Name); err != nil {
				return err
			}
			m, err := fileManifest(cmd, env, opts.File)
			if err != nil {
				return err
			}
			opts.Manifest = m
			if runF != nil {
				return runF(opts)
			}
			return limitsCFNTemplateRun(opts)
		},
	}
	addFileFlag(cmd, &opts.File)
	return cmd
}

func limitsCFNTemplateRun(opts *limitsCFNTemplateOptions) error {
	env := opts.env
	out, err := opts.Manifest.Template(env.Name, opts.Manifest.Namespace)
	if err != nil {
		return err
	}
	switch {
	case len(out) > cfnMax:
		env.progress("Note: the template is %d bytes; CloudFormation takes at most %d: use 'limits apply' for a manifest this large", len(out), cfnMax)
	case len(out) > cfnInlineMax:
		env.progress("Note: the template is %d bytes, over CloudFormation's %d inline: deploy it through S3 (aws cloudformation deploy --s3-bucket ...)", len(out), cfnInlineMax)
	}
	_, err = env.Out.Write(out)
	return err
}
