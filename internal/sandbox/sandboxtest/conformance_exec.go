package sandboxtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Executions: the persistent Python session, shell commands, the
// workspace, environment variables, mounts and limits.

func testPythonState(t *testing.T, s *suite) {
	b := s.create(t, nil)
	r := b.ok(t, py("import json as j\nx = 41\ndef double(v):\n    return v * 2\n"+
		"class Box:\n    def __init__(self, v):\n        self.v = v\n    def get(self):\n        return self.v\nitems = []"))
	if r.ReturnValue != nil || len(r.Stdout) != 0 || len(r.Stderr) != 0 {
		t.Errorf("definitions = return %v, stdout %q, stderr %q; want nothing", r.ReturnValue, r.Stdout, r.Stderr)
	}
	// Variables, an import alias, a function and a class of the first
	// execution are all there in the second and third.
	b.wantValue(t, "items.append(x)\nx += 1\n(j.dumps({'x': x}), double(x), Box('b').get(), items)", `('{"x": 42}', 84, 'b', [41])`)
	b.wantValue(t, "x", "42")
	b.wantValue(t, "'s'", "'s'") // the repr, not str
	for _, code := range []string{"y = 1", "None", "print('p')", "def f():\n    pass\nf()"} {
		if r := b.ok(t, py(code)); r.ReturnValue != nil {
			t.Errorf("Exec(python %q).ReturnValue = %q, want none", code, *r.ReturnValue)
		}
	}
	// Only a final expression statement gives a value, not an earlier one.
	if r := b.ok(t, py("x * 10\nz = 3")); r.ReturnValue != nil {
		t.Errorf("code ending with an assignment returned %q", *r.ReturnValue)
	}
}

func testPythonOutput(t *testing.T, s *suite) {
	b := s.create(t, nil)
	r := b.ok(t, py("import sys\nprint('out \u2713')\nprint('err', file=sys.stderr)\nsys.stdout.flush()\n"+
		"sys.stdout.buffer.write(b'\\x00\\xff\\n')\n7"))
	if got, want := string(r.Stdout), "out \u2713\n\x00\xff\n"; got != want {
		t.Errorf("Stdout = %q, want %q (the exact bytes)", got, want)
	}
	if got := string(r.Stderr); got != "err\n" {
		t.Errorf("Stderr = %q, want %q", got, "err\n")
	}
	if r.ReturnValue == nil || *r.ReturnValue != "7" {
		t.Errorf("ReturnValue = %v, want 7", r.ReturnValue)
	}
	if r.Truncated() {
		t.Error("small output reported truncated")
	}
	// Output belongs to its execution: the next one starts empty.
	if r := b.ok(t, py("1")); len(r.Stdout) != 0 || len(r.Stderr) != 0 {
		t.Errorf("next execution's output = %q %q, want none", r.Stdout, r.Stderr)
	}
}

