package bwrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Options configure a Provider.
type Options struct {
	// Bwrap is the bubblewrap binary. Default: bwrap on PATH.
	Bwrap string
	// WorkspaceRoot is where private workspaces are created. Default
	// $TMPDIR/warden.
	WorkspaceRoot string
	// CgroupRoot is the cgroup (v1) hierarchy root. Default /sys/fs/cgroup.
	CgroupRoot string
	// Log receives operational messages.
	Log *slog.Logger
}

// Provider runs sandboxes with bubblewrap. It is safe for concurrent use.
type Provider struct {
	opts    Options
	log     *slog.Logger
	cgroups bool // limits are enforced (root and cgroup v1 controllers)

	mu    sync.Mutex
	boxes map[sandbox.ID]*box
}

var _ sandbox.Provider = (*Provider)(nil)

type box struct {
	info   sandbox.Info
	sess   *agent.Session
	l      *launcher
	ownsWS bool
}

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
	if opts.WorkspaceRoot == "" {
		opts.WorkspaceRoot = filepath.Join(os.TempDir(), "warden")
	}
	if opts.CgroupRoot == "" {
		opts.CgroupRoot = "/sys/fs/cgroup"
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(tctx, opts.Bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr",
		"--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
		"--proc", "/proc", "--dev", "/dev", "true").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("bubblewrap cannot create a sandbox here (%v: %s): %w", err, strings.TrimSpace(string(out)), sandbox.ErrUnavailable)
	}
	p := &Provider{opts: opts, log: log.With("provider", "bubblewrap"), boxes: map[sandbox.ID]*box{}}
	p.cgroups = os.Geteuid() == 0 && cgroupV1(opts.CgroupRoot)
	if !p.cgroups {
		p.log.Warn("memory, CPU and process limits are not enforced: they need root and cgroup v1 controllers")
	}
	return p, nil
}

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return "bubblewrap" }

// Capabilities implements sandbox.Provider.
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{
		Isolation:     sandbox.IsolationNamespace,
		NetworkToggle: true,
		MemoryLimit:   p.cgroups,
		CPULimit:      p.cgroups,
		PidsLimit:     p.cgroups,
		Mounts:        true,
	}
}

// Create implements sandbox.Provider.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (info sandbox.Info, err error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return sandbox.Info{}, err
	}
	for _, m := range spec.Mounts {
		if st, err := os.Stat(m.Source); err != nil || !st.IsDir() {
			return sandbox.Info{}, fmt.Errorf("mount source %q is not an existing directory: %w", m.Source, sandbox.ErrInvalid)
		}
	}
	id := sandbox.NewID()
	b := &box{info: sandbox.Info{ID: id, Provider: p.Name(), Name: "bwrap-" + string(id), Spec: spec, WorkspaceUID: -1, WorkspaceGID: -1}}
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	ws := spec.WorkspaceDir
	if ws == "" {
		if err := os.MkdirAll(p.opts.WorkspaceRoot, 0o711); err != nil {
			return sandbox.Info{}, fmt.Errorf("creating workspace root: %w", err)
		}
		if ws, err = os.MkdirTemp(p.opts.WorkspaceRoot, "bwrap-"+string(id)+"-"); err != nil {
			return sandbox.Info{}, fmt.Errorf("creating workspace: %w", err)
		}
		b.ownsWS = true
		undo = append(undo, func() { _ = os.RemoveAll(ws) })
	}
	b.info.Workspace = ws
	var cg *cgroup
	if p.cgroups {
		if cg, err = newCgroup(p.opts.CgroupRoot, string(id), spec); err != nil {
			return sandbox.Info{}, err
		}
		undo = append(undo, cg.remove)
	}
	b.l = &launcher{bwrap: p.opts.Bwrap, spec: spec, workspace: ws, cg: cg}
	b.sess = agent.NewSession(b.l, agent.Options{
		Workspace:   spec.WorkspacePath,
		Timeout:     spec.Timeout,
		OutputLimit: spec.OutputLimit,
		Env:         spec.Env,
	})
	undo = append(undo, func() { _ = b.sess.Close(); b.l.kill() })
	if _, err := b.sess.Start(ctx); err != nil {
		return sandbox.Info{}, err
	}
	p.mu.Lock()
	p.boxes[id] = b
	p.mu.Unlock()
	return b.info, nil
}

func (p *Provider) get(id sandbox.ID) (*box, error) {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := p.boxes[id]; b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
}

// Exec implements sandbox.Provider.
func (p *Provider) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	b, err := p.get(id)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	return b.sess.Exec(ctx, req)
}

// UpdateEnv implements sandbox.Provider.
func (p *Provider) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	b, err := p.get(id)
	if err != nil {
		return nil, err
	}
	return b.sess.UpdateEnv(u)
}

