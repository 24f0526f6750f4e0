package forkserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func newProvider(t *testing.T) *Provider {
	t.Helper()
	return newProviderWith(t, Options{})
}

func newProviderWith(t *testing.T, opts Options) *Provider {
	t.Helper()
	testutil.RequireBwrap(t)
	opts.WorkspaceRoot = testutil.SharedDir(t)
	p, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func newBox(t *testing.T, p *Provider, spec sandbox.Spec) sandbox.Info {
	t.Helper()
	info, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Destroy(context.Background(), info.ID); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			t.Error(err)
		}
	})
	return info
}

func run(t *testing.T, p *Provider, id sandbox.ID, lang sandbox.Language, code string) sandbox.ExecResult {
	t.Helper()
	r, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: lang, Code: code})
	if err != nil {
		t.Fatalf("Exec(%q): %v", code, err)
	}
	return r
}

// TestIsolation: what a bubblewrap sandbox has, a forked one has too.
func TestIsolation(t *testing.T) {
	t.Parallel()
	setups(t, func(t *testing.T, p *Provider) {
		id := newBox(t, p, sandbox.Spec{}).ID
		run(t, p, id, sandbox.Python, "x = 42")
		if r := run(t, p, id, sandbox.Python, "x"); r.ReturnValue == nil || *r.ReturnValue != "42" {
			t.Fatalf("persistence: %+v", r)
		}
		checks := []struct{ name, cmd, want string }{
			{"uid", "id -u; id -g", "1000\n1000\n"},
			{"no capabilities", "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | cut -f2 | sort -u", "0000000000000000\n"},
			{"no_new_privs and seccomp", "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status", "NoNewPrivs:\t1\nSeccomp:\t2\n"},
			{"no network", "cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '", "lo\n"},
			{"loopback up", "python3 -c \"import socket\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\nc = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.sendall(b'ok'); print(a.recv(2).decode())\"", "ok\n"},
			{"hostname", "hostname 2>/dev/null || cat /proc/sys/kernel/hostname", "sandbox\n"},
			{"read-only system", "touch /usr/x 2>&1 | grep -c 'Read-only'", "1\n"},
			{"read-only root", "touch /x 2>&1 | grep -c 'Read-only'; mkdir /y 2>&1 | grep -c 'Read-only'", "1\n1\n"},
			{"read-only dev", "touch /dev/x 2>&1 | grep -c 'Read-only'", "1\n"},
			{"no nested user namespaces", "cat /proc/sys/user/max_user_namespaces", "0\n"},
			// Those of them the kernel has (sysrq-trigger needs CONFIG_MAGIC_SYSRQ).
			{"read-only proc knobs", "for d in /proc/sys /proc/sysrq-trigger /proc/irq /proc/bus; do [ -e $d ] || continue; awk -v d=$d '$5 == d {print substr($6, 1, 2)}' /proc/self/mountinfo | grep -c ro | grep -q 1 || echo $d writable; done; echo checked", "checked\n"},
			{"private tmp", "echo hi > /tmp/t && cat /tmp/t", "hi\n"},
			{"shm", "echo hi > /dev/shm/t && cat /dev/shm/t", "hi\n"},
			{"workspace", "pwd; echo w > f && cat f", "/workspace\nw\n"},
			{"host home hidden", "ls /root /home 2>&1 | grep -c 'No such file'", "2\n"},
			{"no fork server", "ls /.warden 2>&1 | grep -c 'No such file'", "1\n"},
			{"pid namespace", "cat /proc/1/comm; ls /proc | grep -c '^[0-9]'", "python3\n"},
			{"cgroup namespace", "grep -c ':/$' /proc/self/cgroup", ""},
		}
		for _, c := range checks {
			r := run(t, p, id, sandbox.Shell, c.cmd)
			got := string(r.Stdout)
			switch c.name {
			case "pid namespace":
				// init, the agent, the worker, maybe its snapshot, the shell
				// and its children: a handful, never the host's hundreds.
				lines := strings.Split(strings.TrimSpace(got), "\n")
				if n, _ := strconv.Atoi(lines[len(lines)-1]); lines[0] != "python3" || n < 3 || n > 12 {
					t.Errorf("%s: %q = %q", c.name, c.cmd, got)
				}
				continue
			case "cgroup namespace":
				// Every hierarchy's path is the namespace's root.
				all := run(t, p, id, sandbox.Shell, "wc -l < /proc/self/cgroup")
				if strings.TrimSpace(got) != strings.TrimSpace(string(all.Stdout)) || strings.TrimSpace(got) == "0" {
					t.Errorf("cgroup namespace: %s of %s hierarchies at the root: %s", got, all.Stdout, run(t, p, id, sandbox.Shell, "cat /proc/self/cgroup").Stdout)
				}
				continue
			}
			if got != c.want {
				t.Errorf("%s: %q = %q (stderr %q), want %q", c.name, c.cmd, got, r.Stderr, c.want)
			}
		}
	})
}

