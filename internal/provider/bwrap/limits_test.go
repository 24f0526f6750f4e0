//go:build linux

package bwrap

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/pool"
	"github.com/warden-sandbox/warden/internal/quota"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// limitsPath is one way of enforcing limits, and the options selecting it.
type limitsPath struct {
	name string
	opts func(t *testing.T) Options
}

func limitPaths() []limitsPath {
	return []limitsPath{
		{"cgroup", func(t *testing.T) Options {
			testutil.RequireRoot(t)
			return Options{WorkspaceRoot: testutil.SharedDir(t)}
		}},
		{"rlimit", rlimitOptions},
	}
}

// rlimitOptions force the rlimit path. As root, the sandbox runs as
// nobody so that RLIMIT_NPROC binds; nobody then needs to reach the shim
// and the workspace root.
func rlimitOptions(t *testing.T) Options {
	opts := Options{WorkspaceRoot: testutil.SharedDir(t), ForceRlimits: true}
	if os.Geteuid() != 0 {
		return opts
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir, filepath.Dir(opts.WorkspaceRoot), opts.WorkspaceRoot} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	opts.Init = filepath.Join(dir, "init")
	copyFile(t, exe, opts.Init)
	opts.RunAs = &RunAs{UID: 65534, GID: 65534}
	return opts
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// hostProcs counts host processes whose command line is exactly argv.
func hostProcs(argv ...string) int {
	want := []byte(strings.Join(argv, "\x00") + "\x00")
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Equal(b, want) {
			n++
		}
	}
	return n
}

const forkBomb = `import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        n += 1
except OSError as e:
    print('stopped', n)`

// recoverCell kills and reaps everything in the sandbox but the agent and
// the worker running it, as a user would after a fork bomb.
const recoverCell = `import os, signal, time
for pid in os.listdir('/proc'):
    if pid.isdigit() and int(pid) not in (1, os.getpid(), os.getppid()):
        try: os.kill(int(pid), signal.SIGKILL)
        except OSError: pass
time.sleep(0.2)
while True:
    try:
        if os.waitpid(-1, os.WNOHANG)[0] == 0: break
    except ChildProcessError: break`

