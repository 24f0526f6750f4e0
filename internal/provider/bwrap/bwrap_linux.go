package bwrap

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/agent"
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

// New checks that bubblewrap works here (it runs a trivial sandbox) and
// returns the provider. It fails with sandbox.ErrUnavailable when bwrap is
// missing or cannot create namespaces.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Bwrap == "" {
		p, err := exec.LookPath("bwrap")
		if err != nil {
			return nil, fmt.Errorf("bubblewrap is not installed (apt-get install bubblewrap): %w", sandbox.ErrUnavailable)
		}
		opts.Bwrap = p
	}
	opts = opts.withDefaults()
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	probe := func(extra ...string) ([]byte, error) {
		args := append([]string{"--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
			"--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
			"--proc", "/proc", "--dev", "/dev"}, extra...)
		return exec.CommandContext(tctx, opts.Bwrap, append(args, "true")...).CombinedOutput()
	}
	out, err := probe()
	if err != nil {
		return nil, fmt.Errorf("bubblewrap cannot create a sandbox here (%v: %s): %w", err, strings.TrimSpace(string(out)), sandbox.ErrUnavailable)
	}
	// --disable-userns needs bwrap 0.8 and user.max_user_namespaces.
	_, nestedErr := probe("--unshare-user", "--disable-userns")
	p := &Provider{opts: opts, log: log.With("provider", "bubblewrap"), starts: make(chan struct{}, startSlots())}
	p.Teardown = p.teardown
	if p.seccomp, err = seccompProgram(runtime.GOARCH); err != nil {
		return nil, fmt.Errorf("bubblewrap: %v: %w", err, sandbox.ErrUnsupported)
	}
	p.enf.Seccomp = true
	p.slirp = opts.Slirp4netns
	p.resolvFiles = [2]string{hostResolvConf, resolvedResolvConf}
	if p.slirp == "" {
		p.slirp, _ = exec.LookPath("slirp4netns")
	}
	p.netErr = networkErr(p.slirp, os.Geteuid() == 0, tunUsable)
	if p.netErr == nil {
		p.enf.Network = "slirp4netns"
	} else {
		p.enf.Network = "none"
	}
	if opts.RootFS != "" {
		if st, err := os.Stat(filepath.Join(opts.RootFS, "usr")); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("root filesystem %q has no usr directory: %w", opts.RootFS, sandbox.ErrInvalid)
		}
	}
	p.shim = opts.Init
	if p.shim == "" && hooked.Load() {
		if exe, err := os.Executable(); err == nil {
			p.shim = exe
		}
	}
	var notes []string
	p.disableUserns = nestedErr == nil
	if !p.disableUserns {
		notes = append(notes, "nested user namespaces are refused by seccomp only: this bwrap cannot --disable-userns")
	}
	if p.shim == "" {
		notes = append(notes, "no Landlock and no rlimits: the program did not call bwrap.Init")
	} else if p.enf.LandlockABI = landlockABI(); p.enf.LandlockABI == 0 {
		notes = append(notes, "no Landlock: the kernel does not offer it")
	}
	root := os.Geteuid() == 0
	if p.slirp != "" && p.netErr != nil {
		notes = append(notes, "no networking: a non-root slirp4netns cannot open /dev/net/tun")
	}
	if opts.RunAs != nil && !root {
		return nil, fmt.Errorf("bubblewrap: RunAs needs root: %w", sandbox.ErrInvalid)
	}
	if root && opts.RunAs == nil && !opts.RunAsRoot {
		// Without this the sandbox's user is host root behind the
		// namespaces: any root-owned file it can see, it may change.
		u := DefaultRunAs
		if out, err := probeAs(tctx, opts.Bwrap, u); err != nil {
			notes = append(notes, fmt.Sprintf("sandboxes run as host root: bwrap cannot run as uid %d here (%v: %s)", u.UID, err, strings.TrimSpace(string(out))))
		} else {
			p.opts.RunAs = &u
		}
	}
	if err := safedir.EnsureRoot(p.opts.WorkspaceRoot); err != nil {
		return nil, fmt.Errorf("bubblewrap: %w: %w", err, sandbox.ErrInvalid)
	}
	if u := p.opts.RunAs; u != nil {
		if !reachableDir(p.opts.WorkspaceRoot, *u) {
			return nil, fmt.Errorf("bubblewrap: sandboxes run as host uid %d, which cannot reach the workspace root %s: choose one whose directories others may traverse (SANDBOX__WORKSPACE_ROOT): %w",
				u.UID, p.opts.WorkspaceRoot, sandbox.ErrInvalid)
		}
	}
	if u := p.opts.RunAs; u != nil && p.shim != "" {
		shim, err := reachableShim(p.shim, p.opts.WorkspaceRoot, *u)
		if err != nil {
			return nil, fmt.Errorf("bubblewrap: making the sandbox init reachable by uid %d: %w", u.UID, err)
		}
		p.shim = shim
	}
	switch {
	case opts.ForceRlimits:
		p.enf.Limits = LimitsRlimit
	case opts.CgroupParent != "":
		p.cgroup2 = opts.CgroupParent
		p.enf.Limits = LimitsCgroupV2
	case root && cgroupV2(opts.CgroupRoot):
		p.cgroup2 = filepath.Join(opts.CgroupRoot, "warden")
		p.enf.Limits = LimitsCgroupV2
	case root && cgroupV1(opts.CgroupRoot):
		p.enf.Limits = LimitsCgroupV1
	default:
		p.enf.Limits = LimitsRlimit
	}
	if p.enf.Limits == LimitsRlimit {
		switch {
		case p.shim == "":
			p.enf.Limits = LimitsNone
			notes = append(notes, "memory, CPU and process limits are NOT enforced: no cgroups (they need root or a delegated cgroup v2 directory) and no shim for rlimits")
		case !p.nprocBinds():
			notes = append(notes, "rlimits instead of cgroups: memory is bounded per process, there is no CPU rate limit, and RLIMIT_NPROC does not bind sandboxes of host root")
		default:
			notes = append(notes, "rlimits instead of cgroups: memory is bounded per process and there is no CPU rate limit")
		}
	}
	p.enf.Note = strings.Join(notes, "; ")
	if p.enf.Note != "" {
		p.log.Warn("bubblewrap sandboxes are weaker than they could be", "note", p.enf.Note)
	}
	// What Warden processes killed before they could clean up left: their
	// sandboxes' processes, cgroups, workspaces and shim copies.
	if n, err := p.RemoveOrphans(ctx); err != nil {
		p.log.Warn("removing what dead Warden processes left of their bubblewrap sandboxes", "err", err)
	} else if n > 0 {
		p.log.Info("removed orphaned bubblewrap sandboxes", "count", n)
	}
	if p.agentFile, err = p.compileAgent(ctx); err != nil {
		p.agentFile = ""
		p.log.Warn("each sandbox compiles the agent anew", "err", err)
	}
	return p, nil
}

