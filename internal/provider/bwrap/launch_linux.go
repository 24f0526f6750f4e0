package bwrap

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

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
