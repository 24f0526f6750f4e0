package bwrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// What a sandbox leaves on the host, and how a later Warden process tells
// whose it is. Every name carries the owner's tag (owner.TagOf: pid, start
// time and host of the Warden process that made it) after an '@', so the
// name alone says whether its maker still runs; nothing inside a sandbox
// can rename what it is named by:
//
//   - its private workspace, WorkspaceRoot/bwrap-<id>@<tag>;
//   - its cgroups, <root>/{memory,pids,cpu}/warden/<id>@<tag> (v1) or
//     <parent>/<id>@<tag> (v2);
//   - the copy of the shim made for a sandbox user that cannot reach the
//     original, WorkspaceRoot/.init/init-<hash>@<tag> (a hard link per
//     owner, so a live owner's copy is never removed under it), and a
//     partial copy, WorkspaceRoot/.init/tmp-<n>@<tag>;
//   - its processes: bwrap and slirp4netns carry [OwnerEnv] and
//     [SandboxEnv] in their environment (the sandbox's own programs get a
//     clean one, and are in its cgroups and PID namespace).
//
// A sweep ([RemoveOrphans], run by [New] and by `warden prune`) removes what
// belongs to a Warden process of this host that no longer runs, and what
// this process left of sandboxes it no longer has (a removal that failed);
// never anything of a live Warden process, nor anything it cannot tell the
// owner of.

// Environment variables of the sandbox's bwrap and slirp4netns processes.
const (
	// OwnerEnv holds the owner ID (owner.ID) of the Warden process that
	// started the process.
	OwnerEnv = "WARDEN_BWRAP_OWNER"
	// SandboxEnv holds the sandbox ID.
	SandboxEnv = "WARDEN_BWRAP_SANDBOX"
)

// Name parts.
const (
	wsPrefix  = "bwrap-"
	tagSep    = "@"
	shimDir   = ".init"
	shimName  = "init-"
	shimTemp  = "tmp-"
	cgroupDir = "warden" // v1: the group of every sandbox in each hierarchy
)

// teardownTimeout bounds killing a sandbox's processes and removing its
// cgroups and workspace, even when the caller's context is done.
const teardownTimeout = 30 * time.Second

// self is this process's owner ID, and tag its form in names.
var (
	self = owner.ID()
	tag  = owner.TagOf(self)
)

// inUse holds the sandboxes of this process whose remains are not to be
// swept: from the moment Create names them until Destroy has removed them
// (or given up). Every provider of the process shares it.
var inUse = struct {
	sync.Mutex
	ids map[string]bool
}{ids: map[string]bool{}}

func claim(id sandbox.ID) {
	inUse.Lock()
	inUse.ids[string(id)] = true
	inUse.Unlock()
}

func release(id sandbox.ID) {
	inUse.Lock()
	delete(inUse.ids, string(id))
	inUse.Unlock()
}

// orphaned reports whether the remains of sandbox id made by the Warden
// process ownerID may be removed: that process is gone, or it is this one
// and no longer has the sandbox.
func orphaned(id, ownerID string) bool {
	if ownerID == self {
		inUse.Lock()
		defer inUse.Unlock()
		return id != "" && !inUse.ids[id]
	}
	return owner.Gone(ownerID)
}

// tagged is name followed by this process's tag.
func tagged(name string) string { return name + tagSep + tag }

// splitTagged splits a name made by tagged into what precedes the tag and
// the owner ID.
func splitTagged(name string) (before, ownerID string, ok bool) {
	i := strings.LastIndex(name, tagSep)
	if i < 0 {
		return "", "", false
	}
	ownerID, ok = owner.ParseTag(name[i+1:])
	return name[:i], ownerID, ok
}

// sweeper holds where a provider's sandboxes leave things.
type sweeper struct {
	workspaceRoot string
	cgroupV1      string // the cgroupfs root holding the v1 hierarchies, "" for none
	cgroupV2      string // the v2 parent of sandbox groups, "" for none
}

