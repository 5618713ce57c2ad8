package stack

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func loadTemplate(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load()
	require.NoError(t, err)
	return tpl
}

func TestLoadFunctionsAndCodeParameters(t *testing.T) {
	tpl := loadTemplate(t)
	fns := tpl.Functions()
	require.NotEmpty(t, fns)
	assert.Contains(t, tpl.FunctionNames(), "acquire")
	assert.Contains(t, tpl.FunctionNames(), "provisioner")

	var doc map[string]any
	require.NoError(t, json.Unmarshal(tpl.JSON(), &doc))
	res := doc["Resources"].(map[string]any)
	params := doc["Parameters"].(map[string]any)
	require.Contains(t, params, CodeBucketParameter)
	assert.NotContains(t, params[CodeBucketParameter], "Default", "where the code lives has no default")
	for _, f := range fns {
		// Every function is a folder under functions/ with a main package.
		main, err := os.ReadFile(filepath.Join("..", "..", "functions", f.Name, "main.go"))
		require.NoError(t, err, "function %s (%s)", f.LogicalID, f.Name)
		assert.Contains(t, string(main), "\npackage main\n")

		props := res[f.LogicalID].(map[string]any)["Properties"].(map[string]any)
		assert.Equal(t, map[string]any{
			"S3Bucket": map[string]any{"Ref": CodeBucketParameter},
			"S3Key":    map[string]any{"Ref": f.LogicalID + "CodeKey"},
		}, props["Code"], f.LogicalID)
		p, ok := tpl.Parameter(f.CodeKeyParameter)
		require.True(t, ok)
		assert.Equal(t, f.Name+".zip", p.Default)
		assert.NoError(t, p.Check("zae-limiter/"+f.Name+"/0123abcd.zip"))
	}
	// No trace of the translation's placeholder bucket is left.
	assert.NotContains(t, string(tpl.JSON()), `"artifacts"`)
}

// Every folder under functions/ is a function of the template, so deploy
// ships each one (a function added without its template block fails here).
func TestEveryFunctionFolderIsDeployed(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join("..", "..", "functions"))
	require.NoError(t, err)
	tpl := loadTemplate(t)
	for _, e := range entries {
		if e.IsDir() {
			_, ok := tpl.Function(e.Name())
			assert.True(t, ok, "functions/%s is not a function of the embedded template (run `make template`)", e.Name())
		}
	}
}

func TestResolveDefaultsAndKeptValues(t *testing.T) {
	tpl := loadTemplate(t)
	got, err := tpl.resolve("limiter", nil, nil, false)
	require.NoError(t, err)
	for _, name := range tpl.Parameters() {
		if tpl.SetByDeploy(name) {
			assert.NotContains(t, got, name)
			continue
		}
		p, _ := tpl.Parameter(name)
		assert.Equal(t, p.Default, got[name], name)
	}

	deployed := map[string]string{"LeaseKeysRevision": "7", "LogRetentionDays": "90"}
	got, err = tpl.resolve("limiter", map[string]string{"EnableTracing": "true"}, deployed, false)
	require.NoError(t, err)
	assert.Equal(t, "true", got["EnableTracing"])
	assert.Equal(t, "7", got["LeaseKeysRevision"], "the key revision is state: kept")
	assert.Equal(t, "30", got["LogRetentionDays"], "deploy is declarative: an option not given is its default")

	got, err = tpl.resolve("limiter", nil, deployed, true)
	require.NoError(t, err)
	assert.Equal(t, "90", got["LogRetentionDays"], "upgrade keeps every deployed value")
}

