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

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/provider/kit/hostproc"
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
	kit.Base[hostproc.Box]

	opts   Options
	python string // resolved interpreter; "" when disabled
	log    *slog.Logger
	owner  string
}

var _ sandbox.Provider = (*Provider)(nil)

type box = kit.Sandbox[hostproc.Box]

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
		log:   log.With("provider", string(sandbox.ProviderLocal)),
		owner: owner.ID(),
	}
	p.Teardown = p.teardown
	p.Warning = Warning
	p.ReservedEnv = []string{MarkerEnv, OwnerEnv}
	p.ProviderName = sandbox.ProviderLocal
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
func (p *Provider) Name() string { return string(sandbox.ProviderLocal) }

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
	if err := errors.Join(checkSpec(spec), p.CheckEnv(spec.Env)); err != nil {
		return sandbox.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return sandbox.Info{}, err
	}

	id := sandbox.NewID()
	dir := filepath.Join(p.opts.WorkspaceRoot, dirPrefix+string(id))
	b, err := hostproc.Create(ctx, p.Name(), id, spec, p.opts.WorkspaceRoot, dir, "python "+p.python, func(ws string) (*hostproc.Launcher, error) {
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(p.owner), 0o600); err != nil {
			return nil, fmt.Errorf("creating sandbox directory: %w", err)
		}
		if st, err := os.Stat(ws); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("workspace_dir %q is not an existing directory: %w", ws, sandbox.ErrInvalid)
		}
		return &hostproc.Launcher{
			Argv:   []string{p.python, "-c", agent.Source, "agent"},
			Dir:    ws,
			Env:    baseEnv(p.python, dir, ws, id, p.owner),
			Marker: MarkerEnv + "=" + string(id),
			Kill:   killMarked,
		}, nil
	})
	if err != nil {
		return sandbox.Info{}, err
	}
	p.Boxes.Add(b)
	p.log.Debug("created sandbox", "sandbox_id", id, "workspace", b.Info.Workspace)
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
	return errors.Join(errs...)
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

// teardown kills the sandbox's processes and removes its directory (see
// the package doc). A workspace_dir given in the spec is left in place.
func (p *Provider) teardown(ctx context.Context, b *box) error {
	err := hostproc.Teardown(ctx, b)
	p.log.Debug("destroyed sandbox", "sandbox_id", b.Info.ID)
	return err
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
		if err := hostproc.RemoveAll(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