// RemoveOrphans removes what sandboxes of Warden processes that no longer
// run left on this host under opts (WorkspaceRoot, CgroupRoot,
// CgroupParent, defaulted as [New] does): their bwrap and slirp4netns
// processes, cgroups (with any process still in them), private workspaces
// and copies of the shim. It returns how many sandboxes it removed
// something of. Sandboxes of live Warden processes, and of other hosts,
// are left alone. It needs neither bwrap nor root, only the permissions to
// remove what it finds.
func RemoveOrphans(ctx context.Context, opts Options) (int, error) {
	opts = opts.withDefaults()
	s := sweeper{workspaceRoot: opts.WorkspaceRoot}
	switch {
	case opts.CgroupParent != "":
		s.cgroupV2 = opts.CgroupParent
	case cgroupV2(opts.CgroupRoot):
		s.cgroupV2 = filepath.Join(opts.CgroupRoot, cgroupDir)
	default:
		s.cgroupV1 = opts.CgroupRoot
	}
	return s.sweep(ctx)
}

// RemoveOrphans is [RemoveOrphans] with the provider's options; it also
// removes what this process left of sandboxes it destroyed but could not
// remove entirely.
func (p *Provider) RemoveOrphans(ctx context.Context) (int, error) {
	return p.sweeper().sweep(ctx)
}

func (p *Provider) sweeper() sweeper {
	s := sweeper{workspaceRoot: p.opts.WorkspaceRoot}
	switch p.enf.Limits {
	case LimitsCgroupV1:
		s.cgroupV1 = p.opts.CgroupRoot
	case LimitsCgroupV2:
		s.cgroupV2 = p.cgroup2
	default:
		// Sandboxes of an earlier Warden may have had cgroups; only root
		// may remove them.
		if os.Geteuid() != 0 {
			break
		}
		if cgroupV2(p.opts.CgroupRoot) {
			s.cgroupV2 = filepath.Join(p.opts.CgroupRoot, cgroupDir)
		} else {
			s.cgroupV1 = p.opts.CgroupRoot
		}
	}
	return s
}

// sweep removes orphaned remains: processes first (so nothing recreates
// or holds what follows), then cgroups, workspaces and shim copies.
func (s sweeper) sweep(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, teardownTimeout)
	defer cancel()
	removed := map[string]bool{}
	var errs []error
	ids, err := killOrphans(ctx)
	errs = append(errs, err)
	for _, id := range ids {
		removed[id] = true
	}
	ids, err = s.removeCgroups(ctx)
	errs = append(errs, err)
	for _, id := range ids {
		removed[id] = true
	}
	ids, err = s.removeWorkspaces()
	errs = append(errs, err)
	for _, id := range ids {
		removed[id] = true
	}
	errs = append(errs, s.removeShims())
	return len(removed), errors.Join(errs...)
}

// killOrphans kills the bwrap and slirp4netns processes of orphaned
// sandboxes, found by their environment, until a scan finds none, and
// returns the sandboxes they belonged to. Killing bwrap ends the sandbox's
// PID namespace, and with it every process of the sandbox.
func killOrphans(ctx context.Context) ([]string, error) {
	found := map[string]bool{}
	for {
		pids := map[int]string{}
		scanEnv(func(pid int, env []byte) {
			ownerID, ok := envValue(env, OwnerEnv)
			if !ok {
				return
			}
			id, _ := envValue(env, SandboxEnv)
			if orphaned(id, ownerID) {
				pids[pid] = id
			}
		})
		if len(pids) == 0 {
			return keys(found), nil
		}
		for pid, id := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			found[id] = true
		}
		if err := pause(ctx, 10*time.Millisecond); err != nil {
			return keys(found), fmt.Errorf("%d processes of orphaned bubblewrap sandboxes still run: %w", len(pids), err)
		}
	}
}

// scanEnv calls fn with each process's initial environment, framed as
// "\x00K=V\x00...\x00". Processes whose environment cannot be read (gone,
// kernel threads, zombies, another user's when not root) are skipped, as
// is this process.
func scanEnv(fn func(pid int, env []byte)) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return
	}
	me := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == me {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || len(env) == 0 {
			continue
		}
		framed := make([]byte, 0, len(env)+2)
		framed = append(append(append(framed, 0), env...), 0)
		fn(pid, framed)
	}
}

