package local

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// requirePython skips t unless a host python3 exists.
func requirePython(t *testing.T) {
	t.Helper()
	if isExecutable(systemPython) {
		return
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no host python3: the local provider runs the agent with it")
	}
}

// newProvider returns an enabled provider whose sandboxes live in a fresh
// temporary directory, closed when t ends.
func newProvider(t *testing.T) *Provider {
	t.Helper()
	requirePython(t)
	p, err := New(Options{Enabled: true, WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(t.Context()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

func create(t *testing.T, p *Provider, spec sandbox.Spec) sandbox.Info {
	t.Helper()
	info, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return info
}

func run(t *testing.T, p *Provider, id sandbox.ID, req sandbox.ExecRequest) sandbox.ExecResult {
	t.Helper()
	r, err := p.Exec(t.Context(), id, req)
	if err != nil {
		t.Fatalf("Exec(%q): %v", req.Code, err)
	}
	if r.Warning != Warning {
		t.Errorf("Exec(%q).Warning = %q, want %q", req.Code, r.Warning, Warning)
	}
	return r
}

func py(code string) sandbox.ExecRequest {
	return sandbox.ExecRequest{Language: sandbox.Python, Code: code}
}

func sh(cmd string) sandbox.ExecRequest {
	return sandbox.ExecRequest{Language: sandbox.Shell, Code: cmd}
}

// marked returns the PIDs of live (non-zombie) processes of sandbox id.
func marked(id sandbox.ID) []int {
	needle := "\x00" + MarkerEnv + "=" + string(id) + "\x00"
	return scanProc(func(env []byte) bool { return strings.Contains(string(env), needle) })
}

func TestDisabledByDefault(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	p, err := New(Options{WorkspaceRoot: root})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	_, err = p.Create(t.Context(), sandbox.Spec{})
	if !errors.Is(err, sandbox.ErrDisabled) || !strings.Contains(err.Error(), "SANDBOX__MOCK_MODE=true") {
		t.Fatalf("Create on a disabled provider = %v, want ErrDisabled naming SANDBOX__MOCK_MODE", err)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("disabled Create touched the workspace root: %v", err)
	}
	if p.Python() != "" || p.Enabled() {
		t.Errorf("disabled provider: Python() = %q, Enabled() = %v", p.Python(), p.Enabled())
	}
	caps := p.Capabilities()
	if caps != (sandbox.Capabilities{Isolation: sandbox.IsolationNone}) {
		t.Errorf("Capabilities() = %+v, want isolation none and nothing else", caps)
	}
}

func TestPythonPersistence(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	info := create(t, p, sandbox.Spec{})
	if r := run(t, p, info.ID, py("x = 42\nprint('hi')")); string(r.Stdout) != "hi\n" || r.ExitCode != 0 {
		t.Fatalf("first = %q exit %d", r.Stdout, r.ExitCode)
	}
	if r := run(t, p, info.ID, py("x + 1")); r.ReturnValue == nil || *r.ReturnValue != "43" {
		t.Fatalf("x + 1 = %v, want 43", r.ReturnValue)
	}
	r := run(t, p, info.ID, py("raise ValueError('boom')"))
	if r.Error == nil || r.Error.Name != "ValueError" || r.ExitCode != 1 {
		t.Fatalf("exception = %+v exit %d", r.Error, r.ExitCode)
	}
	// The interpreter is the resolved one, and the code runs in the
	// workspace, which is its real host path.
	r = run(t, p, info.ID, py("import os, sys; (sys.executable, os.getcwd())"))
	want := "('" + p.Python() + "', '" + info.Workspace + "')"
	if r.ReturnValue == nil || *r.ReturnValue != want {
		t.Errorf("executable, cwd = %v, want %s", r.ReturnValue, want)
	}
}

func TestShell(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	info := create(t, p, sandbox.Spec{WorkspacePath: "/workspace"})
	if info.Workspace == "/workspace" || info.Spec.WorkspacePath != info.Workspace || !filepath.IsAbs(info.Workspace) {
		t.Fatalf("workspace = %q, spec path %q: want the real host path in both", info.Workspace, info.Spec.WorkspacePath)
	}
	if info.WorkspaceUID != -1 || info.WorkspaceGID != -1 {
		t.Errorf("workspace owner = %d:%d, want -1:-1", info.WorkspaceUID, info.WorkspaceGID)
	}
	r := run(t, p, info.ID, sh(`echo "hello world" | wc -w; pwd; exit 3`))
	if string(r.Stdout) != "2\n"+info.Workspace+"\n" || r.ExitCode != 3 {
		t.Fatalf("shell = %q exit %d stderr %q", r.Stdout, r.ExitCode, r.Stderr)
	}
	if err := os.Mkdir(filepath.Join(info.Workspace, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	r = run(t, p, info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"pwd"}, Workdir: "sub"})
	if got := strings.TrimSpace(string(r.Stdout)); got != filepath.Join(info.Workspace, "sub") {
		t.Errorf("relative workdir: pwd = %q, want %s/sub", got, info.Workspace)
	}
	r = run(t, p, info.ID, sh("echo data > f.txt"))
	if b, err := os.ReadFile(filepath.Join(info.Workspace, "f.txt")); err != nil || string(b) != "data\n" {
		t.Errorf("file written by the code = %q, %v", b, err)
	}
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	info := create(t, p, sandbox.Spec{})
	start := time.Now()
	r := run(t, p, info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "sleep 300 & echo $! > bg.pid; sleep 300", Timeout: 500 * time.Millisecond})
	if !r.TimedOut || r.ExitCode != sandbox.TimeoutExitCode {
		t.Fatalf("timeout = %+v, stderr %q", r, r.Stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout took %s", d)
	}
	b, err := os.ReadFile(filepath.Join(info.Workspace, "bg.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitGone(t, pid)

	r = run(t, p, info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "y = 1\nwhile True: pass", Timeout: 300 * time.Millisecond})
	if !r.TimedOut || r.ExitCode != sandbox.TimeoutExitCode {
		t.Fatalf("python timeout = %+v", r)
	}
	if r := run(t, p, info.ID, py("print('still here')")); string(r.Stdout) != "still here\n" {
		t.Fatalf("after timeout = %q", r.Stdout)
	}
}

// waitGone waits until pid has exited (or is a zombie awaiting its reaper).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d still runs", pid)
}

func TestEnv(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	info := create(t, p, sandbox.Spec{Env: map[string]string{"FOO": "bar baz"}})
	if r := run(t, p, info.ID, sh(`echo "$FOO"`)); string(r.Stdout) != "bar baz\n" {
		t.Fatalf("shell $FOO = %q", r.Stdout)
	}
	if _, err := p.UpdateEnv(t.Context(), info.ID, sandbox.EnvUpdate{Set: map[string]string{"QUX": "1"}, Unset: []string{"FOO"}}); err != nil {
		t.Fatal(err)
	}
	r := run(t, p, info.ID, py("import os; (os.environ.get('FOO'), os.environ.get('QUX'))"))
	if r.ReturnValue == nil || *r.ReturnValue != "(None, '1')" {
		t.Fatalf("python env = %v", r.ReturnValue)
	}
	env, err := p.Env(t.Context(), info.ID)
	if err != nil || len(env) != 1 || env["QUX"] != "1" {
		t.Fatalf("Env = %v, %v", env, err)
	}
	// The markers cannot be overridden: that would hide the sandbox's
	// processes from Destroy.
	for _, k := range []string{MarkerEnv, OwnerEnv} {
		if _, err := p.UpdateEnv(t.Context(), info.ID, sandbox.EnvUpdate{Set: map[string]string{k: "x"}}); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("UpdateEnv(%s) = %v, want ErrInvalid", k, err)
		}
		if _, err := p.Create(t.Context(), sandbox.Spec{Env: map[string]string{k: "x"}}); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Create with env %s = %v, want ErrInvalid", k, err)
		}
	}
	// HOME and TMPDIR are private to the sandbox, outside the workspace.
	r = run(t, p, info.ID, py("import os, tempfile; (os.environ['HOME'], tempfile.gettempdir(), os.environ['WARDEN_WORKSPACE'])"))
	dir := filepath.Dir(info.Workspace)
	want := "('" + filepath.Join(dir, "home") + "', '" + filepath.Join(dir, "tmp") + "', '" + info.Workspace + "')"
	if r.ReturnValue == nil || *r.ReturnValue != want {
		t.Errorf("HOME, TMPDIR, WARDEN_WORKSPACE = %v, want %s", r.ReturnValue, want)
	}
}

// TestHostEnvNotVisible is not parallel: it sets a variable in this
// process's environment.
func TestHostEnvNotVisible(t *testing.T) {
	t.Setenv("WARDEN_TEST_HOST_SECRET", "s3cret")
	p := newProvider(t)
	info := create(t, p, sandbox.Spec{Env: map[string]string{"MINE": "1"}})
	r := run(t, p, info.ID, py("import os; sorted(os.environ)"))
	want := []string{"HOME", "LANG", "LC_ALL", "MINE", "MPLBACKEND", "PATH", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "TERM", "TMPDIR", "WARDEN_LOCAL_OWNER", "WARDEN_LOCAL_SANDBOX", "WARDEN_WORKSPACE"}
	var got []string
	for _, f := range strings.Split(strings.Trim(*r.ReturnValue, "[]"), ", ") {
		got = append(got, strings.Trim(f, "'"))
	}
	if !slices.Equal(got, want) {
		t.Errorf("python environment = %v\nwant exactly %v", got, want)
	}
	r = run(t, p, info.ID, sh("env; cat /proc/$$/environ | tr '\\0' '\\n'"))
	if strings.Contains(string(r.Stdout), "s3cret") || strings.Contains(string(r.Stdout), "WARDEN_TEST_HOST_SECRET") {
		t.Errorf("the host environment reached the sandbox:\n%s", r.Stdout)
	}
}

func TestDestroyLeavesNoProcess(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	info := create(t, p, sandbox.Spec{})
	// Processes that escape the agent's process groups and sessions: a
	// daemonised shell child, a nohup'd one, and one from Python in a
	// session of its own.
	run(t, p, info.ID, sh("setsid sleep 301 >/dev/null 2>&1 </dev/null & nohup sleep 302 >/dev/null 2>&1 &"))
	run(t, p, info.ID, py("import subprocess; subprocess.Popen(['sleep', '303'], start_new_session=True)"))
	if n := len(marked(info.ID)); n < 4 { // agent, worker, 3 sleeps (+ snapshot)
		t.Fatalf("found %d processes of the sandbox before Destroy, want at least 4", n)
	}
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if pids := marked(info.ID); len(pids) != 0 {
		t.Fatalf("processes %v outlived Destroy", pids)
	}
	if _, err := os.Stat(filepath.Dir(info.Workspace)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sandbox directory after Destroy: %v", err)
	}
	if _, err := p.Exec(t.Context(), info.ID, py("1")); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("Exec after Destroy = %v, want ErrNotFound", err)
	}
}

func TestWorkspaceDirKept(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	ws := t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	info := create(t, p, sandbox.Spec{WorkspaceDir: ws})
	if info.Workspace != ws {
		t.Fatalf("workspace = %q, want %q", info.Workspace, ws)
	}
	run(t, p, info.ID, sh("cat keep.txt > copy.txt; ls -a"))
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(ws)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"copy.txt", "keep.txt"}) {
		t.Errorf("workspace_dir after Destroy holds %v, want only the file and the code's copy", names)
	}
}