func testPythonErrors(t *testing.T, s *suite) {
	b := s.create(t, nil)
	b.ok(t, py("kept = 'yes'"))

	r := b.exec(t, py("a = 1\nb = 2\ndef f():\n    return a / 0\nf()"))
	if r.ExitCode != 1 || r.Error == nil {
		t.Fatalf("exception = exit %d, error %+v; want exit 1 and the error", r.ExitCode, r.Error)
	}
	if r.Error.Name != "ZeroDivisionError" || r.Error.Value != "division by zero" || r.Error.Line != 4 {
		t.Errorf("exception = %s %q at line %d, want ZeroDivisionError %q at line 4", r.Error.Name, r.Error.Value, r.Error.Line, "division by zero")
	}
	tb := r.ErrorTraceback()
	for _, want := range []string{"Traceback", "line 4", "return a / 0", "ZeroDivisionError: division by zero"} {
		if !strings.Contains(tb, want) {
			t.Errorf("error traceback %q lacks %q", tb, want)
		}
	}
	if r.TimedOut || r.ReturnValue != nil {
		t.Errorf("exception: timed out %v, return value %v", r.TimedOut, r.ReturnValue)
	}

	r = b.exec(t, py("c = 1\nif c\n    pass"))
	if r.ExitCode != 1 || r.Error == nil || r.Error.Name != "SyntaxError" || r.Error.Line != 2 {
		t.Fatalf("syntax error = exit %d, error %+v; want exit 1, SyntaxError at line 2", r.ExitCode, r.Error)
	}
	if !strings.Contains(r.ErrorTraceback(), "SyntaxError") {
		t.Errorf("syntax error traceback = %q", r.ErrorTraceback())
	}

	r = b.exec(t, py("raise ValueError('bad value')"))
	if r.Error == nil || r.Error.Name != "ValueError" || r.Error.Value != "bad value" || r.Error.Line != 1 {
		t.Errorf("raise = %+v, want ValueError %q at line 1", r.Error, "bad value")
	}

	r = b.exec(t, py("import sys\nsys.exit(3)"))
	if r.ExitCode != 3 || r.Error != nil {
		t.Errorf("sys.exit(3) = exit %d, error %+v; want exit 3, no error", r.ExitCode, r.Error)
	}

	// The session survives all of it. What ran before the exception
	// stays (a = 1), as in a REPL; the syntax error ran nothing (no c).
	b.wantValue(t, "(kept, a, 'c' in globals())", "('yes', 1, False)")
}

// testPythonCrashRecovers kills the interpreter from inside: the result
// says so and the session goes on with the variables it had before.
func testPythonCrashRecovers(t *testing.T, s *suite) {
	b := s.create(t, nil)
	b.ok(t, py("before = 'kept'"))
	time.Sleep(idleForSnapshot)
	r := b.exec(t, py("import os\nlost = 1\nos._exit(7)"))
	if r.ExitCode != 7 {
		t.Errorf("os._exit(7) = exit %d, want 7", r.ExitCode)
	}
	b.wantValue(t, "(before, 'lost' in globals())", "('kept', False)")
}

func testShell(t *testing.T, s *suite) {
	b := s.create(t, nil)
	r := b.exec(t, sh("echo out; echo err >&2; exit 3"))
	if r.ExitCode != 3 || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" {
		t.Errorf("shell = exit %d, %q, %q; want 3, %q, %q", r.ExitCode, r.Stdout, r.Stderr, "out\n", "err\n")
	}
	if r.Error != nil || r.TimedOut || r.ReturnValue != nil {
		t.Errorf("shell exit 3: error %+v, timed out %v, return value %v; want none", r.Error, r.TimedOut, r.ReturnValue)
	}
	if r := b.exec(t, sh("false")); r.ExitCode != 1 {
		t.Errorf("false = exit %d, want 1", r.ExitCode)
	}
	r = b.exec(t, sh("no-such-command-warden"))
	if r.ExitCode != 127 || !strings.Contains(string(r.Stderr), "not found") {
		t.Errorf("unknown command = exit %d, stderr %q; want 127, not found", r.ExitCode, r.Stderr)
	}
	// The command string is run by bash.
	b.wantStdout(t, "[[ a == a ]] && echo \"${BASH_VERSION:+bash}\"", "bash\n")
	b.wantStdout(t, "printf 'a\\0b\\377'", "a\x00b\xff")
	// An argv runs without a shell: nothing is expanded.
	r = b.ok(t, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"printf", "%s|", "a b", "$HOME", "*", "`id`"}})
	if got, want := string(r.Stdout), "a b|$HOME|*|`id`|"; got != want {
		t.Errorf("argv = %q, want %q", got, want)
	}
	r = b.exec(t, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"no-such-command-warden", "x"}})
	if r.ExitCode != 127 {
		t.Errorf("unknown argv command = exit %d, want 127", r.ExitCode)
	}
	// Timing: Duration is the execution's, well under the wall time.
	r, took := b.timed(t, sh("sleep 0.3"))
	if r.Duration < 300*time.Millisecond || r.Duration > took+50*time.Millisecond {
		t.Errorf("sleep 0.3: Duration = %s, Exec took %s", r.Duration, took)
	}
}

