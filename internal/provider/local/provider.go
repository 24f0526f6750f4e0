package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Warning is set on every ExecResult of this provider.
const Warning = "Executed in mock mode - no isolation!"

// Environment variables the provider sets on every sandbox process to find
// them again. Sandbox environment variables may not use these names.
const (
	// MarkerEnv holds the sandbox ID.
	MarkerEnv = "WARDEN_LOCAL_SANDBOX"
	// OwnerEnv identifies the Warden process that started the sandbox
	// (host/pid/start time), so orphans of a dead one can be found.
	OwnerEnv = "WARDEN_LOCAL_OWNER"
)

// dirPrefix prefixes the private directory of each sandbox under
// WorkspaceRoot, which the Docker provider may share.
const dirPrefix = "local-"

// ownerFile, in a sandbox's private directory, holds the owner ID.
const ownerFile = "owner"

// teardownTimeout bounds killing a sandbox's processes and removing its
// directory, even when the caller's ctx is already cancelled.
const teardownTimeout = 30 * time.Second

// Options configure a Provider.
type Options struct {
	// Enabled allows Create. The provider isolates nothing, so it is off
	// unless the operator turns it on (SANDBOX__MOCK_MODE=true).
	Enabled bool
	// WorkspaceRoot is the host directory holding each sandbox's private
	// directory. Default: $TMPDIR/warden.
	WorkspaceRoot string
	// Python is the interpreter that runs the agent: a path or a name
	// looked up on PATH. Default: /usr/bin/python3 when it exists, else
	// python3 on PATH. Python 3.8 or later is required.
	Python string
	// Log receives operational messages. Default: discard.
	Log *slog.Logger
}

// Provider runs sandboxes as host processes with no isolation. It is safe
// for concurrent use.
type Provider struct {
	opts   Options
	python string // resolved interpreter; "" when disabled
	log    *slog.Logger
	owner  string

	boxes agent.Sandboxes[procs]
}

var _ sandbox.Provider = (*Provider)(nil)

// procs is what the provider keeps of a sandbox besides its session.
type procs struct {
	dir      string // private directory: home, tmp, owner and maybe workspace
	launcher *launcher
	gone     atomic.Bool // set when teardown starts
}

type box = agent.Sandbox[procs]

// New returns a local provider. When opts.Enabled is false it returns a
// provider whose Create fails with sandbox.ErrDisabled, without looking for
// Python. When enabled it resolves the interpreter (failing if there is
// none, or if it is older than 3.8) and removes what dead Warden processes
// left behind (see [Provider.RemoveOrphans]).
func New(opts Options) (*Provider, error) {
	if opts.WorkspaceRoot == "" {
		opts.WorkspaceRoot = filepath.Join(os.TempDir(), "warden")
	}
	root, err := filepath.Abs(opts.WorkspaceRoot)
	if err != nil {
		return nil, fmt.Errorf("local provider: workspace root: %w", err)
	}
	opts.WorkspaceRoot = root
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Provider{
		opts:  opts,
		log:   log.With("provider", "local"),
		owner: owner.ID(),
	}
	if !opts.Enabled {
		return p, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	py, err := findPython(ctx, opts.Python)
	if err != nil {
		return nil, fmt.Errorf("local provider: %w", err)
	}
	p.python = py
	if n, err := p.RemoveOrphans(ctx); err != nil {
		p.log.Warn("removing orphaned local sandboxes", "err", err)
	} else if n > 0 {
		p.log.Info("removed orphaned local sandboxes", "count", n)
	}
	return p, nil
}

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return "local" }

// Capabilities implements sandbox.Provider: no isolation and no limits.
// Mounts is false because read-only mounts and remapped paths cannot be
// enforced.
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Isolation: sandbox.IsolationNone}
}

// Enabled reports whether Create is allowed.
func (p *Provider) Enabled() bool { return p.opts.Enabled }

// Python returns the interpreter that runs the agent, "" when the provider
// is disabled.
func (p *Provider) Python() string { return p.python }