// TestSeccomp: the bubblewrap provider's filter, with the bubblewrap
// provider's expectations (see bwrap.TestSeccomp), on this architecture.
func TestSeccomp(t *testing.T) {
	t.Parallel()
	setups(t, func(t *testing.T, p *Provider) {
		id := newBox(t, p, sandbox.Spec{}).ID
		nr := map[string]int{
			"mount": unix.SYS_MOUNT, "unshare": unix.SYS_UNSHARE, "ptrace": unix.SYS_PTRACE, "keyctl": unix.SYS_KEYCTL,
			"personality": unix.SYS_PERSONALITY, "ioctl": unix.SYS_IOCTL, "clone3": unix.SYS_CLONE3,
			"io_uring_setup": unix.SYS_IO_URING_SETUP, "bpf": unix.SYS_BPF, "socket": unix.SYS_SOCKET, "mbind": unix.SYS_MBIND,
			"setns": unix.SYS_SETNS, "pivot_root": unix.SYS_PIVOT_ROOT, "move_mount": unix.SYS_MOVE_MOUNT,
			"open_tree": unix.SYS_OPEN_TREE,
		}
		var nrs []string
		for name, n := range nr {
			nrs = append(nrs, fmt.Sprintf("%q: %d", name, n))
		}
		code := `import ctypes, errno, os
NR = {` + strings.Join(nrs, ", ") + `}
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, *args):
    ctypes.set_errno(0)
    r = libc.syscall(NR[name], *[ctypes.c_ulong(a) for a in args])
    return errno.errorcode.get(ctypes.get_errno(), "0") if r == -1 else "ok"
out = []
out.append("mount " + call("mount", 0, 0, 0, 0, 0))
out.append("unshare-user " + call("unshare", 0x10000000))
out.append("unshare-net " + call("unshare", 0x40000000))
out.append("unshare-files " + call("unshare", 0x400))
out.append("ptrace-traceme " + call("ptrace", 0, 0, 0, 0))
out.append("keyctl " + call("keyctl", 0, 0xfffffffd, 0))
out.append("personality-rie " + call("personality", 0x0400000))
out.append("personality-query " + call("personality", 0xffffffff))
out.append("tiocsti " + call("ioctl", 0, 0x5412, 0))
out.append("tiocsti-high " + call("ioctl", 0, 0xdead00005412, 0))
out.append("clone3 " + call("clone3", 0, 0))
out.append("io_uring " + call("io_uring_setup", 1, 0))
out.append("bpf " + call("bpf", 0, 0, 0))
out.append("socket-vsock " + call("socket", 40, 1, 0))
out.append("mbind " + call("mbind", 0, 0, 0, 0, 0, 0))
out.append("setns " + call("setns", 0, 0))
out.append("pivot_root " + call("pivot_root", 0, 0))
out.append("move_mount " + call("move_mount", 0, 0, 0, 0, 0))
out.append("open_tree " + call("open_tree", 0, 0, 0))
print("\n".join(out))
`
		r := run(t, p, id, sandbox.Python, code)
		want := `mount EPERM
unshare-user EPERM
unshare-net EPERM
unshare-files ok
ptrace-traceme EPERM
keyctl EPERM
personality-rie EPERM
personality-query ok
tiocsti EPERM
tiocsti-high EPERM
clone3 ENOSYS
io_uring EPERM
bpf EPERM
socket-vsock EPERM
mbind EPERM
setns EPERM
pivot_root EPERM
move_mount EPERM
open_tree EPERM
`
		if string(r.Stdout) != want {
			t.Errorf("denied calls:\n%s\nstderr %q error %+v\nwant\n%s", r.Stdout, r.Stderr, r.Error, want)
		}
		checks := []struct{ name, lang, code, want string }{
			{"threads", "python", "import threading\nres = []\nts = [threading.Thread(target=res.append, args=(i,)) for i in range(8)]\n[t.start() for t in ts]; [t.join() for t in ts]\nprint(sorted(res) == list(range(8)))", "True\n"},
			{"subprocess", "python", "import subprocess\nprint(subprocess.run(['sh', '-c', 'echo sub | tr a-z A-Z'], capture_output=True, text=True).stdout, end='')", "SUB\n"},
			{"multiprocessing", "python", "import multiprocessing as mp\nwith mp.Pool(2) as p: print(sum(p.map(abs, [-1, -2, 3])))", "6\n"},
		}
		for _, c := range checks {
			r := run(t, p, id, sandbox.Language(c.lang), c.code)
			if string(r.Stdout) != c.want {
				t.Errorf("%s: %q = %q (stderr %q, error %+v), want %q", c.name, c.code, r.Stdout, r.Stderr, r.Error, c.want)
			}
		}
	})
}

