//go:build unix

package ddblocal

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A stack that does not answer is given AliveTimeout, then stopped and
// started afresh, and Up says so: it never restarts one silently. A stopped
// (SIGSTOP) JVM is the hung process; a live one is kept (TestUpDown).
func TestUpRestartsHungStackSayingSo(t *testing.T) {
	needJar(t)
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	old := AliveTimeout
	AliveTimeout = 300 * time.Millisecond
	t.Cleanup(func() { AliveTimeout = old })
	ctx := context.Background()
	t.Cleanup(func() { _, _ = Down("hung") })

	port, err := FreePort()
	require.NoError(t, err)
	st, started, err := Up(ctx, UpOptions{Name: "hung", Port: port})
	require.NoError(t, err)
	require.True(t, started)
	require.NoError(t, syscall.Kill(st.PID, syscall.SIGSTOP))
	t.Cleanup(func() { _ = syscall.Kill(st.PID, syscall.SIGCONT) })
	// The stop is delivered asynchronously: wait until ps shows it.
	require.Eventually(t, func() bool {
		out, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(st.PID)).Output()
		return err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), "T")
	}, 10*time.Second, 20*time.Millisecond, "the JVM is stopped")

	var out bytes.Buffer
	// No port asked: the restart need not wait for the old one's port.
	again, started, err := Up(ctx, UpOptions{Name: "hung", Out: &out})
	require.NoError(t, err)
	assert.True(t, started)
	assert.NotEqual(t, st.PID, again.PID)
	assert.Contains(t, out.String(), "did not answer")
	assert.False(t, pidAlive(st.PID), "the hung process is gone")
	assert.True(t, Alive(again))
}
