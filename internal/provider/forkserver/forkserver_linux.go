package forkserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Provider runs sandboxes forked from a fork server. It is safe for
// concurrent use.
type Provider struct {
	opts     Options
	log      *slog.Logger
	bwrap    string
	seccomp  []byte
	layout   layout
	uid, gid uint32
	cgroups  bool   // cgroup v1 limits; else rlimits
	slirp    string // slirp4netns, "" when missing
	landlock int    // Landlock ABI, 0 for none

	// trace, if set (by tests and benchmarks), is told when each step of a
	// start happens, on CLOCK_MONOTONIC, and the children trace theirs on
	// their stderr (see zygote.py).
	trace func(step string, mono float64)

	zmu sync.Mutex
	z   *zygote

	// Base is the provider kit's: the live sandboxes, and every method of
	// sandbox.Provider but Name, Capabilities, Create and Close, plus
	// processes, checkpoints and listing.
	kit.Base[box]
}

// Name is the provider's name: SANDBOX__PROVIDER=forkserver selects it.
const Name = sandbox.ProviderForkServer

type box struct {
	l      *launcher
	ownsWS bool
}

var _ sandbox.Provider = (*Provider)(nil)

// New starts the fork server and returns the provider. It fails with
// sandbox.ErrUnsupported where the kernel lacks what it needs (see
// [Check]) and sandbox.ErrUnavailable where bubblewrap is missing or the
// server cannot start (no user namespaces, say).
func New(ctx context.Context, opts Options) (*Provider, error) {
	opts = opts.withDefaults()
	p := &Provider{opts: opts, log: opts.Log}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("provider", string(Name))
	p.Base.ProviderName = Name
	p.Base.Teardown = p.teardown
	var err error
	if p.bwrap, p.seccomp, p.layout, err = check(opts); err != nil {
		return nil, err
	}
	p.uid, p.gid = uint32(os.Geteuid()), uint32(os.Getegid())
	if os.Geteuid() == 0 {
		p.uid, p.gid = opts.UID, opts.GID
		p.cgroups = !opts.ForceRlimits && cgroupV1(opts.CgroupRoot)
	}
	p.landlock = landlockABI()
	p.slirp, _ = exec.LookPath("slirp4netns")
	if err := safedir.EnsureRoot(opts.WorkspaceRoot); err != nil {
		return nil, fmt.Errorf("forkserver: %w: %w", err, sandbox.ErrInvalid)
	}
	// What dead Warden processes left: their sandboxes' cgroups and
	// workspaces.
	kit.SweepOrphans(ctx, p.log, "fork server sandboxes", p.RemoveOrphans)
	z, err := p.startZygote(ctx)
	if err != nil {
		return nil, err
	}
	p.z = z
	if z.native {
		p.log.Info("sandboxes are set up by the native set-up", "hot_pages", z.facts.hot)
	} else {
		p.log.Info("sandboxes are set up in the fork server's Python", "why", z.pythonWhy)
	}
	return p, nil
}

// Check says, without starting a fork server, whether [New] could: the
// Linux calls it needs (open_tree and mount_setattr, Linux 5.12, with
// CAP_SYS_ADMIN, so a root Warden), bubblewrap, the seccomp filter for
// this architecture and the image's root. It does not try a user
// namespace: [New] does, by starting the server.
func Check(opts Options) error {
	_, _, _, err := check(opts.withDefaults())
	return err
}

