//go:build !unix

package ddblocal

import (
	"syscall"

	"github.com/zeroae/zae-limiter-go/shared/proc"
)

func sysProcAttr(bool) *syscall.SysProcAttr { return nil }

func signalGroup(pid int, kill bool) error { return proc.SignalGroup(pid, kill) }

func pidAlive(pid int) bool { return proc.Alive(pid) }

func isDynamoDBLocal(int) bool { return true }

// IsDynamoDBLocal reports whether pid is alive (its command is not known here).
func IsDynamoDBLocal(pid int) bool { return pidAlive(pid) }
