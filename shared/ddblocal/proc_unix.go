//go:build unix

package ddblocal

import "github.com/zeroae/zae-limiter-go/shared/proc"

// signalGroup signals the process group led by pid.
func signalGroup(pid int, kill bool) error { return proc.SignalGroup(pid, kill) }

// pidAlive reports whether pid names a live (not zombie) process.
func pidAlive(pid int) bool { return proc.Alive(pid) }

// isDynamoDBLocal reports whether pid runs DynamoDB Local, so that a stale
// state file never makes us signal an unrelated process that reuses the pid.
func isDynamoDBLocal(pid int) bool { return proc.Runs(pid, JarName) }

// IsDynamoDBLocal reports whether pid is alive and runs DynamoDB Local.
func IsDynamoDBLocal(pid int) bool { return isDynamoDBLocal(pid) }
