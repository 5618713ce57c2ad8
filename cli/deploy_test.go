package cli

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/zeroae/zae-limiter-go/shared/stack"
)

// Parse-only tests of deploy: flags become template parameters, and
// contradictions, bad values and options of functions not in this build
// are refused before anything runs.

func TestNewCmdDeploy(t *testing.T) {
	tpl, err := stack.Load()
	if err != nil {
		t.Fatal(err)
	}
	_, hasAggregator := tpl.Parameter("SnapshotWindows")
	clear := func(o *deployOptions) { o.env = nil }
	want := func(params map[string]string, mod func(*deployOptions)) *deployOptions {
		o := &deployOptions{Parameters: params, Tags: map[string]string{}, Output: formatTable}
		if mod != nil {
			mod(o)
		}
		return o
	}
	tests := []parseCase[deployOptions]{
		{name: "defaults: nothing set, the template decides", args: []string{"deploy", "--name", "limiter", "--region", "us-east-1"},
			want: want(map[string]string{}, nil)},
		{name: "seed example", args: []string{"deploy", "--name", "limiter", "--log-retention-days", "90", "--pitr-recovery-days", "7"},
			want: want(map[string]string{"LogRetentionDays": "90", "PITRRecoveryPeriodDays": "7"}, nil)},
		{name: "pairs, formats, tags, durations", args: []string{"deploy", "-n", "prod",
			"--create-iam-roles", "--no-alarms", "--enable-tracing", "--enable-deletion-protection", "--no-dashboard",
			"--permission-boundary", "PowerUserPB", "--role-name-format", "PowerUserPB-{}", "--policy-name-format", "app-{}",
			"--lease-ttl", "10m", "--config-cache-ttl", "0", "--acquire-url-auth", "NONE", "--acquire-memory", "512",
			"-t", "team=platform", "--tag", "env=prod", "--no-wait", "--artifacts-bucket", "my-artifacts", "-o", "json",
			"--parameter", "LeaseKeysRevision=2"},
			want: want(map[string]string{
				"EnableIAMRoles": "true", "EnableAlarms": "false", "EnableTracing": "true", "EnableDeletionProtection": "true",
				"EnableDashboard": "false", "PermissionBoundary": "PowerUserPB", "RoleNameFormat": "PowerUserPB-{}",
				"AcquireOnlyPolicyName": "app-prod-acq", "FullAccessPolicyName": "app-prod-full", "ReadOnlyPolicyName": "app-prod-read",
				"NamespaceAcquirePolicyName": "app-prod-ns-acq", "NamespaceFullAccessPolicyName": "app-prod-ns-full",
				"NamespaceReadOnlyPolicyName": "app-prod-ns-read",
				"LeaseTTLSeconds":             "600", "ConfigCacheTTLSeconds": "0", "AcquireUrlAuthType": "NONE", "AcquireMemorySize": "512",
				"LeaseKeysRevision": "2",
			}, func(o *deployOptions) {
				o.Tags = map[string]string{"team": "platform", "env": "prod"}
				o.NoWait, o.ArtifactsBucket, o.Output = true, "my-artifacts", formatJSON
			})},
		{name: "no-iam alone", args: []string{"deploy", "--no-iam"}, want: want(map[string]string{"EnableIAM": "false"}, nil)},
		{name: "contradiction", args: []string{"deploy", "--no-iam", "--create-iam-roles"}, wantCode: exitError,
			wantErr: "--no-iam contradicts --create-iam-roles: the roles need IAM"},
		{name: "topic without alarms", args: []string{"deploy", "--no-alarms", "--alarm-sns-topic", "arn:aws:sns:us-east-1:123456789012:ops"},
			wantCode: exitError, wantErr: "--no-alarms contradicts --alarm-sns-topic"},
		{name: "both sides of a pair", args: []string{"deploy", "--iam", "--no-iam"}, wantCode: exitUsage, wantErr: "--iam and --no-iam are opposites"},
		{name: "log retention not allowed", args: []string{"deploy", "--log-retention-days", "31"}, wantCode: exitError,
			wantErr: `invalid --log-retention-days "31": want one of 1, 3, 5, 7`},
		{name: "pitr out of range", args: []string{"deploy", "--pitr-recovery-days", "36"}, wantCode: exitError,
			wantErr: `invalid --pitr-recovery-days "36"`},
		{name: "not a number", args: []string{"deploy", "--acquire-memory", "lots"}, wantCode: exitError,
			wantErr: `invalid --acquire-memory "lots": want a number`},
		{name: "bad duration", args: []string{"deploy", "--lease-ttl", "soon"}, wantCode: exitError, wantErr: `invalid --lease-ttl "soon"`},
		{name: "bad auth", args: []string{"deploy", "--acquire-url-auth", "OPEN"}, wantCode: exitError, wantErr: "want one of AWS_IAM, NONE"},
		{name: "bad role format", args: []string{"deploy", "--role-name-format", "x"}, wantCode: exitError, wantErr: "--role-name-format"},
		{name: "bad policy format", args: []string{"deploy", "--policy-name-format", "{}{}"}, wantCode: exitError,
			wantErr: "want exactly one {}"},
		{name: "bad boundary", args: []string{"deploy", "--permission-boundary", "a b"}, wantCode: exitError, wantErr: "--permission-boundary"},
		{name: "bad tag", args: []string{"deploy", "--tag", "foo"}, wantCode: exitError, wantErr: `invalid --tag "foo": want KEY=VALUE`},
		{name: "tag twice", args: []string{"deploy", "-t", "a=1", "-t", "a=2"}, wantCode: exitError, wantErr: "given twice"},
		{name: "unknown parameter", args: []string{"deploy", "--parameter", "Bogus=1"}, wantCode: exitError,
			wantErr: "--parameter Bogus: this build deploys no Bogus parameter"},
		{name: "parameter against a flag", args: []string{"deploy", "--enable-tracing", "--parameter", "EnableTracing=false"},
			wantCode: exitError, wantErr: `EnableTracing="false", already set to "true"`},
		{name: "bad stack name", args: []string{"deploy", "-n", "my_limiter"}, wantCode: exitError, wantErr: `name="my_limiter"`},
		{name: "positional argument", args: []string{"deploy", "limiter"}, wantCode: exitUsage, wantErr: "unexpected argument"},
	}
	if hasAggregator {
		tests = append(tests,
			parseCase[deployOptions]{name: "the aggregator's options as the seed names them", args: []string{"deploy",
				"--enable-aggregator", "--lambda-timeout", "120", "--lambda-memory", "512", "--usage-retention-days", "30",
				"--snapshot-windows", "hourly,monthly", "--lambda-duration-threshold-pct", "90",
				"--aggregator-role-arn", "arn:aws:iam::123456789012:role/aggr"},
				want: want(map[string]string{"EnableAggregator": "true", "AggregatorTimeout": "120", "AggregatorMemorySize": "512",
					"SnapshotRetentionDays": "30", "SnapshotWindows": "hourly,monthly", "LambdaDurationThresholdPct": "90",
					"AggregatorRoleArn": "arn:aws:iam::123456789012:role/aggr"}, nil)},
			parseCase[deployOptions]{name: "no aggregator", args: []string{"deploy", "--no-aggregator"},
				want: want(map[string]string{"EnableAggregator": "false"}, nil)},
			parseCase[deployOptions]{name: "aggregator timeout out of range", args: []string{"deploy", "--lambda-timeout", "901"},
				wantCode: exitError, wantErr: `invalid --lambda-timeout "901"`},
			parseCase[deployOptions]{name: "bad windows", args: []string{"deploy", "--snapshot-windows", "weekly"},
				wantCode: exitError, wantErr: `invalid --snapshot-windows "weekly"`},
			parseCase[deployOptions]{name: "aggregator contradiction", args: []string{"deploy", "--no-aggregator", "--aggregator-role-arn", "arn:aws:iam::123456789012:role/x"},
				wantCode: exitError, wantErr: "--no-aggregator contradicts --aggregator-role-arn"},
		)
	}
	tests = append(tests,
		parseCase[deployOptions]{name: "duration percentage out of range", args: []string{"deploy", "--lambda-duration-threshold-pct", "101"},
			wantCode: exitError, wantErr: `invalid --lambda-duration-threshold-pct "101"`},
		parseCase[deployOptions]{name: "duration percentage without alarms", args: []string{"deploy", "--no-alarms", "--lambda-duration-threshold-pct", "90"},
			wantCode: exitError, wantErr: "--no-alarms contradicts --lambda-duration-threshold-pct: there is no duration alarm"},
	)
	checkParse(t, []string{"deploy"}, newCmdDeploy, clear, tests)
}

