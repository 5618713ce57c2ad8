//go:build unix

package proc

import (
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStopEndsAGroupAndRunsChecksTheCommand(t *testing.T) {
	cmd := exec.Command("sleep", "300")
	cmd.SysProcAttr = Detached()
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	pid := cmd.Process.Pid

	assert.True(t, Alive(pid))
	assert.True(t, Runs(pid, "sleep 300"))
	assert.False(t, Runs(pid, "DynamoDBLocal.jar"), "another program on the pid is not ours")
	require.NoError(t, Stop(pid, time.Second))
	<-done
	assert.False(t, Alive(pid))
	assert.NoError(t, Stop(pid, time.Second), "stopping what is gone is fine")
}
