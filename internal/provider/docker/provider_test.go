package docker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

var (
	sharedOnce sync.Once
	shared     *Provider
	sharedErr  error
)

// provider returns one Provider for the whole test binary. TestMain
// closes it, which removes every container it created.
func provider(t *testing.T) *Provider {
	t.Helper()
	testutil.RequireDocker(t)
	sharedOnce.Do(func() {
		shared, sharedErr = New(context.Background(), Options{WorkspaceRoot: filepath.Join(os.TempDir(), "warden-test")})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

func TestMain(m *testing.M) {
	code := m.Run()
	if gvisor != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := gvisor.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "closing the gVisor provider:", err)
			code = 1
		}
		cancel()
	}
	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := shared.Close(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "closing provider:", err)
			code = 1
		}
		// Nothing this test binary created may outlive it.
		if cli, err := client.New(client.FromEnv); err == nil {
			list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
				Filters: make(client.Filters).Add("label", LabelOwner+"="+owner.ID())})
			if err == nil && len(list.Items) > 0 {
				fmt.Fprintf(os.Stderr, "%d containers outlived the tests\n", len(list.Items))
				code = 1
			}
			cli.Close()
		}
		cancel()
	}
	os.Exit(code)
}

func create(t *testing.T, spec sandbox.Spec) (*Provider, sandbox.ID) {
	t.Helper()
	p := provider(t)
	if spec.Image == "" {
		spec.Image = testutil.Image()
	}
	info, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Destroy(context.Background(), info.ID); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("Destroy: %v", err)
		}
	})
	return p, info.ID
}

func run(t *testing.T, p *Provider, id sandbox.ID, lang sandbox.Language, code string, timeout time.Duration) sandbox.ExecResult {
	t.Helper()
	r, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: lang, Code: code, Timeout: timeout})
	if err != nil {
		t.Fatalf("Exec(%q): %v", code, err)
	}
	return r
}

func TestPythonSession(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{})
	r := run(t, p, id, sandbox.Python, "x = 42\nprint('Hello from Docker!')", 0)
	if string(r.Stdout) != "Hello from Docker!\n" || r.ExitCode != 0 {
		t.Fatalf("hello = %q exit %d err %+v", r.Stdout, r.ExitCode, r.Error)
	}
	r = run(t, p, id, sandbox.Python, "print(f'x is still {x}')\nx", 0)
	if string(r.Stdout) != "x is still 42\n" || r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Fatalf("persistence = %q %v", r.Stdout, r.ReturnValue)
	}
	r = run(t, p, id, sandbox.Python, "def f():\n    raise ValueError('Test error')\nf()", 0)
	if r.Error == nil || r.Error.Name != "ValueError" || r.Error.Line != 2 || !strings.Contains(r.ErrorTraceback(), "ValueError: Test error") {
		t.Fatalf("traceback = %+v", r.Error)
	}
	r = run(t, p, id, sandbox.Python, "if True print(1)", 0)
	if r.Error == nil || r.Error.Name != "SyntaxError" || r.Error.Line != 1 || r.ExitCode != 1 {
		t.Fatalf("syntax error = %+v", r.Error)
	}
	r = run(t, p, id, sandbox.Python, "import numpy, pandas, matplotlib, requests, cloudpickle\nimport os; os.system('echo child')\nnumpy.arange(3).sum()", 0)
	if r.ReturnValue == nil || !strings.HasSuffix(*r.ReturnValue, "3") || string(r.Stdout) != "child\n" {
		t.Fatalf("libraries = %v %q %+v", r.ReturnValue, r.Stdout, r.Error)
	}
}

