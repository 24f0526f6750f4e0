package bwrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Provider runs sandboxes with bubblewrap. It is safe for concurrent use.
type Provider struct {
	kit.Base[ns]

	opts    Options
	log     *slog.Logger
	enf     Enforcement
	shim    string // host path of the shim executable, "" for none
	seccomp []byte // the encoded filter
	cgroup2 string // parent directory of sandbox groups, for cgroup v2
	slirp   string // slirp4netns, "" when missing: no networking
	netErr  error  // why sandboxes may not have networking, nil if they may
	// resolvFiles are the host's resolv.conf and systemd-resolved's
	// upstream list, read for each networked start (tests change them).
	resolvFiles [2]string
	// disableUserns: bwrap can forbid user namespaces inside the sandbox.
	disableUserns bool
	// agentFile is the agent compiled for the sandboxes' interpreter
	// (see compileAgent), "" to start it from its source.
	agentFile string

	// starts holds a token per sandbox starting now (see Create).
	starts chan struct{}
}

// createTimeout bounds the start of a sandbox once it has its turn, when
// the caller's context has no earlier deadline. The wait for a turn is
// bounded by the caller alone: under a burst, creates queue and each gets
// the same time to start whatever its place in the queue, so a burst
// larger than the slots slows down but does not fail.
const createTimeout = 60 * time.Second

// startSlots is how many sandboxes start at once: enough to keep the CPUs
// busy while some starts wait on the disk, few enough that a burst of
// creates does not slow every start down together until all of them miss
// their deadline. The others wait for a turn.
func startSlots() int { return max(4, 2*runtime.NumCPU()) }

var (
	_ sandbox.Provider     = (*Provider)(nil)
	_ sandbox.Foregrounder = (*Provider)(nil)
)

// ns is what the provider keeps of a sandbox besides its session.
type ns struct {
	l      *launcher
	ownsWS bool
	// low: created in the background, its cgroup at the lowest CPU weight
	// until Foreground.
	low atomic.Bool
}

type box = kit.Sandbox[ns]

// Enforcement says what this provider enforces on its sandboxes.
func (p *Provider) Enforcement() Enforcement { return p.enf }

// HostUser returns the host user sandboxes run as when it is not
// Warden's own: uid 1000 under a root Warden ([DefaultRunAs]).
func (p *Provider) HostUser() (RunAs, bool) {
	if u := p.opts.RunAs; u != nil {
		return *u, true
	}
	return RunAs{}, false
}

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return string(sandbox.ProviderBubblewrap) }

// Capabilities implements sandbox.Provider.
func (p *Provider) Capabilities() sandbox.Capabilities {
	cg := p.enf.Limits == LimitsCgroupV1 || p.enf.Limits == LimitsCgroupV2
	rl := p.enf.Limits == LimitsRlimit
	return sandbox.Capabilities{
		Isolation:     sandbox.IsolationNamespace,
		NetworkToggle: true,
		// With rlimits, memory is bounded per process (RLIMIT_DATA).
		MemoryLimit: cg || rl,
		// RLIMIT_CPU is a per-process budget, not a rate: no CPU limit.
		CPULimit: cg,
		// RLIMIT_NPROC is never checked for host root's processes.
		PidsLimit: cg || rl && p.nprocBinds(),
		Mounts:    true,
	}
}

