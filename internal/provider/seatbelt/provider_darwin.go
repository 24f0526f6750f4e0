//go:build darwin

package seatbelt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// dirPrefix prefixes the private directory of each sandbox under
// WorkspaceRoot, which other providers may share.
const dirPrefix = "seatbelt-"

// Supported reports whether the provider can run on this system, and if
// not why: it needs /usr/bin/sandbox-exec. It only looks; [New] runs
// sandbox-exec to be sure.
func Supported() (bool, string) {
	st, err := os.Stat(SandboxExec)
	if err != nil {
		return false, fmt.Sprintf("%s: %v", SandboxExec, err)
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return false, SandboxExec + " is not an executable file"
	}
	return true, "macOS with " + SandboxExec
}

// Provider runs each sandbox as host processes confined by a Seatbelt
// profile (see the package documentation). It is safe for concurrent use.
type Provider struct {
	opts   Options
	python pythonInstall
	log    *slog.Logger

	boxes agent.Sandboxes[procs]
}

// procs is what the provider keeps of a sandbox besides its session.
type procs struct {
	dir      string // private directory: home, tmp and maybe workspace
	launcher *launcher
	gone     atomic.Bool // set when teardown starts
}

type box = agent.Sandbox[procs]

// New returns a Seatbelt provider. It fails with an error matching
// [sandbox.ErrUnsupported], whose text starts with [UnsupportedMessage],
// when sandbox-exec is missing or does not run this provider's profile
// (`sandbox-exec -p <profile> /usr/bin/true`), or when the interpreter or
// the agent cannot start under it; and with other errors when there is no usable
// Python 3.8+ or an Options directory is unusable. ctx bounds the probes.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if ok, why := Supported(); !ok {
		return nil, &unsupportedError{reason: why}
	}
	if opts.WorkspaceRoot == "" {
		opts.WorkspaceRoot = filepath.Join(os.TempDir(), "warden")
	}
	root, err := filepath.Abs(opts.WorkspaceRoot)
	if err != nil {
		return nil, fmt.Errorf("seatbelt provider: workspace root: %w", err)
	}
	opts.WorkspaceRoot = root
	if err := safedir.EnsureRoot(root); err != nil {
		return nil, fmt.Errorf("seatbelt provider: %w: %w", err, sandbox.ErrInvalid)
	}
	var readDirs []string
	for _, d := range opts.ReadDirs {
		r, err := existingDir(d)
		if err != nil {
			return nil, fmt.Errorf("seatbelt provider: read dir: %w", err)
		}
		readDirs = append(readDirs, r)
	}
	opts.ReadDirs = readDirs
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	py, err := findPython(ctx, opts.Python)
	if err != nil {
		return nil, fmt.Errorf("seatbelt provider: %w", err)
	}
	p := &Provider{opts: opts, python: py, log: log.With("provider", "seatbelt")}
	if err := p.probe(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// probe runs /usr/bin/true, the interpreter and then the agent under a
// profile like a sandbox's, with networking on so that every rule the
// provider can emit is compiled once.
func (p *Provider) probe(ctx context.Context) error {
	dir, err := os.MkdirTemp(p.opts.WorkspaceRoot, dirPrefix+"probe-")
	if err != nil {
		return fmt.Errorf("seatbelt provider: %w", err)
	}
	defer os.RemoveAll(dir)
	real := resolve(dir)
	profile, err := Profile(p.profileOptions(real, real, real, nil, nil, true))
	if err != nil {
		return fmt.Errorf("seatbelt provider: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if out, err := runSandboxed(ctx, profile, dir, "/usr/bin/true"); err != nil {
		return &unsupportedError{reason: fmt.Sprintf("%s -p <profile> /usr/bin/true: %v: %s", SandboxExec, err, out)}
	}
	if out, err := runSandboxed(ctx, profile, dir, p.python.Executable, "-I", "-c", "import json, os, sys"); err != nil {
		return &unsupportedError{reason: fmt.Sprintf("python %s does not start under the profile: %v: %s", p.python.Executable, err, out)}
	}
	// Last, the agent itself, up to its hello: a provider that cannot
	// create a sandbox is better not selected.
	id := sandbox.ID("probe-" + strings.TrimPrefix(string(sandbox.NewID()), "sb-"))
	l := &launcher{
		python:  p.python.Executable,
		profile: profile,
		dir:     real,
		env:     baseEnv(p.python.Executable, real, real, id),
		marker:  MarkerEnv + "=" + string(id),
	}
	sess := agent.NewSession(l, agent.Options{Workspace: real, StartTimeout: probeTimeout})
	_, err = sess.Start(ctx)
	_ = sess.Close()
	l.shutdown()
	kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer kcancel()
	_ = killMarked(kctx, l.marker)
	if err != nil {
		return &unsupportedError{reason: fmt.Sprintf("the agent does not start under the profile: %v", err)}
	}
	return nil
}

// runSandboxed runs argv under profile and returns the tail of its output.
func runSandboxed(ctx context.Context, profile, dir string, argv ...string) (string, error) {
	//nolint:gosec // G204: the system's sandbox-exec with a generated profile
	cmd := exec.CommandContext(ctx, SandboxExec, append([]string{"-p", profile}, argv...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + dir, "TMPDIR=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	s := strings.TrimSpace(out.String())
	if len(s) > 512 {
		s = s[len(s)-512:]
	}
	return s, err
}

// profileOptions are the profile options of a sandbox with the given
// (resolved) directories.
func (p *Provider) profileOptions(ws, home, tmp string, ro, rw []string, network bool) ProfileOptions {
	return ProfileOptions{
		Workspace:          ws,
		TmpDir:             tmp,
		HomeDir:            home,
		ReadDirs:           slices.Concat(p.opts.ReadDirs, ro),
		WriteDirs:          rw,
		Python:             p.python.Files[0],
		PythonDirs:         slices.Concat(p.python.Files[1:], p.python.Dirs),
		Network:            network,
		MetadataEverywhere: p.opts.MetadataEverywhere,
	}
}

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return "seatbelt" }

// Capabilities implements sandbox.Provider. The network switch is enforced
// by the profile; sandbox-exec has no memory, CPU or process limits.
// Mounts is false because a mount cannot be moved to another path (the
// conformance suite and the API take Mounts to mean that); Create still
// grants, and keeps read-only if asked, a mount whose target is its source.
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{
		Isolation:     Isolation,
		NetworkToggle: true,
	}
}

// Python returns the interpreter that runs the agent.
func (p *Provider) Python() string { return p.python.Executable }

// Create implements sandbox.Provider. The memory, CPU and process limits,
// tmp_size and image of the spec are accepted and not enforced, as
// Capabilities says; mounts must keep their path (Target equal to Source).
// Cancelling ctx stops the agent's start; nothing is left behind on
// failure.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (info sandbox.Info, err error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return sandbox.Info{}, err
	}
	ro, rw, err := checkSpec(spec)
	if err != nil {
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
	}
	ws = filepath.Clean(ws)
	realWS, err := existingDir(ws)
	if err != nil {
		return sandbox.Info{}, fmt.Errorf("workspace_dir: %w", err)
	}
	// Seatbelt matches resolved paths: $TMPDIR is under /var, a symlink.
	realDir := resolve(dir)
	if realDir == "" {
		return sandbox.Info{}, fmt.Errorf("resolving sandbox directory %s", dir)
	}
	profile, err := Profile(p.profileOptions(realWS, filepath.Join(realDir, "home"), filepath.Join(realDir, "tmp"), ro, rw, spec.Network))
	if err != nil {
		return sandbox.Info{}, err
	}
	// The workspace appears at its host path: there is no inside.
	spec.WorkspacePath = ws

	l = &launcher{
		python:  p.python.Executable,
		profile: profile,
		dir:     ws,
		env:     baseEnv(p.python.Executable, dir, ws, id),
		marker:  MarkerEnv + "=" + string(id),
	}
	sess = agent.NewSession(l, agent.Options{
		Workspace:   ws,
		Timeout:     spec.Timeout,
		OutputLimit: spec.OutputLimit,
		Env:         spec.Env,
	})
	if _, err := sess.Start(ctx); err != nil {
		return sandbox.Info{}, fmt.Errorf("python %s under sandbox-exec: %w", p.python.Executable, err)
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
	p.log.Debug("created sandbox", "sandbox_id", id, "workspace", ws, "network", spec.Network)
	return b.Info, nil
}

// checkSpec refuses what this provider cannot do and returns the resolved
// read-only and read-write mount directories. macOS has no bind mounts, so
// a mount can only grant access to a host directory at its own path.
func checkSpec(spec sandbox.Spec) (ro, rw []string, err error) {
	var errs []error
	for _, m := range spec.Mounts {
		if filepath.Clean(m.Source) != m.Target {
			errs = append(errs, fmt.Errorf("mount %s at %s: the seatbelt provider cannot remap paths; host directories are visible at their own path: %w", m.Source, m.Target, sandbox.ErrInvalid))
			continue
		}
		r, err := existingDir(m.Source)
		if err != nil {
			errs = append(errs, fmt.Errorf("mount source: %w", err))
			continue
		}
		if m.ReadOnly {
			ro = append(ro, r)
		} else {
			rw = append(rw, r)
		}
	}
	for k := range spec.Env {
		if err := checkEnvName(k); err != nil {
			errs = append(errs, err)
		}
	}
	return ro, rw, errors.Join(errs...)
}

// existingDir returns the directory d with symlinks resolved, or an error
// wrapping sandbox.ErrInvalid.
func existingDir(d string) (string, error) {
	if !filepath.IsAbs(d) {
		return "", fmt.Errorf("%q is not an absolute path: %w", d, sandbox.ErrInvalid)
	}
	r, err := filepath.EvalSymlinks(d)
	if err != nil {
		return "", fmt.Errorf("%q is not an existing directory: %w", d, sandbox.ErrInvalid)
	}
	if st, err := os.Stat(r); err != nil || !st.IsDir() {
		return "", fmt.Errorf("%q is not an existing directory: %w", d, sandbox.ErrInvalid)
	}
	return r, nil
}

// checkEnvName refuses the marker name: a sandbox variable of that name
// would hide its processes from Reset and Destroy.
func checkEnvName(k string) error {
	if k == MarkerEnv {
		return fmt.Errorf("environment variable %s is reserved by the seatbelt provider: %w", k, sandbox.ErrInvalid)
	}
	return nil
}

// baseEnv is the whole environment of a sandbox's agent: agent.BaseEnv
// with the sandbox's own HOME and TMPDIR, the interpreter's directory first
// in PATH, and the marker. Nothing comes from Warden's environment.
func baseEnv(python, dir, ws string, id sandbox.ID) []string {
	env := agent.BaseEnv(ws)
	set := func(k, v string) {
		for i, e := range env {
			if strings.HasPrefix(e, k+"=") {
				env[i] = k + "=" + v
				return
			}
		}
		env = append(env, k+"="+v)
	}
	set("HOME", filepath.Join(dir, "home"))
	set("TMPDIR", filepath.Join(dir, "tmp"))
	for _, e := range env {
		if path, ok := strings.CutPrefix(e, "PATH="); ok {
			if d := filepath.Dir(python); !slices.Contains(strings.Split(path, ":"), d) {
				set("PATH", d+":"+path)
			}
			break
		}
	}
	set(MarkerEnv, string(id))
	return env
}

// Processes implements sandbox.ProcessHost: background processes beside
// each sandbox's Python session, under the same profile. Their
// environment may not set MarkerEnv, by which Destroy finds them.
func (p *Provider) Processes() sandbox.ProcessRunner { return markedProcesses{&p.boxes} }

type markedProcesses struct{ *agent.Sandboxes[procs] }

func (m markedProcesses) StartProcess(ctx context.Context, id sandbox.ID, spec sandbox.ProcessSpec) (sandbox.ProcessInfo, *sandbox.ProcessWatch, error) {
	if _, ok := spec.Env[MarkerEnv]; ok {
		return sandbox.ProcessInfo{}, nil, fmt.Errorf("environment variable %s is Warden's own: %w", MarkerEnv, sandbox.ErrInvalid)
	}
	return m.Sandboxes.StartProcess(ctx, id, spec)
}

// Exec implements sandbox.Provider.
func (p *Provider) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	b, err := p.boxes.Get(id)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	res, err := b.Session.Exec(ctx, req)
	if b.Box.gone.Load() {
		return res, fmt.Errorf("sandbox %s was destroyed during the execution: %w", id, sandbox.ErrNotFound)
	}
	return res, err
}