func TestTimeoutThenRecoveryKeepsState(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{})
	run(t, p, id, sandbox.Python, "x = 42", 0)
	r := run(t, p, id, sandbox.Python, "import time\ntime.sleep(30)", time.Second)
	if !r.TimedOut || r.ExitCode != sandbox.TimeoutExitCode || !strings.Contains(r.ErrorTraceback(), "timed out after 1 seconds") {
		t.Fatalf("timeout = %+v", r)
	}
	if r := run(t, p, id, sandbox.Python, "x", 0); *r.ReturnValue != "42" {
		t.Fatalf("after interrupt: %v", r.ReturnValue)
	}
	// Uninterruptible code is killed; the variables from before survive.
	if err := p.Checkpoint(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	r = run(t, p, id, sandbox.Python, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nx = 0\nwhile True: pass", time.Second)
	if !r.TimedOut {
		t.Fatalf("kill timeout = %+v", r)
	}
	if r := run(t, p, id, sandbox.Python, "x", 0); r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Fatalf("after kill: %v %v", r.ReturnValue, r.Notes)
	}
	// A shell timeout kills the whole process group.
	r = run(t, p, id, sandbox.Shell, "sleep 60 & sleep 60", time.Second)
	if r.ExitCode != 124 || !strings.Contains(string(r.Stderr), "Command timed out after 1 seconds") {
		t.Fatalf("shell timeout = %+v %q", r, r.Stderr)
	}
	if r := run(t, p, id, sandbox.Python, procCount("comm == 'sleep'"), 0); r.ReturnValue == nil || *r.ReturnValue != "1" {
		t.Fatalf("sleeps left after shell timeout (want only the container's own): %v %+v", r.ReturnValue, r.Error)
	}
}

func TestMemoryLimitKill(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{MemoryLimit: 128 << 20})
	run(t, p, id, sandbox.Python, "x = 42", 0)
	if err := p.Checkpoint(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	r := run(t, p, id, sandbox.Python, "b = bytearray(400 * 1024 * 1024)\nprint('allocated')", 30*time.Second)
	if !r.OOMKilled || r.ExitCode != 137 || strings.Contains(string(r.Stdout), "allocated") {
		t.Fatalf("allocation past the limit = %+v stdout %q", r, r.Stdout)
	}
	if r := run(t, p, id, sandbox.Python, "x", 0); r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Fatalf("after OOM: %v %v", r.ReturnValue, r.Notes)
	}
	r = run(t, p, id, sandbox.Shell, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory.max 2>/dev/null", 0)
	if !strings.Contains(string(r.Stdout), "134217728") {
		t.Fatalf("memory limit = %q", r.Stdout)
	}
}

func TestForkBombContained(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{PidsLimit: 64})
	r := run(t, p, id, sandbox.Python, `
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print("stopped after", n, "forks:", e.strerror)
`, 20*time.Second)
	if !strings.Contains(string(r.Stdout), "stopped after") || !strings.Contains(string(r.Stdout), "Resource temporarily unavailable") {
		t.Fatalf("fork bomb = %q %+v", r.Stdout, r.Error)
	}
	// The sandbox recovers once the bomb's processes are gone.
	run(t, p, id, sandbox.Python, "import os, signal\nfor pid in os.listdir('/proc'):\n    if pid.isdigit() and int(pid) not in (os.getpid(), os.getppid()):\n        try: os.kill(int(pid), signal.SIGKILL)\n        except OSError: pass", 0)
	if r := run(t, p, id, sandbox.Python, "print('alive')", 0); string(r.Stdout) != "alive\n" {
		t.Fatalf("after fork bomb = %q %+v %v", r.Stdout, r.Error, r.Notes)
	}
}

