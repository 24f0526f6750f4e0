//go:build darwin

package seatbelt

import (
	"context"
	"fmt"
	"os"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// killPause is the wait between two rounds of killMarked that found
// processes, so that killed processes can exit.
const killPause = 5 * time.Millisecond

// killMarked sends SIGKILL to every process, other than this one, whose
// initial environment holds the entry marker ("NAME=value"), and repeats
// until a scan finds none: processes may fork between the scan and the
// kill. The environment is read with the sysctl kern.procargs2, which
// macOS answers for processes of the caller's user (and for all when it
// is root); zombies have none. It returns an error if processes are still
// found when ctx ends.
//
// As on Linux this is bookkeeping, not containment: a process started with
// a cleaned environment is not found. It stays confined by the profile.
func killMarked(ctx context.Context, marker string) error {
	for {
		pids, err := scanMarked(marker)
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		t := time.NewTimer(killPause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%d processes marked %s still running: %w", len(pids), marker, ctx.Err())
		}
	}
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