func check(opts Options) (bwrapPath string, seccomp []byte, l layout, err error) {
	bwrapPath = opts.Bwrap
	if bwrapPath == "" {
		if bwrapPath, err = exec.LookPath("bwrap"); err != nil {
			return "", nil, layout{}, fmt.Errorf("the fork server needs bubblewrap, which is not installed: %w", sandbox.ErrUnavailable)
		}
	}
	// The host hands each sandbox its directories as detached mount trees
	// (one mount here, not the recursive tree a sandbox gets).
	if err := probeOpenTree(); err != nil {
		why := "the kernel lacks it (Linux 5.12 or later is needed)"
		if errors.Is(err, unix.EPERM) {
			why = "it needs CAP_SYS_ADMIN: run Warden as root"
		}
		return "", nil, layout{}, fmt.Errorf("the fork server cannot give sandboxes their directories: %v: %s: %w", err, why, sandbox.ErrUnsupported)
	}
	if seccomp, err = bwrap.SeccompProgram(); err != nil {
		return "", nil, layout{}, fmt.Errorf("forkserver: %v: %w", err, sandbox.ErrUnsupported)
	}
	if l, err = systemLayout(opts.RootFS); err != nil {
		return "", nil, layout{}, fmt.Errorf("forkserver: %w: %w", err, sandbox.ErrUnavailable)
	}
	return bwrapPath, seccomp, l, nil
}

// Describe says in one line what the provider enforces here.
func (p *Provider) Describe() string {
	parts := []string{"sandboxes forked from a pre-imported agent in fresh Linux namespaces", "seccomp"}
	if p.landlock > 0 {
		parts = append(parts, fmt.Sprintf("Landlock ABI %d", p.landlock))
	}
	if p.cgroups {
		parts = append(parts, "limits: cgroup-v1")
	} else {
		parts = append(parts, "limits: rlimits")
	}
	switch {
	case p.networkErr() == nil:
		parts = append(parts, "network when enabled: slirp4netns")
	case p.slirp == "":
		parts = append(parts, "no network (slirp4netns is not installed)")
	default:
		parts = append(parts, "no network (needs a root Warden)")
	}
	return strings.Join(parts, ", ")
}

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return string(Name) }

// Capabilities implements sandbox.Provider.
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{
		Isolation:     sandbox.IsolationNamespace,
		NetworkToggle: p.networkErr() == nil,
		MemoryLimit:   true,
		CPULimit:      p.cgroups,
		PidsLimit:     p.cgroups || p.uid != 0,
		Mounts:        true,
	}
}

// zygote returns the current fork server, starting a new one if it died
// or if what it holds (the image's interpreter) changed. A replaced server
// lives on until its last sandbox is destroyed: its sandboxes die with it.
func (p *Provider) zygote(ctx context.Context) (*zygote, error) {
	p.zmu.Lock()
	defer p.zmu.Unlock()
	z := p.z
	if z != nil && z.alive() && z.key == p.zygoteKey() {
		return z, nil
	}
	nz, err := p.startZygote(ctx)
	if err != nil {
		return nil, err
	}
	if z != nil {
		z.mu.Lock()
		z.retire = true
		idle := z.live == 0
		z.mu.Unlock()
		if idle {
			go z.stop()
		}
	}
	p.z = nz
	return nz, nil
}

// release drops a sandbox's hold on the server it was forked from.
func (p *Provider) release(z *zygote) {
	if z == nil {
		return
	}
	z.mu.Lock()
	z.live--
	stop := z.retire && z.live <= 0
	z.mu.Unlock()
	if stop {
		go z.stop()
	}
}

// Create implements sandbox.Provider.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (info sandbox.Info, err error) {
	spec = spec.WithDefaults()
	b, undo, err := p.newBox(spec)
	if err != nil {
		return sandbox.Info{}, startErr(err)
	}
	defer func() {
		if err != nil {
			undo()
			err = startErr(err)
		}
	}()
	b.Session = kit.NewSession(b.Box.l, spec, spec.WorkspacePath)
	if _, err = b.Session.Start(ctx); err != nil {
		_ = b.Session.Close()
		b.Box.l.kill()
		return sandbox.Info{}, err
	}
	p.Boxes.Add(b)
	return b.Info, nil
}

// startErr marks a failure to start a sandbox as ErrUnavailable, unless
// it is the caller's (ErrInvalid) or a lack of this host (ErrUnsupported).
func startErr(err error) error {
	if err == nil || errors.Is(err, sandbox.ErrInvalid) || errors.Is(err, sandbox.ErrUnsupported) {
		return err
	}
	return fmt.Errorf("the sandbox could not be started now: %w: %w", err, sandbox.ErrUnavailable)
}