func TestHardening(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{CPULimit: 0.5, PidsLimit: 100})
	checks := []struct {
		name, cmd, want string
	}{
		{"uid", "id -u; id -g", "1000\n1000\n"},
		{"no capabilities", "grep CapEff /proc/self/status", "CapEff:\t0000000000000000\n"},
		{"no new privileges", "grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t1\n"},
		{"seccomp filter", "grep '^Seccomp:' /proc/self/status", "Seccomp:\t2\n"},
		{"read-only root", "touch /etc/x 2>&1; touch /usr/x 2>&1 | grep -c 'Read-only'", "touch: cannot touch '/etc/x': Read-only file system\n1\n"},
		{"writable tmp", "echo hi > /tmp/t && cat /tmp/t && grep ' /tmp ' /proc/mounts | cut -d' ' -f3", "hi\ntmpfs\n"},
		{"writable workspace", "pwd; echo data > w.txt && cat w.txt", "/workspace\ndata\n"},
		{"no network", "ls /sys/class/net", "lo\n"},
		{"pids limit", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null", "100\n"},
		{"cpu limit", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu.max 2>/dev/null | head -c 5", "50000"},
		{"init is pid 1", "cat /proc/1/comm", "docker-init\n"},
	}
	for _, c := range checks {
		r := run(t, p, id, sandbox.Shell, c.cmd, 0)
		if string(r.Stdout) != c.want {
			t.Errorf("%s: %q = %q (stderr %q), want %q", c.name, c.cmd, r.Stdout, r.Stderr, c.want)
		}
	}
	r := run(t, p, id, sandbox.Python, "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n    print('connected')\nexcept OSError as e:\n    print('blocked', e.errno)", 0)
	if !strings.HasPrefix(string(r.Stdout), "blocked") {
		t.Errorf("network reachable by default: %q", r.Stdout)
	}
	// Zombies are reaped: an orphaned child that exits does not linger.
	run(t, p, id, sandbox.Shell, "sh -c 'sleep 0.2 & exit 0'; sleep 1", 0)
	if r := run(t, p, id, sandbox.Python, procCount("state == 'Z'"), 0); r.ReturnValue == nil || *r.ReturnValue != "0" {
		t.Errorf("zombies: %s %+v", deref(r.ReturnValue), r.Error)
	}
	if r := run(t, p, id, sandbox.Python, procCount("True"), 0); r.ReturnValue == nil || *r.ReturnValue == "0" {
		t.Errorf("process count sanity check: %v", r.ReturnValue)
	}
	info, err := p.Info(id)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := p.cli.ContainerInspect(t.Context(), info.Name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l := ins.Container.Config.Labels; l[LabelManaged] != "1" || l[LabelSandbox] != string(id) || l[LabelOwner] != p.owner {
		t.Errorf("labels = %v", l)
	}
	if len(ins.Container.Config.Env) > 0 {
		for _, e := range ins.Container.Config.Env {
			if strings.HasPrefix(e, "SECRET") {
				t.Errorf("env leaked into container config: %v", ins.Container.Config.Env)
			}
		}
	}
}

func TestVolumeMountPath(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{WorkspacePath: "/home/agent/project"})
	if r := run(t, p, id, sandbox.Shell, "pwd; echo x > f && cat f", 0); string(r.Stdout) != "/home/agent/project\nx\n" {
		t.Fatalf("shell in custom workspace = %q %q", r.Stdout, r.Stderr)
	}
	if r := run(t, p, id, sandbox.Python, "import os; os.getcwd()", 0); r.ReturnValue == nil || *r.ReturnValue != "'/home/agent/project'" {
		t.Fatalf("python cwd = %s", deref(r.ReturnValue))
	}
}

func TestNetworkEnabled(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{Network: true})
	r := run(t, p, id, sandbox.Shell, "ls /sys/class/net | sort | tr '\\n' ' '", 0)
	if !strings.Contains(string(r.Stdout), "eth0") {
		t.Fatalf("enable_network: interfaces %q", r.Stdout)
	}
}

