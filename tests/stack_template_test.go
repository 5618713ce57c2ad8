package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/stack"
)

// The stack-wide parts of template.yaml (issue 11) and the two doors: the
// plain template `deploy` embeds, and samconfig.toml for `sam deploy`.

// TestEmbeddedTemplateIsCurrent: shared/stack/template.cfn.json (what
// deploy and cfn-template use) is exactly template.yaml through the SAM
// translator. When it fails: `make template`.
func TestEmbeddedTemplateIsCurrent(t *testing.T) {
	t.Parallel()
	translated := samTranslate(t)
	embedded, err := os.ReadFile(filepath.Join("..", "shared", "stack", "template.cfn.json"))
	require.NoError(t, err)
	var want, got any
	require.NoError(t, json.Unmarshal(translated, &want))
	require.NoError(t, json.Unmarshal(embedded, &got))
	assert.Equal(t, want, got, "shared/stack/template.cfn.json is stale: run `make template`")
}

// samTranslate runs scripts/sam-translate.py on template.yaml. The tools
// come from the machine image: without them the test skips, and fails when
// ZAEL_REQUIRE_DYNAMODB=1 (CI) asks for every backend.
func samTranslate(t *testing.T) []byte {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err == nil {
		var out []byte
		if out, err = exec.Command(python, "-c", "import samtranslator, cfnlint").CombinedOutput(); err != nil {
			lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
			err = &toolError{string(lines[len(lines)-1])}
		}
	}
	if err != nil {
		if v, _ := strconv.ParseBool(os.Getenv("ZAEL_REQUIRE_DYNAMODB")); v {
			t.Fatalf("the SAM translator is required (ZAEL_REQUIRE_DYNAMODB is set): %v", err)
		}
		t.Skipf("python3 with samtranslator and cfnlint is missing (%v): translation not checked", err)
	}
	script, err := filepath.Abs(filepath.Join("..", "scripts", "sam-translate.py"))
	require.NoError(t, err)
	cmd := exec.Command(python, script, templatePath(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "sam-translate.py failed:\n%s", stderr.String())
	return out
}

type toolError struct{ msg string }

func (e *toolError) Error() string { return e.msg }

// TestPlainTemplateLints: what cfn-template prints passes cfn-lint.
func TestPlainTemplateLints(t *testing.T) {
	t.Parallel()
	cfnLint := lookTool(t, "cfn-lint")
	tpl, err := stack.Load()
	require.NoError(t, err)
	cmd := exec.Command(cfnLint, "--format", "parseable") // the template on stdin
	cmd.Stdin = bytes.NewReader(tpl.Indented())
	out, err := cmd.CombinedOutput()
	assert.NoError(t, err, "cfn-lint on the plain template:\n%s", out)
}

// boundaryExpr is what every role's PermissionsBoundary must be.
var boundaryExpr = fn("If", []any{"HasPermissionBoundary",
	fn("If", []any{"PermissionBoundaryIsArn", ref("PermissionBoundary"),
		fn("Sub", "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/${PermissionBoundary}")}),
	ref("AWS::NoValue")})

// roleNameExpr is the name of a role whose component is comp.
func roleNameExpr(comp string) any {
	return fn("Join", []any{"", []any{
		fn("Select", []any{0, fn("Split", []any{"{}", ref("RoleNameFormat")})}),
		ref("AWS::StackName"), "-" + comp,
		fn("Select", []any{1, fn("Split", []any{"{}", ref("RoleNameFormat")})}),
	}})
}

// TestEveryRoleHasBoundaryAndName: every IAM role the stack creates takes
// the permission boundary and is named by RoleNameFormat, with a component
// of at most 8 characters (a 55-character stack name still fits IAM's 64).
func TestEveryRoleHasBoundaryAndName(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	roles := 0
	comps := map[string]string{}
	for id, v := range obj(t, tpl["Resources"]) {
		r := obj(t, v)
		if r["Type"] != "AWS::IAM::Role" {
			continue
		}
		roles++
		props := obj(t, r["Properties"])
		assert.Equal(t, boundaryExpr, props["PermissionsBoundary"], "%s PermissionsBoundary", id)
		parts := list(t, obj(t, props["RoleName"])["Fn::Join"])
		comp := strings.TrimPrefix(str(t, list(t, parts[1])[2]), "-")
		assert.Equal(t, roleNameExpr(comp), props["RoleName"], "%s RoleName", id)
		assert.LessOrEqual(t, len(comp), 8, "%s: component %q", id, comp)
		if other, dup := comps[comp]; dup {
			t.Errorf("roles %s and %s share the name component %q", id, other, comp)
		}
		comps[comp] = id
	}
	assert.GreaterOrEqual(t, roles, 5, "function roles and App/Admin/ReadOnly")
	p := param(t, tpl, "RoleNameFormat")
	re := regexp.MustCompile(str(t, p["AllowedPattern"]))
	for _, good := range []string{"{}", "PowerUserPB-{}", "{}-svc"} {
		assert.True(t, re.MatchString(good), good)
	}
	for _, bad := range []string{"", "x", "{}{}", "a/{}", "{} "} {
		assert.False(t, re.MatchString(bad), bad)
	}
}

// TestAppRoles: App, Admin and ReadOnly roles, only with EnableIAMRoles
// and EnableIAM, trusting the account, each with one managed policy.
func TestAppRoles(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	assert.Equal(t, fn("And", []any{map[string]any{"Condition": "DeployIAM"}, fn("Equals", []any{ref("EnableIAMRoles"), "true"})}),
		obj(t, tpl["Conditions"])["DeployIAMRoles"])
	assert.Equal(t, "false", param(t, tpl, "EnableIAMRoles")["Default"], "roles are opt-in, as in the seed")
	for id, policy := range map[string]string{"AppRole": "AcquireOnlyPolicy", "AdminRole": "FullAccessPolicy", "ReadOnlyRole": "ReadOnlyPolicy"} {
		r := resource(t, tpl, id)
		assert.Equal(t, "DeployIAMRoles", r["Condition"], id)
		props := obj(t, r["Properties"])
		assert.Equal(t, []any{ref(policy)}, props["ManagedPolicyArns"], id)
		st := obj(t, list(t, obj(t, props["AssumeRolePolicyDocument"])["Statement"])[0])
		assert.Equal(t, map[string]any{"AWS": fn("Sub", "arn:${AWS::Partition}:iam::${AWS::AccountId}:root")}, st["Principal"], id)
		for _, o := range []string{"Arn", "Name"} {
			out := obj(t, obj(t, tpl["Outputs"])[id+o])
			assert.Equal(t, "DeployIAMRoles", out["Condition"], id+o)
		}
	}
}

// TestNamespacePolicies: the namespace-scoped policies grant the same
// actions as their table-wide twins (no key-less action: ForAllValues holds
// for a request without keys), every statement limited by the principal's
// namespace tag, writes to its own namespace only.
func TestNamespacePolicies(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	own := "${aws:PrincipalTag/" + stack.NamespacePrincipalTag + "}/*"
	for id, twin := range map[string]string{
		"NamespaceAcquirePolicy": "AcquireOnlyPolicy", "NamespaceFullAccessPolicy": "FullAccessPolicy", "NamespaceReadOnlyPolicy": "ReadOnlyPolicy",
	} {
		r := resource(t, tpl, id)
		assert.Equal(t, "DeployIAM", r["Condition"], id)
		props := obj(t, r["Properties"])
		var actions []string
		for _, s := range list(t, obj(t, props["PolicyDocument"])["Statement"]) {
			st := obj(t, s)
			acts := statementActions(t, st["Action"])
			actions = append(actions, acts...)
			keys := statementLeadingKeys(t, st)
			assert.Contains(t, keys, own, "%s %v", id, st["Sid"])
			write := slices.ContainsFunc(acts, func(a string) bool { return !slices.Contains(readActions, a) })
			if write {
				assert.Equal(t, []string{own}, keys, "%s: writes reach the principal's namespace only", id)
			}
		}
		var twinActions []string
		for _, a := range policyActions(t, tpl, twin, map[string]string{
			"AcquireOnlyPolicy": "acq", "FullAccessPolicy": "full", "ReadOnlyPolicy": "read"}[twin]) {
			if a != "dynamodb:DescribeTable" && a != "dynamodb:Scan" {
				twinActions = append(twinActions, a)
			}
		}
		assert.Equal(t, twinActions, union(actions), "%s grants what %s does, but key-less actions", id, twin)
		out := obj(t, obj(t, tpl["Outputs"])[strings.TrimSuffix(id, "Policy")+"PolicyArn"])
		assert.Equal(t, ref(id), out["Value"])
	}
}

var readActions = []string{"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"}

func statementLeadingKeys(t *testing.T, st map[string]any) []string {
	t.Helper()
	c := obj(t, obj(t, st["Condition"])["ForAllValues:StringLike"])
	var out []string
	for _, k := range list(t, c["dynamodb:LeadingKeys"]) {
		out = append(out, str(t, k))
	}
	return out
}

// TestFunctionAlarms: every function has alarms on its errors, duration and
// throttles; the table on read and write throttles; every alarm exists only
// with EnableAlarms and notifies the SNS topic when one is given (and never
// a dangling one). A duration alarm compares the duration as a percentage
// of the function's own timeout with LambdaDurationThresholdPct.
func TestFunctionAlarms(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	res := obj(t, tpl["Resources"])
	conds := obj(t, tpl["Conditions"])
	metrics := map[string][]string{} // function or table logical id -> metrics alarmed
	for id, v := range res {
		r := obj(t, v)
		if r["Type"] != "AWS::CloudWatch::Alarm" {
			continue
		}
		props := obj(t, r["Properties"])
		cond := str(t, r["Condition"])
		if cond != "DeployAlarms" {
			// DeployAlarms and the condition of the function's block.
			and := list(t, obj(t, conds[cond])["Fn::And"])
			assert.Contains(t, and, map[string]any{"Condition": "DeployAlarms"}, "%s: alarms exist with EnableAlarms", id)
		}
		for _, k := range []string{"AlarmActions", "OKActions"} {
			assert.Equal(t, fn("If", []any{"HasAlarmTopic", []any{ref("AlarmSNSTopicArn")}, ref("AWS::NoValue")}), props[k], "%s %s", id, k)
		}
		assert.Equal(t, "notBreaching", props["TreatMissingData"], id)
		metric, dims := props["MetricName"], props["Dimensions"]
		if props["Metrics"] != nil {
			metric, dims = durationAlarm(t, res, id, props)
		} else {
			assert.NotEqual(t, "Duration", metric, "%s: a duration alarm compares with the timeout (metric math, as AcquireDurationAlarm)", id)
		}
		for _, d := range list(t, dims) {
			dim := obj(t, d)
			if r, ok := dim["Value"].(map[string]any); ok {
				if target, ok := r["Ref"].(string); ok {
					metrics[target] = append(metrics[target], str(t, metric))
				}
				if ga, ok := r["Fn::GetAtt"].([]any); ok { // a queue, by QueueName
					metrics[str(t, ga[0])] = append(metrics[str(t, ga[0])], str(t, metric))
				}
			}
		}
	}
	for id, v := range res {
		if obj(t, v)["Type"] != "AWS::Serverless::Function" {
			continue
		}
		assert.Subset(t, metrics[id], []string{"Errors", "Duration", "Throttles"}, "alarms of %s", id)
		// A stream function: its lag, and its failure queue's depth.
		evs, _ := obj(t, obj(t, v)["Properties"])["Events"].(map[string]any)
		for name, e := range evs {
			if obj(t, e)["Type"] != "DynamoDB" {
				continue
			}
			assert.Contains(t, metrics[id], "IteratorAge", "%s: alarm on the lag of its %s mapping", id, name)
			dest := obj(t, obj(t, obj(t, obj(t, e)["Properties"])["DestinationConfig"])["OnFailure"])
			queue := str(t, list(t, obj(t, dest["Destination"])["Fn::GetAtt"])[0])
			assert.Contains(t, metrics[queue], "ApproximateNumberOfMessagesVisible", "%s: alarm on its failure queue %s", id, queue)
		}
	}
	assert.Subset(t, metrics[tableLogicalID], []string{"ReadThrottleEvents", "WriteThrottleEvents"})
	assert.Equal(t, fn("And", []any{map[string]any{"Condition": "DeployAlarms"},
		fn("Not", []any{fn("Equals", []any{ref("AlarmSNSTopicArn"), ""})})}), conds["HasAlarmTopic"])
	pct := param(t, tpl, "LambdaDurationThresholdPct")
	assert.Equal(t, "Number", pct["Type"])
	assert.Equal(t, 80, pct["Default"])
	assert.Equal(t, []any{1, 100}, []any{pct["MinValue"], pct["MaxValue"]})
}

// durationAlarm checks a metric-math duration alarm: one Lambda Duration
// metric, returned as 100 * duration / (its function's timeout in ms), over
// LambdaDurationThresholdPct. It returns the metric and its dimensions.
func durationAlarm(t *testing.T, res map[string]any, id string, props map[string]any) (any, any) {
	t.Helper()
	ms := list(t, props["Metrics"])
	require.Len(t, ms, 2, id)
	m0, m1 := obj(t, ms[0]), obj(t, ms[1])
	assert.Equal(t, "duration", m0["Id"], id)
	assert.Equal(t, false, m0["ReturnData"], id)
	metric := obj(t, obj(t, m0["MetricStat"])["Metric"])
	assert.Equal(t, "AWS/Lambda", metric["Namespace"], id)
	assert.Equal(t, "Duration", metric["MetricName"], id)
	dims := list(t, metric["Dimensions"])
	require.Len(t, dims, 1, id)
	fnID := str(t, obj(t, obj(t, dims[0])["Value"])["Ref"])
	var timeout any
	switch to := obj(t, obj(t, res[fnID])["Properties"])["Timeout"].(type) {
	case int:
		timeout = fmt.Sprintf("100 * duration / (%d * 1000)", to)
	case map[string]any:
		timeout = fn("Sub", "100 * duration / (${"+str(t, to["Ref"])+"} * 1000)")
	default:
		t.Fatalf("%s: timeout %v", fnID, to)
	}
	assert.Equal(t, timeout, m1["Expression"], "%s: the percentage of %s's timeout", id, fnID)
	assert.Equal(t, true, m1["ReturnData"], id)
	assert.Equal(t, ref("LambdaDurationThresholdPct"), props["Threshold"], id)
	assert.Equal(t, "GreaterThanThreshold", props["ComparisonOperator"], id)
	assert.NotContains(t, props, "MetricName", id)
	return metric["MetricName"], dims
}

func toFloat(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	t.Fatalf("not a number: %v", v)
	return 0
}

// TestDashboard: one dashboard whose metrics name resources of the stack.
func TestDashboard(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, "Dashboard")
	assert.Equal(t, "DeployDashboard", r["Condition"])
	sub := list(t, obj(t, r["Properties"])["DashboardBody"].(map[string]any)["Fn::Sub"])
	// A function's row comes only with its function: a string var that is
	// an If on the function's condition, its widgets in a Sub of their own.
	vars := obj(t, sub[1])
	body := str(t, sub[0])
	rows := map[string]string{} // the optional rows' filled text, by variable
	varRe := regexp.MustCompile(`\$\{[A-Za-z:]+\}`)
	for name, v := range vars {
		assert.Contains(t, body, "${"+name+"}", "variable %s is used", name)
		m := obj(t, v)
		if target, ok := m["Ref"]; ok {
			resource(t, tpl, str(t, target))
			continue
		}
		ifArgs := list(t, m["Fn::If"])
		require.Len(t, ifArgs, 3, name)
		assert.Equal(t, "", ifArgs[2], "%s: nothing without its condition", name)
		inner := list(t, obj(t, ifArgs[1])["Fn::Sub"])
		for iname, iv := range obj(t, inner[1]) {
			ir := obj(t, iv)
			target, ok := ir["Ref"]
			if !ok {
				target = list(t, ir["Fn::GetAtt"])[0]
			}
			r := resource(t, tpl, str(t, target))
			assert.Equal(t, ifArgs[0], r["Condition"], "%s: %s exists with the row", name, iname)
			assert.Contains(t, str(t, inner[0]), "${"+iname+"}", "variable %s is used", iname)
		}
		rows[name] = varRe.ReplaceAllString(str(t, inner[0]), "x")
		body = strings.Replace(body, "${"+name+"}", "${"+name+"Row}", 1)
	}
	// The body is JSON once the variables are in, with and without each row.
	without := varRe.ReplaceAllStringFunc(body, func(v string) string {
		if strings.HasSuffix(v, "Row}") {
			return ""
		}
		return "x"
	})
	assert.True(t, json.Valid([]byte(without)), "the dashboard body is not JSON:\n%s", without)
	with := body
	for name, row := range rows {
		with = strings.Replace(with, "${"+name+"Row}", row, 1)
	}
	with = varRe.ReplaceAllString(with, "x")
	assert.True(t, json.Valid([]byte(with)), "the dashboard body with every row is not JSON:\n%s", with)
	assert.Contains(t, with, "IteratorAge", "the stream functions' lag is on the dashboard")
}

