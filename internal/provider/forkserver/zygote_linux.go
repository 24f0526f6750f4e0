package forkserver

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// rootMount is where, in the fork server's mount namespace, each child
// mounts the tmpfs that becomes its root.
const rootMount = "/.warden/root"

// zygoteConfig is what the fork server reads on its fd 4 when it starts.
type zygoteConfig struct {
	Seccomp  string         `json:"seccomp"` // hex
	Syscalls map[string]int `json:"syscalls"`
	Root     string         `json:"root"`
	Dirs     []string       `json:"dirs"`
	Symlinks [][2]string    `json:"symlinks"`
	// DoubleFork: fork, unshare and fork again instead of one clone(2)
	// with the new user and pid namespaces.
	DoubleFork bool `json:"double_fork,omitempty"`
	// HotSample: the program a one-shot run's pages are learnt from, if
	// not the server's own (tests).
	HotSample string `json:"hot_sample,omitempty"`
}

// zygote is one running fork server.
type zygote struct {
	cmd    *exec.Cmd
	ctl    int // host end of the SOCK_SEQPACKET control socket
	stderr *agent.TailBuffer
	key    string // what it was started with (image, interpreter, agent, filter)

	// native is set when the server sets sandboxes up with setup.c;
	// pythonWhy says why not otherwise.
	native    bool
	pythonWhy string
	// facts: what the native set-up's programs depend on, from the
	// server's ready message.
	facts zygoteFacts

	mu     sync.Mutex
	closed bool
	live   int // sandboxes forked from it and not yet destroyed
	retire bool
	done   chan struct{}
}

// layout is the read-only system part of every sandbox's root: the
// directories the fork server binds from the image (or the host) and the
// symlinks beside them, as in the bubblewrap provider.
type layout struct {
	bwrapArgs []string    // for the fork server's own bwrap
	dirs      []string    // top-level directories children bind again
	symlinks  [][2]string // link, target
}

// Directories of an image's root filesystem that are not system
// directories: the sandbox gets its own, or none.
var notSystem = map[string]bool{
	"proc": true, "sys": true, "dev": true, "tmp": true, "run": true, "home": true, "root": true,
	"mnt": true, "media": true, "srv": true, "boot": true, "lost+found": true, "var": true,
	"workspace": true, ".warden": true,
}

func systemLayout(rootfs string) (layout, error) {
	if rootfs == "" {
		return layout{
			bwrapArgs: []string{
				"--ro-bind", "/usr", "/usr",
				"--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
				"--ro-bind-try", "/etc/ssl", "/etc/ssl",
				"--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
				"--ro-bind-try", "/etc/localtime", "/etc/localtime",
				"--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
				"--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
			},
			dirs:     []string{"/usr", "/etc"},
			symlinks: [][2]string{{"/bin", "usr/bin"}, {"/sbin", "usr/sbin"}, {"/lib", "usr/lib"}, {"/lib64", "usr/lib64"}},
		}, nil
	}
	ents, err := os.ReadDir(rootfs)
	if err != nil {
		return layout{}, fmt.Errorf("reading root filesystem: %w", err)
	}
	var l layout
	for _, e := range ents {
		name := e.Name()
		if notSystem[name] {
			continue
		}
		src := filepath.Join(rootfs, name)
		switch {
		case e.Type()&os.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return layout{}, fmt.Errorf("reading root filesystem: %w", err)
			}
			l.bwrapArgs = append(l.bwrapArgs, "--symlink", target, "/"+name)
			l.symlinks = append(l.symlinks, [2]string{"/" + name, target})
		case e.IsDir():
			l.bwrapArgs = append(l.bwrapArgs, "--ro-bind", src, "/"+name)
			l.dirs = append(l.dirs, "/"+name)
		}
	}
	return l, nil
}

// zygoteLoader reads the server's source from fd 7 and runs it.
const zygoteLoader = "import os\nb = []\nwhile True:\n    c = os.read(7, 65536)\n    if not c:\n        break\n    b.append(c)\nos.close(7)\nexec(compile(b\"\".join(b), \"<warden-zygote>\", \"exec\"))\n"

const localHosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"