func TestAgentKilledRecovers(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	info := create(t, p, sandbox.Spec{})
	r := run(t, p, info.ID, sandbox.ExecRequest{Language: sandbox.Python, Timeout: 10 * time.Second,
		Code: "import os, signal, time\nos.kill(os.getppid(), signal.SIGKILL)\ntime.sleep(5)"})
	if r.ExitCode != 137 || r.Error == nil {
		t.Fatalf("agent killed = %+v", r)
	}
	r = run(t, p, info.ID, py("print('back')"))
	if string(r.Stdout) != "back\n" || len(r.Notes) == 0 {
		t.Fatalf("after agent death = %q notes %v", r.Stdout, r.Notes)
	}
}

func TestUnknownID(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	const id = sandbox.ID("sb-0000000000000000")
	if r, err := p.Exec(t.Context(), id, py("1")); !errors.Is(err, sandbox.ErrNotFound) || r.Warning != Warning {
		t.Errorf("Exec(unknown) = %+v, %v; want ErrNotFound with the warning", r, err)
	}
	if err := p.Destroy(t.Context(), id); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("Destroy(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := p.Env(t.Context(), id); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("Env(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := p.UpdateEnv(t.Context(), id, sandbox.EnvUpdate{}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("UpdateEnv(unknown) = %v, want ErrNotFound", err)
	}
	if err := p.Destroy(t.Context(), "../etc"); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Destroy(../etc) = %v, want ErrInvalid", err)
	}
}

func TestMounts(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	src := t.TempDir()
	_, err := p.Create(t.Context(), sandbox.Spec{Mounts: []sandbox.Mount{{Source: src, Target: "/data"}}})
	if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), "cannot remap") {
		t.Errorf("Create with a remapped mount = %v, want ErrInvalid", err)
	}
	// The same path is visible anyway: accepted.
	info := create(t, p, sandbox.Spec{Mounts: []sandbox.Mount{{Source: src, ReadOnly: true}}})
	if r := run(t, p, info.ID, sh("ls -d "+src)); r.ExitCode != 0 {
		t.Errorf("mount source not visible: %q", r.Stderr)
	}
}