func testWorkingDirectory(t *testing.T, s *suite) {
	b := s.create(t, nil)
	ws := b.info.Spec.WorkspacePath
	if !path.IsAbs(ws) {
		t.Fatalf("Info.Spec.WorkspacePath = %q, want an absolute path", ws)
	}
	b.wantStdout(t, "pwd", ws+"\n")
	b.wantValue(t, "import os\nos.getcwd()", pyRepr(ws))
	b.ok(t, sh("mkdir -p sub/dir"))
	r := b.ok(t, sandbox.ExecRequest{Language: sandbox.Shell, Code: "pwd", Workdir: "sub/dir"})
	if got, want := string(r.Stdout), path.Join(ws, "sub/dir")+"\n"; got != want {
		t.Errorf("pwd in workdir sub/dir = %q, want %q", got, want)
	}
	r = b.ok(t, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"pwd"}, Workdir: path.Join(ws, "sub")})
	if got, want := string(r.Stdout), path.Join(ws, "sub")+"\n"; got != want {
		t.Errorf("pwd in absolute workdir = %q, want %q", got, want)
	}
	// The workdir is per execution: the next one is back in the workspace.
	b.wantStdout(t, "pwd", ws+"\n")
}

// pyRepr is Python's repr of a str without quotes or backslashes in it.
func pyRepr(s string) string { return "'" + s + "'" }