func TestNewCmdDelete(t *testing.T) {
	checkParse(t, []string{"delete"}, newCmdDelete, func(o *deleteOptions) { o.env = nil },
		[]parseCase[deleteOptions]{
			{name: "seed", args: []string{"delete", "-n", "demo", "-y"}, want: &deleteOptions{Yes: true}},
			{name: "name required", args: []string{"delete", "-y"}, wantCode: exitUsage, wantErr: "--name is required"},
			{name: "yes required without a terminal", args: []string{"delete", "-n", "demo"}, wantCode: exitUsage, wantErr: "--yes is required"},
		})
}

func TestNewCmdLambdaExport(t *testing.T) {
	checkParse(t, []string{"lambda-export"}, newCmdLambdaExport, func(o *lambdaExportOptions) { o.env = nil },
		[]parseCase[lambdaExportOptions]{
			{name: "seed default: the aggregator", args: []string{"lambda-export"},
				want: &lambdaExportOptions{Output: "lambda.zip", Function: "aggregator"}},
			{name: "a function, forced", args: []string{"lambda-export", "--output", "a.zip", "--function", "acquire", "-f"},
				want: &lambdaExportOptions{Output: "a.zip", Function: "acquire", Force: true}},
			{name: "empty output", args: []string{"lambda-export", "--output", ""}, wantCode: exitError, wantErr: "--output"},
		})
}

