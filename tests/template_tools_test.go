package tests

import (
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Both tools come from the machine image, not from the project: without
// them these tests skip (`make lint`, `make test` and `make validate` run
// the same checks and say so when they skip).

func TestTemplateCfnLint(t *testing.T) {
	t.Parallel()
	cfnLint := lookTool(t, "cfn-lint")
	out, err := exec.Command(cfnLint, "--", templatePath(t)).CombinedOutput()
	assert.NoError(t, err, "cfn-lint template.yaml reported problems:\n%s", out)
}

func TestTemplateSAMTranslate(t *testing.T) {
	t.Parallel()
	translated := samTranslate(t)

	var tpl map[string]any
	require.NoError(t, json.Unmarshal(translated, &tpl))
	assert.NotContains(t, tpl, "Transform")
	assert.NotContains(t, tpl, "Globals")
	types := map[string]string{}
	for id, r := range obj(t, tpl["Resources"]) {
		types[id] = str(t, obj(t, r)["Type"])
	}
	for id, typ := range map[string]string{
		tableLogicalID:                  "AWS::DynamoDB::Table",
		"AcquireOnlyPolicy":             "AWS::IAM::ManagedPolicy",
		"FullAccessPolicy":              "AWS::IAM::ManagedPolicy",
		"ReadOnlyPolicy":                "AWS::IAM::ManagedPolicy",
		acquireFunctionID:               "AWS::Lambda::Function",
		acquireFunctionID + "Url":       "AWS::Lambda::Url",
		acquireRoleID:                   "AWS::IAM::Role",
		acquireLogGroupID:               "AWS::Logs::LogGroup",
		"AuditArchiveBucket":            "AWS::S3::Bucket",
		"AuditArchiveBucketPolicy":      "AWS::S3::BucketPolicy",
		archiverFunctionID:              "AWS::Lambda::Function",
		archiverFunctionID + "Schedule": "AWS::Events::Rule",
		archiverRoleID:                  "AWS::IAM::Role",
		archiverLogGroupID:              "AWS::Logs::LogGroup",
		"ArchiverErrorsAlarm":           "AWS::CloudWatch::Alarm",
	} {
		assert.Equal(t, typ, types[id], "translated resource %s", id)
	}
	// The roles are ours: SAM must not have generated others (with
	// AWSLambdaBasicExecutionRole and, for any intrinsic Tracing, X-Ray).
	roles, ours := 0, 0
	for _, typ := range types {
		if typ == "AWS::IAM::Role" {
			roles++
		}
	}
	for _, r := range obj(t, loadTemplate(t)["Resources"]) {
		if obj(t, r)["Type"] == "AWS::IAM::Role" {
			ours++
		}
	}
	assert.Equal(t, ours, roles, "IAM roles in the translated template: %v", types)
	assert.Equal(t, "AWS::Lambda::Function", types[provisionerFunctionID])
	// The aggregator's mapping as SAM renders it: nothing of it dropped.
	require.Equal(t, "AWS::Lambda::EventSourceMapping", types[aggregatorFunctionID+"Stream"])
	esm := obj(t, obj(t, obj(t, tpl["Resources"])[aggregatorFunctionID+"Stream"])["Properties"])
	for _, k := range []string{"FunctionResponseTypes", "FilterCriteria", "DestinationConfig", "BisectBatchOnFunctionError",
		"MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "MaximumBatchingWindowInSeconds", "ParallelizationFactor"} {
		assert.Contains(t, esm, k, "translated %sStream", aggregatorFunctionID)
	}

	// Globals applied by the real translator, not by this package's reading of them.
	fnProps := obj(t, obj(t, obj(t, tpl["Resources"])[acquireFunctionID])["Properties"])
	assert.Equal(t, "provided.al2023", fnProps["Runtime"])
	assert.Equal(t, []any{"arm64"}, fnProps["Architectures"])
	assert.Equal(t, "bootstrap", fnProps["Handler"])
	assert.Equal(t, map[string]any{"S3Bucket": "artifacts", "S3Key": acquireFunctionID + ".zip"}, fnProps["Code"])
	assert.Equal(t, map[string]any{"Mode": fn("If", []any{"TracingEnabled", "Active", "PassThrough"})}, fnProps["TracingConfig"])
	assert.Equal(t, map[string]any{"LogFormat": "JSON", "LogGroup": ref(acquireLogGroupID)}, fnProps["LoggingConfig"])
	assert.Equal(t, fn("GetAtt", []any{acquireRoleID, "Arn"}), fnProps["Role"])
	urlProps := obj(t, obj(t, obj(t, tpl["Resources"])[acquireFunctionID+"Url"])["Properties"])
	assert.Equal(t, ref("AcquireUrlAuthType"), urlProps["AuthType"])
	assert.Equal(t, "BUFFERED", urlProps["InvokeMode"])

	// cfn-lint skips some checks on a SAM template (e.g. W3037, unknown IAM
	// actions) that it runs on the translated one.
	cfnLint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Log("cfn-lint not on PATH: translated template not linted")
		return
	}
	lint := exec.Command(cfnLint)
	lint.Stdin = bytes.NewReader(translated)
	out, err := lint.CombinedOutput()
	assert.NoError(t, err, "cfn-lint on the translated template reported problems:\n%s", out)
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not on PATH: check skipped", name)
	}
	return p
}

