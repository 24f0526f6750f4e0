package forkserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/internal/owner"
)

// What a Warden process killed before it could clean up leaves behind:
// its sandboxes' cgroups and private workspaces. Their processes are gone
// with it (its fork server's pid namespace ends with the server, and the
// server with Warden). Each is named after the sandbox and its owner,
// <id>@<pid>-<start time>, so that a later provider removes only those
// whose owner no longer runs.

const wsPrefix = "ws-"

var (
	ownTagOnce sync.Once
	ownTagVal  string
)

// ownTag is this process's tag: its pid and start time (clock ticks since
// boot), which together name one process for the life of the machine.
func ownTag() string {
	ownTagOnce.Do(func() {
		pid := os.Getpid()
		ownTagVal = fmt.Sprintf("%d-%d", pid, startTime(pid))
	})
	return ownTagVal
}

// startTime is owner.StartTime: the process's start in clock ticks since
// boot, 0 if it is gone.
func startTime(pid int) uint64 { return owner.StartTime(pid) }

func tagged(id string) string { return id + "@" + ownTag() }

// ownerGone reports whether name (…@pid-start) belongs to a process that
// no longer runs. A name without a valid tag is never taken for an orphan.
func ownerGone(name string) bool {
	_, tag, ok := strings.Cut(name, "@")
	if !ok || tag == ownTag() {
		return false
	}
	p, st, ok := strings.Cut(tag, "-")
	if !ok {
		return false
	}
	pid, err1 := strconv.Atoi(p)
	start, err2 := strconv.ParseUint(st, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 || start == 0 {
		return false
	}
	return startTime(pid) != start
}

// RemoveOrphans removes the cgroups and private workspaces of fork server
// sandboxes whose Warden process is gone, and returns how many sandboxes'
// worth it found.
func (p *Provider) RemoveOrphans(ctx context.Context) (int, error) {
	return removeOrphans(ctx, p.opts, p.cgroups)
}

// RemoveOrphans is [Provider.RemoveOrphans] without a provider, and so
// without a fork server: for `warden prune`.
func RemoveOrphans(ctx context.Context, opts Options) (int, error) {
	opts = opts.withDefaults()
	return removeOrphans(ctx, opts, os.Geteuid() == 0 && cgroupV1(opts.CgroupRoot))
}

func removeOrphans(ctx context.Context, opts Options, cgroups bool) (int, error) {
	seen := map[string]bool{}
	var errs []error
	if cgroups {
		for _, ctl := range controllers {
			ents, _ := os.ReadDir(filepath.Join(opts.CgroupRoot, ctl, "warden-fork"))
			for _, e := range ents {
				if !e.IsDir() || !ownerGone(e.Name()) {
					continue
				}
				seen[e.Name()] = true
				c := &cgroup{root: opts.CgroupRoot, name: e.Name()}
				tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := c.remove(tctx); err != nil {
					errs = append(errs, err)
				}
				cancel()
			}
		}
	}
	ents, _ := os.ReadDir(opts.WorkspaceRoot)
	for _, e := range ents {
		name, ok := strings.CutPrefix(e.Name(), wsPrefix)
		if !ok || !e.IsDir() || !ownerGone(name) {
			continue
		}
		seen[name] = true
		if err := os.RemoveAll(filepath.Join(opts.WorkspaceRoot, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return len(seen), errors.Join(errs...)
}