// TestLimits hits each limit on both enforcement paths: memory, processes,
// /tmp's size, and the timeout killing the execution's whole process tree.
// The CPU limit has tests of its own.
func TestLimits(t *testing.T) {
	t.Parallel()
	for i, lp := range limitPaths() {
		t.Run(lp.name, func(t *testing.T) {
			t.Parallel()
			opts := lp.opts(t)
			p, id := newBoxWith(t, opts, sandbox.Spec{MemoryLimit: 128 << 20, PidsLimit: 32, TmpSize: 16 << 20})
			caps, enf := p.Capabilities(), p.Enforcement()
			switch lp.name {
			case "cgroup":
				if enf.Limits != LimitsCgroupV1 && enf.Limits != LimitsCgroupV2 {
					t.Skipf("no cgroups here: %s", enf.Note)
				}
				if !caps.MemoryLimit || !caps.CPULimit || !caps.PidsLimit {
					t.Errorf("capabilities with cgroups = %+v", caps)
				}
			case "rlimit":
				if enf.Limits != LimitsRlimit || !caps.MemoryLimit || caps.CPULimit || !caps.PidsLimit {
					t.Fatalf("rlimit path: enforcement %+v, capabilities %+v", enf, caps)
				}
			}
			run(t, p, id, sandbox.Python, "x = 1", 0)
			if err := p.Checkpoint(t.Context(), id); err != nil {
				t.Fatal(err)
			}

			// Memory: with cgroups the kernel OOM-kills the execution and the
			// session goes on from its snapshot, as with Docker; with rlimits
			// the allocation fails and Python raises MemoryError.
			r := run(t, p, id, sandbox.Python, "b = bytearray(400 * 1024 * 1024)", 30*time.Second)
			switch lp.name {
			case "cgroup":
				if r.ExitCode != 137 || !r.OOMKilled || r.Error == nil || r.Error.Name != "MemoryError" {
					t.Errorf("allocation past the limit = exit %d oom %v %+v", r.ExitCode, r.OOMKilled, r.Error)
				}
			case "rlimit":
				if r.ExitCode != 1 || r.Error == nil || r.Error.Name != "MemoryError" {
					t.Errorf("allocation past the limit = exit %d %+v", r.ExitCode, r.Error)
				}
			}
			if r := run(t, p, id, sandbox.Python, "x", 0); r.ReturnValue == nil || *r.ReturnValue != "1" {
				t.Errorf("session after the allocation: %+v", r)
			}

			// /tmp and /dev/shm are tmpfs of TmpSize each, and the rest of
			// /dev is read-only: no memory beyond them outside the limits.
			for _, dir := range []string{"/tmp", "/dev/shm"} {
				r = run(t, p, id, sandbox.Shell, "head -c 32M /dev/zero > "+dir+"/big; echo $?; rm -f "+dir+"/big", 0)
				if !strings.Contains(string(r.Stderr), "No space left on device") || string(r.Stdout) != "1\n" {
					t.Errorf("filling %s = %q %q", dir, r.Stdout, r.Stderr)
				}
			}
			r = run(t, p, id, sandbox.Shell, "head -c 1M /dev/zero > /dev/big; echo $?; echo x > /dev/null; echo $?", 0)
			if !strings.Contains(string(r.Stderr), "Read-only file system") || string(r.Stdout) != "1\n0\n" {
				t.Errorf("writing a file in /dev = %q %q", r.Stdout, r.Stderr)
			}

			// Timeout: the shell and its backgrounded child die with it.
			secs := strconv.Itoa(301 + i) // a command line unique to this test
			r = run(t, p, id, sandbox.Shell, "sleep "+secs+" & sleep "+secs, time.Second)
			if r.ExitCode != sandbox.TimeoutExitCode || !r.TimedOut {
				t.Errorf("timeout = exit %d timed out %v", r.ExitCode, r.TimedOut)
			}
			deadline := time.Now().Add(3 * time.Second)
			for hostProcs("sleep", secs) > 0 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := hostProcs("sleep", secs); n > 0 {
				t.Errorf("%d sleep processes outlived the timeout", n)
			}

			// Processes: a fork bomb stops at the limit, and once its
			// children are gone the sandbox works again.
			r = run(t, p, id, sandbox.Python, forkBomb, 30*time.Second)
			if !strings.HasPrefix(string(r.Stdout), "stopped") {
				t.Errorf("fork bomb = %q %q %+v", r.Stdout, r.Stderr, r.Error)
			} else if n, _ := strconv.Atoi(strings.Fields(string(r.Stdout))[1]); n >= 32 {
				t.Errorf("fork bomb made %d processes under a limit of 32", n)
			}
			run(t, p, id, sandbox.Python, recoverCell, 0)
			if r := run(t, p, id, sandbox.Shell, "echo ok", 0); string(r.Stdout) != "ok\n" {
				t.Errorf("after the fork bomb: %q %q %+v", r.Stdout, r.Stderr, r.Error)
			}
		})
	}
}

// TestCPURate runs a busy loop under a limit of half a CPU and measures
// the CPU time it gets against the wall time (cgroups only: rlimits have
// no rate). Other tests compete for this machine's CPUs, so it runs alone
// (not parallel), the lower bound is loose, and the group's cpu.stat must
// show that the kernel throttled it.
func TestCPURate(t *testing.T) {
	testutil.RequireRoot(t)
	p, id := newBoxWith(t, Options{WorkspaceRoot: testutil.SharedDir(t)}, sandbox.Spec{CPULimit: 0.5})
	if !p.Capabilities().CPULimit {
		t.Skipf("no CPU limit here: %s", p.Enforcement().Note)
	}
	r := run(t, p, id, sandbox.Python, `import time
t0, c0 = time.monotonic(), time.process_time()
while time.monotonic() - t0 < 3:
    pass
print(round((time.process_time() - c0) / (time.monotonic() - t0), 2))`, 30*time.Second)
	share, err := strconv.ParseFloat(strings.TrimSpace(string(r.Stdout)), 64)
	if err != nil {
		t.Fatalf("busy loop = %q %q %+v", r.Stdout, r.Stderr, r.Error)
	}
	t.Logf("CPU share under a limit of 0.5: %.2f", share)
	if share > 0.7 {
		t.Errorf("CPU share = %.2f, want about 0.5", share)
	}
	b, err := p.Boxes.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	var stat string
	switch c := b.Box.l.cg.(type) {
	case *cgroup:
		stat = filepath.Join(c.dir("cpu"), "cpu.stat")
	case *cgroup2:
		stat = filepath.Join(c.dir, "cpu.stat")
	}
	data, err := os.ReadFile(stat)
	if err != nil {
		t.Fatal(err)
	}
	throttled := -1
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "nr_throttled" {
			throttled, _ = strconv.Atoi(v)
		}
	}
	switch {
	case throttled > 0:
	case share < 0.35:
		// The machine gave the loop well under its limit: the limit had
		// nothing to cut, and the check says nothing either way.
		t.Skipf("inconclusive: the machine is too busy (the loop got %.2f of a CPU, never throttled)", share)
	default:
		t.Errorf("cpu.stat shows no throttling at a share of %.2f: %q", share, data)
	}
}

