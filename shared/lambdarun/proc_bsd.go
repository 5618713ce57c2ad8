//go:build unix && !linux

package lambdarun

import "syscall"

// sysProcAttr puts the bootstrap in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