// envValue returns the value of name in a framed environment.
func envValue(env []byte, name string) (string, bool) {
	key := []byte("\x00" + name + "=")
	i := bytes.Index(env, key)
	if i < 0 {
		return "", false
	}
	v := env[i+len(key):]
	return string(v[:bytes.IndexByte(v, 0)]), true
}

// removeCgroups removes the cgroups of orphaned sandboxes, killing what is
// left in them first.
func (s sweeper) removeCgroups(ctx context.Context) ([]string, error) {
	var parents []string
	if s.cgroupV1 != "" {
		for _, ctl := range controllers {
			parents = append(parents, filepath.Join(s.cgroupV1, ctl, cgroupDir))
		}
	}
	if s.cgroupV2 != "" {
		parents = append(parents, s.cgroupV2)
	}
	var found []string
	var errs []error
	for _, parent := range parents {
		ents, err := os.ReadDir(parent)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		for _, e := range ents {
			id, ownerID, ok := splitTagged(e.Name())
			if !e.IsDir() || !ok || !orphaned(id, ownerID) {
				continue
			}
			found = append(found, id)
			if err := removeGroup(ctx, filepath.Join(parent, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return found, errors.Join(errs...)
}

// removeWorkspaces removes the private workspaces of orphaned sandboxes.
func (s sweeper) removeWorkspaces() ([]string, error) {
	ents, err := os.ReadDir(s.workspaceRoot)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var found []string
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), wsPrefix) {
			continue
		}
		id, ownerID, ok := splitTagged(strings.TrimPrefix(e.Name(), wsPrefix))
		if !ok || !orphaned(id, ownerID) {
			continue
		}
		found = append(found, id)
		if err := os.RemoveAll(filepath.Join(s.workspaceRoot, e.Name())); err != nil {
			errs = append(errs, fmt.Errorf("removing an orphaned workspace: %w", err))
		}
	}
	return found, errors.Join(errs...)
}

// removeShims removes the shim copies and partial copies of Warden
// processes that no longer run. A copy is shared between owners as hard
// links, so removing one owner's name never takes a file from another.
func (s sweeper) removeShims() error {
	dir := filepath.Join(s.workspaceRoot, shimDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		_, ownerID, ok := splitTagged(e.Name())
		if !ok || ownerID == self || !owner.Gone(ownerID) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeGroup kills what is in the cgroup directory dir (v1 or v2) until
// it is empty, then removes it, retrying until it is gone or ctx ends: the
// kernel refuses to remove a group while a process in it has not been
// reaped, which takes a while on a busy host.
func removeGroup(ctx context.Context, dir string) error {
	// cgroup v2's cgroup.kill (Linux 5.14) kills the whole group at once.
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err == nil {
		_ = writeFile(filepath.Join(dir, "cgroup.kill"), "1")
	}
	wait := time.Millisecond
	for {
		pids, err := groupProcs(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if len(pids) == 0 {
			err := os.Remove(dir)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if errors.Is(err, fs.ErrPermission) {
				return fmt.Errorf("removing cgroup: %w", err)
			}
		}
		if err := pause(ctx, wait); err != nil {
			return fmt.Errorf("removing cgroup %s (%d processes left in it): %w", dir, len(pids), err)
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// drainGroups kills the processes in the cgroup directories until none
// is left, or ctx ends.
func drainGroups(ctx context.Context, dirs ...string) error {
	wait := time.Millisecond
	for {
		left := 0
		for _, d := range dirs {
			pids, _ := groupProcs(d)
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			left += len(pids)
		}
		if left == 0 {
			return nil
		}
		if err := pause(ctx, wait); err != nil {
			return fmt.Errorf("%d processes left in the sandbox's cgroup: %w", left, err)
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// groupProcs lists the processes in a cgroup directory.
func groupProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil && n > 0 {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// pause waits d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