// TestCPUSeconds hits RLIMIT_CPU: a busy process is killed once it has
// used its budget of CPU seconds.
func TestCPUSeconds(t *testing.T) {
	t.Parallel()
	opts := rlimitOptions(t)
	opts.CPUSeconds = 2
	p, id := newBoxWith(t, opts, sandbox.Spec{})
	start := time.Now()
	r := run(t, p, id, sandbox.Shell, "python3 -c 'while True: pass'", 60*time.Second)
	// SIGXCPU at the soft limit (128+24); the hard limit is the same, so
	// the kernel follows with SIGKILL if the process ignores it.
	if r.ExitCode != 152 && r.ExitCode != 137 {
		t.Errorf("busy loop past RLIMIT_CPU = exit %d %q", r.ExitCode, r.Stderr)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("busy loop ran %s under a 2 s CPU budget", d)
	}
}

// TestBackgroundCreateLowWeight: a sandbox created in the background (a
// warm pool's refill) has the lowest CPU weight until Foreground, then the
// default one.
func TestBackgroundCreateLowWeight(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireBwrap(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	if !p.Capabilities().CPULimit {
		t.Skipf("no cgroups here: %s", p.Enforcement().Note)
	}
	info, err := p.Create(sandbox.WithBackground(t.Context()), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	weight := cpuWeight(t, p, info.ID)
	if w := weight(); w != "2" && w != "1" {
		t.Errorf("CPU weight of a sandbox created in the background = %s, want the lowest", w)
	}
	if err := p.Foreground(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	if w := weight(); w != "1024" && w != "100" {
		t.Errorf("CPU weight after Foreground = %s, want the default", w)
	}
	if r := run(t, p, info.ID, sandbox.Python, "print(1)", 30*time.Second); string(r.Stdout) != "1\n" {
		t.Errorf("print(1) = %q %q", r.Stdout, r.Stderr)
	}
}

// TestPooledSandboxDefaultWeight: warden serve's stack as root (a warm
// pool over the workspace quota over this provider) hands over pooled
// sandboxes at the default CPU weight. The quota wrapper once hid
// Foreground from the pool: the pool's sandboxes kept the lowest weight
// for their whole life, and under a 50-client load their executions
// waited up to 80 s for a CPU.
func TestPooledSandboxDefaultWeight(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireBwrap(t)
	if err := quota.Supported(); err != nil {
		t.Skip(err)
	}
	root := testutil.SharedDir(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Capabilities().CPULimit {
		_ = p.Close(context.Background())
		t.Skipf("no cgroups here: %s", p.Enforcement().Note)
	}
	spec := sandbox.Spec{WorkspaceSize: 16 << 20}.WithDefaults()
	pl := pool.New(quota.Wrap(p, root, os.Getuid(), os.Getgid(), nil), pool.Options{Spec: spec, Size: 1})
	t.Cleanup(func() { _ = pl.Close(context.Background()) })
	deadline := time.Now().Add(time.Minute)
	for {
		if _, _, ready := pl.Stats(); ready > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the pool made no sandbox in a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	info, err := pl.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if hits, _, _ := pl.Stats(); hits != 1 {
		t.Fatalf("the create was not served by the pool (hits %d)", hits)
	}
	if w := cpuWeight(t, p, info.ID)(); w != "1024" && w != "100" {
		t.Errorf("CPU weight of a sandbox the pool handed over = %s, want the default", w)
	}
}

// cpuWeight returns a function reading the sandbox's CPU weight (cgroup
// v1 shares or v2 weight).
func cpuWeight(t *testing.T, p *Provider, id sandbox.ID) func() string {
	t.Helper()
	b, err := p.Boxes.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return func() string {
		var file string
		switch c := b.Box.l.cg.(type) {
		case *cgroup:
			file = filepath.Join(c.dir("cpu"), "cpu.shares")
		case *cgroup2:
			file = filepath.Join(c.dir, "cpu.weight")
		}
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
}
