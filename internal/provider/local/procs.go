package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/provider/kit/hostproc"
)

// killMarked kills every process, other than this one, whose initial
// environment holds the entry marker ("NAME=value"), found in /proc (see
// hostproc.KillMarked). Killed processes that are zombies no longer show
// an environment, so they do not count.
//
// A PID could be reused between the scan and the kill; that needs the
// marked process to exit and ~4 million PIDs to be allocated in between.
func killMarked(ctx context.Context, marker string) error {
	needle := []byte("\x00" + marker + "\x00")
	return hostproc.KillMarked(ctx, marker, func() ([]int, error) {
		return scanProc(func(env []byte) bool { return bytes.Contains(env, needle) }), nil
	})
}

// killPause is the wait between two rounds of killOrphans that found
// processes, so that killed processes can exit.
const killPause = 5 * time.Millisecond

// killOrphans kills the processes of local sandboxes whose Warden process
// is gone, judged by OwnerEnv; self is this process's owner ID. It returns
// how many processes it killed.
func killOrphans(ctx context.Context, self string) (int, error) {
	dead := map[string]bool{}
	killed := map[int]bool{}
	prefix := []byte("\x00" + OwnerEnv + "=")
	for {
		pids := scanProc(func(env []byte) bool {
			i := bytes.Index(env, prefix)
			if i < 0 {
				return false
			}
			v := env[i+len(prefix):]
			owner := string(v[:bytes.IndexByte(v, 0)]) // env ends with NUL
			if owner == self {
				return false
			}
			d, ok := dead[owner]
			if !ok {
				d = !ownerAlive(owner)
				dead[owner] = d
			}
			return d
		})
		if len(pids) == 0 {
			return len(killed), nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed[pid] = true
		}
		t := time.NewTimer(killPause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return len(killed), fmt.Errorf("%d orphaned sandbox processes still running: %w", len(pids), ctx.Err())
		}
	}
}

// scanProc returns the PIDs, other than this process's, whose initial
// environment, framed as "\x00K=V\x00K=V\x00", satisfies match. Processes
// whose environment cannot be read (gone, zombies, or another user's when
// Warden is not root) are skipped.
func scanProc(match func(env []byte) bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || len(env) == 0 {
			continue
		}
		framed := make([]byte, 0, len(env)+2)
		framed = append(framed, 0)
		framed = append(framed, env...)
		if env[len(env)-1] != 0 {
			framed = append(framed, 0)
		}
		if match(framed) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ownerAlive reports whether the process named by an owner ID still runs.
// Owners on other hosts (a shared WorkspaceRoot) are assumed alive: that
// cannot be told from here.
func ownerAlive(id string) bool {
	alive, ok := owner.Alive(id)
	return !ok || alive // not an ID this package wrote: leave it alone
}