// Checkpoint snapshots the sandbox's Python session now (see
// agent.Session.Checkpoint).
func (p *Provider) Checkpoint(ctx context.Context, id sandbox.ID) error {
	return p.boxes.Checkpoint(ctx, id)
}

// UpdateEnv implements sandbox.Provider. MarkerEnv cannot be set.
func (p *Provider) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	for k := range u.Set {
		if err := checkEnvName(k); err != nil {
			return nil, err
		}
	}
	return p.boxes.UpdateEnv(id, u)
}

// Env implements sandbox.Provider.
func (p *Provider) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	return p.boxes.Env(id)
}

// Info returns the description of a live sandbox.
func (p *Provider) Info(id sandbox.ID) (sandbox.Info, error) { return p.boxes.Info(id) }

// List returns the live sandboxes of this provider.
func (p *Provider) List() []sandbox.Info { return p.boxes.List() }

// Destroy implements sandbox.Provider: it kills every process of the
// sandbox it can find and removes the sandbox's private directory, with
// the workspace if Warden created it. A workspace_dir given in the spec is
// left in place. The teardown runs to completion even if ctx is cancelled.
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
		b.Box.launcher.shutdown()
		if err := killMarked(ctx, b.Box.launcher.marker); err != nil {
			errs = append(errs, fmt.Errorf("killing sandbox processes: %w", err))
		}
	}
	// Closed after the kill, the session sees its agent die and a running
	// Exec returns at once.
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

// removeAll removes dir. Sandboxed code may have taken write or search
// permission away from its own directories; they are given back, and the
// removal retried.
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
