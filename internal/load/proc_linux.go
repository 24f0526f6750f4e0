package load

import "syscall"

// sysProcAttr puts the server in a process group of its own, so a Ctrl-C
// meant for the suite reaches the server only through Stop, and has the
// kernel send it SIGTERM (a graceful stop that removes its sandboxes)
// should the suite die without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
