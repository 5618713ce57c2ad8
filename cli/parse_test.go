package cli

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Parse-only tests: every command runs with a runF that captures its
// options, so nothing talks to AWS. Behaviour lives in *_db_test.go.

type parseCase[O any] struct {
	name     string
	args     []string
	want     *O     // options expected when the command ran (env cleared)
	wantCode int    // exit code
	wantErr  string // substring of the single stderr line
}

func checkParse[O any](t *testing.T, path []string, mk func(*Env, func(*O) error) *cobra.Command,
	clearEnv func(*O), tests []parseCase[O]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *O
			code, stderr, _ := parseRun(t, path, func(env *Env) *cobra.Command {
				return mk(env, func(o *O) error { got = o; return nil })
			}, tt.args...)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", stderr)
			if tt.wantErr != "" {
				require.Len(t, lines(stderr), 1, "one line on stderr")
				assert.Contains(t, stderr, tt.wantErr)
				assert.True(t, strings.HasPrefix(stderr, "Error: "), stderr)
			}
			if tt.want != nil {
				require.NotNil(t, got, "command did not run")
				clearEnv(got)
				assert.Equal(t, tt.want, got)
			} else if tt.wantCode != 0 {
				assert.Nil(t, got, "command ran despite the error")
			}
		})
	}
}

func TestNewCmdSystemSetDefaults(t *testing.T) {
	checkParse(t, []string{"system", "set-defaults"}, newCmdSystemSetDefaults,
		func(o *systemSetDefaultsOptions) { o.env = nil },
		[]parseCase[systemSetDefaultsOptions]{
			{name: "seed step 2", args: []string{"system", "set-defaults", "-l", "rpm:100", "-l", "tpm:10000", "--on-unavailable", "block"},
				want: &systemSetDefaultsOptions{Limits: []limits.Limit{
					limits.PerMinute("rpm", 100, 0), limits.PerMinute("tpm", 10000, 0)}, OnUnavailable: limits.Block}},
			{name: "policy kept when not given", args: []string{"system", "set-defaults", "--limit", "rps:5/sec:20"},
				want: &systemSetDefaultsOptions{Limits: []limits.Limit{limits.PerSecond("rps", 5, 20)}}},
			{name: "long period", args: []string{"system", "set-defaults", "-l", "rp5m:100/5min"},
				want: &systemSetDefaultsOptions{Limits: []limits.Limit{{Name: "rp5m", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 300}}}},
			{name: "nothing to set is a usage error", args: []string{"system", "set-defaults"},
				wantCode: exitUsage, wantErr: "at least one -l/--limit or --on-unavailable is required"},
			{name: "policy only", args: []string{"system", "set-defaults", "--on-unavailable", "allow"},
				want: &systemSetDefaultsOptions{OnUnavailable: limits.Allow}},
			{name: "bad limit syntax", args: []string{"system", "set-defaults", "-l", "rpm"},
				wantCode: exitError, wantErr: `invalid limit "rpm"`},
			{name: "bad rate", args: []string{"system", "set-defaults", "-l", "rpm:ten"},
				wantCode: exitError, wantErr: `invalid limit rpm rate "ten"`},
			{name: "bad period", args: []string{"system", "set-defaults", "-l", "rpm:10/week"},
				wantCode: exitError, wantErr: `invalid limit period "/week"`},
			{name: "burst below rate", args: []string{"system", "set-defaults", "-l", "rpm:10:5"},
				wantCode: exitError, wantErr: `invalid limit rpm burst "5": is below the rate 10`},
			{name: "reserved name", args: []string{"system", "set-defaults", "-l", "wcu:10"},
				wantCode: exitError, wantErr: `invalid limit name "wcu"`},
			{name: "duplicate name", args: []string{"system", "set-defaults", "-l", "rpm:10", "-l", "rpm:20"},
				wantCode: exitError, wantErr: `invalid limit name "rpm": appears more than once`},
			{name: "bad policy", args: []string{"system", "set-defaults", "-l", "rpm:10", "--on-unavailable", "maybe"},
				wantCode: exitError, wantErr: `invalid on_unavailable "maybe"`},
			{name: "extra argument", args: []string{"system", "set-defaults", "gpt-4", "-l", "rpm:10"},
				wantCode: exitUsage, wantErr: `unexpected argument "gpt-4"`},
		})
}

