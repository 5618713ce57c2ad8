//go:build unix

package proc

import (
	"errors"
	"syscall"
)

// SignalGroup sends SIGTERM (SIGKILL when kill) to the process group led by
// pid, falling back to the process alone when it leads no group.
func SignalGroup(pid int, kill bool) error {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = syscall.Kill(pid, sig)
	}
	if errors.Is(err, syscall.ESRCH) {
		return nil // gone already
	}
	return err
}

// Alive reports whether pid names a live (not zombie) process.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	return !isZombie(pid)
}

// Detached makes a child its own session (and process group) leader, so it
// outlives its starter and no terminal signal reaches it.
func Detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
