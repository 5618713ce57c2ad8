package cli

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/mototest"
	"github.com/zeroae/zae-limiter-go/shared/stack"
)

// stackCLI runs the CLI against moto_server (its own per test) with the
// functions' code from fake zips: moto stores the code and never runs it
// (the real build is TestLambdaExportBuildsArm64's and shared/stack's).
type stackCLI struct {
	t        *testing.T
	endpoint string
	code     stack.Code
}

func newStackCLI(t *testing.T) *stackCLI {
	endpoint := mototest.Start(t, "the stack on a local CloudFormation")
	tpl, err := stack.Load()
	require.NoError(t, err)
	fs := fstest.MapFS{}
	for _, name := range tpl.FunctionNames() {
		z, err := stack.ZipBootstrap([]byte("#!/bin/sh\n# " + name + "\n"))
		require.NoError(t, err)
		fs[name+".zip"] = &fstest.MapFile{Data: z}
	}
	return &stackCLI{t: t, endpoint: endpoint, code: stack.FSCode{FS: fs, Where: "the test"}}
}

// run runs the CLI with --endpoint-url and returns exit code, stdout, stderr.
func (c *stackCLI) run(args ...string) (int, string, string) {
	c.t.Helper()
	env, out, errw := testEnv(false)
	env.Code, env.PollInterval = c.code, 50*time.Millisecond
	code := run(c.t.Context(), append(args, "--endpoint-url", c.endpoint), env)
	return code, out.String(), errw.String()
}

func (c *stackCLI) json(v any, args ...string) int {
	c.t.Helper()
	code, out, errw := c.run(args...)
	require.NoError(c.t, json.Unmarshal([]byte(out), v), "stdout of %v: %q\nstderr: %s", args, out, errw)
	return code
}