// TestNothingShared: two sandboxes of one fork server see nothing of each
// other: files in /tmp, /dev/shm and the workspace, processes, abstract
// unix sockets, System V shared memory, pseudo-terminals.
func TestNothingShared(t *testing.T) {
	t.Parallel()
	setups(t, func(t *testing.T, p *Provider) {
		a := newBox(t, p, sandbox.Spec{})
		b := newBox(t, p, sandbox.Spec{})
		setup := `import os, socket, subprocess, ctypes
for d in ("/tmp", "/dev/shm", "/workspace"):
    open(d + "/secret-a", "w").write("a")
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind("\0warden-secret-a")
s.listen(1)
keep = s
libc = ctypes.CDLL(None, use_errno=True)
shm = libc.shmget(0x5ec7e7, 4096, 0o1666)
pty = os.openpty()
subprocess.Popen(["sleep", "300"], start_new_session=True)
print(shm >= 0, os.ttyname(pty[1]))`
		r := run(t, p, a.ID, sandbox.Python, setup)
		if !strings.HasPrefix(string(r.Stdout), "True /dev/pts/") {
			t.Fatalf("setting up sandbox A: %q %q", r.Stdout, r.Stderr)
		}
		probe := `import os, socket, ctypes, glob
print("files", sorted(glob.glob("/tmp/secret*") + glob.glob("/dev/shm/secret*") + glob.glob("/workspace/secret*")))
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    c.connect("\0warden-secret-a"); print("socket connected")
except OSError as e:
    print("socket", type(e).__name__)
libc = ctypes.CDLL(None, use_errno=True)
print("shm", libc.shmget(0x5ec7e7, 0, 0) >= 0)
print("sleep", any(open("/proc/%s/comm" % p).read().strip() == "sleep" for p in os.listdir("/proc") if p.isdigit()))
print("pts", sorted(os.listdir("/dev/pts")))
print("mounts", [l.split()[4] for l in open("/proc/self/mountinfo") if "secret" in l or "` + filepath.Base(a.Workspace) + `" in l])`
		want := "files []\nsocket ConnectionRefusedError\nshm False\nsleep False\npts ['ptmx']\nmounts []\n"
		if r := run(t, p, b.ID, sandbox.Python, probe); string(r.Stdout) != want {
			t.Errorf("sandbox B sees sandbox A:\n%s%s\nwant\n%s", r.Stdout, r.Stderr, want)
		}
		// A itself sees all of it (the probe is not blind).
		if r := run(t, p, a.ID, sandbox.Python, probe); !strings.Contains(string(r.Stdout), "socket connected") ||
			!strings.Contains(string(r.Stdout), "shm True") || !strings.Contains(string(r.Stdout), "sleep True") {
			t.Errorf("sandbox A does not see its own: %s%s", r.Stdout, r.Stderr)
		}
	})
}