func TestMountsAndEnv(t *testing.T) {
	t.Parallel()
	ro, rw, ws := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "data.txt"), []byte("readable"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{rw, ws} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	p, id := create(t, sandbox.Spec{
		WorkspaceDir: ws,
		Mounts: []sandbox.Mount{
			{Source: ro, ReadOnly: true},
			{Source: rw, Target: "/data/out"},
		},
		Env: map[string]string{"SECRET_TOKEN": "s3cret value", "DEBUG": "true"},
	})
	r := run(t, p, id, sandbox.Shell, fmt.Sprintf("cat %s/data.txt; touch %s/x 2>&1 | grep -c Read-only; echo out > /data/out/o.txt; echo ws > /workspace/w.txt", ro, ro), 0)
	if string(r.Stdout) != "readable1\n" {
		t.Fatalf("mounts = %q %q", r.Stdout, r.Stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(rw, "o.txt")); string(b) != "out\n" {
		t.Fatalf("rw mount write not visible on host: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "w.txt")); string(b) != "ws\n" {
		t.Fatalf("workspace write not visible on host: %q", b)
	}
	r = run(t, p, id, sandbox.Shell, `echo "$SECRET_TOKEN|$DEBUG"`, 0)
	if string(r.Stdout) != "s3cret value|true\n" {
		t.Fatalf("env = %q", r.Stdout)
	}
	env, err := p.UpdateEnv(t.Context(), id, sandbox.EnvUpdate{Set: map[string]string{"NEW_VAR": "new"}, Unset: []string{"DEBUG", "MISSING"}})
	if err != nil || len(env) != 2 || env["NEW_VAR"] != "new" {
		t.Fatalf("UpdateEnv = %v, %v", env, err)
	}
	env["MUTATE"] = "x" // a copy: must not affect the sandbox
	r = run(t, p, id, sandbox.Python, "import os\nsorted(k for k in ('SECRET_TOKEN', 'DEBUG', 'NEW_VAR', 'MUTATE') if k in os.environ)", 0)
	if *r.ReturnValue != "['NEW_VAR', 'SECRET_TOKEN']" {
		t.Fatalf("python env = %s", *r.ReturnValue)
	}
	if _, err := p.UpdateEnv(t.Context(), id, sandbox.EnvUpdate{Replace: true, Set: map[string]string{"ONLY": "1"}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := p.Env(t.Context(), id); len(got) != 1 || got["ONLY"] != "1" {
		t.Fatalf("Env after replace = %v", got)
	}
	if _, err := p.UpdateEnv(t.Context(), id, sandbox.EnvUpdate{Set: map[string]string{"BAD-NAME": "1"}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Fatalf("bad env name: %v", err)
	}
}

func TestOutputFloodAndProtocolAbuse(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{OutputLimit: 64 << 10})
	r := run(t, p, id, sandbox.Python, "while True: print('flood' * 1000)", 3*time.Second)
	if len(r.Stdout) != 64<<10 || !r.StdoutTruncated || !r.TimedOut {
		t.Fatalf("flood: %d bytes, truncated %v, timed out %v", len(r.Stdout), r.StdoutTruncated, r.TimedOut)
	}
	run(t, p, id, sandbox.Python, "x = 42", 0)
	abuse := []string{
		"import sys\nsys.stdout.buffer.write(b'r\\x00\\x00\\x00\\x02{}' * 100)",
		"import os\nos.write(1, bytes(range(256)) * 64)",
		"import os\nos.close(1)\nos.close(2)",
		"import os\nfor fd in map(int, os.listdir('/proc/self/fd')):\n    try: os.write(fd, b'\\xff' * 64)\n    except OSError: pass",
	}
	for _, code := range abuse {
		if err := p.Checkpoint(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		abused, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Python, Code: code, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatalf("Exec(%q): %v", code, err)
		}
		r := run(t, p, id, sandbox.Python, "print('ok')\nx", 0)
		if string(r.Stdout) != "ok\n" || r.ReturnValue == nil || *r.ReturnValue != "42" {
			t.Fatalf("after %q (exit %d, error %+v, notes %q): %q %v %v %+v exit %d", code,
				abused.ExitCode, abused.Error, abused.Notes, r.Stdout, r.ReturnValue, r.Notes, r.Error, r.ExitCode)
		}
	}
	// Killing the agent itself: the host resets the sandbox and goes on.
	r = run(t, p, id, sandbox.Python, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", 10*time.Second)
	if r.ExitCode != 137 {
		t.Fatalf("agent kill = %+v", r)
	}
	if r := run(t, p, id, sandbox.Python, "print('back')", 0); string(r.Stdout) != "back\n" || len(r.Notes) == 0 {
		t.Fatalf("after agent kill = %q %v", r.Stdout, r.Notes)
	}
}

func TestShell(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{})
	r := run(t, p, id, sandbox.Shell, `echo "hello world" | wc -w && mkdir -p sub && cd sub && echo 'a|b;c' > f && cat f; exit 7`, 0)
	if string(r.Stdout) != "2\na|b;c\n" || r.ExitCode != 7 {
		t.Fatalf("shell = %q exit %d", r.Stdout, r.ExitCode)
	}
	r, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"cat", "f"}, Workdir: "sub"})
	if err != nil || string(r.Stdout) != "a|b;c\n" {
		t.Fatalf("argv + workdir = %q %v", r.Stdout, err)
	}
	r = run(t, p, id, sandbox.Shell, "ls /nonexistent", 0)
	if r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "No such file or directory") {
		t.Fatalf("ls = %+v %q", r, r.Stderr)
	}
	r, err = p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"no-such-command"}})
	if err != nil || r.ExitCode != 127 {
		t.Fatalf("missing command = %+v %v", r, err)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	p := provider(t)
	info, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.cli.ContainerInspect(t.Context(), info.Name, client.ContainerInspectOptions{}); err == nil {
		t.Fatal("container still exists after Destroy")
	}
	if _, err := os.Stat(info.Workspace); !os.IsNotExist(err) {
		t.Fatalf("workspace still exists after Destroy: %v", err)
	}
	for _, id := range []sandbox.ID{info.ID, "sb-unknown", "../etc"} {
		if err := p.Destroy(t.Context(), id); !errors.Is(err, sandbox.ErrNotFound) && !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Destroy(%s) = %v, want not found", id, err)
		}
		if _, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}); !errors.Is(err, sandbox.ErrNotFound) && !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Exec(%s) = %v, want not found", id, err)
		}
	}
	if _, err := p.Create(t.Context(), sandbox.Spec{Image: "warden-no-such-image:latest"}); !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), "warden image build") {
		t.Errorf("missing image = %v", err)
	}
	if _, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image(), Mounts: []sandbox.Mount{{Source: "/nonexistent-dir"}}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("missing mount source = %v", err)
	}
	if _, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image(), Mounts: []sandbox.Mount{{Source: t.TempDir(), Target: "/etc"}}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("mount over /etc = %v", err)
	}
}