func TestOrphansRemoved(t *testing.T) {
	t.Parallel()
	requirePython(t)
	root := t.TempDir()
	// A sandbox of a Warden process that died: a process carrying its
	// owner marker and a private directory naming it.
	const dead = "nohost-never/1/1"
	host, _ := os.Hostname()
	deadHere := host + "/999999999/1"
	dir := filepath.Join(root, dirPrefix+"sb-dead")
	if err := os.MkdirAll(filepath.Join(dir, "workspace"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(deadHere), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(root, dirPrefix+"sb-other")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, ownerFile), []byte(dead), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "300")
	cmd.Env = []string{OwnerEnv + "=" + deadHere}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })

	p, err := New(Options{Enabled: true, WorkspaceRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the orphaned process survived New")
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphaned directory after New: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("the directory of another host's Warden was removed: %v", err)
	}
	_ = p.Close(t.Context())
}

func TestCreateFailureCleansUp(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	// An "interpreter" that cannot run the agent: sh reads the Python
	// source as a script and complains on stderr.
	p.python = "/bin/sh"
	_, err := p.Create(t.Context(), sandbox.Spec{})
	if err == nil || !strings.Contains(err.Error(), "no hello") {
		t.Fatalf("Create with a broken interpreter = %v, want a failed agent start", err)
	}
	if !strings.Contains(err.Error(), "/bin/sh") {
		t.Errorf("error %q does not show the agent's stderr or interpreter", err)
	}
	ents, err := os.ReadDir(p.opts.WorkspaceRoot)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Errorf("a failed Create left %v behind", ents)
	}
	if len(p.List()) != 0 {
		t.Errorf("a failed Create registered a sandbox: %v", p.List())
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Create(ctx, sandbox.Spec{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Create(cancelled) = %v, want context.Canceled", err)
	}
}

func TestDestroyDuringExec(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	info := create(t, p, sandbox.Spec{})
	done := make(chan error, 1)
	go func() {
		r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "sleep 60", Timeout: time.Minute})
		if r.Warning != Warning {
			err = errors.Join(err, errors.New("result without the warning"))
		}
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("Exec interrupted by Destroy = %v, want ErrNotFound", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec still running after Destroy")
	}
	if pids := marked(info.ID); len(pids) != 0 {
		t.Errorf("processes %v outlived Destroy", pids)
	}
}