// TestMakeSAMBuildGoFlags runs `make sam-build` with a stand-in for the SAM
// CLI that builds the acquire function as SAM's Go builder does (go build in
// CodeUri with GOOS and GOARCH set, everything else from the environment),
// and checks the binary Lambda would run: linux/arm64, static, stripped,
// built with -tags=lambda.norpc and -trimpath.
func TestMakeSAMBuildGoFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the acquire function: skipped with -short")
	}
	t.Parallel()
	makeBin := lookTool(t, "make")
	goBin := lookTool(t, "go")

	tpl := loadTemplate(t)
	r := resource(t, tpl, acquireFunctionID)
	require.Equal(t, "go1.x", obj(t, r["Metadata"])["BuildMethod"])
	codeURI, err := filepath.Abs(filepath.Join("..", str(t, obj(t, r["Properties"])["CodeUri"])))
	require.NoError(t, err)
	arch := effectiveFunctionProps(t, tpl, obj(t, r["Properties"]))["Architectures"]
	require.Equal(t, []any{"arm64"}, arch)

	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	require.NoError(t, os.MkdirAll(out, 0o755))
	fake := "#!/bin/sh\n" +
		"# stand-in for `sam build`: aws-lambda-builders' GoModulesBuilder for one function\n" +
		"set -eu\n" +
		"test \"$1\" = build\n" +
		"printf '%s\\n' \"${GOFLAGS-}\" > \"$SAMTEST_OUT/goflags\"\n" +
		"cd \"$SAMTEST_CODEURI\"\n" +
		"GOOS=linux GOARCH=arm64 exec \"$SAMTEST_GO\" build -o \"$SAMTEST_OUT/bootstrap\" \"$SAMTEST_CODEURI\"\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin", "sam"), []byte(fake), 0o755))

	cmd := exec.Command(makeBin, "-s", "--no-print-directory", "sam-build")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Join(dir, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"SAMTEST_OUT="+out, "SAMTEST_CODEURI="+codeURI, "SAMTEST_GO="+goBin,
		"GOFLAGS=", "CGO_ENABLED=1") // the Makefile's exports must win
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "make sam-build:\n%s", b)

	goflags, err := os.ReadFile(filepath.Join(out, "goflags"))
	require.NoError(t, err)
	assert.Contains(t, string(goflags), "-tags=lambda.norpc")

	bin := filepath.Join(out, "bootstrap")
	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, elf.EM_AARCH64, f.Machine, "arm64 binary")
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "statically linked (CGO_ENABLED=0)")
	}
	assert.Nil(t, f.Section(".symtab"), "stripped (-ldflags=-s)")

	info, err := buildinfo.ReadFile(bin)
	require.NoError(t, err)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	assert.Equal(t, "lambda.norpc", settings["-tags"])
	assert.Equal(t, "true", settings["-trimpath"])
	assert.Equal(t, "0", settings["CGO_ENABLED"])
	assert.Equal(t, "linux", settings["GOOS"])
	assert.Equal(t, "arm64", settings["GOARCH"])
}