// Env implements sandbox.Provider.
func (p *Provider) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	b, err := p.get(id)
	if err != nil {
		return nil, err
	}
	return b.sess.Env(), nil
}

// Destroy implements sandbox.Provider: it kills the sandbox's namespace
// (every process in it) and removes its cgroup and private workspace.
func (p *Provider) Destroy(ctx context.Context, id sandbox.ID) error {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return err
	}
	p.mu.Lock()
	b := p.boxes[id]
	delete(p.boxes, id)
	p.mu.Unlock()
	if b == nil {
		return fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	_ = b.sess.Close()
	b.l.kill()
	var errs []error
	if b.l.cg != nil {
		b.l.cg.remove()
	}
	if b.ownsWS {
		if err := os.RemoveAll(b.info.Workspace); err != nil {
			errs = append(errs, fmt.Errorf("removing workspace: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Close destroys every sandbox.
func (p *Provider) Close(ctx context.Context) error {
	p.mu.Lock()
	ids := make([]sandbox.ID, 0, len(p.boxes))
	for id := range p.boxes {
		ids = append(ids, id)
	}
	p.mu.Unlock()
	var errs []error
	for _, id := range ids {
		errs = append(errs, p.Destroy(ctx, id))
	}
	return errors.Join(errs...)
}

// launcher starts the agent in a new bubblewrap sandbox each time; the
// session's state lives in that one process tree.
type launcher struct {
	bwrap     string
	spec      sandbox.Spec
	workspace string
	cg        *cgroup

	mu  sync.Mutex
	cmd *exec.Cmd
}

// args is the bwrap command line: a fresh root holding only read-only
// system directories, private /tmp and /dev, the workspace, no
// capabilities, every namespace new (the network one unless enabled).
func (l *launcher) args(blockFD int) []string {
	s := l.spec
	a := []string{
		"--die-with-parent", "--new-session",
		"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
		"--uid", "1000", "--gid", "1000", "--hostname", "sandbox",
		"--cap-drop", "ALL", "--clearenv",
		"--ro-bind", "/usr", "/usr",
		"--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
		"--ro-bind-try", "/etc/ssl", "/etc/ssl",
		"--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
		"--ro-bind-try", "/etc/localtime", "/etc/localtime",
		"--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
		"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
		"--proc", "/proc", "--dev", "/dev",
		"--size", strconv.FormatInt(s.TmpSize, 10), "--tmpfs", "/tmp",
		"--bind", l.workspace, s.WorkspacePath,
	}
	if !s.Network {
		a = append(a, "--unshare-net")
	} else {
		a = append(a, "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf", "--ro-bind-try", "/etc/hosts", "/etc/hosts")
	}
	for _, m := range s.Mounts {
		flag := "--bind"
		if m.ReadOnly {
			flag = "--ro-bind"
		}
		a = append(a, flag, m.Source, m.Target)
	}
	if l.cg != nil {
		// Lets the agent read its OOM counter, as in a container.
		a = append(a, "--ro-bind", l.cg.dir("memory"), "/sys/fs/cgroup/memory")
	}
	a = append(a, "--chdir", s.WorkspacePath)
	for _, kv := range agent.BaseEnv(s.WorkspacePath) {
		k, v, _ := strings.Cut(kv, "=")
		a = append(a, "--setenv", k, v)
	}
	if blockFD >= 0 {
		a = append(a, "--block-fd", strconv.Itoa(blockFD))
	}
	return append(a, "--", "python3", "-c", agent.Source, "agent")
}

func (l *launcher) Start(ctx context.Context) (agent.Process, error) {
	l.kill() // one sandbox process tree at a time
	var blockR, blockW *os.File
	blockFD := -1
	if l.cg != nil {
		var err error
		if blockR, blockW, err = os.Pipe(); err != nil {
			return nil, err
		}
		defer blockR.Close()
		blockFD = 3 // the first ExtraFiles entry
	}
	cmd := exec.Command(l.bwrap, l.args(blockFD)...)
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if blockR != nil {
		cmd.ExtraFiles = []*os.File{blockR}
	}
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
		if blockW != nil {
			blockW.Close()
		}
		return nil, fmt.Errorf("starting bwrap: %w", err)
	}
	if blockW != nil {
		// bwrap and its namespace init join the cgroups before the sandbox
		// runs anything; what they start inherits the limits.
		err := l.cg.add(cmd.Process.Pid)
		if err == nil {
			err = l.cg.addChildren(cmd.Process.Pid)
		}
		blockW.Close()
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return nil, fmt.Errorf("limiting the sandbox: %w", err)
		}
	}
	l.mu.Lock()
	l.cmd = cmd
	l.mu.Unlock()
	return &proc{Reader: stdout, WriteCloser: stdin, stderr: stderr, kill: sync.OnceFunc(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})}, nil
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
	cmd := l.cmd
	l.cmd = nil
	l.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	}
	if l.cg != nil {
		l.cg.killAll()
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