func testFilesShared(t *testing.T, s *suite) {
	b := s.create(t, nil)
	if b.info.Workspace == "" {
		t.Fatal("Info.Workspace is empty, want the host directory behind the workspace")
	}
	b.ok(t, py("with open('from_py.txt', 'w') as f:\n    f.write('py data')"))
	b.wantStdout(t, "cat from_py.txt", "py data")
	b.ok(t, sh("printf 'sh data' > from_sh.txt"))
	b.wantValue(t, "open('from_sh.txt').read()", "'sh data'")
	if got, err := os.ReadFile(filepath.Join(b.info.Workspace, "from_py.txt")); err != nil || string(got) != "py data" {
		t.Errorf("host reads the workspace file = %q, %v; want %q", got, err, "py data")
	}
	if err := os.WriteFile(filepath.Join(b.info.Workspace, "from_host.txt"), []byte("host data"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.wantStdout(t, "cat from_host.txt", "host data")
	b.wantValue(t, "open('from_host.txt').read()", "'host data'")
}

func testEnv(t *testing.T, s *suite) {
	env := map[string]string{"WARDEN_CT_A": "alpha", "WARDEN_CT_B": "two words", "WARDEN_CT_Q": `it's "$HOME"`}
	b := s.create(t, func(sp *sandbox.Spec) { sp.Env = maps.Clone(env) })
	// The spec's map belongs to the caller: changing it changes nothing.
	b.spec.Env["WARDEN_CT_A"] = "changed"
	b.spec.Env["WARDEN_CT_NEW"] = "x"

	const pyEnv = "import os\nsorted((k, v) for k, v in os.environ.items() if k.startswith('WARDEN_CT_'))"
	const shEnv = "env | grep '^WARDEN_CT_' | sort"
	b.wantValue(t, pyEnv, `[('WARDEN_CT_A', 'alpha'), ('WARDEN_CT_B', 'two words'), ('WARDEN_CT_Q', 'it\'s "$HOME"')]`)
	b.wantStdout(t, shEnv, "WARDEN_CT_A=alpha\nWARDEN_CT_B=two words\nWARDEN_CT_Q=it's \"$HOME\"\n")
	wantEnv(t, b, env)

	got, err := b.p.UpdateEnv(t.Context(), b.info.ID, sandbox.EnvUpdate{
		Set:   map[string]string{"WARDEN_CT_A": "alpha2", "WARDEN_CT_C": "gamma"},
		Unset: []string{"WARDEN_CT_B", "WARDEN_CT_MISSING"},
	})
	want := map[string]string{"WARDEN_CT_A": "alpha2", "WARDEN_CT_C": "gamma", "WARDEN_CT_Q": `it's "$HOME"`}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("UpdateEnv(set, unset) = %v, %v; want %v", got, err, want)
	}
	// Both returned maps are copies.
	got["WARDEN_CT_A"] = "mutated"
	delete(got, "WARDEN_CT_C")
	e, _ := b.p.Env(t.Context(), b.info.ID)
	e["WARDEN_CT_E"] = "mutated"
	wantEnv(t, b, want)
	b.wantValue(t, pyEnv, `[('WARDEN_CT_A', 'alpha2'), ('WARDEN_CT_C', 'gamma'), ('WARDEN_CT_Q', 'it\'s "$HOME"')]`)
	b.wantStdout(t, shEnv, "WARDEN_CT_A=alpha2\nWARDEN_CT_C=gamma\nWARDEN_CT_Q=it's \"$HOME\"\n")

	got, err = b.p.UpdateEnv(t.Context(), b.info.ID, sandbox.EnvUpdate{Replace: true, Set: map[string]string{"WARDEN_CT_D": "delta"}})
	want = map[string]string{"WARDEN_CT_D": "delta"}
	if err != nil || !maps.Equal(got, want) {
		t.Fatalf("UpdateEnv(replace) = %v, %v; want %v", got, err, want)
	}
	b.wantValue(t, pyEnv, "[('WARDEN_CT_D', 'delta')]")
	b.wantStdout(t, shEnv, "WARDEN_CT_D=delta\n")

	if _, err := b.p.UpdateEnv(t.Context(), b.info.ID, sandbox.EnvUpdate{Set: map[string]string{"1BAD": "x", "WARDEN_CT_OK": "y"}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("UpdateEnv with name 1BAD = %v, want ErrInvalid", err)
	}
	wantEnv(t, b, want) // a refused update changes nothing

	got, err = b.p.UpdateEnv(t.Context(), b.info.ID, sandbox.EnvUpdate{Replace: true})
	if err != nil || len(got) != 0 {
		t.Fatalf("UpdateEnv(replace by nothing) = %v, %v; want an empty set", got, err)
	}
	b.wantValue(t, pyEnv, "[]")
	b.wantStdout(t, "env | grep -c '^WARDEN_CT_' || true", "0\n")
}

// testEnvDuringExec: UpdateEnv does not wait for a running execution,
// which keeps the environment it started with.
func testEnvDuringExec(t *testing.T, s *suite) {
	b := s.create(t, func(sp *sandbox.Spec) { sp.Env = map[string]string{"WARDEN_CT_X": "old"} })
	done := make(chan sandbox.ExecResult, 1)
	go func() {
		r, _ := b.p.Exec(t.Context(), b.info.ID, sh("sleep 1; echo \"$WARDEN_CT_X\""))
		done <- r
	}()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if _, err := b.p.UpdateEnv(t.Context(), b.info.ID, sandbox.EnvUpdate{Set: map[string]string{"WARDEN_CT_X": "new"}}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Errorf("UpdateEnv during an execution took %s: it waited for the execution", took)
	}
	if r := <-done; string(r.Stdout) != "old\n" {
		t.Errorf("running execution saw WARDEN_CT_X = %q, want the value it started with %q", r.Stdout, "old\n")
	}
	b.wantStdout(t, "echo \"$WARDEN_CT_X\"", "new\n")
	b.wantValue(t, "import os\nos.environ['WARDEN_CT_X']", "'new'")
}

func wantEnv(t *testing.T, b *handle, want map[string]string) {
	t.Helper()
	got, err := b.p.Env(t.Context(), b.info.ID)
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("Env = %v, %v; want %v", got, err, want)
	}
}

// testEnvNotOnCommandLine: environment variables (secrets, typically)
// never appear on a command line, inside the sandbox or on the host.
func testEnvNotOnCommandLine(t *testing.T, s *suite) {
	var rnd [12]byte
	_, _ = rand.Read(rnd[:])
	secret := "secret-" + hex.EncodeToString(rnd[:])
	b := s.create(t, func(sp *sandbox.Spec) { sp.Env = map[string]string{"WARDEN_CT_SECRET": secret} })
	if _, err := b.p.UpdateEnv(t.Context(), b.info.ID, sandbox.EnvUpdate{Set: map[string]string{"WARDEN_CT_SECRET2": secret + "-2"}}); err != nil {
		t.Fatal(err)
	}
	// A sleeping shell command keeps whatever carries the environment
	// alive while the process tables are searched.
	done := make(chan sandbox.ExecResult, 1)
	go func() {
		r, _ := b.p.Exec(t.Context(), b.info.ID, sh("sleep 2"))
		done <- r
	}()
	time.Sleep(500 * time.Millisecond)
	// The code reads the value from its environment, so its own
	// command line does not hold it.
	inside := `import os, subprocess
v = os.environ['WARDEN_CT_SECRET']
hits = []
if os.path.isdir('/proc/self'):
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                with open('/proc/%s/cmdline' % p, 'rb') as f:
                    if v.encode() in f.read():
                        hits.append(p)
            except OSError:
                pass
else:
    ps = subprocess.run(['ps', '-axww', '-o', 'pid=,args='], stdout=subprocess.PIPE, universal_newlines=True).stdout
    hits = [l.split()[0] for l in ps.splitlines() if v in l]
hits`
	// The Python execution waits for the shell one: executions are serial.
	b.wantValue(t, inside, "[]")
	<-done
	if hits := hostCmdlinesWith(secret); len(hits) > 0 {
		t.Errorf("host processes %v have the variable's value on their command line", hits)
	}
	b.wantStdout(t, "echo \"$WARDEN_CT_SECRET2\"", secret+"-2\n")
}

// hostCmdlinesWith returns the host PIDs whose command line holds s.
func hostCmdlinesWith(s string) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil // no procfs: nothing to check here
	}
	var hits []string
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), s) {
			hits = append(hits, e.Name())
		}
	}
	return hits
}