// Create implements sandbox.Provider. It fails with sandbox.ErrDisabled
// unless the provider is enabled. Cancelling ctx stops the agent's start;
// nothing is left behind on failure.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (info sandbox.Info, err error) {
	if !p.opts.Enabled {
		return sandbox.Info{}, fmt.Errorf("local provider: runs code with no isolation; enable it with SANDBOX__MOCK_MODE=true: %w", sandbox.ErrDisabled)
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return sandbox.Info{}, err
	}
	if err := checkSpec(spec); err != nil {
		return sandbox.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return sandbox.Info{}, err
	}

	id := sandbox.NewID()
	dir := filepath.Join(p.opts.WorkspaceRoot, dirPrefix+string(id))
	if err := safedir.EnsureRoot(p.opts.WorkspaceRoot); err != nil {
		return sandbox.Info{}, fmt.Errorf("%w: %w", err, sandbox.ErrInvalid)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return sandbox.Info{}, fmt.Errorf("creating sandbox directory: %w", err)
	}
	var l *launcher
	var sess *agent.Session
	defer func() {
		if err != nil {
			_ = p.teardown(ctx, &box{Session: sess, Box: procs{dir: dir, launcher: l}})
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(p.owner), 0o600); err != nil {
		return sandbox.Info{}, fmt.Errorf("creating sandbox directory: %w", err)
	}
	for _, sub := range []string{"home", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return sandbox.Info{}, fmt.Errorf("creating sandbox directory: %w", err)
		}
	}
	ws := spec.WorkspaceDir
	if ws == "" {
		ws = filepath.Join(dir, "workspace")
		if err := os.Mkdir(ws, 0o755); err != nil {
			return sandbox.Info{}, fmt.Errorf("creating workspace: %w", err)
		}
	} else {
		ws = filepath.Clean(ws)
		if st, serr := os.Stat(ws); serr != nil || !st.IsDir() {
			return sandbox.Info{}, fmt.Errorf("workspace_dir %q is not an existing directory: %w", ws, sandbox.ErrInvalid)
		}
	}
	// There is no inside: the workspace's path in the sandbox is its host
	// path, so paths reported to and by the code are true.
	spec.WorkspacePath = ws

	l = &launcher{
		python: p.python,
		dir:    ws,
		env:    baseEnv(p.python, dir, ws, id, p.owner),
		marker: MarkerEnv + "=" + string(id),
	}
	sess = agent.NewSession(l, agent.Options{
		Workspace:   ws,
		Timeout:     spec.Timeout,
		OutputLimit: spec.OutputLimit,
		Env:         spec.Env,
	})
	if _, err := sess.Start(ctx); err != nil {
		return sandbox.Info{}, fmt.Errorf("python %s: %w", p.python, err)
	}
	b := &box{
		Info: sandbox.Info{
			ID:           id,
			Provider:     p.Name(),
			Name:         spec.NamePrefix + "-" + string(id),
			Workspace:    ws,
			Spec:         spec,
			WorkspaceUID: -1,
			WorkspaceGID: -1,
		},
		Session: sess,
		Box:     procs{dir: dir, launcher: l},
	}
	p.boxes.Add(b)
	p.log.Debug("created sandbox", "sandbox_id", id, "workspace", ws)
	return b.Info, nil
}

// checkSpec refuses what this provider cannot do even approximately.
func checkSpec(spec sandbox.Spec) error {
	var errs []error
	for _, m := range spec.Mounts {
		if filepath.Clean(m.Source) != m.Target {
			errs = append(errs, fmt.Errorf("mount %s at %s: the local provider cannot remap paths; host directories are visible at their own path: %w", m.Source, m.Target, sandbox.ErrInvalid))
			continue
		}
		if st, err := os.Stat(m.Source); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("mount source %q is not an existing directory: %w", m.Source, sandbox.ErrInvalid))
		}
	}
	for k := range spec.Env {
		if err := checkEnvName(k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkEnvName refuses the marker names: a sandbox variable of that name
// would hide its processes from Reset and Destroy.
func checkEnvName(k string) error {
	if k == MarkerEnv || k == OwnerEnv {
		return fmt.Errorf("environment variable %s is reserved by the local provider: %w", k, sandbox.ErrInvalid)
	}
	return nil
}

// baseEnv is the whole environment of a sandbox's agent. Nothing comes from
// Warden's own environment.
func baseEnv(python, dir, ws string, id sandbox.ID, owner string) []string {
	path := []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}
	// `python3` in a shell command should be the session's interpreter
	// (a virtualenv's, say), not whichever comes first in the system PATH.
	if d := filepath.Dir(python); filepath.IsAbs(d) && !slices.Contains(path, d) {
		path = append([]string{d}, path...)
	}
	return []string{
		"PATH=" + strings.Join(path, ":"),
		"HOME=" + filepath.Join(dir, "home"),
		"TMPDIR=" + filepath.Join(dir, "tmp"),
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"TERM=dumb",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONPATH=" + ws,
		"MPLBACKEND=Agg",
		"WARDEN_WORKSPACE=" + ws,
		MarkerEnv + "=" + string(id),
		OwnerEnv + "=" + owner,
	}
}

// Exec implements sandbox.Provider. Every result, including the partial
// result returned with an error, carries [Warning].
func (p *Provider) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	b, err := p.boxes.Get(id)
	if err != nil {
		return sandbox.ExecResult{Warning: Warning}, err
	}
	res, err := b.Session.Exec(ctx, req)
	res.Warning = Warning
	if b.Box.gone.Load() {
		// The processes were killed under the execution; say why.
		return res, fmt.Errorf("sandbox %s was destroyed during the execution: %w", id, sandbox.ErrNotFound)
	}
	return res, err
}