// probeAs runs a trivial sandbox as u: unprivileged bwrap needs the
// kernel to allow unprivileged user namespaces.
func probeAs(ctx context.Context, bwrapPath string, u RunAs) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bwrapPath, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
		"--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
		"--proc", "/proc", "--dev", "/dev", "true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: u.UID, Gid: u.GID}}
	cmd.Dir = "/"
	return cmd.CombinedOutput()
}

// reachableShim returns shim if u can read and run it where it is, or a
// copy of it under root/.init that u can (a test binary in a private
// build directory, or a warden binary in a home directory, is not). The
// copy is named after its SHA-256 and this process's tag,
// init-<hash>@<tag>, so the sweep of a later Warden removes it once this
// process is gone. A copy of the same file another process made is
// shared as a hard link when this user made it: it runs inside every
// sandbox, so a file someone else put there must never be taken for it.
func reachableShim(shim, root string, u RunAs) (string, error) {
	if reachable(shim, u) {
		return shim, nil
	}
	in, err := os.Open(shim)
	if err != nil {
		return "", err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".init")
	if err := safedir.Ensure(dir, 0o711); err != nil {
		return "", err
	}
	// Searchable, not listable: u needs to reach the copy, not to see
	// the names of the workspaces beside it.
	for _, d := range []string{root, dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			return "", err
		}
	}
	base := shimName + hex.EncodeToString(h.Sum(nil))[:32]
	dst := filepath.Join(dir, tagged(base))
	if ownCopy(dst) {
		return dst, nil
	}
	// Another owner's copy, as a second name of the same file: removing
	// either name later leaves the other one whole.
	others, _ := filepath.Glob(filepath.Join(dir, base+tagSep+"*"))
	for _, o := range others {
		if ownCopy(o) && os.Link(o, dst) == nil && ownCopy(dst) {
			return dst, nil
		}
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, tagged(shimTemp+"*"))
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	if !reachable(dst, u) {
		return "", fmt.Errorf("%s is not reachable by uid %d: check the permissions of its directories", dst, u.UID)
	}
	return dst, nil
}

