package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/stack"
)

// paramFlag is a deploy option of the deployment guide (or of this port)
// and the template parameter it sets. A flag with off is a pair
// (--enable-x / --no-x). A flag whose parameter the template lacks (a
// function not part of this build) is refused when given.
type paramFlag struct {
	flag, off, param string
	meta, help       string
	duration         bool // a duration ("15m") or seconds, sent as seconds
}

// deployFlags: the seed's table and the reference's options first, then the
// Go product's own. --policy-name-format computes several parameters and is
// handled apart. A template parameter not named here (a new function's)
// still gets a flag, named after it (derivedFlag).
var deployFlags = []paramFlag{
	{flag: "snapshot-windows", param: "SnapshotWindows", meta: "WINDOWS", help: "usage snapshot windows, comma-separated: hourly, daily, monthly (e.g. hourly,daily)"},
	{flag: "usage-retention-days", param: "SnapshotRetentionDays", meta: "DAYS", help: "days a usage snapshot is kept after its window ends, 0 keeps them forever (e.g. 90)"},
	{flag: "audit-retention-days", param: "AuditRetentionDays", meta: "DAYS", help: "days audit events stay in DynamoDB (e.g. 90)"},
	{flag: "enable-aggregator", off: "no-aggregator", param: "EnableAggregator", help: "deploy the usage aggregator"},
	{flag: "pitr-recovery-days", param: "PITRRecoveryPeriodDays", meta: "DAYS", help: "point-in-time recovery period, 1 to 35 days; PITR is always on, empty is AWS's 35 (e.g. 7)"},
	{flag: "log-retention-days", param: "LogRetentionDays", meta: "DAYS", help: "CloudWatch Logs retention of every function (e.g. 90)"},
	{flag: "lambda-timeout", param: "AggregatorTimeout", meta: "SECONDS", help: "the aggregator's timeout, one stream batch, 5 to 900 (e.g. 120)"},
	{flag: "lambda-memory", param: "AggregatorMemorySize", meta: "MB", help: "the aggregator's memory (e.g. 512)"},
	{flag: "enable-alarms", off: "no-alarms", param: "EnableAlarms", help: "CloudWatch alarms (throttles, errors, duration, iterator age, DLQ)"},
	{flag: "alarm-sns-topic", param: "AlarmSNSTopicArn", meta: "ARN", help: "SNS topic the alarms notify (e.g. arn:aws:sns:us-east-1:123456789012:ops)"},
	{flag: "lambda-duration-threshold-pct", param: "LambdaDurationThresholdPct", meta: "PERCENT", help: "each function's duration alarm fires above this percentage of its own timeout, 1 to 100 (e.g. 90)"},
	{flag: "permission-boundary", param: "PermissionBoundary", meta: "POLICY", help: "permissions boundary of every role the stack creates: a policy name or ARN (e.g. PowerUserPB)"},
	{flag: "role-name-format", param: "RoleNameFormat", meta: "FORMAT", help: "role names, {} is {name}-{component} (e.g. PowerUserPB-{})"},
	{flag: "enable-audit-archival", off: "no-audit-archival", param: "EnableAuditArchival", help: "archive audit events to S3 before they expire"},
	{flag: "audit-archive-glacier-days", param: "AuditArchiveGlacierDays", meta: "DAYS", help: "days before archived audit events move to Glacier Instant Retrieval (e.g. 90)"},
	{flag: "enable-tracing", off: "no-tracing", param: "EnableTracing", help: "X-Ray tracing of every function (Active)"},
	{flag: "create-iam-roles", off: "no-create-iam-roles", param: "EnableIAMRoles", help: "create the App, Admin and ReadOnly roles"},
	{flag: "iam", off: "no-iam", param: "EnableIAM", help: "create the managed policies (and allow the roles)"},
	{flag: "aggregator-role-arn", param: "AggregatorRoleArn", meta: "ARN", help: "an existing role for the aggregator instead of the stack's (e.g. arn:aws:iam::123456789012:role/aggr)"},
	{flag: "enable-deletion-protection", off: "no-deletion-protection", param: "EnableDeletionProtection", help: "DynamoDB deletion protection on the table"},
	{flag: "acquire-memory", param: "AcquireMemorySize", meta: "MB", help: "the acquire function's memory, CPU grows with it (e.g. 512)"},
	{flag: "acquire-url-auth", param: "AcquireUrlAuthType", meta: "AUTH", help: "auth of the acquire function URL: AWS_IAM (SigV4) or NONE (public) (e.g. NONE)"},
	{flag: "lease-ttl", param: "LeaseTTLSeconds", meta: "DURATION", duration: true, help: "how long an HTTP lease token is valid (e.g. 15m)"},
	{flag: "config-cache-ttl", param: "ConfigCacheTTLSeconds", meta: "DURATION", duration: true, help: "how long the acquire function caches limits (0 reads them every time; e.g. 30s)"},
	{flag: "lease-keys-parameter", param: "LeaseKeysParameterName", meta: "NAME", help: "your own SSM parameter of lease-signing keys instead of the stack's secret (e.g. /zae-limiter/lease-keys)"},
	{flag: "enable-dashboard", off: "no-dashboard", param: "EnableDashboard", help: "a CloudWatch dashboard named after the stack"},
	{flag: "acquire-denial-cache", off: "no-acquire-denial-cache", param: "AcquireDenialCache", help: "deny what a bucket was seen unable to take without a DynamoDB request"},
	{flag: "acquire-request-timeout", param: "AcquireRequestTimeoutSeconds", meta: "DURATION", duration: true, help: "the most one acquire API request may take, 1 to 9 s (e.g. 3s)"},
	{flag: "audit-archive-schedule", param: "AuditArchiveSchedule", meta: "RATE", help: "how often the archiver runs, an EventBridge rate (e.g. 'rate(30 minutes)')"},
}