// Create implements sandbox.Provider.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (info sandbox.Info, err error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return sandbox.Info{}, err
	}
	if spec.Network && p.netErr != nil {
		return sandbox.Info{}, p.netErr
	}
	if spec.WorkspaceDir != "" {
		if st, err := os.Stat(spec.WorkspaceDir); err != nil || !st.IsDir() {
			return sandbox.Info{}, fmt.Errorf("workspace_dir %q is not an existing directory: %w", spec.WorkspaceDir, sandbox.ErrInvalid)
		}
	}
	for _, m := range spec.Mounts {
		if st, err := os.Stat(m.Source); err != nil || !st.IsDir() {
			return sandbox.Info{}, fmt.Errorf("mount source %q is not an existing directory: %w", m.Source, sandbox.ErrInvalid)
		}
	}
	// bwrap, running as the sandbox's host user, opens what it binds.
	if u := p.opts.RunAs; u != nil {
		dirs := []string{spec.WorkspaceDir}
		for _, m := range spec.Mounts {
			dirs = append(dirs, m.Source)
		}
		for _, d := range dirs {
			if d != "" && !reachableDir(d, *u) {
				return sandbox.Info{}, fmt.Errorf("%s is not reachable by host uid %d, the sandbox's user: it and every directory above it must be searchable by that user: %w",
					d, u.UID, sandbox.ErrInvalid)
			}
		}
	}
	select {
	case p.starts <- struct{}{}:
		defer func() { <-p.starts }()
	case <-ctx.Done():
		return sandbox.Info{}, fmt.Errorf("no turn to start the sandbox: %d are starting: %w: %w", cap(p.starts), ctx.Err(), sandbox.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	id := sandbox.NewID()
	b := &box{Info: sandbox.Info{ID: id, Provider: p.Name(), Name: "bwrap-" + string(id), Spec: spec, WorkspaceUID: -1, WorkspaceGID: -1}}
	// Claimed before anything of it exists, released once everything is
	// removed: a sweep leaves alone what this process's sandboxes have
	// (see orphans_linux.go).
	claim(id)
	var undo []func(context.Context) error
	defer func() {
		if err == nil {
			return
		}
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](tctx); uerr != nil {
				p.log.Warn("cleaning up after a failed create; the rest is left to the next sweep", "sandbox_id", id, "err", uerr)
			}
		}
		release(id)
		err = classify(err)
	}()
	ws := spec.WorkspaceDir
	if ws == "" {
		if err := safedir.EnsureRoot(p.opts.WorkspaceRoot); err != nil {
			return sandbox.Info{}, fmt.Errorf("%w: %w", err, sandbox.ErrInvalid)
		}
		ws = filepath.Join(p.opts.WorkspaceRoot, wsPrefix+tagged(string(id)))
		if err = os.Mkdir(ws, 0o700); err != nil {
			return sandbox.Info{}, fmt.Errorf("creating workspace: %w", err)
		}
		b.Box.ownsWS = true
		undo = append(undo, func(context.Context) error { return os.RemoveAll(ws) })
		if u := p.opts.RunAs; u != nil {
			if err := os.Lchown(ws, int(u.UID), int(u.GID)); err != nil {
				return sandbox.Info{}, fmt.Errorf("handing the workspace to uid %d: %w", u.UID, err)
			}
			b.Info.WorkspaceUID, b.Info.WorkspaceGID = int(u.UID), int(u.GID)
		}
	}
	b.Info.Workspace = ws
	var cg limiter
	switch p.enf.Limits {
	case LimitsCgroupV1:
		cg, err = newCgroup(ctx, p.opts.CgroupRoot, tagged(string(id)), spec)
	case LimitsCgroupV2:
		cg, err = newCgroup2(ctx, p.cgroup2, tagged(string(id)), spec)
	}
	if err != nil {
		return sandbox.Info{}, err
	}
	if cg != nil {
		undo = append(undo, cg.remove)
		// A sandbox nobody waits for yet (a warm pool's refill) starts at
		// the lowest CPU weight: it takes only CPU time that running code
		// leaves, until Foreground.
		if sandbox.IsBackground(ctx) {
			if err := cg.setLow(true); err != nil {
				return sandbox.Info{}, fmt.Errorf("lowering the CPU weight: %w", err)
			}
			b.Box.low.Store(true)
		}
	}
	b.Box.l = &launcher{p: p, id: id, spec: spec, workspace: ws, cg: cg}
	b.Session = kit.NewSession(b.Box.l, spec, spec.WorkspacePath)
	undo = append(undo, func(context.Context) error { _ = b.Session.Close(); b.Box.l.kill(); return nil })
	if _, err = b.Session.Start(ctx); err != nil {
		return sandbox.Info{}, err
	}
	p.Boxes.Add(b)
	return b.Info, nil
}

// Foreground implements sandbox.Foregrounder: a sandbox created in the
// background gets the default CPU weight.
func (p *Provider) Foreground(ctx context.Context, id sandbox.ID) error {
	b, err := p.Boxes.Get(id)
	if err != nil {
		return err
	}
	if !b.Box.low.Load() {
		return nil
	}
	if err := b.Box.l.cg.setLow(false); err != nil {
		return fmt.Errorf("raising the CPU weight: %w", err)
	}
	b.Box.low.Store(false)
	return nil
}

// teardown, for Destroy, kills the sandbox's namespace (every process in
// it), waits for its processes to be gone and removes its cgroups and
// private workspace. It goes on for up to 30 seconds after ctx ends. What
// it cannot remove (a cgroup the kernel still holds, a workspace that
// resists) is logged and left to the next sweep ([Provider.RemoveOrphans],
// run by Close and at every start), which finds it by its name: the
// sandbox itself is gone, so Destroy succeeds.
func (p *Provider) teardown(ctx context.Context, b *box) error {
	id := b.Info.ID
	defer release(id)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	_ = b.Session.Close()
	b.Box.l.kill()
	var errs []error
	if cg := b.Box.l.cg; cg != nil {
		// The workspace goes only once nothing can write to it.
		if err := cg.remove(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if b.Box.ownsWS {
		if err := os.RemoveAll(b.Info.Workspace); err != nil {
			errs = append(errs, fmt.Errorf("removing workspace: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		p.log.Warn("destroyed sandbox not entirely removed; the rest is left to the next sweep", "sandbox_id", id, "err", err)
	}
	return nil
}

// HostPID returns the host PID of the bwrap process at the root of the
// sandbox's process tree (its agent, the agent's worker and snapshots, and
// what they started, all descend from it), for measurements such as
// warden bench's memory per sandbox. It is 0 while no agent runs.
func (p *Provider) HostPID(id sandbox.ID) (int, error) {
	b, err := p.Boxes.Get(id)
	if err != nil {
		return 0, err
	}
	l := b.Box.l
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pid, nil
}

// Close destroys every sandbox, then sweeps (see RemoveOrphans).
func (p *Provider) Close(ctx context.Context) error {
	err := p.Base.Close(ctx)
	if _, serr := p.RemoveOrphans(ctx); serr != nil {
		p.log.Warn("removing orphaned bubblewrap sandboxes", "err", serr)
	}
	return err
}

// classify gives an error of Create that no sandbox error class covers
// sandbox.ErrUnavailable: the host could not start the sandbox now (a
// start that did not finish in time on a busy host, processes or memory
// short, a process that died while starting), which may well succeed
// later.
func classify(err error) error {
	for _, c := range []error{sandbox.ErrNotFound, sandbox.ErrInvalid, sandbox.ErrConflict, sandbox.ErrDenied,
		sandbox.ErrDisabled, sandbox.ErrUnsupported, sandbox.ErrUnavailable, sandbox.ErrLimit} {
		if errors.Is(err, c) {
			return err
		}
	}
	return fmt.Errorf("the sandbox could not be started now: %w: %w", err, sandbox.ErrUnavailable)
}
