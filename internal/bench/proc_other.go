//go:build !unix

package bench

import (
	"os/exec"
	"time"
)

// setProcessGroup keeps exec.CommandContext's default: kill the process.
func setProcessGroup(*exec.Cmd) {}

// selfCPU is not measured here.
func selfCPU() time.Duration { return 0 }
