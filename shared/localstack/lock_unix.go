//go:build unix

package localstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// errLocked is returned by tryLock when another process holds the lock.
var errLocked = errors.New("locked")

// lock takes an exclusive lock on path (created when missing), waiting for
// it when wait, else failing with errLocked. Closing the file releases it;
// so does the process's death.
func lock(path string, wait bool) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f, nil
}

// locked reports whether a process holds the lock on path.
func locked(path string) bool {
	f, err := lock(path, false)
	if err != nil {
		return errors.Is(err, errLocked)
	}
	f.Close()
	return false
}