// newBox checks spec (which has its defaults) and makes what a sandbox
// needs before its processes: the private workspace, the cgroups and the
// launcher. undo removes them.
func (p *Provider) newBox(spec sandbox.Spec) (b *kit.Sandbox[box], _ func(), err error) {
	var undos []func()
	undo := func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
	}
	defer func() {
		if err != nil {
			undo()
		}
	}()
	if err := spec.Validate(); err != nil {
		return nil, nil, err
	}
	if spec.Network {
		if err := p.networkErr(); err != nil {
			return nil, nil, err
		}
	}
	if spec.WorkspaceDir != "" {
		if st, err := os.Stat(spec.WorkspaceDir); err != nil || !st.IsDir() {
			return nil, nil, fmt.Errorf("workspace_dir %q is not an existing directory: %w", spec.WorkspaceDir, sandbox.ErrInvalid)
		}
	}
	for _, m := range spec.Mounts {
		if st, err := os.Stat(m.Source); err != nil || !st.IsDir() {
			return nil, nil, fmt.Errorf("mount source %q is not an existing directory: %w", m.Source, sandbox.ErrInvalid)
		}
	}
	id := sandbox.NewID()
	b = &kit.Sandbox[box]{Info: sandbox.Info{ID: id, Provider: p.Name(), Name: "fork-" + string(id), Spec: spec, WorkspaceUID: -1, WorkspaceGID: -1}}
	ws := spec.WorkspaceDir
	if ws == "" {
		ws = filepath.Join(p.opts.WorkspaceRoot, wsPrefix+tagged(string(id)))
		if err := os.Mkdir(ws, 0o700); err != nil {
			return nil, nil, fmt.Errorf("creating workspace: %w", err)
		}
		b.Box.ownsWS = true
		undos = append(undos, func() { _ = os.RemoveAll(ws) })
		if os.Geteuid() == 0 {
			if err := os.Lchown(ws, int(p.uid), int(p.gid)); err != nil {
				return nil, nil, err
			}
			b.Info.WorkspaceUID, b.Info.WorkspaceGID = int(p.uid), int(p.gid)
		}
	}
	b.Info.Workspace = ws
	var cg *cgroup
	if p.cgroups {
		if cg, err = newCgroup(p.opts.CgroupRoot, tagged(string(id)), spec); err != nil {
			return nil, nil, err
		}
		undos = append(undos, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = cg.remove(ctx)
		})
	}
	b.Box.l = &launcher{p: p, spec: spec, workspace: ws, cg: cg}
	return b, undo, nil
}

// Run implements sandbox.Runner: a one-shot run (agent.OneShot) in a
// sandbox forked for it, isolated and limited as one from Create, whose
// init forks one process for the run and waits, instead of an agent that
// forks a worker and relays. The sandbox is killed and removed (cgroups,
// private workspace) before Run returns.
func (p *Provider) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (res sandbox.ExecResult, err error) {
	if err := agent.CheckRequest(req); err != nil {
		return sandbox.ExecResult{}, err
	}
	spec = spec.WithDefaults()
	b, undo, err := p.newBox(spec)
	if err != nil {
		return sandbox.ExecResult{}, startErr(err)
	}
	l := b.Box.l
	l.oneshot = true
	l.python = req.Language == sandbox.Python
	defer func() {
		p.step("ran")
		l.kill()
		p.step("killed")
		if p.trace != nil && l.stderr != nil {
			time.Sleep(10 * time.Millisecond)          // the copy of the init's stderr
			p.trace("sandbox:\n"+l.stderr.String(), 0) // its steps (see trace in zygote.py)
		}
		undo()
		p.step("removed")
	}()
	pr, err := l.Start(ctx)
	if err != nil {
		return sandbox.ExecResult{}, startErr(err)
	}
	pc := pr.(*proc)
	defer pc.runOut.Close()
	defer pc.runErr.Close()
	run := &agent.OneShot{
		Conn: pc.f, Stdout: pc.runOut, Stderr: pc.runErr,
		Kill:      l.kill,
		Workspace: spec.WorkspacePath, Env: spec.Env, Timeout: spec.Timeout, OutputLimit: spec.OutputLimit,
	}
	if cg := l.cg; cg != nil {
		run.OOMKills = cg.oomKills
	}
	if pidfdExitInfo() {
		run.ExitStatus = l.exitStatus
	}
	return run.Run(ctx, req)
}