// TestEveryParameterHasAFlag: each template parameter is a deploy flag
// (deployFlags', or one named after it), computed from one, or set by
// deploy; no two flags share a name, nor a flag a global flag's.
func TestEveryParameterHasAFlag(t *testing.T) {
	tpl, err := stack.Load()
	if err != nil {
		t.Fatal(err)
	}
	flags := append(slices.Clone(deployFlags), derivedFlags(tpl)...)
	flagged := map[string]bool{}
	names := map[string]string{}
	root := newRootCmd(&Env{})
	for _, f := range flags {
		flagged[f.param] = true
		for _, n := range []string{f.flag, f.off} {
			if n == "" {
				continue
			}
			if other, dup := names[n]; dup {
				t.Errorf("--%s sets both %s and %s", n, other, f.param)
			}
			names[n] = f.param
			if root.PersistentFlags().Lookup(n) != nil {
				t.Errorf("--%s (%s) is a global flag", n, f.param)
			}
		}
	}
	for _, name := range tpl.Parameters() {
		if tpl.SetByDeploy(name) {
			continue // where the code is: deploy's own
		}
		if !flagged[name] && notFlagged[name] == "" {
			t.Errorf("template parameter %s has no deploy flag", name)
		}
	}
}

// TestDerivedFlag: a parameter deployFlags does not name (a new
// function's) gets a flag named after it.
func TestDerivedFlag(t *testing.T) {
	tf := []string{"true", "false"}
	for _, tt := range []struct {
		p    stack.Parameter
		want paramFlag
	}{
		{stack.Parameter{Name: "EnableRefill", Type: "String", AllowedValues: tf, Description: "Deploy the refill function. More text."},
			paramFlag{flag: "enable-refill", off: "no-refill", param: "EnableRefill", help: "deploy the refill function"}},
		{stack.Parameter{Name: "RefillMemorySize", Type: "Number", Default: "128", Description: "Memory of the refill function in MB."},
			paramFlag{flag: "refill-memory", param: "RefillMemorySize", meta: "N", help: "memory of the refill function in MB (e.g. --refill-memory 128)"}},
		{stack.Parameter{Name: "RefillTimeout", Type: "Number"},
			paramFlag{flag: "refill-timeout", param: "RefillTimeout", meta: "N"}},
		{stack.Parameter{Name: "AcquireDenialCache", Type: "String", AllowedValues: []string{"false", "true"}},
			paramFlag{flag: "acquire-denial-cache", off: "no-acquire-denial-cache", param: "AcquireDenialCache"}},
		{stack.Parameter{Name: "EnableTracing", Type: "String", AllowedValues: tf, Description: "X-Ray tracing of the functions."},
			paramFlag{flag: "enable-tracing", off: "no-tracing", param: "EnableTracing", help: "X-Ray tracing of the functions"}},
		{stack.Parameter{Name: "PITRRecoveryPeriodDays", Type: "String"},
			paramFlag{flag: "pitr-recovery-period-days", param: "PITRRecoveryPeriodDays", meta: "VALUE"}},
		{stack.Parameter{Name: "AlarmSNSTopicArn", Type: "String", AllowedValues: []string{"a", "b"}},
			paramFlag{flag: "alarm-sns-topic-arn", param: "AlarmSNSTopicArn", meta: "VALUE", help: "(e.g. --alarm-sns-topic-arn a)"}},
	} {
		assert.Equal(t, tt.want, derivedFlag(tt.p), tt.p.Name)
	}
}
