// Package proc holds the few process helpers the local stack's supervisors
// share: is a pid alive (and not a zombie), what command does it run, and
// stop a process group politely, then firmly. Local-only tooling: no Lambda
// imports it.
package proc

import (
	"fmt"
	"strings"
	"time"
)

// Stop ends the process group led by pid: SIGTERM, then SIGKILL when it is
// still there after grace. A pid already gone is not an error.
func Stop(pid int, grace time.Duration) error {
	if pid <= 0 {
		return fmt.Errorf("proc: invalid pid %d", pid)
	}
	if !Alive(pid) {
		return nil
	}
	if err := SignalGroup(pid, false); err != nil {
		return fmt.Errorf("stop pid %d: %w", pid, err)
	}
	if WaitGone(pid, grace) {
		return nil
	}
	if err := SignalGroup(pid, true); err != nil {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	if WaitGone(pid, 3*time.Second) {
		return nil
	}
	return fmt.Errorf("pid %d is still running after SIGKILL", pid)
}

// WaitGone polls until pid is gone or within has passed.
func WaitGone(pid int, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		if !Alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Runs reports whether pid is alive and its command line contains marker,
// so that a stale pid reused by another program is never signalled.
func Runs(pid int, marker string) bool {
	return Alive(pid) && strings.Contains(Cmdline(pid), marker)
}
