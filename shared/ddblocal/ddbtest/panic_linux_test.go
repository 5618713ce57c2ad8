package ddbtest_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
)

// The parent-death signal that makes this work is Linux only.
func TestPanicLeavesNoDynamoDBLocal(t *testing.T) {
	if os.Getenv(ddbtest.EndpointEnv) != "" {
		t.Skip("uses an external DynamoDB")
	}
	ddbtest.Endpoint(t) // skips (or fails) like the child would
	wd, err := os.Getwd()
	require.NoError(t, err)
	pidFile := filepath.Join(t.TempDir(), "pid")

	out, err := child(t, "panic", wd, "DDBTEST_PIDFILE="+pidFile)
	require.Error(t, err, "the child panics")
	require.Contains(t, out, "deliberate panic")
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err, out)
	pid, err := strconv.Atoi(string(b))
	require.NoError(t, err)
	require.Positive(t, pid)
	t.Cleanup(func() {
		if !gone(pid) { // never leak it, even when the assertion fails
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})

	assert.Eventually(t, func() bool { return gone(pid) }, 10*time.Second, 50*time.Millisecond,
		"DynamoDB Local (pid %d) outlived the panicking test process", pid)
}

func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}
