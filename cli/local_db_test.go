//go:build unix

package cli

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
)

func runCLI(args ...string) result {
	var out, errw bytes.Buffer
	code := Run(args, strings.NewReader(""), &out, &errw)
	return result{code, out.String(), errw.String()}
}

// pidGone reports whether pid has exited and been reaped within a few
// seconds (this process started it, so a zombie lingers until reaped).
func pidGone(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// local up/status/down end to end with a real DynamoDB Local on a free port
// and a private state directory; nothing is left running.
func TestLocalUpStatusDown(t *testing.T) {
	ddbtest.Endpoint(t) // skips (or fails under ZAEL_REQUIRE_DYNAMODB) without java or the jar
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	for _, v := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"} {
		t.Setenv(v, "")
	}
	const name = "cli-local"
	var pid int
	t.Cleanup(func() {
		_, _ = ddblocal.Down(name)
		if pid != 0 {
			assert.True(t, pidGone(pid), "DynamoDB Local (pid %d) left running", pid)
		}
	})
	port, err := ddblocal.FreePort()
	require.NoError(t, err)
	p := strconv.Itoa(port)
	endpoint := "http://127.0.0.1:" + p

	// Nothing yet.
	r := runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.JSONEq(t, `{"name": "cli-local", "running": false}`, r.out)
	r = runCLI("local", "down", "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "not running")

	// Up prints the endpoint on stdout and hints on stderr.
	r = runCLI("local", "up", "--port", p, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Equal(t, endpoint+"\n", r.out)
	assert.Contains(t, r.errOut, "--endpoint-url "+endpoint)
	assert.Contains(t, r.errOut, "export AWS_ENDPOINT_URL="+endpoint)

	st, running, err := ddblocal.Status(name)
	require.NoError(t, err)
	require.True(t, running)
	pid = st.PID

	// Idempotent on the same port (and with no port); another port fails naming it.
	r = runCLI("-n", name, "local", "up", "--port", p)
	assert.Equal(t, exitOK, r.code, r.errOut)
	assert.Equal(t, endpoint+"\n", r.out)
	r = runCLI("local", "up", "-n", name)
	assert.Equal(t, exitOK, r.code, r.errOut)
	other, err := ddblocal.FreePort()
	require.NoError(t, err)
	r = runCLI("local", "up", "-n", name, "--port", strconv.Itoa(other))
	assert.Equal(t, exitError, r.code)
	assert.Len(t, lines(r.errOut), 1, r.errOut)
	assert.Contains(t, r.errOut, "already running on port "+p)

	// Status.
	r = runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	s := decode[localStatusJSON](t, r.out)
	assert.True(t, s.Running)
	assert.Equal(t, port, s.Port)
	assert.Equal(t, pid, s.PID)
	assert.Equal(t, endpoint, s.Endpoint)
	require.NotNil(t, s.Table)
	assert.True(t, *s.Table)
	r = runCLI("local", "status", "-n", name)
	assert.Regexp(t, `(?m)^Status:\s+running$`, r.out)

	// The table is ready for the admin workflow: schema, version record and
	// the default namespace.
	r = runCLI("entity", "set-limits", "user-premium", "--resource", "gpt-4", "-l", "rpm:500",
		"--endpoint-url", endpoint, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	r = runCLI("namespace", "list", "-o", "json", "--endpoint-url", endpoint, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	nss := decode[[]namespaceJSON](t, r.out)
	require.Len(t, nss, 1)
	assert.Equal(t, "default", nss[0].Name)
	r = runCLI("version", "-o", "json", "--endpoint-url", endpoint, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Equal(t, "1.0.0", decode[versionJSON](t, r.out).Table.SchemaVersion)

	// Down, without any flag but the name, stops what the state file names.
	r = runCLI("local", "down", "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.Contains(t, r.errOut, "Stopped")
	assert.True(t, pidGone(pid), "process stopped")
	_, err = os.Stat(st.LogFile)
	assert.NoError(t, err, "the log stays for post-mortems")
	r = runCLI("local", "status", "-n", name, "-o", "json")
	require.Equal(t, exitOK, r.code, r.errOut)
	assert.False(t, decode[localStatusJSON](t, r.out).Running)
}