// TestStackCommands is the "done when" against moto_server:
// deploy, status, list, a changed deploy, no changes, check, upgrade,
// delete.
func TestStackCommands(t *testing.T) {
	t.Parallel()
	c := newStackCLI(t)

	code, _, errw := c.run("deploy", "-n", "demo", "-t", "team=platform")
	require.Equal(t, exitOK, code, errw)
	assert.Contains(t, errw, "Deploying stack demo")
	assert.Regexp(t, `\[ *\d+\.\ds\]  CREATE_COMPLETE +AWS::CloudFormation::Stack +demo`, errw, "progress with the elapsed time")
	assert.Contains(t, errw, `Namespace "default" is registered`)

	// The same again: nothing to do, said plainly. (moto compares a change
	// set with the parameters the stack was created with, so this is
	// checked before any update.)
	code, out, errw := c.run("deploy", "-n", "demo", "-t", "team=platform")
	require.Equal(t, exitOK, code, errw)
	assert.Contains(t, errw, "No changes: stack demo is up to date")
	assert.Contains(t, out, "unchanged")

	var st stack.Status
	require.Equal(t, exitOK, c.json(&st, "status", "-n", "demo", "-o", "json"))
	require.NotNil(t, st.Stack)
	assert.Equal(t, "CREATE_COMPLETE", st.Stack.Status)
	assert.Equal(t, "platform", st.Stack.Tags["team"])
	require.NotNil(t, st.Table)
	assert.Equal(t, "ACTIVE", st.Table.Status)
	assert.True(t, st.Connectivity.Available)
	assert.Equal(t, version(), st.Version.LambdaVersion)
	assert.NotEmpty(t, st.Policies["AcquireOnly"])
	// The text form: every function, the aggregator's stream mapping.
	code, out, errw = c.run("status", "-n", "demo")
	require.Equal(t, exitOK, code, errw)
	tpl, err := stack.Load()
	require.NoError(t, err)
	for _, n := range tpl.FunctionNames() {
		assert.Regexp(t, `(?m)^demo-`+n+`\s+\S+\s+provided\.al2023\s`, out)
	}
	assert.Regexp(t, `(?m)^STREAM MAPPING\s+FUNCTION\s+STATE\s+BATCH\s+LAST RESULT\n[0-9a-f-]{36}\s+demo-aggregator\s+\S+\s+100\s`, out)
	assert.Regexp(t, `(?m)^role\s+AggregatorFunction\s+arn:aws:iam::\d{12}:role/demo-aggr$`, out)

	var list []stack.Summary
	require.Equal(t, exitOK, c.json(&list, "list", "-o", "json"))
	require.Len(t, list, 1)
	assert.Equal(t, "demo", list[0].Name)

	// A changed option updates the stack.
	code, _, errw = c.run("deploy", "-n", "demo", "--log-retention-days", "90", "-t", "team=platform")
	require.Equal(t, exitOK, code, errw)
	assert.Contains(t, errw, "Updating stack demo")
	require.Equal(t, exitOK, c.json(&st, "status", "-n", "demo", "-o", "json"))
	assert.Equal(t, "UPDATE_COMPLETE", st.Stack.Status)
	assert.Equal(t, "90", st.Stack.Parameters["LogRetentionDays"])

	code, out, errw = c.run("check", "-n", "demo")
	assert.Equal(t, exitOK, code, errw)
	assert.Contains(t, out, "COMPATIBLE")
	code, _, errw = c.run("upgrade", "-n", "demo")
	assert.Equal(t, exitOK, code, errw)
	assert.Contains(t, errw, "Already up to date")
	// An upgrade keeps the options the stack was deployed with.
	code, _, errw = c.run("upgrade", "-n", "demo", "--force")
	require.Equal(t, exitOK, code, errw)
	assert.Contains(t, errw, "Upgrade complete")
	require.Equal(t, exitOK, c.json(&st, "status", "-n", "demo", "-o", "json"))
	assert.Equal(t, "90", st.Stack.Parameters["LogRetentionDays"])

	// moto makes no secret for the stack: the rotation says what it found
	// (shared/stack tests the rotation itself).
	code, _, errw = c.run("lease-keys", "rotate", "-n", "demo")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errw, "stack demo has no lease-keys secret and no LeaseKeysParameterName")

	code, _, errw = c.run("delete", "-n", "demo", "-y")
	require.Equal(t, exitOK, code, errw)
	assert.Contains(t, errw, "Deleted stack demo")
	require.Equal(t, exitOK, c.json(&list, "list", "-o", "json"))
	assert.Empty(t, list)

	code, _, errw = c.run("delete", "-n", "demo", "-y")
	assert.Equal(t, exitOK, code, errw)
	assert.Contains(t, errw, "Stack demo does not exist: nothing to delete")
	code, out, errw = c.run("status", "-n", "demo", "-o", "json")
	assert.Equal(t, exitError, code)
	assert.Contains(t, errw, "infrastructure is not available")
	assert.Contains(t, out, `"stack": null`, "the document is printed anyway")
	code, _, errw = c.run("check", "-n", "demo")
	assert.Equal(t, exitError, code, "no table: nothing to check")
	assert.Contains(t, errw, `table "demo" not found`)
}

// A deploy refused for its options changes nothing.
func TestDeployRefusedBeforeAWS(t *testing.T) {
	t.Parallel()
	c := newStackCLI(t)
	code, out, errw := c.run("deploy", "-n", "demo", "--no-iam", "--create-iam-roles")
	assert.Equal(t, exitError, code)
	assert.Empty(t, out)
	require.Len(t, lines(errw), 1, errw)
	var list []stack.Summary
	require.Equal(t, exitOK, c.json(&list, "list", "-o", "json"))
	assert.Empty(t, list, "nothing was created")
	code, _, errw = c.run("list")
	assert.Equal(t, exitOK, code)
	assert.Contains(t, errw, "No rate limiter instances found in us-east-1")
}

func TestCfnTemplate(t *testing.T) {
	env, out, _ := testEnv(false)
	require.Equal(t, exitOK, run(t.Context(), []string{"cfn-template"}, env))
	tpl, err := stack.Load()
	require.NoError(t, err)
	assert.Equal(t, string(tpl.Indented()), out.String(), "exactly what deploy deploys")
	var doc map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc))
	assert.NotContains(t, doc, "Transform")
	assert.Contains(t, doc["Parameters"], stack.CodeBucketParameter)
}

