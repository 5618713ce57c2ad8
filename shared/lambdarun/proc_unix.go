//go:build unix

package lambdarun

import (
	"errors"
	"os"
	"syscall"
)

// signalProcess sends SIGTERM (or SIGKILL) to the process group the bootstrap
// leads, so anything it started goes too.
func signalProcess(p *os.Process, kill bool) error {
	if p == nil {
		return nil
	}
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		err = p.Signal(sig)
	}
	if errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
