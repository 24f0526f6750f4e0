//go:build unix

package bench

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts cmd in its own process group, which cancellation
// kills as a whole.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