// startZygote starts a fork server and waits until it is ready.
func (p *Provider) startZygote(ctx context.Context) (*zygote, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	hostCtl, childCtl := fds[0], os.NewFile(uintptr(fds[1]), "zygote-ctl")
	defer childCtl.Close()
	ok := false
	defer func() {
		if !ok {
			unix.Close(hostCtl)
		}
	}()
	cfg := zygoteConfig{
		Seccomp: hex.EncodeToString(p.seccomp),
		Syscalls: map[string]int{
			"clone": unix.SYS_CLONE, "move_mount": unix.SYS_MOVE_MOUNT, "pivot_root": unix.SYS_PIVOT_ROOT, "capset": unix.SYS_CAPSET,
			"landlock_create_ruleset": unix.SYS_LANDLOCK_CREATE_RULESET,
			"landlock_add_rule":       unix.SYS_LANDLOCK_ADD_RULE,
			"landlock_restrict_self":  unix.SYS_LANDLOCK_RESTRICT_SELF,
		},
		Root:       rootMount,
		Dirs:       p.layout.dirs,
		Symlinks:   p.layout.symlinks,
		DoubleFork: p.opts.DoubleFork,
		HotSample:  p.opts.hotSample,
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	// The configuration, the agent's source, /etc/hosts, the server's
	// own source and an empty /etc/resolv.conf (a mount point for
	// sandboxes with networking), each through a pipe (fds 4 to 8).
	var pipes []*os.File
	defer func() {
		for _, f := range pipes {
			f.Close()
		}
	}()
	for _, data := range []string{string(js), agent.Source, localHosts, zygoteSource, ""} {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		pipes = append(pipes, r)
		go func() {
			_, _ = io.WriteString(w, data)
			w.Close()
		}()
	}
	args := []string{
		"--unshare-all", "--die-with-parent", "--new-session",
		"--uid", strconv.Itoa(int(p.uid)), "--gid", strconv.Itoa(int(p.gid)), "--hostname", "sandbox",
		"--cap-drop", "ALL", "--clearenv",
	}
	args = append(args, p.layout.bwrapArgs...)
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--dir", "/dev/shm", "--remount-ro", "/dev")
	if p.opts.RootFS == "" {
		// Files of the server's root (a tmpfs, read-only once set up), not
		// bind mounts: a sandbox with networking mounts its own over them,
		// and the kernel refuses a mount over a file bwrap's
		// --ro-bind-data has already unlinked. With an image, its own
		// /etc/hosts and /etc/resolv.conf are there.
		args = append(args, "--file", "6", "/etc/hosts", "--file", "8", "/etc/resolv.conf")
	}
	args = append(args, "--dir", rootMount, "--remount-ro", "/", "--chdir", "/")
	for _, kv := range agent.BaseEnv(sandbox.DefaultWorkspacePath) {
		k, v, _ := strings.Cut(kv, "=")
		if k == "PYTHONPATH" || k == "WARDEN_WORKSPACE" {
			continue
		}
		args = append(args, "--setenv", k, v)
	}
	// A short command line: it is every sandbox's /proc/1/cmdline.
	args = append(args, "--", "python3", "-c", zygoteLoader, "zygote")
	cmd := exec.Command(p.bwrap, args...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: p.uid, Gid: p.gid}
	}
	cmd.ExtraFiles = append([]*os.File{childCtl}, pipes...)
	// The native set-up, fd 9, when it can be had; else the server sets
	// sandboxes up in Python.
	setup, serr := p.setupMemfd()
	if setup != nil {
		defer setup.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, setup)
	}
	z := &zygote{cmd: cmd, ctl: hostCtl, stderr: &agent.TailBuffer{Max: 16 << 10}, key: p.zygoteKey(), done: make(chan struct{})}
	cmd.Stderr = z.stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the fork server: %w", err)
	}
	go func() {
		_ = cmd.Wait()
		close(z.done)
	}()
	childCtl.Close()
	// Wait for "ready", or the server's end.
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 4096)
		n, err := unix.Read(hostCtl, buf)
		msg := string(buf[:max(n, 0)])
		switch {
		case err != nil:
			ready <- err
		case strings.HasPrefix(msg, "ready native "):
			z.native = true
			z.facts, err = parseFacts(strings.TrimPrefix(msg, "ready native "))
			ready <- err
		case strings.HasPrefix(msg, "ready python"):
			why := strings.TrimSpace(strings.TrimPrefix(msg, "ready python"))
			if serr != nil {
				why = serr.Error()
			}
			z.pythonWhy = why
			ready <- nil
		default:
			ready <- fmt.Errorf("unexpected %q", msg)
		}
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	case <-time.After(60 * time.Second):
		err = errors.New("no ready within 60s")
	}
	if err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-z.done
		return nil, fmt.Errorf("the fork server did not start: %v (%s): %w", err, strings.TrimSpace(z.stderr.String()), sandbox.ErrUnavailable)
	}
	ok = true
	return z, nil
}

// zygoteKey identifies what a fork server holds: when it changes (a new
// interpreter in the image, say), sandboxes are forked from a new server.
func (p *Provider) zygoteKey() string {
	root := p.opts.RootFS
	if root == "" {
		root = "/"
	}
	key := root
	for _, name := range []string{"usr/local/bin/python3", "usr/bin/python3"} {
		if st, err := os.Stat(filepath.Join(root, name)); err == nil && !st.IsDir() {
			key += fmt.Sprintf(" %s %d %d", name, st.Size(), st.ModTime().UnixNano())
			break
		}
	}
	return key
}

// send asks the fork server for a new sandbox process tree.
func (z *zygote) send(req []byte, fds []int) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.closed {
		return errors.New("fork server closed")
	}
	err := unix.Sendmsg(z.ctl, req, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL)
	if err != nil {
		z.closed = true
	}
	return err
}

func (z *zygote) alive() bool {
	select {
	case <-z.done:
		return false
	default:
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	return !z.closed
}

// stop ends the fork server. Its pid namespace, and with it every sandbox
// process forked from it, ends with it.
func (z *zygote) stop() {
	z.mu.Lock()
	if !z.closed {
		z.closed = true
	}
	z.mu.Unlock()
	_ = syscall.Kill(-z.cmd.Process.Pid, syscall.SIGKILL)
	<-z.done
	unix.Close(z.ctl)
}

func regularFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