func TestNewCmdResourceSetDefaults(t *testing.T) {
	checkParse(t, []string{"resource", "set-defaults"}, newCmdResourceSetDefaults,
		func(o *resourceSetDefaultsOptions) { o.env = nil },
		[]parseCase[resourceSetDefaultsOptions]{
			{name: "seed step 3", args: []string{"resource", "set-defaults", "gpt-3.5-turbo", "-l", "rpm:200", "-l", "tpm:500000"},
				want: &resourceSetDefaultsOptions{Resource: "gpt-3.5-turbo", Limits: []limits.Limit{
					limits.PerMinute("rpm", 200, 0), limits.PerMinute("tpm", 500000, 0)}}},
			{name: "burst", args: []string{"resource", "set-defaults", "gpt-4", "-l", "tpm:10000/min:15000"},
				want: &resourceSetDefaultsOptions{Resource: "gpt-4", Limits: []limits.Limit{limits.PerMinute("tpm", 10000, 15000)}}},
			{name: "missing resource", args: []string{"resource", "set-defaults", "-l", "rpm:1"},
				wantCode: exitUsage, wantErr: "missing argument RESOURCE"},
			{name: "bad resource", args: []string{"resource", "set-defaults", "gpt#4", "-l", "rpm:1"},
				wantCode: exitError, wantErr: `invalid resource "gpt#4"`},
			{name: "bad limit", args: []string{"resource", "set-defaults", "gpt-4", "-l", "rpm:0"},
				wantCode: exitError, wantErr: `invalid limit rpm rate "0"`},
		})
}

func TestNewCmdEntityCreate(t *testing.T) {
	checkParse(t, []string{"entity", "create"}, newCmdEntityCreate,
		func(o *entityCreateOptions) { o.env = nil },
		[]parseCase[entityCreateOptions]{
			{name: "plain", args: []string{"entity", "create", "org-acme"},
				want: &entityCreateOptions{ID: "org-acme"}},
			{name: "all flags", args: []string{"entity", "create", "key-1", "--parent", "org-acme", "--cascade", "--display-name", "Key one"},
				want: &entityCreateOptions{ID: "key-1", Parent: "org-acme", Cascade: true, DisplayName: "Key one"}},
			{name: "bad id", args: []string{"entity", "create", "user#1"},
				wantCode: exitError, wantErr: `invalid entity_id "user#1": must not contain '#'`},
			{name: "bad parent", args: []string{"entity", "create", "u1", "--parent", "a b"},
				wantCode: exitError, wantErr: `invalid parent_id "a b"`},
			{name: "cascade without parent", args: []string{"entity", "create", "u1", "--cascade"},
				wantCode: exitUsage, wantErr: "--cascade needs --parent"},
			{name: "missing id", args: []string{"entity", "create"},
				wantCode: exitUsage, wantErr: "missing argument ENTITY_ID"},
			{name: "two ids", args: []string{"entity", "create", "a", "b"},
				wantCode: exitUsage, wantErr: `unexpected argument "b"`},
			{name: "unknown flag", args: []string{"entity", "create", "a", "--colour", "red"},
				wantCode: exitUsage, wantErr: "unknown flag: --colour"},
		})
}

func TestNewCmdEntitySetLimits(t *testing.T) {
	checkParse(t, []string{"entity", "set-limits"}, newCmdEntitySetLimits,
		func(o *entitySetLimitsOptions) { o.env = nil },
		[]parseCase[entitySetLimitsOptions]{
			{name: "seed step 4", args: []string{"entity", "set-limits", "user-premium", "--resource", "gpt-4", "-l", "rpm:500", "-l", "tpm:500000"},
				want: &entitySetLimitsOptions{ID: "user-premium", Resource: "gpt-4", Limits: []limits.Limit{
					limits.PerMinute("rpm", 500, 0), limits.PerMinute("tpm", 500000, 0)}}},
			{name: "resource defaults to _default_", args: []string{"entity", "set-limits", "u1", "-l", "rph:10/hour"},
				want: &entitySetLimitsOptions{ID: "u1", Resource: limits.DefaultResource, Limits: []limits.Limit{limits.PerHour("rph", 10, 0)}}},
			{name: "short resource flag", args: []string{"entity", "set-limits", "u1", "-r", "gpt-4", "-l", "rpd:1000/day"},
				want: &entitySetLimitsOptions{ID: "u1", Resource: "gpt-4", Limits: []limits.Limit{limits.PerDay("rpd", 1000, 0)}}},
			{name: "bad id", args: []string{"entity", "set-limits", "user#1", "-l", "rpm:1"},
				wantCode: exitError, wantErr: `invalid entity_id "user#1"`},
			{name: "bad limit", args: []string{"entity", "set-limits", "u1", "-l", "rpm:100:burst"},
				wantCode: exitError, wantErr: `invalid limit rpm burst "burst"`},
			{name: "no limits", args: []string{"entity", "set-limits", "u1"},
				wantCode: exitUsage, wantErr: "at least one -l/--limit is required"},
		})
}

