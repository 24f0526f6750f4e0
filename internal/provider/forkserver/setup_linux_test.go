package forkserver

import (
	"os"
	"os/exec"
	"path/filepath"
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
class Req(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_long), ("nfds", ctypes.c_int), ("fds", ctypes.c_int * 64)]
host, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
host.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
r, w = os.pipe()    # the requests' stderr
r0, w0 = os.pipe()  # their "socket"
def send(msg, fds=(w0, w)):
    host.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(fds), *fds))])
def framed(prog):
    return struct.pack("<I", len(prog)) + prog + b"{}"
# Requests it cannot serve: no child, a line on their stderr.
send(struct.pack("<I", 100) + b"setsid\0")       # longer than the message
send(framed(b"setsid"))                          # no NUL at the end
send(framed(b""))                                # no program
send(b"\1\0")                                    # no length
send(framed(b"setsid\0"), fds=(w,))              # without its stderr: nothing said
send(framed(b"setsid\0") + b"x" * (1 << 16))     # too large
# Programs that never reach the seccomp step: a child each, ended.
progs = [b"setsid\0", b"rlimit\0" b"7\0" b"-1\0", b"rlimit\0" b"7\0" b"1e6\0", b"unshare\0" b"x\0",
         b"nosuchop\0", b"dup2\0" b"2\0", b"dup2\0" b"%2\0" b"5\0", b"dup2\0" b"%-1\0" b"5\0",
         b"dup2\0" b"%x\0" b"5\0", b"keep\0" b"1\0" b"%7\0"]
for prog in progs:
    send(framed(prog))
host.close()
out = Req()
rc = lib.warden_serve(server.fileno(), ctypes.byref(out))
if rc == 0:
    os._exit(0)  # back in Python: unconfined
os.close(w)
os.close(w0)
codes = []
while True:
    try:
        _, st = os.wait()
    except ChildProcessError:
        break
    codes.append(os.waitstatus_to_exitcode(st))
print("rc", rc)
print("codes", " ".join(str(c) for c in sorted(codes)), len(codes))
sys.stdout.flush()
os.write(1, os.read(r, 1 << 16))
`
	out, err := exec.Command(py, "-c", script, lib).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "rc 1\n") {
		t.Errorf("warden_serve did not return 1 at the end of its input:\n%s", s)
	}
	if !strings.Contains(s, "codes "+strings.TrimSpace(strings.Repeat("120 ", 10))+" 10\n") {
		t.Errorf("want 10 children, each ended with 120:\n%s", s)
	}
	for what, n := range map[string]int{"a malformed request": 4, "a request larger than 64 KiB": 1} {
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
				want = "4"
			}
			if got := strings.TrimSpace(out); got != want {
				t.Errorf("one-shot %v: the interpreter's code has %q kB of anonymous pages, want %s", oneshot, got, want)
			}
		}
	})
}
