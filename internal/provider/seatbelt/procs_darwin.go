//go:build darwin

package seatbelt

import (
	"context"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/provider/kit/hostproc"
)

// killMarked kills every process, other than this one, whose initial
// environment holds the entry marker ("NAME=value"); see
// hostproc.KillMarked. The environment is read with the sysctl
// kern.procargs2, which macOS answers for processes of the caller's user
// (and for all when it is root); zombies have none.
//
// As on Linux this is bookkeeping, not containment: a process started with
// a cleaned environment is not found. It stays confined by the profile.
func killMarked(ctx context.Context, marker string) error {
	return hostproc.KillMarked(ctx, marker, func() ([]int, error) { return scanMarked(marker) })
}

// scanMarked returns the PIDs, other than this process's, whose initial
// environment holds marker.
func scanMarked(marker string) ([]int, error) {
	procs, err := unix.SysctlKinfoProcSlice("kern.proc.all")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	self := os.Getpid()
	var pids []int
	for _, kp := range procs {
		pid := int(kp.Proc.P_pid)
		if pid <= 1 || pid == self {
			continue
		}
		buf, err := unix.SysctlRaw("kern.procargs2", pid)
		if err != nil {
			continue // gone, a zombie, or another user's
		}
		if env, ok := procArgsEnv(buf); ok && slices.Contains(env, marker) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}