// ownCopy reports whether path is a regular file of this process's user
// that no one else may write to.
func ownCopy(path string) bool {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o022 != 0 {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Uid == uint32(os.Geteuid())
}

// reachableDir reports whether u may traverse dir and every directory
// above it.
func reachableDir(dir string, u RunAs) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for d := abs; ; d = filepath.Dir(d) {
		if !canAccess(d, u, 0o1) {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

// canAccess reports whether u has the permission bits want (r=4, w=2,
// x=1) on path, by its mode alone (no ACLs, and u's supplementary groups
// are not consulted).
func canAccess(p string, u RunAs, want os.FileMode) bool {
	st, err := os.Stat(p)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	m := st.Mode().Perm()
	switch {
	case sys.Uid == u.UID:
		return m&(want<<6) == want<<6
	case sys.Gid == u.GID:
		return m&(want<<3) == want<<3
	}
	return m&want == want
}

// reachable reports whether u may run path: execute permission on every
// directory above it, read and execute on the file.
func reachable(path string, u RunAs) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	return canAccess(abs, u, 0o5) && reachableDir(filepath.Dir(abs), u)
}

// nprocBinds reports whether the sandbox runs as a host user other than
// root, for which the kernel checks RLIMIT_NPROC.
func (p *Provider) nprocBinds() bool {
	if p.opts.RunAs != nil {
		return p.opts.RunAs.UID != 0
	}
	return os.Geteuid() != 0
}

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
func (p *Provider) Name() string { return "bubblewrap" }

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

// launcher starts the agent in a new bubblewrap sandbox each time; the
// session's state lives in that one process tree.
type launcher struct {
	p         *Provider
	id        sandbox.ID
	spec      sandbox.Spec
	workspace string
	cg        limiter

	mu   sync.Mutex
	stop func() // kills the running process tree and its slirp4netns; nil when none
	net  *slirp // the running tree's slirp4netns; nil without networking
	pid  int    // the running tree's bwrap process; 0 when none
}

// Directories of an image's root filesystem that are not system
// directories: the sandbox gets its own, or none.
var notSystem = map[string]bool{
	"proc": true, "sys": true, "dev": true, "tmp": true, "run": true, "home": true, "root": true,
	"mnt": true, "media": true, "srv": true, "boot": true, "lost+found": true, "var": true,
	strings.TrimPrefix(initDir, "/"): true,
}

// system returns the bwrap arguments that build the read-only system part
// of the sandbox's root, and the directories they make (for Landlock).
func (l *launcher) system() (args, dirs []string, err error) {
	root := l.p.opts.RootFS
	if root == "" {
		return []string{
			"--ro-bind", "/usr", "/usr",
			"--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
			"--ro-bind-try", "/etc/ssl", "/etc/ssl",
			"--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
			"--ro-bind-try", "/etc/localtime", "/etc/localtime",
			"--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
			"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
		}, []string{"/usr", "/etc"}, nil
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("reading root filesystem: %w", err)
	}
	top := strings.SplitN(strings.TrimPrefix(l.spec.WorkspacePath, "/"), "/", 2)[0]
	for _, e := range ents {
		name := e.Name()
		if notSystem[name] || name == top {
			continue
		}
		src := filepath.Join(root, name)
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return nil, nil, fmt.Errorf("reading root filesystem: %w", err)
			}
			args = append(args, "--symlink", target, "/"+name)
		case e.IsDir():
			args = append(args, "--ro-bind", src, "/"+name)
			dirs = append(dirs, "/"+name)
		}
	}
	return args, dirs, nil
}

