package s3local

import "syscall"

func sysProcAttr(killWithParent bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setsid: true}
	if killWithParent {
		a.Pdeathsig = syscall.SIGKILL
	}
	return a
}

// xattrSupported reports whether dir's file system takes user extended
// attributes (the posix backend's metadata store).
func xattrSupported(dir string) bool {
	if err := syscall.Setxattr(dir, "user.zael.check", []byte("1"), 0); err != nil {
		return false
	}
	_ = syscall.Removexattr(dir, "user.zael.check")
	return true
}
