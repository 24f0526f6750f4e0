package forkserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// TestNativeSetupRefuses: the native set-up's loop ends a child (exit
// 120) rather than return to Python unconfined (a program without the
// seccomp step, a malformed number, an unknown operation, a program cut
// short, a descriptor the request did not pass), and answers a request
// it cannot serve (malformed, too large, without its descriptors) on the
// request's stderr, without a child, and goes on serving.
func TestNativeSetupRefuses(t *testing.T) {
	so, err := nativeSetup()
	if err != nil {
		t.Skipf("no native set-up here: %v", err)
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	lib := filepath.Join(t.TempDir(), "setup.so")
	if err := os.WriteFile(lib, so, 0o700); err != nil {
		t.Fatal(err)
	}
	const script = `
import ctypes, os, socket, struct, sys
lib = ctypes.CDLL(sys.argv[1])
lib.warden_serve.restype = ctypes.c_long
lib.warden_serve.argtypes = [ctypes.c_int, ctypes.c_void_p]
# A filter that allows everything: the success path's seccomp step.
allow = struct.pack("=HBBI", 6, 0, 0, 0x7fff0000)
assert lib.warden_init(allow, len(allow)) == 0
class Req(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_long), ("nfds", ctypes.c_int), ("fds", ctypes.c_int * 64)]
host, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
host.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
r, w = os.pipe()    # the requests' stderr
r0, w0 = os.pipe()  # their "socket"
def send(msg, fds=(w0, w)):
    host.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(fds), *fds))])
def framed(prog, js=b"{}"):
    return struct.pack("<I", len(prog)) + prog + js
# Requests it cannot serve: no child, a line on their stderr.
send(struct.pack("<I", 100) + b"setsid\0")       # longer than the message
send(framed(b"setsid"))                          # no NUL at the end
send(framed(b""))                                # no program
send(b"\1\0")                                    # no length
send(framed(b"setsid\0"), fds=(w,))              # without its stderr: nothing said
send(framed(b"setsid\0") + b"x" * (1 << 16))     # too large
many = [os.dup(w0) for _ in range(68)]
send(framed(b"setsid\0"), fds=[w0, w] + many)    # too many descriptors
for fd in many:
    os.close(fd)
# Programs that do not confine the child: a child each, ended. The first
# is the longest request of all.
progs = [b"setsid\0", b"rlimit\0" b"7\0" b"-1\0", b"rlimit\0" b"7\0" b"1e6\0", b"unshare\0" b"x\0",
         b"nosuchop\0", b"dup2\0" b"2\0", b"dup2\0" b"%2\0" b"5\0", b"dup2\0" b"%-1\0" b"5\0",
         b"dup2\0" b"%x\0" b"5\0", b"keep\0" b"1\0" b"%7\0", b"keep\0" b"70\0", b"seccomp\0",
         b"caps\0" b"seccomp\0"]
send(framed(progs[0], b'{"secret": "' + b"S" * 600 + b'"}'))
for prog in progs[1:]:
    send(framed(prog))
# One that does: the child comes back with its request and descriptors,
# and nothing of the longer requests before it.
send(framed(b"caps\0" b"nonewprivs\0" b"seccomp\0", b'{"k": 1}'))
host.close()
before = len(os.listdir("/proc/self/fd"))
out = Req()
rc = lib.warden_serve(server.fileno(), ctypes.byref(out))
if rc == 0:
    tail = ctypes.string_at(out.data + out.len, 700)
    os.write(1, b"child %s %d %s\n" % (ctypes.string_at(out.data, out.len), out.nfds, b"clean" if tail == bytes(700) else b"dirty"))
    os._exit(0)
after = len(os.listdir("/proc/self/fd"))
os.close(w)
os.close(w0)
codes = []
while True:
    try:
        _, st = os.wait()
    except ChildProcessError:
        break
    codes.append(os.waitstatus_to_exitcode(st))
print("rc", rc, "fds", before, after)
print("codes", " ".join(str(c) for c in sorted(codes)), len(codes))
sys.stdout.flush()
os.write(1, os.read(r, 1 << 16))
`
	out, err := exec.Command(py, "-c", script, lib).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "rc 1 fds") {
		t.Errorf("warden_serve did not return 1 at the end of its input:\n%s", s)
	}
	var before, after int
	if _, err := fmt.Sscanf(s[strings.Index(s, "rc 1 fds"):], "rc 1 fds %d %d", &before, &after); err != nil || before != after {
		t.Errorf("the server's descriptors: %d before, %d after (%v)", before, after, err)
	}
	if !strings.Contains(s, "codes 0 "+strings.TrimSpace(strings.Repeat("120 ", 13))+" 14\n") {
		t.Errorf("want 13 children ended with 120 and one back in Python:\n%s", s)
	}
	if !strings.Contains(s, `child {"k": 1} 2 clean`) {
		t.Errorf("the confined child did not come back with its request, its 2 descriptors and nothing more:\n%s", s)
	}
	for what, n := range map[string]int{"a malformed request": 4, "a request larger than 64 KiB": 1, "a request with too many descriptors": 1,
		"the set-up program did not confine the child (capabilities, no_new_privs, seccomp)": 2, "keep: too many descriptors": 1} {
		if got := strings.Count(s, "warden fork server: "+what+"\n"); got != n {
			t.Errorf("%q said %d times, want %d:\n%s", what, got, n, s)
		}
	}
	if !strings.Contains(s, "a descriptor the request did not pass: %2") || !strings.Contains(s, "a descriptor the request did not pass: %-1") {
		t.Errorf("no word of the descriptors not passed:\n%s", s)
	}
}