// args is the bwrap command line: a fresh root holding only read-only
// system directories, private /tmp and /dev, the workspace, no
// capabilities, every namespace new (the network one unless enabled), no
// further user namespaces, the seccomp filter, and the shim in front of the
// agent.
func (l *launcher) args(fd launchFDs) ([]string, error) {
	s := l.spec
	sys, sysDirs, err := l.system()
	if err != nil {
		return nil, err
	}
	a := []string{
		"--die-with-parent", "--new-session",
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--uid", "1000", "--gid", "1000", "--hostname", "sandbox",
		"--cap-drop", "ALL", "--clearenv",
	}
	if l.p.disableUserns {
		a = append(a, "--disable-userns")
	}
	a = append(a, sys...)
	a = append(a,
		"--proc", "/proc", "--dev", "/dev",
		// /dev is a tmpfs of its own, of no set size: bounded shared memory
		// in /dev/shm, and nothing else in /dev to write to.
		"--size", strconv.FormatInt(s.TmpSize, 10), "--perms", "1777", "--tmpfs", "/dev/shm",
		"--remount-ro", "/dev",
		"--size", strconv.FormatInt(s.TmpSize, 10), "--tmpfs", "/tmp",
		"--bind", l.workspace, s.WorkspacePath,
	)
	rules := landlockRules{
		RO:      sysDirs,
		RW:      []string{s.WorkspacePath, "/tmp", "/dev"},
		ListDir: []string{"/"},
		Proc:    []string{"/proc"},
	}
	// A network namespace of its own in every case; with networking,
	// slirp4netns connects it (see network_linux.go).
	a = append(a, "--unshare-net")
	if fd.info >= 0 {
		a = append(a, "--info-fd", strconv.Itoa(fd.info))
	}
	for f, n := range map[string]int{"/etc/hosts": fd.hosts, "/etc/resolv.conf": fd.resolv} {
		if n < 0 {
			continue
		}
		if l.p.opts.RootFS != "" {
			if _, err := os.Stat(filepath.Join(l.p.opts.RootFS, f)); err != nil {
				continue // cannot create a mount point in the read-only /etc
			}
		}
		a = append(a, "--ro-bind-data", strconv.Itoa(n), f)
	}
	for _, m := range s.Mounts {
		flag := "--bind"
		if m.ReadOnly {
			flag = "--ro-bind"
			rules.RO = append(rules.RO, m.Target)
		} else {
			rules.RW = append(rules.RW, m.Target)
		}
		a = append(a, flag, m.Source, m.Target)
	}
	if l.cg != nil {
		// Lets the agent read its OOM counter, as in a container.
		src, dst := l.cg.oomCounter()
		a = append(a, "--ro-bind", src, dst)
		rules.RO = append(rules.RO, "/sys/fs/cgroup")
	}
	a = append(a, "--chdir", s.WorkspacePath)
	for _, kv := range agent.BaseEnv(s.WorkspacePath) {
		k, v, _ := strings.Cut(kv, "=")
		a = append(a, "--setenv", k, v)
	}
	a = append(a, "--seccomp", strconv.Itoa(fd.seccomp))
	if fd.block >= 0 {
		a = append(a, "--block-fd", strconv.Itoa(fd.block))
	}
	cmd := []string{"python3", "-c", agent.Source, "agent"}
	var agentBind []string
	if f := l.p.agentFile; f != "" && regularFile(f) {
		// Bound read-only, like the rest of the system: the sandbox reads
		// the agent's bytecode but cannot change what later agents run.
		agentBind = []string{"--ro-bind", f, agentPath}
		rules.RO = append(rules.RO, agentPath)
		cmd = agent.LoaderCommand(agentPath)
	}
	if l.p.shim == "" {
		a = append(a, agentBind...)
		return append(append(a, "--"), cmd...), nil
	}
	cfg := shimConfig{Subreaper: true}
	if l.p.enf.LandlockABI > 0 {
		cfg.Landlock = &rules
	}
	if l.p.enf.Limits == LimitsRlimit {
		cfg.Rlimits = append(cfg.Rlimits,
			[2]uint64{syscall.RLIMIT_DATA, uint64(s.MemoryLimit)},
			[2]uint64{unix.RLIMIT_NPROC, uint64(s.PidsLimit)})
	}
	if l.p.opts.CPUSeconds > 0 {
		cfg.Rlimits = append(cfg.Rlimits, [2]uint64{syscall.RLIMIT_CPU, uint64(l.p.opts.CPUSeconds)})
	}
	if fd.netUp >= 0 && fd.netGo >= 0 {
		cfg.NetFDs = &[2]int{fd.netUp, fd.netGo}
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	a = append(a, "--perms", "0755", "--dir", initDir, "--ro-bind", l.p.shim, initPath)
	a = append(a, agentBind...)
	a = append(a, "--", initPath, initMarker, string(js))
	return append(a, cmd...), nil
}

// launchFDs are the descriptors bwrap gets besides its standard ones; -1
// for none.
type launchFDs struct {
	seccomp int // the seccomp program, read to its end
	block   int // bwrap's sandbox waits for a byte (or EOF) on it
	info    int // bwrap writes the sandbox's host PID to it
	hosts   int // contents of /etc/hosts
	resolv  int // contents of /etc/resolv.conf
	// The shim's side of the network hand-over: it writes a byte to
	// netUp once bwrap has set the sandbox up, then waits for one on
	// netGo, sent once slirp4netns has connected the namespace.
	netUp, netGo int
}

func (l *launcher) Start(ctx context.Context) (agent.Process, error) {
	l.kill() // one sandbox process tree at a time
	fd := launchFDs{seccomp: -1, block: -1, info: -1, hosts: -1, resolv: -1, netUp: -1, netGo: -1}
	var extra []*os.File
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	pass := func(f *os.File) int {
		extra = append(extra, f)
		return 2 + len(extra)
	}
	// The seccomp program goes through a pipe bwrap reads to its end.
	sec, err := dataFile(string(l.p.seccomp))
	if err != nil {
		return nil, fmt.Errorf("passing the seccomp filter: %w", err)
	}
	fd.seccomp = pass(sec)
	hosts := localHosts
	if l.spec.Network {
		hosts = sandboxHosts
	}
	f, err := dataFile(hosts)
	if err != nil {
		return nil, err
	}
	fd.hosts = pass(f)
	// The parent's ends of the pipes that hold the sandbox back until its
	// limits and network are in place, and that tell its PID.
	var blockW, infoR, upR, goW *os.File
	defer func() {
		for _, f := range []*os.File{blockW, infoR, upR, goW} {
			if f != nil {
				f.Close()
			}
		}
	}()
	if l.cg != nil || l.spec.Network {
		// bwrap tells the sandbox's PID on the info pipe as soon as it has
		// cloned it; the sandbox then waits on the block pipe.
		if blockW, fd.block, err = pipeOut(pass); err != nil {
			return nil, err
		}
		if infoR, fd.info, err = pipeIn(pass); err != nil {
			return nil, err
		}
	}
	if l.spec.Network {
		if l.p.netErr != nil {
			return nil, l.p.netErr
		}
		if f, err = dataFile(l.p.sandboxResolvConf()); err != nil {
			return nil, err
		}
		fd.resolv = pass(f)
		if l.p.shim != "" {
			if upR, fd.netUp, err = pipeIn(pass); err != nil {
				return nil, err
			}
			if goW, fd.netGo, err = pipeOut(pass); err != nil {
				return nil, err
			}
		}
	}
	args, err := l.args(fd)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(l.p.opts.Bwrap, args...)
	// bwrap's own environment (the sandbox's is cleared) says whose it is,
	// for the sweep of a later Warden should this one die first.
	cmd.Env = l.markers()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if u := l.p.opts.RunAs; u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID}
	}
	cmd.ExtraFiles = extra
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &agent.TailBuffer{Max: 16 << 10}
	cmd.Stderr = stderr
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting bwrap: %w", err)
	}
	for _, f := range extra {
		f.Close() // bwrap has its copies; an info pipe must see EOF
	}
	extra = nil
	var net *slirp
	fail := func(what string, err error) (agent.Process, error) {
		net.stop()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("%s: %w (bwrap: %s)", what, err, msg)
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if infoR != nil {
		// Each wait below ends with what it waits for, with the other side
		// gone (EOF: bwrap or the shim died), or when ctx ends: no fixed
		// time that a busy host could exceed.
		unblock := context.AfterFunc(ctx, func() {
			for _, f := range []*os.File{infoR, upR} {
				if f != nil {
					_ = f.SetReadDeadline(time.Now())
				}
			}
		})
		defer unblock()
		if l.cg != nil {
			// bwrap and the sandbox's first process join the cgroups
			// before the sandbox runs anything; what it starts inherits
			// them.
			if err := l.cg.add(cmd.Process.Pid); err != nil {
				return fail("limiting the sandbox", err)
			}
		}
		info, err := readChildPID(infoR)
		if err != nil {
			return fail("starting the sandbox", waitErr(ctx, err))
		}
		if l.cg != nil {
			if err := l.cg.add(info.ChildPID); err != nil {
				return fail("limiting the sandbox", err)
			}
		}
		if l.spec.Network {
			if info.NetNS == 0 {
				err = fmt.Errorf("bwrap's info has no net-namespace: bubblewrap 0.4 or later is needed for networking")
			}
			if err == nil && upR != nil {
				// bwrap configures the namespace's loopback itself;
				// slirp4netns configuring tap0 at the same time made that
				// fail now and then ("loopback: Failed RTM_NEWADDR"). So
				// bwrap finishes first, and the shim holds the sandbox's
				// program back until the network is up.
				blockW.Close()
				blockW = nil
				err = waitErr(ctx, waitByte(upR))
			}
			if err == nil {
				net, err = l.startSlirp(info)
			}
			if err == nil && goW != nil {
				_, err = goW.Write([]byte{1})
			}
			if err != nil {
				return fail("connecting the sandbox's network", err)
			}
		}
	}
	if blockW != nil {
		blockW.Close()
		blockW = nil
	}
	// One stop per launch, shared by the session (Close) and the launcher
	// (kill): the process group is killed before the only Wait, never
	// after it, when its number may already belong to someone else.
	stop := sync.OnceFunc(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		net.stop()
	})
	l.mu.Lock()
	l.stop, l.net, l.pid = stop, net, cmd.Process.Pid
	l.mu.Unlock()
	return &proc{Reader: stdout, WriteCloser: stdin, stderr: stderr, kill: stop}, nil
}

