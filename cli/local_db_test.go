//go:build unix

package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/localstack"
	"github.com/zeroae/zae-limiter-go/shared/localstack/s3local/versitytest"
	"github.com/zeroae/zae-limiter-go/shared/proc"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
)

func runCLI(args ...string) result {
	var out, errw bytes.Buffer
	code := Run(args, strings.NewReader(""), &out, &errw)
	return result{code, out.String(), errw.String()}
}

// pidGone reports whether pid has exited within a few seconds.
func pidGone(pid int) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || !proc.Alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// localBinary builds the CLI the daemon runs as (this test binary cannot).
func localBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "zae-limiter")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/zae-limiter").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// The local stack end to end through the CLI: up prints the one endpoint,
// up again changes nothing, status names every part and function, the
// functions and the Function URL answer, and down stops everything even
// after the daemon crashed.
func TestLocalUpStatusDown(t *testing.T) {
	if !localFull() {
		t.Skip("the whole local stack through the CLI: make test-local (ZAEL_TEST_LOCAL=1)")
	}
	name, port, p, endpoint := localSetup(t, "cli-local")

	r := runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.JSONEq(t, `{"name": "cli-local", "running": false, "functions": [], "parts": []}`, r.out)
	r = runCLI("local", "down", "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "not running")

	start := time.Now()
	r = runCLI("local", "up", "--port", p, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	t.Logf("local up: ready in %v", time.Since(start))
	assert.Equal(t, endpoint+"\n", r.out)
	assert.Contains(t, r.errOut, "export AWS_ENDPOINT_URL="+endpoint)
	assert.Contains(t, r.errOut, "listens on every interface", "DynamoDB Local's exposure is said plainly")
	st, err := localstack.ReadState(name)
	require.NoError(t, err)

	// Idempotent on the same port (and with no port); another port fails naming it.
	r = runCLI("-n", name, "local", "up", "--port", p)
	assert.Equal(t, exitOK, r.code, r.errOut)
	assert.Equal(t, endpoint+"\n", r.out)
	assert.Contains(t, r.errOut, "already running")
	r = runCLI("local", "up", "-n", name)
	assert.Equal(t, exitOK, r.code, r.errOut)
	again, err := localstack.ReadState(name)
	require.NoError(t, err)
	assert.Equal(t, st.DaemonPID, again.DaemonPID, "nothing restarted")
	assert.Equal(t, st.DynamoDB.PID, again.DynamoDB.PID)
	other, err := ddblocal.FreePort()
	require.NoError(t, err)
	r = runCLI("local", "up", "-n", name, "--port", strconv.Itoa(other))
	assert.Equal(t, exitError, r.code)
	assert.Len(t, lines(r.errOut), 1, r.errOut)
	assert.Contains(t, r.errOut, "already running on port "+p)

	// Status: the pinned fields.
	r = runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	s := decode[localStatusJSON](t, r.out)
	assert.True(t, s.Running)
	assert.Equal(t, endpoint, s.Endpoint)
	require.NotEmpty(t, s.AcquireURL)
	require.NotNil(t, s.Table)
	assert.True(t, *s.Table)
	var acquire *localstack.FunctionStatus
	for i := range s.Functions {
		if s.Functions[i].Name == "acquire" {
			acquire = &s.Functions[i]
		}
	}
	require.NotNil(t, acquire)
	assert.True(t, acquire.Running)
	parts := map[string]localPartJSON{}
	for _, p := range s.Parts {
		parts[p.Name] = p
	}
	for _, n := range []string{"endpoint", "dynamodb", "s3", "lambda-runner", "invoke-api", "function-url:acquire"} {
		assert.True(t, parts[n].Running, n)
		assert.NotZero(t, parts[n].PID, n)
		assert.NotEmpty(t, parts[n].LogFile, n)
	}
	assert.Equal(t, port, parts["endpoint"].Port)
	r = runCLI("local", "status", "-n", name)
	assert.Regexp(t, `(?m)^Status:\s+running$`, r.out)

	// The table is ready for the admin workflow through the one endpoint.
	r = runCLI("entity", "set-limits", "user-premium", "--resource", "gpt-4", "-l", "rpm:500", "--endpoint-url", endpoint, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	r = runCLI("namespace", "list", "-o", "json", "--endpoint-url", endpoint, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Equal(t, "default", decode[[]namespaceJSON](t, r.out)[0].Name)

	// The acquire function behind its Function URL, through the Go client.
	c, err := client.New(s.AcquireURL)
	require.NoError(t, err)
	lease, err := c.Acquire(context.Background(), client.Request{EntityID: "user-premium", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
	require.NoError(t, err)
	require.NoError(t, lease.Release(context.Background(), nil))

	// local invoke (what `make invoke` runs) and the function's log.
	r = runCLI("local", "invoke", "acquire", "-n", name, "-e", "../events/acquire/healthz.json")
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Contains(t, r.out, `"statusCode":200`)
	r = runCLI("local", "logs", "acquire", "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Contains(t, r.out, `"type":"platform.report"`)

	// A crashed daemon: down still stops everything it started.
	require.NoError(t, syscall.Kill(st.DaemonPID, syscall.SIGKILL))
	require.True(t, pidGone(st.DaemonPID))
	r = runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.False(t, decode[localStatusJSON](t, r.out).Running)
	r = runCLI("local", "down", "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "DynamoDB Local")
	assert.Contains(t, r.errOut, "the S3 server")
	assert.Contains(t, r.errOut, "data went with it")
	assert.True(t, pidGone(st.DynamoDB.PID), "DynamoDB Local stopped")
	assert.True(t, pidGone(st.S3.PID), "the S3 server stopped")
	r = runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.False(t, decode[localStatusJSON](t, r.out).Running)
	_, err = os.Stat(st.DynamoDB.LogFile)
	_ = port
	assert.NoError(t, err, "the logs stay for post-mortems")
}

// localSetup prepares a private state directory, the daemon's binary and
// a free port for stack name.
func localSetup(t *testing.T, name string) (string, int, string, string) {
	t.Helper()
	ddbtest.Endpoint(t) // skips (or fails under ZAEL_REQUIRE_DYNAMODB) without java or the jar
	versitytest.Binary(t)
	t.Setenv(localExeEnv, localBinary(t))
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	for _, v := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"} {
		t.Setenv(v, "")
	}
	t.Cleanup(func() { _, _ = localstack.Down(name) })
	port, err := ddblocal.FreePort()
	require.NoError(t, err)
	p := strconv.Itoa(port)
	return name, port, p, "http://127.0.0.1:" + p
}

// The quick lifecycle (a template with a table only): up twice is a no-op,
// another port is refused, down after a crash of the daemon stops what it
// started.
func TestLocalLifecycle(t *testing.T) {
	name, _, p, endpoint := localSetup(t, "cli-quick")
	up := []string{"local", "up", "-n", name, "--port", p, "--template", "testdata/table-only.yaml"}
	r := runCLI(up...)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Equal(t, endpoint+"\n", r.out)
	st, err := localstack.ReadState(name)
	require.NoError(t, err)
	r = runCLI(up...)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Equal(t, endpoint+"\n", r.out)
	again, err := localstack.ReadState(name)
	require.NoError(t, err)
	assert.Equal(t, st, again, "up twice changes nothing")
	r = runCLI("local", "up", "-n", name, "--port", "1")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.errOut, "already running on port "+p)

	r = runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	s := decode[localStatusJSON](t, r.out)
	assert.True(t, s.Running)
	assert.Equal(t, endpoint, s.Endpoint)
	assert.Empty(t, s.Functions)

	require.NoError(t, syscall.Kill(st.DaemonPID, syscall.SIGKILL))
	require.True(t, pidGone(st.DaemonPID))
	r = runCLI("local", "down", "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "DynamoDB Local, the S3 server")
	assert.True(t, pidGone(st.DynamoDB.PID), "DynamoDB Local stopped")
	assert.True(t, pidGone(st.S3.PID), "the S3 server stopped")
	_, err = localstack.ReadState(name)
	assert.ErrorIs(t, err, localstack.ErrNoStack)

	// A crash of `local up` itself while the daemon starts: down still
	// stops what the daemon started.
	upCmd := exec.Command(os.Getenv(localExeEnv), up...)
	require.NoError(t, upCmd.Start())
	var started localstack.State
	require.Eventually(t, func() bool {
		started, err = localstack.ReadState(name)
		return err == nil && started.DaemonPID != 0
	}, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, upCmd.Process.Kill())
	_ = upCmd.Wait()
	require.Eventually(t, func() bool {
		started, _ = localstack.ReadState(name)
		return started.DynamoDB.PID != 0 || !proc.Alive(started.DaemonPID)
	}, 60*time.Second, 20*time.Millisecond, "the daemon goes on without its starter")
	r = runCLI("local", "down", "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.True(t, pidGone(started.DaemonPID), "the daemon stopped")
	if started.DynamoDB.PID != 0 {
		assert.True(t, pidGone(started.DynamoDB.PID), "DynamoDB Local stopped")
	}
}

// localFull reports whether the slow local stack tests run (make test-local).
func localFull() bool {
	v, _ := strconv.ParseBool(os.Getenv("ZAEL_TEST_LOCAL"))
	return v
}

// Usage snapshots on the whole local stack: real traffic (a cascade,
// adjustments, a refund, a rollback, a bucket over four shards) through
// the one endpoint; the stack's stream poller runs the aggregator on it,
// and `usage summary` comes to each bucket's net consumption, in every
// window, with nothing failed and nothing sent to the failure destination.
func TestLocalUsageSnapshots(t *testing.T) {
	if !localFull() {
		t.Skip("the whole local stack through the CLI: make test-local (ZAEL_TEST_LOCAL=1)")
	}
	name, _, p, endpoint := localSetup(t, "cli-usage")
	r := runCLI("local", "up", "--port", p, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)

	cfg, err := awsenv.Load(context.Background(), awsenv.Options{EndpointURL: endpoint})
	require.NoError(t, err)
	e := usagetest.Open(t, awsenv.NewDynamoDB(cfg), name)
	usagetest.BusyTraffic(e)
	want := e.ConsumedBy(usagetest.BusyBuckets...)
	last := time.Now()

	summary := func(entity, window string) map[string]int64 {
		r := runCLI("usage", "summary", "-e", entity, "-r", "gpt", "-w", window, "-o", "json", "--endpoint-url", endpoint, "-n", name)
		require.Equal(t, exitOK, r.code, r.errOut)
		got := map[string]int64{}
		for _, l := range decode[summaryJSON](t, r.out).Limits {
			got[l.Name] = l.Total
		}
		return got
	}
	require.Eventually(t, func() bool {
		for _, b := range usagetest.BusyBuckets {
			if !assert.ObjectsAreEqual(want[b], summary(b, "hourly")) {
				return false
			}
		}
		return true
	}, 2*time.Minute, 100*time.Millisecond, "the snapshots reach the buckets' consumption")
	t.Logf("usage summary equal to the buckets' consumption %v after the last acquire", time.Since(last))
	for _, b := range usagetest.BusyBuckets {
		assert.Equal(t, want[b], summary(b, "daily"), b)
	}

	r = runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	var st struct {
		Mappings []struct {
			Function      string `json:"function"`
			Records       int    `json:"records"`
			FailedBatches int    `json:"failed_batches"`
		} `json:"stream_mappings"`
		Destinations []struct {
			Name     string `json:"name"`
			Messages int    `json:"messages"`
		} `json:"destinations"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.out), &st))
	// The table's two stream readers (DECISIONS 3.15), each fed every
	// bucket record, none failed.
	var readers []string
	for _, m := range st.Mappings {
		readers = append(readers, m.Function)
		assert.Positive(t, m.Records, m.Function)
		assert.Zero(t, m.FailedBatches, m.Function)
	}
	assert.ElementsMatch(t, []string{"aggregator", "refill"}, readers)
	for _, d := range st.Destinations {
		assert.Zero(t, d.Messages, d.Name)
	}
}