// NativeSetup reports whether the fork server sets sandboxes up with the
// native set-up (ADR 0020), and why not when it does not.
func (p *Provider) NativeSetup() (bool, string) {
	p.zmu.Lock()
	defer p.zmu.Unlock()
	if p.z == nil {
		return false, "no fork server"
	}
	return p.z.native, p.z.pythonWhy
}

// HotPages is the number of pages the fork server learnt that a one-shot
// Python run writes, which each one-shot sandbox copies at once (0: none;
// ADR 0021).
func (p *Provider) HotPages() int {
	p.zmu.Lock()
	defer p.zmu.Unlock()
	if p.z == nil {
		return 0
	}
	return p.z.facts.hot
}

// pidfdExitInfo reports whether the kernel keeps a process's exit status
// for any holder of its pidfd (PIDFD_INFO_EXIT, Linux 6.15). Without it, a
// one-shot Python run that ends without a result (os._exit, a crash) is
// reported as the sandbox's death, without its exit code.
var pidfdExitInfo = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 6, 15)
})

// kernelAtLeast reports whether release ("6.18.44-fc-v1294") is at least
// major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if n, _ := fmt.Sscanf(release, "%d.%d", &ma, &mi); n != 2 {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// pidfdInfo is struct pidfd_info (linux/pidfd.h), as far as exit_code
// (PIDFD_INFO_SIZE_VER0).
type pidfdInfo struct {
	Mask                                                              uint64
	CgroupID                                                          uint64
	Pid, Tgid, Ppid, Ruid, Rgid, Euid, Egid, Suid, Sgid, Fsuid, Fsgid uint32
	ExitCode                                                          int32
}

const (
	pidfdGetInfo  = 0xC040FF0B // _IOWR(0xFF, 11, struct pidfd_info of 64 bytes)
	pidfdInfoExit = 1 << 3
)