func TestRemoveOrphans(t *testing.T) {
	t.Parallel()
	p := provider(t)
	// A container whose owner is a dead process of this host, as a crashed
	// Warden leaves behind, and one owned by a live process (us).
	host, _ := os.Hostname()
	dead := fmt.Sprintf("%s/%d/%d", host, 999999, 12345)
	b := &box{Info: sandbox.Info{ID: sandbox.NewID()}}
	spec := sandbox.Spec{Image: testutil.Image()}.WithDefaults()
	cfg, hcfg := p.containerConfig(b, spec, t.TempDir())
	cfg.Labels[LabelOwner] = dead
	c, err := p.cli.ContainerCreate(t.Context(), client.ContainerCreateOptions{Config: cfg, HostConfig: hcfg})
	if err != nil {
		t.Fatal(err)
	}
	_, live := create(t, sandbox.Spec{})
	// Another Warden process (a parallel test binary) may remove the orphan
	// first, which is right too: what matters is that it is gone.
	if _, err := p.RemoveOrphans(t.Context()); err != nil {
		t.Fatalf("RemoveOrphans: %v", err)
	}
	if _, err := p.cli.ContainerInspect(t.Context(), c.ID, client.ContainerInspectOptions{}); err == nil {
		t.Fatal("orphan survived")
	}
	if _, err := p.Exec(t.Context(), live, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}); err != nil {
		t.Fatalf("live sandbox was removed: %v", err)
	}
}