// TestEnvironmentValuesAreStrings: a function's environment never takes a
// Number parameter's bare Ref (moto passes it as a number, which the
// Lambda API then cannot return); !Sub '${Param}' makes it a string.
func TestEnvironmentValuesAreStrings(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	params := obj(t, tpl["Parameters"])
	for id, v := range obj(t, tpl["Resources"]) {
		r := obj(t, v)
		if r["Type"] != "AWS::Serverless::Function" {
			continue
		}
		env, ok := obj(t, r["Properties"])["Environment"]
		if !ok {
			continue
		}
		for k, val := range obj(t, obj(t, env)["Variables"]) {
			m, ok := val.(map[string]any)
			if !ok {
				continue
			}
			if name, ok := m["Ref"].(string); ok {
				if p, ok := params[name]; ok {
					assert.NotEqual(t, "Number", obj(t, p)["Type"], "%s %s: !Ref %s of a Number: use !Sub '${%s}'", id, k, name, name)
				}
			}
		}
	}
}

// TestSAMBuildMetadata: every function has what `sam build` needs (the Go
// builder on its folder) and the name deploy derives its folder from.
func TestSAMBuildMetadata(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	for id, v := range obj(t, tpl["Resources"]) {
		r := obj(t, v)
		if r["Type"] != "AWS::Serverless::Function" {
			continue
		}
		assert.Equal(t, "go1.x", obj(t, r["Metadata"])["BuildMethod"], id)
		props := obj(t, r["Properties"])
		uri := str(t, props["CodeUri"])
		folder, ok := strings.CutPrefix(uri, "functions/")
		require.True(t, ok, "%s CodeUri %q", id, uri)
		assert.Equal(t, fn("Sub", "${AWS::StackName}-"+folder), props["FunctionName"], "%s: deploy finds functions/%s by its name", id, folder)
	}
}

// TestSAMConfigNamesEveryParameter: samconfig.toml's parameter_overrides
// name every parameter of template.yaml, active ones at the template's
// default, the empty ones as commented examples.
func TestSAMConfigNamesEveryParameter(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "samconfig.toml"))
	require.NoError(t, err)
	active := map[string]string{}
	named := map[string]bool{}
	re := regexp.MustCompile(`^\s*(#\s*)?"([A-Za-z0-9]+)=([^"]*)"`)
	for _, line := range strings.Split(string(data), "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		named[m[2]] = true
		if m[1] == "" {
			active[m[2]] = m[3]
		}
	}
	for name, v := range obj(t, loadTemplate(t)["Parameters"]) {
		assert.True(t, named[name], "samconfig.toml does not name parameter %s", name)
		def := obj(t, v)["Default"]
		if got, ok := active[name]; ok {
			assert.Equal(t, fmtDefault(def), got, "samconfig.toml %s differs from the template's default", name)
		} else if named[name] {
			assert.Equal(t, "", fmtDefault(def), "%s is commented out in samconfig.toml but has a default", name)
		}
	}
}

func fmtDefault(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	}
	return ""
}
