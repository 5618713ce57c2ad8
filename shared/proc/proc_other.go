//go:build !unix

package proc

import (
	"os"
	"syscall"
)

// SignalGroup kills the process: there is no SIGTERM to ask politely with.
func SignalGroup(pid int, _ bool) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	return p.Kill()
}

// Alive reports whether pid names a process.
func Alive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}

// Cmdline is not known here: "" (so Runs is false).
func Cmdline(int) string { return "" }

// Detached has no meaning here.
func Detached() *syscall.SysProcAttr { return nil }