// TestCgroup: every process of a sandbox is in its cgroups, from its first
// instruction on (the init, the agent, the worker and what the code
// starts), and the code cannot move itself out: it sees only its own
// group, read-only, at the root of its cgroup namespace.
func TestCgroup(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	setups(t, func(t *testing.T, p *Provider) {
		if !p.cgroups {
			t.Skip("no cgroup v1 here")
		}
		info := newBox(t, p, sandbox.Spec{})
		id := info.ID
		run(t, p, id, sandbox.Shell, "sleep 300 >/dev/null 2>&1 &")
		r := run(t, p, id, sandbox.Shell, `for f in /sys/fs/cgroup/memory/cgroup.procs /sys/fs/cgroup/memory/tasks; do echo $$ > $f 2>/dev/null && echo moved $f; done
ls /sys/fs/cgroup; ls /sys/fs/cgroup/memory | grep -c procs; (echo 0 > /sys/fs/cgroup/memory/memory.limit_in_bytes) 2>&1 | grep -c Read-only`)
		if got := string(r.Stdout); got != "memory\n1\n1\n" {
			t.Errorf("inside: %q %q, want only its memory group, read-only", got, r.Stderr)
		}
		init, err := p.HostPID(id)
		if err != nil || init == 0 {
			t.Fatalf("HostPID = %d, %v", init, err)
		}
		// Every process of the pid namespace, seen from the host.
		ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
		if err != nil {
			t.Fatal(err)
		}
		var members []int
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l == ns {
				members = append(members, pid)
			}
		}
		if len(members) < 3 { // the agent (init), the worker, sleep
			t.Fatalf("%d processes in the sandbox's pid namespace", len(members))
		}
		for _, pid := range members {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			in := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				f := strings.SplitN(line, ":", 3)
				if len(f) != 3 {
					continue
				}
				for _, c := range strings.Split(f[1], ",") {
					in[c] = f[2] == "/warden-fork/"+tagged(string(id))
				}
			}
			for _, ctl := range controllers {
				if !in[ctl] {
					t.Errorf("pid %d is not in the sandbox's %s cgroup:\n%s", pid, ctl, b)
				}
			}
		}
		// Neither end of the fork server's control socket reaches a process
		// of the sandbox.
		z := p.z
		ends := map[string]bool{}
		for _, l := range []string{fmt.Sprintf("/proc/self/fd/%d", z.ctl), fmt.Sprintf("/proc/%d/fd/3", zygotePID(t, z))} {
			s, err := os.Readlink(l)
			if err != nil || !strings.HasPrefix(s, "socket:") {
				t.Fatalf("control socket %s: %q %v", l, s, err)
			}
			ends[s] = true
		}
		for _, pid := range members {
			fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
			for _, fd := range fds {
				if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); ends[l] {
					t.Errorf("pid %d holds the fork server's control socket as fd %s", pid, fd.Name())
				}
			}
		}
		// Destroy: nothing of it is left.
		if err := p.Destroy(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		// A killed process may stay a zombie a moment, until its parent (the
		// fork server, for the sandbox's init) reaps it; none may run.
		for _, pid := range members {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); l == ns && len(f) > 0 && f[0] != "Z" && f[0] != "X" {
				t.Errorf("pid %d of the sandbox outlived Destroy (state %s)", pid, f[0])
			}
		}
		// The server reaps the sandbox's init (its child) without waiting for
		// its next request.
		reaped := false
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", init)); os.IsNotExist(err) {
				reaped = true
				break
			}
		}
		if !reaped {
			t.Errorf("the sandbox's init %d is still there (a zombie nobody reaps)", init)
		}
		for _, ctl := range controllers {
			if _, err := os.Stat(filepath.Join(p.opts.CgroupRoot, ctl, "warden-fork", tagged(string(id)))); !os.IsNotExist(err) {
				t.Errorf("%s cgroup left behind: %v", ctl, err)
			}
		}
	})
}

// zygotePID finds the fork server's python process: the child of its
// bwrap whose fd 3 is the other end of the control socket.
func zygotePID(t *testing.T, z *zygote) int {
	// bwrap's pid namespace: its init is bwrap's child, the server is
	// that init's child.
	for _, pid := range childrenOf(z.cmd.Process.Pid, 2) {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); strings.Contains(l, "python3") {
			return pid
		}
	}
	t.Fatal("no fork server process")
	return 0
}

func childrenOf(pid, depth int) []int {
	if depth == 0 {
		return nil
	}
	var out []int
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			out = append(out, c)
			out = append(out, childrenOf(c, depth-1)...)
		}
	}
	return out
}

// TestServerRestarts: the sandboxes of a fork server that dies die with
// it, and the server is replaced at the next start; sandboxes created
// afterwards work.
func TestServerRestarts(t *testing.T) {
	t.Parallel()
	setups(t, func(t *testing.T, p *Provider) {
		before := newBox(t, p, sandbox.Spec{})
		init, err := p.HostPID(before.ID)
		if err != nil {
			t.Fatal(err)
		}
		old := p.z
		_ = unix.Kill(-old.cmd.Process.Pid, unix.SIGKILL)
		<-old.done
		// Its sandboxes die with it: they are in its pid namespace.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", init))
			if err != nil || strings.Contains(string(b[strings.LastIndexByte(string(b), ')'):]), ") Z") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the sandbox's init %d outlived its server", init)
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		info := newBox(t, p, sandbox.Spec{})
		if r := run(t, p, info.ID, sandbox.Python, "1 + 1"); r.ReturnValue == nil || *r.ReturnValue != "2" {
			t.Fatalf("after a restart: %+v", r)
		}
		if p.z == old || time.Now().After(deadline) {
			t.Fatal("the fork server was not replaced")
		}
	})
}