// notFlagged are the template parameters deploy has no flag of its own for:
// set by deploy itself, computed from another flag, or stack state
// (--parameter still reaches them).
var notFlagged = map[string]string{
	"AcquireUrlOutput":              "set by deploy: false at a custom endpoint",
	"LeaseKeysRevision":             "state: moved by lease-keys rotate",
	"AcquireOnlyPolicyName":         "--policy-name-format",
	"FullAccessPolicyName":          "--policy-name-format",
	"ReadOnlyPolicyName":            "--policy-name-format",
	"NamespaceAcquirePolicyName":    "--policy-name-format",
	"NamespaceFullAccessPolicyName": "--policy-name-format",
	"NamespaceReadOnlyPolicyName":   "--policy-name-format",
}

// flagPolicyFormat computes the six policy names.
const flagPolicyFormat = "policy-name-format"

// policyNameParams: the managed policies and their name components.
var policyNameParams = []struct{ param, comp string }{
	{"AcquireOnlyPolicyName", "acq"}, {"FullAccessPolicyName", "full"}, {"ReadOnlyPolicyName", "read"},
	{"NamespaceAcquirePolicyName", "ns-acq"}, {"NamespaceFullAccessPolicyName", "ns-full"}, {"NamespaceReadOnlyPolicyName", "ns-read"},
}

// deployConflicts are options that contradict each other; both given is an
// error before anything is called.
var deployConflicts = []struct{ a, b, why string }{
	{"no-iam", "create-iam-roles", "the roles need IAM"},
	{"no-alarms", "alarm-sns-topic", "there is no alarm to notify"},
	{"no-alarms", "lambda-duration-threshold-pct", "there is no duration alarm"},
	{"no-aggregator", "aggregator-role-arn", "there is no aggregator"},
	{"no-audit-archival", "audit-archive-glacier-days", "nothing is archived"},
}

type deployOptions struct {
	env             *Env
	Parameters      map[string]string
	Tags            map[string]string
	NoWait          bool
	ArtifactsBucket string
	Output          outputFormat
}

// deployFlagValues holds the raw flag values while parsing.
type deployFlagValues struct {
	values   map[string]*string
	on, off  map[string]*bool
	flags    []paramFlag // deployFlags and the derived ones
	policy   string
	params   []string
	tags     []string
	template *stack.Template
}

