//go:build !unix

package lambdarun

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

// signalProcess kills the process: there is no SIGTERM to ask politely with.
func signalProcess(p *os.Process, _ bool) error {
	if p == nil {
		return nil
	}
	err := p.Kill()
	if err == os.ErrProcessDone {
		return nil
	}
	return err
}
