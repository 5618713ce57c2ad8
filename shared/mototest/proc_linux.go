package mototest

import "syscall"

// sysProcAttr kills moto_server with the test process, should it die early.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
