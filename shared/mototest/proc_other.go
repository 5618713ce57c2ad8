//go:build !linux

package mototest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }
