package forkserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNativeSetupRefuses: the native set-up ends the child (exit 120)
// rather than return to Python unconfined: a program without the seccomp
// step, a malformed number, an unknown operation, a program cut short.
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
import ctypes, os, sys
lib = ctypes.CDLL(sys.argv[1])
lib.warden_spawn.restype = ctypes.c_long
lib.warden_spawn.argtypes = [ctypes.c_char_p, ctypes.c_long]
for prog in (b"setsid\0", b"rlimit\0" b"7\0" b"-1\0", b"rlimit\0" b"7\0" b"1e6\0", b"unshare\0" b"x\0", b"nosuchop\0", b"dup2\0" b"2\0"):
    pid = lib.warden_spawn(prog, len(prog))
    if pid == 0:
        os._exit(0)  # back in Python: unconfined
    _, st = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(st))
`
	out, err := exec.Command(py, "-c", script, lib).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var codes []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasPrefix(l, "warden fork server:") {
			codes = append(codes, l)
		}
	}
	if strings.Join(codes, " ") != "120 120 120 120 120 120" {
		t.Errorf("exit codes %q, want 120 each\n%s", codes, out)
	}
}