// TestLambdaExportBuildsArm64: lambda-export writes the zip a function
// runs, built from the checkout (no code embedded in a test binary).
func TestLambdaExportBuildsArm64(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the acquire function: skipped with -short")
	}
	dir := t.TempDir()
	zipPath := filepath.Join(dir, "acquire.zip")
	env, _, errw := testEnv(false)
	code := run(t.Context(), []string{"lambda-export", "--function", "acquire", "--output", zipPath}, env)
	require.Equal(t, exitOK, code, errw.String())
	assert.Contains(t, errw.String(), "Exported the acquire function to "+zipPath)

	b, err := os.ReadFile(zipPath)
	require.NoError(t, err)
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	require.NoError(t, err)
	require.Len(t, zr.File, 1)
	assert.Equal(t, "bootstrap", zr.File[0].Name)
	rc, err := zr.File[0].Open()
	require.NoError(t, err)
	bin, err := io.ReadAll(rc)
	require.NoError(t, err)
	e, err := elf.NewFile(bytes.NewReader(bin))
	require.NoError(t, err)
	assert.Equal(t, elf.EM_AARCH64, e.Machine, "linux/arm64")

	// An existing file is kept unless --force; the seed's default function
	// is named when this build lacks it.
	env, _, errw = testEnv(false)
	assert.Equal(t, exitError, run(t.Context(), []string{"lambda-export", "--function", "acquire", "--output", zipPath}, env))
	assert.Contains(t, errw.String(), "pass --force")
	tpl, err := stack.Load()
	require.NoError(t, err)
	if _, ok := tpl.Function("aggregator"); !ok {
		env, _, errw = testEnv(false)
		assert.Equal(t, exitError, run(t.Context(), []string{"lambda-export", "--output", filepath.Join(dir, "l.zip")}, env))
		assert.Contains(t, errw.String(), `invalid --function "aggregator": not a function of this build (its functions: acquire`)
	}
}

// The functions' code comes from ZAEL_FUNCTION_ZIPS, else the binary,
// else a build of the checkout.
func TestFunctionCodeSources(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "acquire.zip"), []byte("zip"), 0o644))
	env, _, _ := testEnv(false)
	env.Getenv = func(k string) string {
		if k == functionZipsEnv {
			return dir
		}
		return ""
	}
	code, where, err := env.functionCode()
	require.NoError(t, err)
	assert.Equal(t, dir, where)
	b, err := code.Zip(t.Context(), "acquire")
	require.NoError(t, err)
	assert.Equal(t, []byte("zip"), b)

	env.Getenv = func(string) string { return "" }
	FunctionZips = fstest.MapFS{"acquire.zip": {Data: []byte("embedded")}}
	t.Cleanup(func() { FunctionZips = nil })
	_, where, err = env.functionCode()
	require.NoError(t, err)
	assert.Equal(t, "this zae-limiter binary", where)

	FunctionZips = nil
	_, where, err = env.functionCode()
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(where, "a build of the checkout "), where)

	t.Chdir(t.TempDir())
	_, _, err = env.functionCode()
	assert.ErrorContains(t, err, "built without the functions' code")
}

// TestDeployTiming deploys the full stack with the real functions (built
// from this checkout for linux/arm64) to moto and reports each step's
// time: `make test-deploy` (ZAEL_DEPLOY_TIMING=1) runs it for
// docs/performance.md.
func TestDeployTiming(t *testing.T) {
	if os.Getenv("ZAEL_DEPLOY_TIMING") == "" {
		t.Skip("set ZAEL_DEPLOY_TIMING=1 (make test-deploy) to time a full deploy with the real functions")
	}
	endpoint := mototest.Start(t, "the stack on a local CloudFormation")
	step := func(name string, want int, args ...string) {
		t.Helper()
		env, _, errw := testEnv(false)
		env.PollInterval = 50 * time.Millisecond
		start := time.Now()
		code := run(t.Context(), append(args, "--endpoint-url", endpoint), env)
		d := time.Since(start)
		require.Equal(t, want, code, errw.String())
		t.Logf("%-34s %8.2f s", name, d.Seconds())
	}
	step("build functions + deploy (create)", exitOK, "deploy", "-n", "timing")
	step("deploy again (no changes)", exitOK, "deploy", "-n", "timing")
	step("deploy --log-retention-days 90", exitOK, "deploy", "-n", "timing", "--log-retention-days", "90")
	step("status", exitOK, "status", "-n", "timing")
	step("delete", exitOK, "delete", "-n", "timing", "-y")
}