// TestHotPages: with the native set-up, the fork server learns which
// pages a one-shot run writes (ADR 0021), and the interpreter's code
// mapping in a sandbox has the one anonymous page that makes fork copy
// its page table entries (so that no child faults on them); the Python
// set-up does neither.
func TestHotPages(t *testing.T) {
	setups(t, func(t *testing.T, p *Provider) {
		native, _ := p.NativeSetup()
		hot := p.HotPages()
		if native != (hot > 0) {
			t.Fatalf("HotPages() = %d with the native set-up %v", hot, native)
		}
		t.Logf("%d hot pages", hot)
		const code = `
import re
seen = False
for line in open("/proc/self/smaps").read().split("\n"):
    f = line.split()
    if len(f) >= 6 and f[1] == "r-xp" and re.search(r"/python3[.0-9]*$", f[5]):
        seen = True
    elif seen and f and f[0] == "Anonymous:":
        print(f[1])
        break
`
		for _, oneshot := range []bool{true, false} {
			var out string
			if oneshot {
				r, err := p.Run(t.Context(), sandbox.Spec{}, sandbox.ExecRequest{Language: sandbox.Python, Code: code})
				if err != nil || r.ExitCode != 0 {
					t.Fatalf("Run: %+v, %v", r, err)
				}
				out = string(r.Stdout)
			} else {
				out = string(run(t, p, newBox(t, p, sandbox.Spec{}).ID, sandbox.Python, code).Stdout)
			}
			want := "0"
			if native {
				want = strconv.Itoa(os.Getpagesize() / 1024)
			}
			if got := strings.TrimSpace(out); got != want {
				t.Errorf("one-shot %v: the interpreter's code has %q kB of anonymous pages, want %s", oneshot, got, want)
			}
		}
	})
}

// TestHotPagesNotLearnt: a fork server whose sample run fails (killed)
// learns no pages, starts all the same, and leaves nothing behind: its
// sandboxes run, without the hot step.
func TestHotPagesNotLearnt(t *testing.T) {
	if _, err := nativeSetup(); err != nil {
		t.Skipf("no native set-up here: %v", err)
	}
	p := newProviderWith(t, Options{hotSample: "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"})
	if native, why := p.NativeSetup(); !native || p.HotPages() != 0 {
		t.Fatalf("native %v (%s), %d hot pages; want native, none", native, why, p.HotPages())
	}
	r, err := p.Run(t.Context(), sandbox.Spec{}, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(6 * 7)"})
	if err != nil || strings.TrimSpace(string(r.Stdout)) != "42" {
		t.Fatalf("Run: %+v, %v", r, err)
	}
	// The server's processes: itself (and bwrap's), none stopped or a zombie.
	p.zmu.Lock()
	server := p.z.cmd.Process.Pid
	p.zmu.Unlock()
	out, err := exec.Command("ps", "-e", "-o", "pid=,ppid=,stat=").CombinedOutput()
	if err != nil {
		t.Fatalf("ps: %v: %s", err, out)
	}
	type proc struct{ ppid, stat string }
	procs := map[string]proc{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			procs[f[0]] = proc{f[1], f[2]}
		}
	}
	n := 0
	for pid, pr := range procs {
		for a := pr.ppid; a != "" && a != "0" && a != "1"; a = procs[a].ppid {
			if a == strconv.Itoa(server) {
				n++
				if strings.ContainsAny(pr.stat, "TZ") {
					t.Errorf("process %s of the server is stopped or a zombie (%s)", pid, pr.stat)
				}
				break
			}
		}
	}
	if n == 0 {
		t.Error("no process under the server's bwrap: the check looked at nothing")
	}
}
