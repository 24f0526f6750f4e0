//go:build darwin

package seatbelt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/provider/kit/hostproc"
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
	kit.Base[hostproc.Box]

	opts   Options
	python pythonInstall
	log    *slog.Logger
}

type box = kit.Sandbox[hostproc.Box]

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
	p := &Provider{opts: opts, python: py, log: log.With("provider", string(sandbox.ProviderSeatbelt))}
	p.Teardown = p.teardown
	p.ReservedEnv = []string{MarkerEnv}
	p.ProviderName = sandbox.ProviderSeatbelt
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
	l := p.launcher(profile, real, real, id)
	sess := agent.NewSession(l, agent.Options{Workspace: real, StartTimeout: probeTimeout})
	_, err = sess.Start(ctx)
	_ = sess.Close()
	l.Shutdown()
	kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), hostproc.TeardownTimeout)
	defer kcancel()
	_ = killMarked(kctx, l.Marker)
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
	cmd.WaitDelay = hostproc.WaitDelay
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
func (p *Provider) Name() string { return string(sandbox.ProviderSeatbelt) }

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
	if err = errors.Join(err, p.CheckEnv(spec.Env)); err != nil {
		return sandbox.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return sandbox.Info{}, err
	}

	id := sandbox.NewID()
	dir := filepath.Join(p.opts.WorkspaceRoot, dirPrefix+string(id))
	b, err := hostproc.Create(ctx, p.Name(), id, spec, p.opts.WorkspaceRoot, dir, "python "+p.python.Executable+" under sandbox-exec", func(ws string) (*hostproc.Launcher, error) {
		realWS, err := existingDir(ws)
		if err != nil {
			return nil, fmt.Errorf("workspace_dir: %w", err)
		}
		// Seatbelt matches resolved paths: $TMPDIR is under /var, a symlink.
		realDir := resolve(dir)
		if realDir == "" {
			return nil, fmt.Errorf("resolving sandbox directory %s", dir)
		}
		profile, err := Profile(p.profileOptions(realWS, filepath.Join(realDir, "home"), filepath.Join(realDir, "tmp"), ro, rw, spec.Network))
		if err != nil {
			return nil, err
		}
		return p.launcher(profile, dir, ws, id), nil
	})
	if err != nil {
		return sandbox.Info{}, err
	}
	p.Boxes.Add(b)
	p.log.Debug("created sandbox", "sandbox_id", id, "workspace", b.Info.Workspace, "network", spec.Network)
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

// launcher starts the agents of the sandbox id, whose private directory
// is dir and workspace ws, under profile: `sandbox-exec -p <profile>
// <python> -c <agent> agent` in a new session, hence a new process group
// and no controlling terminal. sandbox-exec applies the profile to itself
// and then executes the interpreter, so the agent and everything it
// starts are confined.
func (p *Provider) launcher(profile, dir, ws string, id sandbox.ID) *hostproc.Launcher {
	return &hostproc.Launcher{
		Argv:   []string{SandboxExec, "-p", profile, p.python.Executable, "-c", agent.Source, "agent"},
		Dir:    ws,
		Env:    baseEnv(p.python.Executable, dir, ws, id),
		Marker: MarkerEnv + "=" + string(id),
		Setsid: true,
		Kill:   killMarked,
	}
}

// teardown kills every process of the sandbox it can find and removes the
// sandbox's private directory, with the workspace if Warden created it. A
// workspace_dir given in the spec is left in place.
func (p *Provider) teardown(ctx context.Context, b *box) error {
	err := hostproc.Teardown(ctx, b)
	p.log.Debug("destroyed sandbox", "sandbox_id", b.Info.ID)
	return err
}
