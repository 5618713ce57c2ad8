//go:build unix && !linux

package ddblocal

import "syscall"

func sysProcAttr(bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