func TestNewCmdEntityGetLimits(t *testing.T) {
	checkParse(t, []string{"entity", "get-limits"}, newCmdEntityGetLimits,
		func(o *entityGetLimitsOptions) { o.env = nil },
		[]parseCase[entityGetLimitsOptions]{
			{name: "all resources", args: []string{"entity", "get-limits", "u1"},
				want: &entityGetLimitsOptions{ID: "u1", Output: formatTable}},
			{name: "one resource as json", args: []string{"entity", "get-limits", "u1", "--resource", "gpt-4", "-o", "json"},
				want: &entityGetLimitsOptions{ID: "u1", Resource: "gpt-4", Output: formatJSON}},
			{name: "bad output", args: []string{"entity", "get-limits", "u1", "-o", "yaml"},
				wantCode: exitUsage, wantErr: `invalid argument "yaml" for "-o, --output" flag: want table or json`},
		})
}

func TestNewCmdEntityDeleteLimits(t *testing.T) {
	checkParse(t, []string{"entity", "delete-limits"}, newCmdEntityDeleteLimits,
		func(o *entityDeleteLimitsOptions) { o.env = nil },
		[]parseCase[entityDeleteLimitsOptions]{
			{name: "with yes", args: []string{"entity", "delete-limits", "u1", "--resource", "gpt-4", "--yes"},
				want: &entityDeleteLimitsOptions{ID: "u1", Resource: "gpt-4", Yes: true}},
			{name: "resource required", args: []string{"entity", "delete-limits", "u1", "-y"},
				wantCode: exitUsage, wantErr: "--resource is required"},
			{name: "yes required", args: []string{"entity", "delete-limits", "u1", "-r", "gpt-4"},
				wantCode: exitUsage, wantErr: "--yes is required when not running interactively"},
		})
}

func TestNewCmdAuditList(t *testing.T) {
	checkParse(t, []string{"audit", "list"}, newCmdAuditList,
		func(o *auditListOptions) { o.env = nil },
		[]parseCase[auditListOptions]{
			{name: "defaults", args: []string{"audit", "list", "u1"},
				want: &auditListOptions{EntityID: "u1", Limit: 100, Output: formatTable}},
			{name: "paging", args: []string{"audit", "list", "u1", "--limit", "5", "--start-after", "01J9Z6Y5W3Q8K2N4M7P1R0S2T3", "-o", "json"},
				want: &auditListOptions{EntityID: "u1", Limit: 5, StartAfter: "01J9Z6Y5W3Q8K2N4M7P1R0S2T3", Output: formatJSON}},
			{name: "system pseudo-entity", args: []string{"audit", "list", "$SYSTEM"},
				want: &auditListOptions{EntityID: "$SYSTEM", Limit: 100, Output: formatTable}},
			{name: "resource pseudo-entity", args: []string{"audit", "list", "$RESOURCE:gpt-4"},
				want: &auditListOptions{EntityID: "$RESOURCE:gpt-4", Limit: 100, Output: formatTable}},
			{name: "bad limit", args: []string{"audit", "list", "u1", "--limit", "0"},
				wantCode: exitError, wantErr: `invalid limit "0"`},
			{name: "non-numeric limit", args: []string{"audit", "list", "u1", "--limit", "ten"},
				wantCode: exitUsage, wantErr: `invalid argument "ten"`},
			{name: "missing entity", args: []string{"audit", "list"},
				wantCode: exitUsage, wantErr: "missing argument ENTITY_ID"},
		})
}