func TestResolveRejectsBeforeAnyCall(t *testing.T) {
	tpl := loadTemplate(t)
	for _, tt := range []struct {
		name  string
		stack string
		given map[string]string
		want  []string
	}{
		{"unknown parameter", "limiter", map[string]string{"Bogus": "1"}, []string{"parameter Bogus", "no such parameter"}},
		{"bad choice", "limiter", map[string]string{"EnableTracing": "maybe"}, []string{`EnableTracing="maybe"`, "true, false"}},
		{"not a number", "limiter", map[string]string{"AcquireMemorySize": "big"}, []string{`AcquireMemorySize="big"`, "number"}},
		{"below minimum", "limiter", map[string]string{"AcquireMemorySize": "64"}, []string{"at least 128"}},
		{"log retention not allowed", "limiter", map[string]string{"LogRetentionDays": "31"}, []string{"LogRetentionDays", "one of"}},
		{"pattern", "limiter", map[string]string{"PITRRecoveryPeriodDays": "36"}, []string{"PITRRecoveryPeriodDays", "1 to 35"}},
		{"code is deploy's", "limiter", map[string]string{CodeBucketParameter: "b"}, []string{"set by deploy"}},
		{"roles without IAM", "limiter", map[string]string{"EnableIAM": "false", "EnableIAMRoles": "true"},
			[]string{"EnableIAM=false contradicts EnableIAMRoles", "--create-iam-roles"}},
		{"topic without alarms", "limiter", map[string]string{"EnableAlarms": "false",
			"AlarmSNSTopicArn": "arn:aws:sns:us-east-1:123456789012:ops"}, []string{"AlarmSNSTopicArn", "--no-alarms"}},
		{"role name too long", "limiter", map[string]string{"RoleNameFormat": strings.Repeat("x", 52) + "-{}"},
			[]string{"RoleName would be", "AWS allows 64"}},
		{"bad stack name", "1limiter", nil, []string{`name="1limiter"`, "start with a letter"}},
		{"stack name with underscore", "my_limiter", nil, []string{"letters, digits and '-'"}},
		{"function name too long", "l" + strings.Repeat("x", 55), nil, []string{"FunctionName would be", "AWS allows 64"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tpl.resolve(tt.stack, tt.given, nil, false)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestEvaluatorNames(t *testing.T) {
	tpl := loadTemplate(t)
	params, err := tpl.resolve("limiter", map[string]string{
		"RoleNameFormat": "PowerUserPB-{}", "EnableIAMRoles": "true", "PermissionBoundary": "PowerUserPB",
	}, nil, false)
	require.NoError(t, err)
	e := &evaluator{t: tpl, stack: "limiter", params: params}
	res := tpl.doc["Resources"].(map[string]any)
	prop := func(id, name string) any {
		return e.value(res[id].(map[string]any)["Properties"].(map[string]any)[name])
	}
	assert.Equal(t, "PowerUserPB-limiter-app", prop("AppRole", "RoleName"))
	assert.Equal(t, "PowerUserPB-limiter-acquire", prop("AcquireFunctionRole", "RoleName"))
	assert.Equal(t, unknown{}, prop("AppRole", "PermissionsBoundary"),
		"a boundary given by name becomes an ARN with the partition and account, which only CloudFormation knows")
	assert.Equal(t, "limiter-acq", prop("AcquireOnlyPolicy", "ManagedPolicyName"))
	assert.Equal(t, "limiter-provisioner", prop("ProvisionerFunction", "FunctionName"))

	params["PermissionBoundary"] = "arn:aws:iam::123456789012:policy/Boundary"
	e = &evaluator{t: tpl, stack: "limiter", params: params}
	assert.Equal(t, "arn:aws:iam::123456789012:policy/Boundary", prop("AppRole", "PermissionsBoundary"))
	params["PermissionBoundary"] = ""
	e = &evaluator{t: tpl, stack: "limiter", params: params}
	assert.Equal(t, noValue{}, prop("AppRole", "PermissionsBoundary"))
}

func TestParameterCheck(t *testing.T) {
	lo, hi := 1.0, 10.0
	minLen := 2
	p := Parameter{Name: "N", Type: "Number", MinValue: &lo, MaxValue: &hi}
	assert.NoError(t, p.Check("10"))
	assert.ErrorContains(t, p.Check("0"), "at least 1")
	assert.ErrorContains(t, p.Check("11"), "at most 10")
	s := Parameter{Name: "S", Type: "String", MinLength: &minLen, AllowedPattern: "^a", ConstraintDescription: "starts with a"}
	assert.NoError(t, s.Check("ab"))
	assert.ErrorContains(t, s.Check("a"), `parameter S="a": starts with a`)
	assert.ErrorContains(t, s.Check("ba"), "starts with a")
}