func testMounts(t *testing.T, s *suite) {
	if !s.caps.Mounts {
		t.Skipf("%s: Capabilities().Mounts is false", s.p.Name())
	}
	ro, rw := hostDir(t), hostDir(t)
	// Permissions allow everyone to write the read-only mount: only the
	// mount may stop the sandbox.
	in := filepath.Join(ro, "in.txt")
	if err := os.WriteFile(in, []byte("read me"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(in, 0o666); err != nil {
		t.Fatal(err)
	}
	const rwTarget = "/data/warden-rw"
	b := s.create(t, func(sp *sandbox.Spec) {
		sp.Mounts = []sandbox.Mount{{Source: ro, ReadOnly: true}, {Source: rw, Target: rwTarget}}
	})
	// Read-only: readable at the host path (an empty target), not writable.
	b.wantStdout(t, "cat "+in, "read me")
	b.wantValue(t, "open("+pyRepr(in)+").read()", "'read me'")
	for _, cmd := range []string{"echo x >> " + in, "echo x > " + ro + "/new.txt", "rm " + in, "mkdir " + ro + "/d"} {
		if r := b.exec(t, sh(cmd)); r.ExitCode == 0 {
			t.Errorf("%q in a read-only mount succeeded", cmd)
		}
	}
	r := b.exec(t, py("open("+pyRepr(in)+", 'a').write('x')"))
	if r.Error == nil {
		t.Errorf("Python writing a read-only mount: no error")
	}
	if got, _ := os.ReadFile(in); string(got) != "read me" {
		t.Errorf("host file in the read-only mount is now %q", got)
	}
	if ents, _ := os.ReadDir(ro); len(ents) != 1 {
		t.Errorf("read-only mount holds %d entries, want only in.txt", len(ents))
	}

	// Read-write at another path: the host sees what the sandbox writes,
	// and the other way round.
	b.ok(t, sh("echo from-shell > "+rwTarget+"/sh.txt"))
	b.ok(t, py("open('"+rwTarget+"/py.txt', 'w').write('from-python')"))
	if got, err := os.ReadFile(filepath.Join(rw, "sh.txt")); err != nil || string(got) != "from-shell\n" {
		t.Errorf("host reads sh.txt = %q, %v", got, err)
	}
	if got, err := os.ReadFile(filepath.Join(rw, "py.txt")); err != nil || string(got) != "from-python" {
		t.Errorf("host reads py.txt = %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(rw, "host.txt"), []byte("from-host"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.wantStdout(t, "cat "+rwTarget+"/host.txt", "from-host")
	// The mount is not visible at its host path: the target moved it.
	if r := b.exec(t, sh("test -e "+rw+"/host.txt")); r.ExitCode == 0 {
		t.Errorf("the read-write mount is also visible at its host path %s", rw)
	}

	// Destroy leaves the mounted host directories and their files alone.
	if err := b.p.Destroy(t.Context(), b.info.ID); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{in, filepath.Join(rw, "sh.txt"), filepath.Join(rw, "host.txt")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("after Destroy: %v", err)
		}
	}
}

func testNetwork(t *testing.T, s *suite) {
	if !s.caps.NetworkToggle {
		t.Skipf("%s: Capabilities().NetworkToggle is false", s.p.Name())
	}
	const ifaces = "import os\nsorted(l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]) " +
		"if os.path.exists('/proc/net/dev') else 'no procfs'"
	off := s.create(t, nil)
	if off.value(t, ifaces) == "'no procfs'" {
		t.Skip("no /proc/net/dev in the sandbox to list its network interfaces")
	}
	off.wantValue(t, ifaces, "['lo']")
	on := s.create(t, func(sp *sandbox.Spec) { sp.Network = true })
	if v := on.value(t, ifaces); v == "['lo']" {
		t.Errorf("network enabled: interfaces %s, want more than lo", v)
	}
}

func testMemoryLimit(t *testing.T, s *suite) {
	if !s.caps.MemoryLimit {
		t.Skipf("%s: Capabilities().MemoryLimit is false", s.p.Name())
	}
	b := s.create(t, func(sp *sandbox.Spec) { sp.MemoryLimit = 128 << 20 })
	b.ok(t, py("x = 42"))
	time.Sleep(idleForSnapshot)
	r := b.exec(t, withTimeout(py("b = bytearray(400 * 1024 * 1024)\nprint('allocated')"), 30*time.Second))
	if !r.OOMKilled || r.ExitCode != 137 || strings.Contains(string(r.Stdout), "allocated") {
		t.Errorf("allocating past the limit = exit %d, oom %v, stdout %q; want 137 and OOMKilled", r.ExitCode, r.OOMKilled, r.Stdout)
	}
	b.wantValue(t, "x", "42")
	b.wantStdout(t, "echo alive", "alive\n")
}

// testPidsLimit: a fork bomb stops at the limit, and once its processes
// are gone the sandbox works again.
func testPidsLimit(t *testing.T, s *suite) {
	if !s.caps.PidsLimit {
		t.Skipf("%s: Capabilities().PidsLimit is false", s.p.Name())
	}
	const limit = 64
	b := s.create(t, func(sp *sandbox.Spec) { sp.PidsLimit = limit })
	bomb := `import os, time
n = 0
try:
    while n < 1000:
        if os.fork() == 0:
            time.sleep(1)
            os._exit(0)
        n += 1
except OSError:
    pass
for _ in range(n):
    os.wait()
n`
	v := b.value(t, bomb)
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n >= limit {
		t.Errorf("fork bomb under a pids limit of %d forked %s processes", limit, v)
	}
	b.wantStdout(t, "echo ok", "ok\n")
}
