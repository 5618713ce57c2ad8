//go:build unix

package tests

// The whole product on the local stack, as a user meets it: the README's
// walkthrough pasted into bash, `make demo` (also interrupted, and failing),
// and our CLI and the AWS CLI with nothing but AWS_ENDPOINT_URL. Each test
// starts its own stacks under a private state directory. They are slow (a
// `local up` each): `make test-local` runs them (ZAEL_TEST_LOCAL=1).

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/localstack/s3local/versitytest"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

// localUser is a user's machine for the local stack: the checkout, a built
// CLI, and an environment without AWS configuration and with a private
// state directory for the stacks.
type localUser struct {
	t    *testing.T
	root string // the checkout
	cli  string // bin/zae-limiter in the checkout
	env  []string
}

var buildCLI sync.Once

// newLocalUser skips unless the slow local stack tests run, and needs
// DynamoDB Local and versitygw (a skip, or a failure when required).
func newLocalUser(t *testing.T) *localUser {
	t.Helper()
	if v, _ := strconv.ParseBool(os.Getenv("ZAEL_TEST_LOCAL")); !v {
		t.Skip("the whole local stack: make test-local (ZAEL_TEST_LOCAL=1)")
	}
	ddbtest.Endpoint(t) // skips (or fails under ZAEL_REQUIRE_DYNAMODB) without java or the jar
	versitytest.Binary(t)
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	u := &localUser{t: t, root: root, cli: filepath.Join(root, "bin", "zae-limiter")}
	var buildErr error
	var out []byte
	buildCLI.Do(func() {
		cmd := exec.Command("go", "build", "-o", u.cli, "./cmd/zae-limiter")
		cmd.Dir = root
		out, buildErr = cmd.CombinedOutput()
	})
	require.NoError(t, buildErr, "%s", out)
	state := t.TempDir()
	u.env = append(withoutAWSEnv(os.Environ()), "XDG_STATE_HOME="+state,
		"AWS_CONFIG_FILE="+filepath.Join(state, "no-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(state, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true")
	// Whatever a test leaves running stops with it.
	t.Cleanup(func() {
		for _, name := range []string{"limiter", "demo", "only-endpoint"} {
			cmd := exec.Command(u.cli, "local", "down", "-n", name)
			cmd.Env = u.env
			_ = cmd.Run()
		}
	})
	return u
}

// run runs a command in the checkout with the user's environment plus env.
func (u *localUser) run(ctx context.Context, env []string, name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = u.root
	cmd.Env = append(append([]string{}, u.env...), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// stackDown requires that the stack name is not running.
func (u *localUser) stackDown(name string) {
	u.t.Helper()
	out, errOut, err := u.run(context.Background(), nil, u.cli, "local", "status", "-n", name, "-o", "json")
	require.NoError(u.t, err, errOut)
	require.Contains(u.t, out, `"running": false`, "the stack %s is stopped", name)
}

// bashBlock is the first ```bash block after the Markdown heading.
func bashBlock(t *testing.T, md []byte, heading string) string {
	t.Helper()
	i := bytes.Index(md, []byte("\n"+heading+"\n"))
	require.GreaterOrEqual(t, i, 0, "README heading %q", heading)
	m := regexp.MustCompile("(?ms)^```bash\n(.*?)^```\n").FindSubmatch(md[i:])
	require.NotNil(t, m, "a bash block under %q", heading)
	return string(m[1])
}

// The README's walkthrough works when pasted: the CLI tour's block runs in
// bash as written (in the checkout, after a build, with no AWS
// configuration), then the audit archive's block; before the tour's last
// line (local down) the test checks what they did through the endpoint the
// tour exported, with nothing else set.
func TestLocalREADMEWalkthrough(t *testing.T) {
	u := newLocalUser(t)
	md, err := os.ReadFile(filepath.Join(u.root, "README.md"))
	require.NoError(t, err)
	tour := strings.Split(strings.TrimSpace(bashBlock(t, md, "## CLI tour")), "\n")
	down := tour[len(tour)-1]
	require.Equal(t, "zae-limiter local down", down, "the tour ends by stopping the stack")
	script := "set -euo pipefail\n" + strings.Join(tour[:len(tour)-1], "\n") + "\n" +
		bashBlock(t, md, "## The audit archive") + `printf '\nENDPOINT=%s\n' "$AWS_ENDPOINT_URL"` + "\n"

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, errOut, err := u.run(ctx, nil, "bash", "-c", script)
	require.NoError(t, err, "the walkthrough failed:\n%s\n%s", out, errOut)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	m := regexp.MustCompile(`(?m)^ENDPOINT=(http://127\.0\.0\.1:\d+)$`).FindStringSubmatch(out)
	require.NotNil(t, m, "the tour exported AWS_ENDPOINT_URL")
	endpoint := m[1]

	only := []string{"AWS_ENDPOINT_URL=" + endpoint}
	zl := func(args ...string) string {
		t.Helper()
		o, e, err := u.run(ctx, only, u.cli, args...)
		require.NoError(t, err, "zae-limiter %v: %s", args, e)
		return o
	}
	require.Contains(t, out, "Applied: 5 created", "limits apply through the provisioner")
	require.Contains(t, errOut, "through the function limiter-provisioner")
	require.Contains(t, errOut, "Admitted rpm=1 tpm=500 for key-acme-1/gpt-4")
	// The key draws on the manifest's limits and on its project's.
	var avail struct {
		Limits []struct {
			EntityID string `json:"entity_id"`
			Name     string `json:"name"`
			Capacity int64  `json:"capacity"`
		} `json:"limits"`
	}
	require.NoError(t, json.Unmarshal([]byte(zl("available", "key-acme-1", "gpt-4", "-o", "json")), &avail))
	got := map[string]int64{}
	for _, l := range avail.Limits {
		got[l.EntityID+" "+l.Name] = l.Capacity
	}
	require.Equal(t, map[string]int64{"key-acme-1 rpm": 100, "key-acme-1 tpm": 50_000, "proj-acme rpm": 150, "proj-acme tpm": 60_000}, got)
	// What the aggregator counted: the one acquire, on the key and its project.
	for _, id := range []string{"key-acme-1", "proj-acme"} {
		require.Eventually(t, func() bool {
			var sum struct {
				Limits []struct {
					Name  string `json:"name"`
					Total int64  `json:"total"`
				} `json:"limits"`
			}
			require.NoError(t, json.Unmarshal([]byte(zl("usage", "summary", "-e", id, "-r", "gpt-4", "-o", "json")), &sum))
			got := map[string]int64{}
			for _, l := range sum.Limits {
				got[l.Name] = l.Total
			}
			return got["rpm"] == 1 && got["tpm"] == 500
		}, time.Minute, 100*time.Millisecond, "usage summary -e %s counts the acquire", id)
	}
	require.Contains(t, out, `"archived": `, "audit archive ran")
	require.Contains(t, out, "limits_set", "audit list --archived read user-premium's events back from S3")
	require.JSONEq(t, "[]", zl("audit", "list", "user-premium", "-o", "json"), "the archived events left DynamoDB")

	// The AWS CLI with the same endpoint and whatever credentials its user has.
	if aws, err := exec.LookPath("aws"); err == nil {
		creds := append(only, "AWS_ACCESS_KEY_ID=AKIAANYONE", "AWS_SECRET_ACCESS_KEY=anything", "AWS_DEFAULT_REGION=eu-west-3")
		o, e, err := u.run(ctx, creds, aws, "dynamodb", "list-tables", "--output", "text")
		require.NoError(t, err, e)
		require.Contains(t, o, "limiter")
		o, e, err = u.run(ctx, creds, aws, "s3", "ls")
		require.NoError(t, err, e)
		require.Contains(t, o, "limiter-audit-archive")
	}

	_, errOut, err = u.run(ctx, nil, "bash", "-c", "set -euo pipefail\nexport PATH=$PWD/bin:$PATH\n"+down)
	require.NoError(t, err, errOut)
	require.Contains(t, errOut, "Stopped the local stack")
	u.stackDown("limiter")
}

// makeDemo starts `make demo` in the checkout, in its own process group
// (as a terminal runs it), with args.
func (u *localUser) makeDemo(args ...string) (*exec.Cmd, *bytes.Buffer, *syncio.Buffer) {
	cmd := exec.Command("make", append([]string{"--no-print-directory", "demo"}, args...)...)
	cmd.Dir = u.root
	// Not the make running these tests: its flags and level stay out.
	cmd.Env = append(append([]string{}, u.env...), "MAKEFLAGS=", "MAKELEVEL=", "MFLAGS=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	var errOut syncio.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	require.NoError(u.t, cmd.Start())
	u.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
		}
	})
	return cmd, &out, &errOut
}

// `make demo` from a checkout, end to end: every step shows, the report
// says what happened, and the stack is stopped afterwards.
func TestLocalMakeDemo(t *testing.T) {
	u := newLocalUser(t)
	cmd, out, errOut := u.makeDemo(`DEMO_ARGS=--duration 5s`)
	require.NoError(t, cmd.Wait(), "make demo:\n%s\n%s", out, errOut)
	t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
	for _, want := range []string{
		"$ zae-limiter -n demo limits apply -f cmd/zael-demo/limits.yaml --yes\n",
		`through the function demo-provisioner`,
		"$ zae-limiter -n demo entity create key-acme-1 --parent proj-acme --cascade\n",
		"through the Go client over HTTP to the acquire function at http://127.0.0.1:",
		"$ zae-limiter -n demo usage list -r gpt-4 -w hourly\n",
		"$ zae-limiter -n demo usage summary -e proj-acme -r gpt-4\n",
		"the snapshots of every entity equal its bucket's counters",
		"$ zae-limiter -n demo audit archive --older-than 0s\n",
		"$ zae-limiter -n demo audit list premium --archived\n",
		`Stopped the local stack "demo"`,
	} {
		require.Contains(t, errOut.String(), want)
	}
	require.Regexp(t, `make demo: \d+ s from local up to local down`, errOut.String())
	require.Contains(t, out.String(), "Applied: 5 created, 0 updated, 0 deleted.")
	require.Regexp(t, `limits_set +arn:aws:lambda:us-east-1:123456789012:function:demo-provisioner +gpt-4`, out.String(),
		"premium's limits, applied by the provisioner, read back from S3")
	require.Regexp(t, `(?m)^ENTITY +ADMITTED +REJECTED`, out.String())
	require.Contains(t, out.String(), "matches TPM USED for every entity")
	require.Contains(t, out.String(), "no bucket change was lost or counted twice")
	require.Regexp(t, `(?m)^Tokens per minute per entity`, out.String())
	require.Regexp(t, `(?m)^user-basic +[ ▁▂▃▄▅▆▇█]+ +\S+ tpm +\S+ tpm +40k tpm$`, out.String(), "the chart")
	u.stackDown("demo")
}

// Ctrl-C during the workload: the demo reports what it did so far and the
// stack is stopped; so it is when the demo fails.
func TestLocalMakeDemoInterruptedOrFailing(t *testing.T) {
	u := newLocalUser(t)
	cmd, out, errOut := u.makeDemo(`DEMO_ARGS=--duration 2m`)
	deadline := time.Now().Add(3 * time.Minute)
	for !strings.Contains(errOut.String(), "acquires") {
		require.True(t, time.Now().Before(deadline), "the workload never started:\n%s", errOut)
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT), "Ctrl-C")
	err := cmd.Wait()
	require.Error(t, err, "an interrupted make fails")
	require.Contains(t, errOut.String(), `Stopped the local stack "demo"`, "%s", errOut)
	require.Regexp(t, `(?m)^ENTITY +ADMITTED +REJECTED`, out.String(), "the report of what ran")
	u.stackDown("demo")

	cmd, out, errOut = u.makeDemo(`DEMO_ARGS=--manifest no-such-file.yaml`)
	require.Error(t, cmd.Wait())
	require.Contains(t, errOut.String(), "no-such-file.yaml", "%s\n%s", out, errOut)
	require.Contains(t, errOut.String(), `Stopped the local stack "demo"`)
	u.stackDown("demo")
}
