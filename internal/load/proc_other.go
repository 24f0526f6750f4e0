//go:build !linux

package load

import "syscall"

// sysProcAttr puts the server in a process group of its own, so a Ctrl-C
// meant for the suite reaches the server only through Stop.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
