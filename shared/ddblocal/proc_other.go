//go:build !unix

package ddblocal

import (
	"os"
	"syscall"
)

func sysProcAttr(bool) *syscall.SysProcAttr { return nil }

func signalGroup(pid int, _ bool) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	return p.Kill()
}

func pidAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	p.Release()
	return true
}

func isDynamoDBLocal(int) bool { return true }

// IsDynamoDBLocal reports whether pid is alive (its command is not known here).
func IsDynamoDBLocal(pid int) bool { return pidAlive(pid) }
