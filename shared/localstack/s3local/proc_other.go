//go:build !linux

package s3local

import (
	"syscall"

	"github.com/zeroae/zae-limiter-go/shared/proc"
)

func sysProcAttr(bool) *syscall.SysProcAttr { return proc.Detached() }

// xattrSupported is not probed here: a sidecar directory is always used.
func xattrSupported(string) bool { return false }
