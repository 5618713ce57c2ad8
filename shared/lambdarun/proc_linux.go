package lambdarun

import "syscall"

// sysProcAttr puts the bootstrap in its own process group and has the kernel
// kill it should this process die without calling Close.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