// TestAgentIsInit: the agent is its pid namespace's init, so the code
// cannot kill it (the kernel drops signals from inside that init has no
// handler for, SIGKILL included); kill(-1) from the code kills every
// other process of the sandbox, and the session goes on.
func TestAgentIsInit(t *testing.T) {
	t.Parallel()
	setups(t, func(t *testing.T, p *Provider) {
		id := newBox(t, p, sandbox.Spec{}).ID
		run(t, p, id, sandbox.Python, "x = 42")
		r := run(t, p, id, sandbox.Python, "import os, signal\nos.kill(1, signal.SIGKILL)\nos.kill(1, signal.SIGTERM)\nprint(open('/proc/1/comm').read().strip(), os.getppid())")
		if string(r.Stdout) != "python3 1\n" {
			t.Errorf("signalling the agent: %q %q", r.Stdout, r.Stderr)
		}
		if r := run(t, p, id, sandbox.Python, "x"); r.ReturnValue == nil || *r.ReturnValue != "42" {
			t.Errorf("the session after signalling the agent: %+v", r)
		}
		run(t, p, id, sandbox.Shell, "kill -9 -1; echo done")
		if r := run(t, p, id, sandbox.Shell, "echo alive"); string(r.Stdout) != "alive\n" {
			t.Errorf("after kill -9 -1: %q %q", r.Stdout, r.Stderr)
		}
		// The worker and its snapshot are gone with the rest: the agent
		// starts a new interpreter and says so. The worker may still be
		// dying of the SIGKILL when the next cell comes (its exit takes a
		// while on a slow machine): then that cell's result says the
		// interpreter was killed and restarted, and the one after runs.
		r = run(t, p, id, sandbox.Python, "'x' in globals()")
		if r.ExitCode == 137 && len(r.Notes) == 2 && strings.Contains(r.Notes[0], "killed by signal 9") && strings.Contains(r.Notes[1], "restarted") {
			t.Logf("the next cell met the dying worker: %q", r.Notes)
			r = run(t, p, id, sandbox.Python, "'x' in globals()")
			if r.ReturnValue == nil || *r.ReturnValue != "False" || len(r.Notes) != 0 {
				t.Errorf("Python after the dying worker's restart: %+v", r)
			}
		} else if r.ReturnValue == nil || *r.ReturnValue != "False" || len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "restarted") {
			t.Errorf("Python after kill -9 -1: %+v", r)
		}
		if r := run(t, p, id, sandbox.Python, "1 + 1"); r.ReturnValue == nil || *r.ReturnValue != "2" || len(r.Notes) != 0 {
			t.Errorf("Python after the restart: %+v", r)
		}
	})
}

// TestRlimits: without cgroups (ForceRlimits), memory is bounded per
// process by RLIMIT_DATA, as in the bubblewrap provider's rlimit mode.
func TestRlimits(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t), ForceRlimits: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if p.cgroups {
		t.Fatal("ForceRlimits left cgroups on")
	}
	id := newBox(t, p, sandbox.Spec{MemoryLimit: 256 << 20}).ID
	r := run(t, p, id, sandbox.Python, "try:\n    b = bytearray(600 << 20)\n    print('allocated')\nexcept MemoryError:\n    print('limited')\nimport resource\nprint(resource.getrlimit(resource.RLIMIT_DATA)[0] >> 20)")
	if string(r.Stdout) != "limited\n256\n" {
		t.Errorf("allocating past RLIMIT_DATA: %q %q", r.Stdout, r.Stderr)
	}
}

// setups runs f on a provider of each way of setting sandboxes up: the
// native set-up (setup.c) and the fork server's Python.
func setups(t *testing.T, f func(t *testing.T, p *Provider)) {
	for _, py := range []bool{false, true} {
		name := "native"
		if py {
			name = "python"
		}
		// One after the other: a test may look at what is left of its
		// sandboxes (cgroups, workspaces) by this process's tag.
		t.Run(name, func(t *testing.T) {
			if _, err := nativeSetup(); err != nil && !py {
				t.Skipf("no native set-up here: %v", err)
			}
			p := newProviderWith(t, Options{PythonSetup: py})
			if native, why := p.NativeSetup(); native == py {
				t.Fatalf("native set-up %v (%s), want %v", native, why, !py)
			}
			f(t, p)
		})
	}
}