func TestNewCmdNamespaceRegister(t *testing.T) {
	checkParse(t, []string{"namespace", "register"}, newCmdNamespaceRegister,
		func(o *namespaceRegisterOptions) { o.env = nil },
		[]parseCase[namespaceRegisterOptions]{
			{name: "several", args: []string{"namespace", "register", "tenant-a", "tenant-b"},
				want: &namespaceRegisterOptions{Names: []string{"tenant-a", "tenant-b"}}},
			{name: "reserved", args: []string{"namespace", "register", "_"},
				wantCode: exitError, wantErr: `invalid namespace "_": is reserved`},
			{name: "none", args: []string{"namespace", "register"},
				wantCode: exitUsage, wantErr: "missing argument NAME"},
		})
}

func TestNewCmdLocalUp(t *testing.T) {
	checkParse(t, []string{"local", "up"}, newCmdLocalUp,
		func(o *localUpOptions) { o.env = nil },
		[]parseCase[localUpOptions]{
			{name: "default port", args: []string{"local", "up"}, want: &localUpOptions{URLAuth: "NONE", Instances: 4}},
			{name: "port", args: []string{"local", "up", "--port", "8001"}, want: &localUpOptions{Port: 8001, URLAuth: "NONE", Instances: 4}},
			{name: "everything", args: []string{"local", "up", "--url-port", "9001", "--url-auth", "AWS_IAM", "--persist",
				"--instances", "16", "--parameter", "A=1", "--parameter", "B=x=y", "--template", "t.yaml", "--no-build", "--schedule-every", "10s"},
				want: &localUpOptions{URLPort: 9001, URLAuth: "AWS_IAM", Persist: true, Instances: 16, Params: []string{"A=1", "B=x=y"},
					Template: "t.yaml", NoBuild: true, ScheduleEv: 10 * time.Second}},
			{name: "bad auth", args: []string{"local", "up", "--url-auth", "IAM"},
				wantCode: exitError, wantErr: `invalid url-auth "IAM"`},
			{name: "bad instances", args: []string{"local", "up", "--instances", "0"},
				wantCode: exitError, wantErr: `invalid instances "0"`},
			{name: "bad port", args: []string{"local", "up", "--port", "70000"},
				wantCode: exitError, wantErr: `invalid port "70000"`},
			{name: "bad name", args: []string{"local", "up", "-n", "a b"},
				wantCode: exitError, wantErr: `invalid name "a b"`},
		})
}

// Global flags are accepted before and after the subcommand.
func TestGlobalFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Env
	}{
		{name: "defaults", args: []string{"entity", "show", "u1"},
			want: Env{Name: "limiter", Namespace: "default"}},
		{name: "before", args: []string{"-n", "prod", "--region", "eu-west-1", "--endpoint-url", "http://localhost:8000",
			"-N", "tenant-a", "--principal", "alice", "entity", "show", "u1"},
			want: Env{Name: "prod", Region: "eu-west-1", EndpointURL: "http://localhost:8000", Namespace: "tenant-a", Principal: "alice"}},
		{name: "after", args: []string{"entity", "show", "u1", "--name", "prod", "--namespace", "tenant-a", "--endpoint-url", "http://x:1"},
			want: Env{Name: "prod", EndpointURL: "http://x:1", Namespace: "tenant-a"}},
		{name: "between", args: []string{"entity", "-N", "t", "show", "u1"},
			want: Env{Name: "limiter", Namespace: "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ran := false
			code, stderr, env := parseRun(t, []string{"entity", "show"}, func(env *Env) *cobra.Command {
				return newCmdEntityShow(env, func(*entityShowOptions) error { ran = true; return nil })
			}, tt.args...)
			require.Equal(t, exitOK, code, stderr)
			require.True(t, ran)
			got := Env{Name: env.Name, Region: env.Region, EndpointURL: env.EndpointURL, Namespace: env.Namespace, Principal: env.Principal}
			assert.Equal(t, tt.want, got)
		})
	}
}