func newCmdDeploy(env *Env, runF func(*deployOptions) error) *cobra.Command {
	opts := &deployOptions{env: env}
	tpl, tplErr := stack.Load()
	fv := &deployFlagValues{values: map[string]*string{}, on: map[string]*bool{}, off: map[string]*bool{}, template: tpl}
	cmd := &cobra.Command{
		Use:   "deploy [flags]",
		Short: "Create or update the stack: table, functions, IAM, alarms (one command)",
		Long: `Create or update the CloudFormation stack named by --name (the table has the same name) through
a change set, after uploading every function's code (linux/arm64 bootstrap zips) to the
artifacts bucket of the account and region (zae-limiter-artifacts-<account>-<region>, created
when missing). Progress goes to stderr with the elapsed time; nothing to change is said plainly.
Then the table's version record is written and the "default" namespace registered.

Options are declarative: one not given takes the template's default (as in the deployment
guide's table), so deploy again with the same options to change nothing. --parameter sets any
template parameter by name. Contradictory options (--no-iam with --create-iam-roles) and bad
values are refused before any AWS call. A failed deploy names the failing resource and its
reason and exits 1. The lease-signing key of the acquire API is generated by the stack.`,
		Example: `  zae-limiter deploy --name limiter --region us-east-1
  zae-limiter deploy -n limiter --log-retention-days 90 --pitr-recovery-days 7 --tag team=platform
  zae-limiter deploy -n limiter --create-iam-roles --permission-boundary PowerUserPB --role-name-format 'PowerUserPB-{}'
  zae-limiter deploy -n demo --endpoint-url http://127.0.0.1:5000   # a local CloudFormation (moto)`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tplErr != nil {
				return tplErr
			}
			if err := stack.ValidateName(env.Name); err != nil {
				return err
			}
			var err error
			if opts.Parameters, err = fv.parameters(cmd, env.Name); err != nil {
				return err
			}
			if opts.Tags, err = parseTags(fv.tags); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return deployRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	fv.flags = append(slices.Clone(deployFlags), derivedFlags(tpl)...)
	for _, pf := range fv.flags {
		def := "not in this build"
		if p, ok := paramOf(tpl, pf.param); ok {
			def = "default " + orQuoted(p.Default)
		}
		if pf.off != "" {
			fv.on[pf.flag], fv.off[pf.off] = new(bool), new(bool)
			f.BoolVar(fv.on[pf.flag], pf.flag, false, pf.help+" ("+pf.param+"; "+def+"; e.g. --"+pf.flag+")")
			f.BoolVar(fv.off[pf.off], pf.off, false, "the opposite of --"+pf.flag+" (e.g. --"+pf.off+")")
			continue
		}
		fv.values[pf.flag] = new(string)
		f.Var(&metaString{p: fv.values[pf.flag], meta: pf.meta}, pf.flag, pf.help+" ("+pf.param+"; "+def+")")
	}
	f.StringVar(&fv.policy, flagPolicyFormat, "", "`FORMAT` of the six managed policies' names, {} is {name}-{acq,full,read,ns-acq,ns-full,ns-read} (e.g. app-{})")
	f.StringArrayVar(&fv.params, "parameter", nil, "`KEY=VALUE` any template parameter by name, repeatable (e.g. --parameter LeaseTTLSeconds=600)")
	f.StringArrayVarP(&fv.tags, "tag", "t", nil, "`KEY=VALUE` stack tag, copied to every resource that takes tags; repeatable (e.g. -t team=platform)")
	f.BoolVar(&opts.NoWait, "no-wait", false, "return once the change set runs; deploy again later (no changes) to write the version record (e.g. --no-wait)")
	f.StringVar(&opts.ArtifactsBucket, "artifacts-bucket", "", "`BUCKET` for the functions' code (default zae-limiter-artifacts-<account>-<region>, created when missing; e.g. my-artifacts)")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// derivedFlags are flags for the template parameters deployFlags does not
// name and notFlagged does not keep back: a new function's options ship
// with it (EnableRefill gives --enable-refill/--no-refill, RefillMemorySize
// --refill-memory, RefillTimeout --refill-timeout). A row in deployFlags
// names one otherwise.
func derivedFlags(tpl *stack.Template) []paramFlag {
	if tpl == nil {
		return nil
	}
	named := map[string]bool{}
	for _, pf := range deployFlags {
		named[pf.param] = true
	}
	var out []paramFlag
	for _, name := range tpl.Parameters() {
		if named[name] || notFlagged[name] != "" || tpl.SetByDeploy(name) {
			continue
		}
		p, _ := tpl.Parameter(name)
		out = append(out, derivedFlag(p))
	}
	return out
}

var (
	kebabLower = regexp.MustCompile(`([a-z0-9])([A-Z])`)
	kebabUpper = regexp.MustCompile(`([A-Z])([A-Z][a-z])`)
)

// derivedFlag names a flag after its parameter: kebab case, MemorySize as
// memory; a true/false parameter is a pair (Enable<X>: --enable-x/--no-x).
// Its help is the parameter's description, with its default as the
// example.
func derivedFlag(p stack.Parameter) paramFlag {
	name := strings.Replace(p.Name, "MemorySize", "Memory", 1)
	kebab := strings.ToLower(kebabLower.ReplaceAllString(kebabUpper.ReplaceAllString(name, "$1-$2"), "$1-$2"))
	help := strings.TrimSuffix(strings.TrimSpace(p.Description), ".")
	if i := strings.Index(help, ". "); i > 0 {
		help = help[:i] // its first sentence
	}
	if len(help) > 1 && unicode.IsUpper(rune(help[0])) && unicode.IsLower(rune(help[1])) {
		help = strings.ToLower(help[:1]) + help[1:] // as the other flags' (not an acronym's)
	}
	pf := paramFlag{flag: kebab, param: p.Name, help: help}
	switch {
	case slices.Equal(slices.Sorted(slices.Values(p.AllowedValues)), []string{"false", "true"}):
		pf.off = "no-" + kebab
		if rest, ok := strings.CutPrefix(kebab, "enable-"); ok {
			pf.off = "no-" + rest
		}
	case p.Type == "Number":
		pf.meta = "N"
	default:
		pf.meta = "VALUE"
	}
	if pf.off == "" { // an example: the default, else a value it allows
		ex := p.Default
		if ex == "" && len(p.AllowedValues) > 0 {
			ex = p.AllowedValues[0]
		}
		if ex != "" {
			pf.help = strings.TrimSpace(pf.help + " (e.g. --" + pf.flag + " " + ex + ")")
		}
	}
	return pf
}

func paramOf(tpl *stack.Template, name string) (stack.Parameter, bool) {
	if tpl == nil {
		return stack.Parameter{}, false
	}
	return tpl.Parameter(name)
}

func orQuoted(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// parameters turns the flags given into template parameters, refusing
// contradictions, options of functions not in this build and values the
// template does not accept, each error naming the flag.
func (fv *deployFlagValues) parameters(cmd *cobra.Command, name string) (map[string]string, error) {
	f := cmd.Flags()
	given := func(flag string) bool { return f.Changed(flag) }
	for _, pf := range fv.flags {
		if pf.off != "" && given(pf.flag) && given(pf.off) {
			return nil, usageErrorf("--%s and --%s are opposites: give one", pf.flag, pf.off)
		}
	}
	for _, c := range deployConflicts {
		if given(c.a) && given(c.b) {
			return nil, fmt.Errorf("--%s contradicts --%s: %s", c.a, c.b, c.why)
		}
	}
	params := map[string]string{}
	set := func(flag, param, value string) error {
		p, ok := fv.template.Parameter(param)
		if !ok {
			return fmt.Errorf("--%s: this build deploys no %s parameter (its functions: %s)",
				flag, param, strings.Join(fv.template.FunctionNames(), ", "))
		}
		if err := p.Check(value); err != nil {
			var pe *stack.ParameterError
			if errors.As(err, &pe) {
				return limits.Invalid("--"+flag, value, pe.Reason)
			}
			return err
		}
		if prev, dup := params[param]; dup && prev != value {
			return fmt.Errorf("--%s sets %s=%q, already set to %q by another option", flag, param, value, prev)
		}
		params[param] = value
		return nil
	}
	for _, pf := range fv.flags {
		switch {
		case pf.off != "" && given(pf.flag):
			if err := set(pf.flag, pf.param, "true"); err != nil {
				return nil, err
			}
		case pf.off != "" && given(pf.off):
			if err := set(pf.off, pf.param, "false"); err != nil {
				return nil, err
			}
		case pf.off == "" && given(pf.flag):
			v := *fv.values[pf.flag]
			if pf.duration {
				secs, err := seconds(v)
				if err != nil {
					return nil, limits.Invalid("--"+pf.flag, v, err.Error())
				}
				v = strconv.FormatInt(secs, 10)
			}
			if err := set(pf.flag, pf.param, v); err != nil {
				return nil, err
			}
		}
	}
	if given(flagPolicyFormat) {
		if strings.Count(fv.policy, "{}") != 1 {
			return nil, limits.Invalid("--"+flagPolicyFormat, fv.policy, "want exactly one {} (e.g. app-{})")
		}
		for _, pn := range policyNameParams {
			if _, ok := fv.template.Parameter(pn.param); ok {
				if err := set(flagPolicyFormat, pn.param, strings.Replace(fv.policy, "{}", name+"-"+pn.comp, 1)); err != nil {
					return nil, err
				}
			}
		}
	}
	for _, kv := range fv.params {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, limits.Invalid("--parameter", kv, "want KEY=VALUE (e.g. LeaseTTLSeconds=600)")
		}
		if err := set("parameter "+k, k, v); err != nil {
			return nil, err
		}
	}
	return params, nil
}

// metaString is a string flag whose help shows meta as its placeholder.
type metaString struct {
	p    *string
	meta string
}

func (m *metaString) String() string     { return *m.p }
func (m *metaString) Set(s string) error { *m.p = s; return nil }
func (m *metaString) Type() string       { return m.meta }

// seconds reads a Go duration ("15m") or whole seconds ("900").
func seconds(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`want a duration such as "15m" or whole seconds`)
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("want whole seconds")
	}
	return int64(d / time.Second), nil
}