// Checkpoint snapshots the sandbox's Python session now (see
// agent.Session.Checkpoint).
func (p *Provider) Checkpoint(ctx context.Context, id sandbox.ID) error {
	return p.boxes.Checkpoint(ctx, id)
}

// UpdateEnv implements sandbox.Provider. MarkerEnv and OwnerEnv cannot be
// set.
func (p *Provider) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	var errs []error
	for k := range u.Set {
		if err := checkEnvName(k); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p.boxes.UpdateEnv(id, u)
}

// Env implements sandbox.Provider.
func (p *Provider) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	return p.boxes.Env(id)
}

// Info returns the description of a live sandbox.
func (p *Provider) Info(id sandbox.ID) (sandbox.Info, error) { return p.boxes.Info(id) }

// Processes implements sandbox.ProcessHost: background processes beside
// each sandbox's Python session, as unisolated as everything here. Their
// environment may not set MarkerEnv or OwnerEnv, as UpdateEnv may not.
func (p *Provider) Processes() sandbox.ProcessRunner { return localProcesses{&p.boxes} }

type localProcesses struct{ *agent.Sandboxes[procs] }

func (l localProcesses) StartProcess(ctx context.Context, id sandbox.ID, spec sandbox.ProcessSpec) (sandbox.ProcessInfo, *sandbox.ProcessWatch, error) {
	for k := range spec.Env {
		if err := checkEnvName(k); err != nil {
			return sandbox.ProcessInfo{}, nil, err
		}
	}
	return l.Sandboxes.StartProcess(ctx, id, spec)
}

// List returns the live sandboxes of this provider.
func (p *Provider) List() []sandbox.Info { return p.boxes.List() }

// Destroy implements sandbox.Provider: it kills every process of the
// sandbox it can find (see the package doc) and removes the sandbox's
// private directory, with the workspace if Warden created it. A
// workspace_dir given in the spec is left in place. The teardown runs to
// completion even if ctx is cancelled.
func (p *Provider) Destroy(ctx context.Context, id sandbox.ID) error {
	b, err := p.boxes.Remove(id)
	if err != nil {
		return err
	}
	err = p.teardown(ctx, b)
	p.log.Debug("destroyed sandbox", "sandbox_id", id)
	return err
}

// teardown stops the session, kills what is left and removes the
// directory. Fields of b may be nil after a failed Create.
func (p *Provider) teardown(ctx context.Context, b *box) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	b.Box.gone.Store(true)
	var errs []error
	if b.Box.launcher != nil {
		// No agent may start from now on; then every process is killed.
		b.Box.launcher.shutdown()
		if err := killMarked(ctx, b.Box.launcher.marker); err != nil {
			errs = append(errs, fmt.Errorf("killing sandbox processes: %w", err))
		}
	}
	// Closing the session only after the kill lets a running Exec see its
	// agent die and return at once. (Closed first, the session may miss
	// the agent's end and wait out the execution's timeout.)
	if b.Session != nil {
		_ = b.Session.Close()
	}
	if err := removeAll(b.Box.dir); err != nil {
		errs = append(errs, fmt.Errorf("removing sandbox directory: %w", err))
	}
	return errors.Join(errs...)
}

// Close destroys every sandbox of this provider.
func (p *Provider) Close(ctx context.Context) error {
	return p.boxes.DestroyAll(ctx, p.Destroy)
}

// RemoveOrphans kills the processes, and removes the private directories
// under WorkspaceRoot, of local sandboxes whose Warden process no longer
// runs. It returns how many directories and processes it removed.
// Sandboxes of live Warden processes are left alone.
func (p *Provider) RemoveOrphans(ctx context.Context) (int, error) {
	n, err := killOrphans(ctx, p.owner)
	ents, rerr := os.ReadDir(p.opts.WorkspaceRoot)
	if rerr != nil {
		if errors.Is(rerr, fs.ErrNotExist) {
			return n, err
		}
		return n, errors.Join(err, rerr)
	}
	errs := []error{err}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), dirPrefix) {
			continue
		}
		dir := filepath.Join(p.opts.WorkspaceRoot, e.Name())
		owner, oerr := os.ReadFile(filepath.Join(dir, ownerFile))
		if oerr != nil || string(owner) == p.owner || ownerAlive(string(owner)) {
			continue // not ours to judge, or still in use
		}
		if err := removeAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// removeAll removes dir. When Warden does not run as root, sandboxed code
// may have taken write or search permission away from its own
// directories; they are given back, and the removal retried. (For root
// permissions are no obstacle, and chmod, which follows symlinks, is
// better not run on paths code could still be changing.)
func removeAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}
