//go:build linux

package bwrap

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestSeccomp calls denied system calls from inside a sandbox through
// ctypes (no tool needed) and checks the errno. Each case is chosen so
// that it would give a different answer without the filter: the sandbox
// has no capabilities either, so a bare EPERM from mount alone would
// prove nothing.
func TestSeccomp(t *testing.T) {
	t.Parallel()
	p, id := newBox(t, sandbox.Spec{})
	if !p.Enforcement().Seccomp {
		t.Fatal("seccomp is not enforced")
	}
	if !p.disableUserns {
		t.Logf("bwrap cannot --disable-userns here: %s", p.Enforcement().Note)
	}
	tab := archTables[runtime.GOARCH]
	var nrs []string
	for name, n := range tab.nr {
		nrs = append(nrs, fmt.Sprintf("%q: %d", name, n))
	}
	nrs = append(nrs, fmt.Sprintf("%q: %d", "unreviewed", tab.maxNr+1))
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
out.append("unreviewed " + call("unreviewed", 0))
import socket
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM); out.append("vsock-python ok")
except OSError as e:
    out.append("vsock-python " + errno.errorcode[e.errno])
print("\n".join(out))
`
	r := run(t, p, id, sandbox.Python, code, 0)
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
unreviewed ENOSYS
vsock-python EPERM
`
	if string(r.Stdout) != want {
		t.Errorf("denied calls:\n%s\nstderr %q error %+v\nwant\n%s", r.Stdout, r.Stderr, r.Error, want)
	}
	// The tools fail the same way, and ordinary work still runs: threads
	// (glibc falls back from clone3 to clone), fork, subprocesses, pipes.
	checks := []struct{ name, lang, code, want string }{
		{"seccomp mode", "shell", "grep Seccomp: /proc/self/status", "Seccomp:\t2\n"},
		{"unshare tool", "shell", "unshare -U true 2>&1 | grep -c 'Operation not permitted'", "1\n"},
		{"threads", "python", "import threading\nres = []\nts = [threading.Thread(target=res.append, args=(i,)) for i in range(8)]\n[t.start() for t in ts]; [t.join() for t in ts]\nprint(sorted(res) == list(range(8)))", "True\n"},
		{"fork", "python", "import os\npid = os.fork()\nif pid == 0: os._exit(7)\nprint(os.WEXITSTATUS(os.waitpid(pid, 0)[1]))", "7\n"},
		{"subprocess", "python", "import subprocess\nprint(subprocess.run(['sh', '-c', 'echo sub | tr a-z A-Z'], capture_output=True, text=True).stdout, end='')", "SUB\n"},
		{"multiprocessing", "python", "import multiprocessing as mp\nwith mp.Pool(2) as p: print(sum(p.map(abs, [-1, -2, 3])))", "6\n"},
		{"shell pipeline", "shell", "seq 1 100 | sort -rn | head -1 & wait", "100\n"},
	}
	for _, c := range checks {
		r := run(t, p, id, sandbox.Language(c.lang), c.code, 0)
		if string(r.Stdout) != c.want {
			t.Errorf("%s: %q = %q (stderr %q, error %+v), want %q", c.name, c.code, r.Stdout, r.Stderr, r.Error, c.want)
		}
	}
}

// TestLandlock checks that Landlock is in force: the shim, mounted
// world-readable at /.warden/init, can be seen but not read (only Landlock
// forbids it), the sandbox's own directories work as before, and a
// read-only mount stays readable.
func TestLandlock(t *testing.T) {
	t.Parallel()
	ro := testutil.SharedDir(t)
	p, id := newBox(t, sandbox.Spec{Mounts: []sandbox.Mount{{Source: ro, Target: "/data", ReadOnly: true}}})
	if p.Enforcement().LandlockABI == 0 {
		if landlockABI() > 0 {
			t.Fatalf("the kernel has Landlock ABI %d but the provider does not use it: %s", landlockABI(), p.Enforcement().Note)
		}
		t.Skip("no Landlock on this kernel")
	}
	code := pyTryIt + `print("stat", tryit(lambda: os.stat("/.warden/init")))
print("mode", oct(os.stat("/.warden/init").st_mode & 0o777))
print("read shim", tryit(lambda: open("/.warden/init", "rb").read(4)))
print("list root", tryit(lambda: os.listdir("/")))
print("read usr", tryit(lambda: open("/usr/bin/python3", "rb").read(4)))
print("list data", tryit(lambda: os.listdir("/data")))
print("write tmp", tryit(lambda: open("/tmp/x", "w").write("x")))
print("write workspace", tryit(lambda: open("/workspace/x", "w").write("x")))
print("rename across dirs", tryit(lambda: (os.makedirs("/workspace/d", exist_ok=True), os.rename("/workspace/x", "/workspace/d/x"))))
print("write dev null", tryit(lambda: open("/dev/null", "w").write("x")))
print("oom_score_adj", tryit(lambda: open("/proc/self/oom_score_adj", "w").write("500")))
`
	r := run(t, p, id, sandbox.Python, code, 0)
	want := `stat ok
mode 0o755
read shim PermissionError
list root ok
read usr ok
list data ok
write tmp ok
write workspace ok
rename across dirs ok
write dev null ok
oom_score_adj ok
`
	if string(r.Stdout) != want {
		t.Errorf("landlock:\n%s\nstderr %q error %+v\nwant\n%s", r.Stdout, r.Stderr, r.Error, want)
	}
}

// TestInheritedDescriptors: a descriptor Warden inherited from whatever
// started it (here fd 3, a host file) reaches neither the sandboxed code
// nor slirp4netns. The test runs itself again as that child, with the file
// at fd 40: above the descriptors a launch passes on, which would replace it.
func TestInheritedDescriptors(t *testing.T) {
	const marker = "warden-inherited-fd-marker"
	if os.Getenv("WARDEN_TEST_FD_CHILD") == "1" {
		p, id := newBox(t, sandbox.Spec{Network: true})
		// Every process of the sandbox: the agent, and the code it runs.
		r := run(t, p, id, sandbox.Python, `import os
for pid in filter(str.isdigit, os.listdir('/proc')):
    try:
        for fd in os.listdir('/proc/%s/fd' % pid):
            print(pid, fd, os.readlink('/proc/%s/fd/%s' % (pid, fd)))
    except OSError:
        pass`, 0)
		if r.ExitCode != 0 || strings.Contains(string(r.Stdout), marker) {
			t.Errorf("descriptors of the sandboxed code (exit %d):\n%s%s", r.ExitCode, r.Stdout, r.Stderr)
		}
		pid := slirpPID(t, p, id)
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); strings.Contains(l, marker) {
				t.Errorf("slirp4netns has the inherited descriptor as fd %s", fd.Name())
			}
		}
		return
	}
	t.Parallel()
	testutil.RequireBwrap(t)
	testutil.RequireSlirp4netns(t)
	f, err := os.Create(filepath.Join(t.TempDir(), marker))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestInheritedDescriptors$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "WARDEN_TEST_FD_CHILD=1")
	cmd.ExtraFiles = make([]*os.File, 38)
	cmd.ExtraFiles[37] = f // fd 40 in the child, not close-on-exec
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestInheritedDescriptors") {
		t.Fatalf("child with an inherited descriptor: %v\n%s", err, out)
	}
}

// pyTryIt defines tryit(f) for a test's Python: "ok", or the name of the
// OSError f raised.
const pyTryIt = `import os
def tryit(f):
    try:
        f(); return "ok"
    except OSError as e:
        return type(e).__name__
`