// parseTags reads repeated KEY=VALUE tags.
func parseTags(specs []string) (map[string]string, error) {
	tags := map[string]string{}
	for _, s := range specs {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, limits.Invalid("--tag", s, "want KEY=VALUE (e.g. team=platform)")
		}
		if _, dup := tags[k]; dup {
			return nil, limits.Invalid("--tag", s, "the key "+k+" is given twice")
		}
		tags[k] = v
	}
	return tags, nil
}

// deployJSON is deploy's result with -o json.
type deployJSON struct {
	Name           string            `json:"name"`
	StackID        string            `json:"stack_id"`
	Status         string            `json:"status"`
	Created        bool              `json:"created"`
	Changed        bool              `json:"changed"`
	ElapsedSeconds float64           `json:"elapsed_seconds"`
	Parameters     map[string]string `json:"parameters"`
	Outputs        map[string]string `json:"outputs"`
}

func deployRun(ctx context.Context, opts *deployOptions) error {
	env := opts.env
	s, code, where, err := env.deployer(ctx)
	if err != nil {
		return err
	}
	env.progress("Deploying stack %s (%s); functions %s from %s", env.Name, env.endpoint(),
		strings.Join(s.Template().FunctionNames(), ", "), where)
	for _, k := range slices.Sorted(maps.Keys(opts.Parameters)) {
		env.progress("  %s=%s", k, opts.Parameters[k])
	}
	res, err := s.Ensure(ctx, stack.Options{
		Parameters: opts.Parameters, Tags: opts.Tags, NoWait: opts.NoWait, Code: code, ArtifactsBucket: opts.ArtifactsBucket,
	})
	if err != nil {
		return fmt.Errorf("deploy failed: %w", err)
	}
	doc := deployJSON{Name: env.Name, StackID: res.StackID, Status: res.Status, Created: res.Created, Changed: res.Changed,
		ElapsedSeconds: res.Elapsed.Round(10 * time.Millisecond).Seconds(), Parameters: res.Parameters, Outputs: res.Outputs}
	if doc.Outputs == nil {
		doc.Outputs = map[string]string{}
	}
	if opts.Output.json() {
		return writeJSON(env.Out, doc)
	}
	verb := "updated"
	switch {
	case !res.Changed:
		verb = "unchanged"
	case res.Created:
		verb = "created"
	}
	if opts.NoWait && res.Changed {
		verb = "executing"
	}
	t := newTable(env.Out)
	t.row("Stack:", env.Name+" "+orDash(res.Status)+" ("+verb+" in "+res.Elapsed.Round(100*time.Millisecond).String()+")")
	for _, k := range []string{"TableName", "AcquireUrl", "AcquireOnlyPolicyArn", "FullAccessPolicyArn", "ReadOnlyPolicyArn", "ProvisionerArn"} {
		if v := res.Outputs[k]; v != "" {
			t.row(k+":", v)
		}
	}
	return t.flush()
}
