package bwrap

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

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
	p := &Provider{opts: opts, log: log.With("provider", string(sandbox.ProviderBubblewrap)), starts: make(chan struct{}, startSlots())}
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
	if p.shim == "" {
		p.shim = siblingInit(tctx)
	}
	if p.shim == "" && hooked.Load() {
		if exe, err := os.Executable(); err == nil {
			p.shim = exe
		}
	}
	p.enf.Init = p.shim
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
	kit.SweepOrphans(ctx, p.log, "bubblewrap sandboxes", p.RemoveOrphans)
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

// nprocBinds reports whether the sandbox runs as a host user other than
// root, for which the kernel checks RLIMIT_NPROC.
func (p *Provider) nprocBinds() bool {
	if p.opts.RunAs != nil {
		return p.opts.RunAs.UID != 0
	}
	return os.Geteuid() != 0
}