// procCount is Python code counting the sandbox's processes for which cond
// holds, with comm and state bound; it needs no tools in the image.
func procCount(cond string) string {
	return `import os
n = 0
for pid in os.listdir('/proc'):
    if not pid.isdigit():
        continue
    try:
        stat = open('/proc/%s/stat' % pid).read()
    except OSError:
        continue
    comm = stat[stat.index('(') + 1:stat.rindex(')')]
    state = stat[stat.rindex(')') + 2]
    if ` + cond + `:
        n += 1
n`
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestOwnerAlive(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	for owner, want := range map[string]bool{
		owner.ID(): true,
		fmt.Sprintf("%s/%d/%d", host, os.Getpid(), owner.StartTime(os.Getpid())+1): false, // pid reused by another process
		fmt.Sprintf("%s/%d/%d", host, 999999, 12345):                               false, // no such process
		"other-host/1/1": true, // cannot tell: leave it alone
		"garbage":        false,
		"":               false,
	} {
		if got := ownerAlive(owner); got != want {
			t.Errorf("ownerAlive(%q) = %v, want %v", owner, got, want)
		}
	}
}

// TestStartRetried: a container whose first process runc failed to
// create is started again, up to startAttempts times; other failures are
// not retried, and a container that never started is removed. The
// engine's own failure is too rare to wait for, so the first starts fail
// here with its words, and the rest go to the real engine.
func TestStartRetried(t *testing.T) {
	t.Parallel()
	testutil.RequireDocker(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: filepath.Join(os.TempDir(), "warden-test"), KeepOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	real := p.start
	const runcFlake = `failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: exec: "/sbin/docker-init": stat /sbin/docker-init: permission denied: unknown`
	var mu sync.Mutex
	var attempts, all []string
	failing := func(n int, msg string) {
		mu.Lock()
		defer mu.Unlock()
		attempts = nil
		p.start = func(ctx context.Context, id string) error {
			mu.Lock()
			attempts = append(attempts, id)
			all = append(all, id)
			k := len(attempts)
			mu.Unlock()
			if k <= n {
				return errors.New(msg)
			}
			return real(ctx, id)
		}
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(attempts) }

	failing(startAttempts-1, runcFlake)
	info, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()})
	if err != nil {
		t.Fatalf("Create after %d failed starts: %v", startAttempts-1, err)
	}
	if r := run(t, p, info.ID, sandbox.Python, "print(6 * 7)", 0); string(r.Stdout) != "42\n" {
		t.Errorf("after a retried start: %+v", r)
	}
	if n := count(); n != startAttempts {
		t.Errorf("%d starts, want %d", n, startAttempts)
	}
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}

	failing(startAttempts, runcFlake)
	if _, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()}); err == nil || !strings.Contains(err.Error(), "OCI runtime create failed") {
		t.Errorf("Create when every start fails = %v", err)
	}
	if n := count(); n != startAttempts {
		t.Errorf("%d starts, want %d", n, startAttempts)
	}
	failing(1, "driver failed programming external connectivity")
	if _, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()}); err == nil {
		t.Error("Create with another start failure = nil")
	}
	if n := count(); n != 1 {
		t.Errorf("another failure was tried %d times, want once", n)
	}
	// The containers that never started are gone (the first one, started
	// and destroyed, too).
	mu.Lock()
	ids := append([]string(nil), all...)
	mu.Unlock()
	for _, id := range ids {
		if _, err := p.cli.ContainerInspect(t.Context(), id, client.ContainerInspectOptions{}); err == nil {
			t.Errorf("container %s outlived its failed Create", id)
		}
	}
}

// TestMountBelowRoot: a directory mounted below /root, which images keep
// for root alone, is within the sandbox user's reach.
func TestMountBelowRoot(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data.txt"), []byte("readable"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, id := create(t, sandbox.Spec{Mounts: []sandbox.Mount{{Source: dir, Target: "/root/project/data", ReadOnly: true}}})
	r := run(t, p, id, sandbox.Shell, "cat /root/project/data/data.txt; stat -c %a /root", 0)
	if string(r.Stdout) != "readable755\n" {
		t.Fatalf("reading below /root = %q %q, want the file and a /root of mode 755", r.Stdout, r.Stderr)
	}
	// Without such a mount, /root is the image's.
	p2, id2 := create(t, sandbox.Spec{})
	if r := run(t, p2, id2, sandbox.Shell, "stat -c %a /root", 0); string(r.Stdout) != "700\n" {
		t.Errorf("/root of a sandbox without mounts below it: mode %q", r.Stdout)
	}
}