// Usage errors, bad -o values and missing --yes across the whole tree, with
// the real commands: all fail before anything talks to AWS.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args    string
		wantErr string
	}{
		{"bogus", `unknown command "bogus" for "zae-limiter"`},
		{"entity bogus", `unknown command "bogus" for "zae-limiter entity"`},
		{"entity --bogus", "unknown flag: --bogus"},
		{"--bogus entity list", "unknown flag: --bogus"},
		{"entity show", "missing argument ENTITY_ID"},
		{"entity delete", "missing argument ENTITY_ID"},
		{"resource get-defaults", "missing argument RESOURCE"},
		{"namespace show", "missing argument NAME"},
		{"namespace recover", "missing argument NAMESPACE_ID"},
		{"namespace purge", "missing argument NAMESPACE_ID"},
		{"audit list", "missing argument ENTITY_ID"},
		{"resource list extra", `unexpected argument "extra"`},
		{"local up --port", "flag needs an argument: --port"},
		{"system get-defaults -o yaml", `invalid argument "yaml"`},
		{"resource get-defaults gpt-4 -o xml", `invalid argument "xml"`},
		{"resource list -o csv", `invalid argument "csv"`},
		{"entity show u1 --output=text", `invalid argument "text"`},
		{"entity list -o", "flag needs an argument"},
		{"entity get-limits u1 -o JSON", `invalid argument "JSON"`},
		{"namespace list -o yaml", `invalid argument "yaml"`},
		{"namespace show default -o yaml", `invalid argument "yaml"`},
		{"namespace orphans -o yaml", `invalid argument "yaml"`},
		{"audit list u1 -o yaml", `invalid argument "yaml"`},
		{"local status -o yaml", `invalid argument "yaml"`},
		{"version -o yaml", `invalid argument "yaml"`},
		{"entity delete u1", "--yes is required when not running interactively"},
		{"entity delete-limits u1 --resource gpt-4", "--yes is required"},
		{"system delete-defaults", "--yes is required"},
		{"resource delete-defaults gpt-4", "--yes is required"},
		{"namespace delete tenant-a", "--yes is required"},
		{"namespace purge Jk3x9_aQm2E", "--yes is required"},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) { usageFails(t, tt.args, tt.wantErr) })
	}
}

// A bare group or root prints its help and exits 0.
func TestGroupHelp(t *testing.T) {
	for _, args := range [][]string{{}, {"entity"}, {"namespace"}, {"local", "--help"}, {"entity", "create", "-h"}} {
		env, out, errw := testEnv(false)
		code := run(t.Context(), args, env)
		assert.Equal(t, exitOK, code, errw.String())
		assert.Contains(t, out.String(), "Usage:")
	}
}

// Every command's help has an example and every flag an example value.
func TestHelpExamples(t *testing.T) {
	env, _, _ := testEnv(false)
	root := newRootCmd(env)
	check := func(fs *pflag.FlagSet, path string) {
		fs.VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" {
				assert.Contains(t, f.Usage, "e.g.", "%s --%s has no example", path, f.Name)
			}
		})
	}
	check(root.PersistentFlags(), "zae-limiter")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		assert.NotEmpty(t, c.Example, "%s has no example", c.CommandPath())
		assert.NotEmpty(t, c.Short, "%s has no short help", c.CommandPath())
		check(c.LocalNonPersistentFlags(), c.CommandPath())
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

func TestExitCode(t *testing.T) {
	assert.Equal(t, exitOK, exitCode(nil))
	assert.Equal(t, exitError, exitCode(limits.Invalid("entity_id", "x#", "bad")))
	assert.Equal(t, exitUsage, exitCode(usageErrorf("missing argument X")))
	assert.Equal(t, exitLimited, exitCode(limits.NewExceeded([]limits.Status{{Exceeded: true}})))
}

func TestFormatLimit(t *testing.T) {
	assert.Equal(t, "rpm: 100/min", formatLimit(limits.PerMinute("rpm", 100, 0)))
	assert.Equal(t, "tpm: 10,000/min (burst 15,000)", formatLimit(limits.PerMinute("tpm", 10000, 15000)))
	assert.Equal(t, "rp5m: 1,234,567/5min", formatLimit(limits.Limit{Name: "rp5m", Capacity: 1234567, RefillAmount: 1234567, RefillPeriodSeconds: 300}))
	assert.Equal(t, "rps: 5/sec (burst 20)", formatLimit(limits.PerSecond("rps", 5, 20)))
}

func TestOneLine(t *testing.T) {
	op := &smithy.OperationError{ServiceID: "DynamoDB", OperationName: "GetItem",
		Err: fmt.Errorf("https response error StatusCode: 400, RequestID: x, %w",
			&smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"})}
	assert.Equal(t, `get entity "u1": DynamoDB GetItem: ThrottlingException: slow down`,
		oneLine(fmt.Errorf("get entity %q: %w", "u1", op)))
	assert.Equal(t, "a b c", oneLine(errors.New("a\nb\n  c")))
	assert.Equal(t, `invalid entity_id "x#": must not contain '#'`,
		oneLine(limits.Invalid("entity_id", "x#", "must not contain '#'")))
}