// Reset kills the sandbox's whole process tree: killing bwrap kills its
// PID namespace's init (--die-with-parent), and with it every process of
// the namespace. The next Start makes a new namespace.
func (l *launcher) Reset(ctx context.Context) error {
	l.kill()
	return nil
}

func (l *launcher) kill() {
	l.mu.Lock()
	stop := l.stop
	l.stop, l.net, l.pid = nil, nil, 0
	l.mu.Unlock()
	if stop != nil {
		stop()
	}
	if l.cg != nil {
		// Whatever of the old tree is left (bwrap's namespace dies with
		// it) goes before a new tree starts in the same group.
		ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
		defer cancel()
		if err := l.cg.drain(ctx); err != nil {
			l.p.log.Warn("killing the sandbox's processes", "sandbox_id", l.id, "err", err)
		}
	}
}

type proc struct {
	io.Reader
	io.WriteCloser
	stderr *agent.TailBuffer
	kill   func()
}

func (p *proc) Close() error        { p.kill(); return nil }
func (p *proc) Diagnostics() string { return p.stderr.String() }

// regularFile reports whether path is a regular file (following links).
func regularFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// pipeIn makes a pipe whose write end goes to bwrap (through pass, which
// tells its descriptor number there); the read end stays here.
func pipeIn(pass func(*os.File) int) (*os.File, int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, -1, err
	}
	return r, pass(w), nil
}

// pipeOut makes a pipe whose read end goes to bwrap; the write end stays.
func pipeOut(pass func(*os.File) int) (*os.File, int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, -1, err
	}
	return w, pass(r), nil
}

// markers is the environment of the sandbox's bwrap and slirp4netns
// processes: whose they are.
func (l *launcher) markers() []string {
	return []string{OwnerEnv + "=" + self, SandboxEnv + "=" + string(l.id)}
}

// waitErr says that a wait on the sandbox's start ended with ctx: the
// start took longer than its caller allowed, as on a host too busy to
// start it now.
func waitErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), sandbox.ErrUnavailable)
	}
	return err
}

// waitByte reads one byte from r; EOF means the other side went away
// first.
func waitByte(r *os.File) error {
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return fmt.Errorf("waiting for the sandbox to be set up: %w", err)
	}
	return nil
}