// exitStatus waits (up to 5 s) for the tree's init to end and be reaped
// (by the fork server, or bwrap's init after a double fork) and returns
// its wait status, read from its pidfd (PIDFD_INFO_EXIT, Linux 6.15: the
// host is not its parent; the kernel records it at the reaping). ok is
// false on an older kernel, or if it did not end in time.
func (l *launcher) exitStatus() (int, bool) {
	l.mu.Lock()
	pidfd := l.pidfd
	l.mu.Unlock()
	if pidfd <= 0 {
		return 0, false
	}
	wait := 100 * time.Microsecond
	for deadline := time.Now().Add(5 * time.Second); ; {
		info := pidfdInfo{Mask: pidfdInfoExit}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(pidfd), pidfdGetInfo, uintptr(unsafe.Pointer(&info))); e != 0 {
			return 0, false // no PIDFD_GET_INFO: Linux before 6.13
		}
		if info.Mask&pidfdInfoExit != 0 {
			return int(info.ExitCode), true
		}
		if time.Now().After(deadline) {
			return 0, false
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
}

// teardown is Destroy's part after the kit unregistered the sandbox: it
// kills the sandbox's pid namespace (every process in it), removes its
// cgroups and its private workspace. What it cannot remove is logged and
// left to the sweep of a later provider ([Provider.RemoveOrphans]).
func (p *Provider) teardown(ctx context.Context, b *kit.Sandbox[box]) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_ = b.Session.Close()
	b.Box.l.kill()
	var errs []error
	if cg := b.Box.l.cg; cg != nil {
		if err := cg.remove(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if b.Box.ownsWS {
		if err := os.RemoveAll(b.Info.Workspace); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		p.log.Warn("destroyed sandbox not entirely removed", "sandbox_id", b.Info.ID, "err", err)
	}
	return nil
}

// HostPID returns the host PID of the sandbox's init (pid 1 of its pid
// namespace; the agent and everything it started descend from it).
func (p *Provider) HostPID(id sandbox.ID) (int, error) {
	b, err := p.Boxes.Get(id)
	if err != nil {
		return 0, err
	}
	b.Box.l.mu.Lock()
	defer b.Box.l.mu.Unlock()
	return b.Box.l.pid, nil
}

// Close destroys every sandbox and stops the fork server.
func (p *Provider) Close(ctx context.Context) error {
	err := p.Base.Close(ctx)
	p.zmu.Lock()
	z := p.z
	p.z = nil
	p.zmu.Unlock()
	if z != nil {
		z.stop()
	}
	if _, serr := p.RemoveOrphans(ctx); serr != nil {
		p.log.Warn("removing orphaned fork server sandboxes", "err", serr)
	}
	return err
}

// launcher forks a new process tree for one sandbox each time the session
// starts an agent.
type launcher struct {
	p         *Provider
	spec      sandbox.Spec
	workspace string
	cg        *cgroup
	// oneshot: the tree is a one-shot run's (agent.OneShot), not an
	// agent's: two more descriptors, the run's stdout and stderr pipes.
	oneshot bool
	// python: the one-shot run is Python's, whose pages are learnt (hot).
	python bool

	mu    sync.Mutex
	pid   int // host pid of the tree's init, 0 when none
	pidfd int
	z     *zygote
	file  *os.File
	// stderr is the running tree's stderr (its last 16 KiB).
	stderr *agent.TailBuffer
	net    *slirp // the running tree's slirp4netns, nil without networking
	// started: a tree was asked of the fork server since the last kill,
	// so the cgroups may hold processes to drain.
	started bool
}

// childRequest is what the fork server's child is told (see zygote.py).
type childRequest struct {
	Cgroups   int         `json:"cgroups"` // cgroup.procs files passed after the stderr pipe
	Hostname  string      `json:"hostname"`
	TmpSize   int64       `json:"tmp_size"`
	Workspace string      `json:"workspace"`
	Trees     []string    `json:"trees"`
	Env       []string    `json:"env"`
	Landlock  *llConfig   `json:"landlock,omitempty"`
	Rlimits   [][2]uint64 `json:"rlimits,omitempty"`
	Trace     bool        `json:"trace,omitempty"`
	Oneshot   bool        `json:"oneshot,omitempty"` // a one-shot run: its stdout and stderr pipes come last
	// Hot: a one-shot Python run, which copies the pages such a run
	// writes at once (the native set-up's "hot" step).
	Hot bool `json:"-"`
	// With networking: wait for a byte before the agent runs, and these
	// /etc/hosts and /etc/resolv.conf.
	Network bool    `json:"network,omitempty"`
	Hosts   *string `json:"hosts,omitempty"`
	Resolv  *string `json:"resolv,omitempty"`
}

// oomDir is where the agent finds its memory cgroup's OOM counter.
const oomDir = "/sys/fs/cgroup/memory"

// openTree clones the mount tree at path, detached, for the child to
// attach in its own mount namespace; read-only if ro, never setuid or
// device files, and nothing executable if noexec.
func openTree(path string, ro, noexec bool) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return -1, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if ro {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if noexec {
		attr.Attr_set |= unix.MOUNT_ATTR_NOEXEC
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount_setattr %s: %w", path, err)
	}
	return fd, nil
}

// probeOpenTree clones the root mount alone, detached, and makes the
// clone read-only, as [openTree] does for each directory of a sandbox.
func probeOpenTree() error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	return nil
}

func (l *launcher) request() (childRequest, []string, []bool) {
	s := l.spec
	req := childRequest{
		Hostname: "sandbox", TmpSize: s.TmpSize,
		Workspace: s.WorkspacePath, Env: agent.BaseEnv(s.WorkspacePath),
	}
	srcs := []string{l.workspace}
	ros := []bool{false}
	req.Trees = []string{s.WorkspacePath}
	rules := llRules{RO: append([]string(nil), l.p.layout.dirs...), RW: []string{s.WorkspacePath, "/tmp", "/dev"}, ListDir: []string{"/"}, Proc: []string{"/proc"}}
	for _, m := range s.Mounts {
		srcs = append(srcs, m.Source)
		ros = append(ros, m.ReadOnly)
		req.Trees = append(req.Trees, m.Target)
		if m.ReadOnly {
			rules.RO = append(rules.RO, m.Target)
		} else {
			rules.RW = append(rules.RW, m.Target)
		}
	}
	if l.cg != nil {
		srcs = append(srcs, l.cg.dir("memory"))
		ros = append(ros, true)
		req.Trees = append(req.Trees, oomDir)
		rules.RO = append(rules.RO, "/sys/fs/cgroup")
	}
	if l.p.landlock > 0 {
		req.Landlock = landlockConfig(l.p.landlock, rules)
	}
	if s.Network {
		hosts, resolv := localHostsNet, resolvNet
		req.Network, req.Hosts, req.Resolv = true, &hosts, &resolv
	}
	if l.cg == nil {
		req.Rlimits = [][2]uint64{{syscall.RLIMIT_DATA, uint64(s.MemoryLimit)}, {unix.RLIMIT_NPROC, uint64(s.PidsLimit)}}
	}
	return req, srcs, ros
}

// Start implements agent.Launcher: it asks the fork server for a new
// process tree and waits until it is in its cgroup.
func (l *launcher) Start(ctx context.Context) (agent.Process, error) {
	l.kill()
	z, err := l.p.zygote(ctx)
	if err != nil {
		return nil, err
	}
	req, srcs, ros := l.request()
	req.Trace = l.p.trace != nil
	req.Oneshot = l.oneshot
	// The hot pages only where the memory limit leaves ample room for
	// them (they count against it: about 2 MiB).
	req.Hot = l.oneshot && l.python && l.spec.MemoryLimit >= 4*int64(z.facts.hot)*int64(os.Getpagesize())
	l.p.step("start")
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	hostFD, childFD := sp[0], sp[1]
	var toClose []int
	toClose = append(toClose, childFD)
	defer func() {
		for _, fd := range toClose {
			unix.Close(fd)
		}
	}()
	if err := unix.SetsockoptInt(hostFD, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		unix.Close(hostFD)
		return nil, err
	}
	if err := unix.SetNonblock(hostFD, true); err != nil {
		unix.Close(hostFD)
		return nil, err
	}
	f := os.NewFile(uintptr(hostFD), "agent")
	errR, errW, err := os.Pipe()
	if err != nil {
		f.Close()
		return nil, err
	}
	defer errW.Close()
	fds := []int{childFD, int(errW.Fd())}
	if l.cg != nil {
		// The child joins its cgroups itself, through files opened here:
		// the kernel checks the opener's credentials.
		for _, ctl := range controllers {
			cfd, err := unix.Open(filepath.Join(l.cg.dir(ctl), "cgroup.procs"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				f.Close()
				errR.Close()
				return nil, fmt.Errorf("opening the sandbox's %s cgroup: %w", ctl, err)
			}
			toClose = append(toClose, cfd)
			fds = append(fds, cfd)
			req.Cgroups++
		}
	}
	for i, src := range srcs {
		// Only the cgroup directory (the last, if any) is never executable:
		// mounts are as the bubblewrap provider binds them.
		tfd, err := openTree(src, ros[i], l.cg != nil && i == len(srcs)-1)
		if err != nil {
			f.Close()
			errR.Close()
			return nil, err
		}
		toClose = append(toClose, tfd)
		fds = append(fds, tfd)
	}
	var runOut, runErr *os.File
	if l.oneshot {
		var ow, ew *os.File
		if runOut, ow, err = os.Pipe(); err == nil {
			if runErr, ew, err = os.Pipe(); err != nil {
				runOut.Close()
				ow.Close()
			}
		}
		if err != nil {
			f.Close()
			errR.Close()
			return nil, err
		}
		defer ow.Close()
		defer ew.Close()
		fds = append(fds, int(ow.Fd()), int(ew.Fd()))
	}
	z.mu.Lock()
	z.live++
	z.mu.Unlock()
	held := z
	fail := func(err error) (agent.Process, error) {
		f.Close()
		errR.Close()
		if runOut != nil {
			runOut.Close()
			runErr.Close()
		}
		l.mu.Lock()
		pidfd := l.pidfd
		l.mu.Unlock()
		if pidfd > 0 {
			_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		}
		l.kill()
		if held != nil {
			l.p.release(held)
		}
		return nil, err
	}
	js, err := json.Marshal(req)
	if err != nil {
		return fail(err)
	}
	// The native set-up's program first, made here: the server only
	// clones (ADR 0021). The Python set-up takes its steps from the JSON.
	var prog []byte
	if z.native {
		if prog, err = setupProgram(req, len(fds), z.facts, l.p.layout, rootMount); err != nil {
			return fail(fmt.Errorf("the sandbox's set-up: %w", err))
		}
	}
	msg, err := frame(prog, js, len(fds))
	if err != nil {
		return fail(fmt.Errorf("%w: %w", err, sandbox.ErrInvalid))
	}
	l.p.step("send")
	l.mu.Lock()
	l.started = true
	l.mu.Unlock()
	if err := z.send(msg, fds); err != nil {
		return fail(fmt.Errorf("asking the fork server for a sandbox: %w", err))
	}
	for _, fd := range toClose {
		unix.Close(fd)
	}
	toClose = nil
	errW.Close()
	stderr := &agent.TailBuffer{Max: 16 << 10}
	go func() {
		_, _ = io.Copy(stderr, errR)
		errR.Close()
	}()
	unblock := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer unblock()
	diag := func(err error) error {
		if msg := stderr.String(); msg != "" {
			return fmt.Errorf("%w (%s)", err, msg)
		}
		return err
	}
	b, pid2, err := recvCred(f)
	if err != nil || b != '2' {
		return fail(diag(fmt.Errorf("the sandbox's init did not report: %v", err)))
	}
	pidfd, err := unix.PidfdOpen(pid2, 0)
	if err != nil {
		return fail(fmt.Errorf("pidfd_open: %w", err))
	}
	l.p.step("cred2")
	var net *slirp
	if l.spec.Network {
		if net, err = l.p.startSlirp(pid2, pidfd, l.cg); err == nil {
			_, err = f.Write([]byte{'n'})
		}
		if err != nil {
			net.stop()
			_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
			unix.Close(pidfd)
			return fail(diag(fmt.Errorf("connecting the sandbox's network: %w", err)))
		}
	}
	_ = f.SetReadDeadline(time.Time{})
	l.mu.Lock()
	l.pid, l.pidfd, l.z, l.file, l.stderr, l.net = pid2, pidfd, held, f, stderr, net
	l.mu.Unlock()
	return &proc{f: f, l: l, stderr: stderr, runOut: runOut, runErr: runErr}, nil
}

func (p *Provider) step(what string) {
	if p.trace == nil {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	p.trace(what, float64(ts.Sec)+float64(ts.Nsec)/1e9)
}

// recvCred reads one byte and the sender's credentials (its pid in this
// process's pid namespace).
func recvCred(f *os.File) (byte, int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return 0, 0, err
	}
	if n != 1 {
		return 0, 0, io.EOF
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return 0, 0, err
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_CREDENTIALS {
			uc, err := unix.ParseUnixCredentials(&m)
			if err != nil {
				return 0, 0, err
			}
			if uc.Pid <= 0 {
				return 0, 0, errors.New("no pid in the credentials")
			}
			return buf[0], int(uc.Pid), nil
		}
	}
	return 0, 0, errors.New("no credentials")
}

// Reset implements agent.Launcher: it kills the process tree; the next
// Start forks a new one (fresh namespaces, /tmp and session; the same
// workspace and cgroup).
func (l *launcher) Reset(ctx context.Context) error {
	l.kill()
	return nil
}

// kill kills the sandbox's init, which takes its whole pid namespace
// with it, waits for it to be gone, and empties the cgroup.
func (l *launcher) kill() {
	l.mu.Lock()
	pidfd, z, f, net, started := l.pidfd, l.z, l.file, l.net, l.started
	l.pid, l.pidfd, l.z, l.file, l.net, l.started = 0, 0, nil, nil, nil, false
	l.mu.Unlock()
	defer net.stop()
	if pidfd > 0 {
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			n, err := unix.Poll(fds, 1000)
			if n > 0 || (err != nil && err != unix.EINTR) {
				break
			}
		}
		unix.Close(pidfd)
	}
	if f != nil {
		f.Close()
	}
	if l.cg != nil && started { // nothing to drain since the last kill otherwise
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.cg.drain(ctx); err != nil {
			l.p.log.Warn("killing the sandbox's processes", "err", err)
		}
	}
	if z != nil {
		l.p.release(z)
	}
}

type proc struct {
	f      *os.File
	l      *launcher
	stderr *agent.TailBuffer
	once   sync.Once
	// A one-shot run's stdout and stderr (read ends), else nil.
	runOut, runErr *os.File
}

func (p *proc) Read(b []byte) (int, error)  { return p.f.Read(b) }
func (p *proc) Write(b []byte) (int, error) { return p.f.Write(b) }
func (p *proc) Close() error {
	p.once.Do(func() {
		p.l.mu.Lock()
		mine := p.l.file == p.f
		p.l.mu.Unlock()
		if mine {
			p.l.kill()
		} else {
			p.f.Close()
		}
	})
	return nil
}
func (p *proc) Diagnostics() string { return p.stderr.String() }

// Landlock.

type llRules struct {
	RO, RW, ListDir, Proc []string
}

// llConfig is the ruleset the child builds: [path, access, the rights
// that apply to a file] per rule.
type llConfig struct {
	Handled  uint64   `json:"handled"`
	Scoped   uint64   `json:"scoped"`
	AttrSize int      `json:"attr_size"`
	Rules    [][3]any `json:"rules"`
}

const (
	llRefer     = 1 << 13
	llTruncate  = 1 << 14
	llIoctlDev  = 1 << 15
	llABI1      = 1<<13 - 1
	llFileRight = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_READ_FILE | llTruncate | llIoctlDev
)

func landlockABI() int {
	v, _, errno := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

// landlockConfig gives the same rights as the bubblewrap provider's shim.
func landlockConfig(abi int, r llRules) *llConfig {
	h := uint64(llABI1)
	if abi >= 2 {
		h |= llRefer
	}
	if abi >= 3 {
		h |= llTruncate
	}
	if abi >= 5 {
		h |= llIoctlDev
	}
	var attr unix.LandlockRulesetAttr
	c := &llConfig{Handled: h, AttrSize: int(unsafe.Sizeof(attr))}
	switch {
	case abi < 4:
		c.AttrSize = int(unsafe.Offsetof(attr.Access_net))
	case abi < 6:
		c.AttrSize = int(unsafe.Offsetof(attr.Scoped))
	default:
		c.Scoped = 1 | 2 // abstract unix sockets, signals
	}
	ro := uint64(unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR)
	groups := []struct {
		paths  []string
		access uint64
	}{
		{r.RO, ro},
		{r.RW, h},
		{r.ListDir, unix.LANDLOCK_ACCESS_FS_READ_DIR},
		{r.Proc, unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | llTruncate},
	}
	for _, g := range groups {
		for _, p := range g.paths {
			c.Rules = append(c.Rules, [3]any{p, g.access & h, uint64(llFileRight) & h})
		}
	}
	return c
}
