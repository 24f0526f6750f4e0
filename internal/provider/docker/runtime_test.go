package docker

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestGVisorNetwork(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, GVisorNetSandbox},
		{[]string{"--network=host"}, GVisorNetHost},
		{[]string{"-network", "none"}, GVisorNetNone},
		{[]string{"--debug", "--network=none", "--network=host"}, GVisorNetHost},
		{[]string{"--networkx=none", "network=none"}, GVisorNetSandbox},
	} {
		if got := gvisorNetwork(tt.args); got != tt.want {
			t.Errorf("gvisorNetwork(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

func TestIsGVisor(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		rt   system.Runtime
		want bool
	}{
		{"runsc", system.Runtime{Path: "/usr/bin/runsc"}, true},
		{"gvisor", system.Runtime{Path: "/usr/local/bin/runsc-2024"}, true},
		{"gvisor", system.Runtime{Type: "io.containerd.runsc.v1"}, true},
		{"runsc", system.Runtime{}, true},
		{"runc", system.Runtime{Path: "runc"}, false},
		{"runsc", system.Runtime{Path: "/usr/bin/crun"}, false},
		{"io.containerd.runc.v2", system.Runtime{}, false},
	} {
		if got := isGVisor(tt.name, tt.rt); got != tt.want {
			t.Errorf("isGVisor(%q, %+v) = %v, want %v", tt.name, tt.rt, got, tt.want)
		}
	}
}

func TestRuntimeString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		r    Runtime
		want string
	}{
		{Runtime{Name: "runc", Default: true, Path: "runc"}, "runtime runc (the daemon's default)"},
		{Runtime{Name: "runsc", Path: "/usr/bin/runsc", Args: []string{"--network=host"}, GVisor: true, Network: GVisorNetHost},
			"runtime runsc (gVisor: /usr/bin/runsc --network=host)"},
		{Runtime{Name: "crun"}, "runtime crun"},
		{Runtime{Default: true}, "runtime unknown (the daemon's default)"},
	} {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

// TestApplyRuntime: runc containers keep their pids limit; gVisor ones
// get it as RLIMIT_NPROC, which gVisor's kernel counts for the sandbox,
// and a host limit sized for runsc's threads.
func TestApplyRuntime(t *testing.T) {
	t.Parallel()
	pids := int64(256)
	h := &container.HostConfig{Resources: container.Resources{PidsLimit: &pids}}
	Runtime{Name: "runc", Default: true}.applyRuntime(h, pids)
	if h.Runtime != "" || *h.PidsLimit != 256 || len(h.Ulimits) != 0 {
		t.Errorf("default runc: runtime %q, pids %d, ulimits %v", h.Runtime, *h.PidsLimit, h.Ulimits)
	}
	h = &container.HostConfig{Resources: container.Resources{PidsLimit: &pids}}
	Runtime{Name: "runsc", GVisor: true}.applyRuntime(h, pids)
	if h.Runtime != "runsc" || *h.PidsLimit != 256*gvisorPidsFactor+gvisorPidsBase ||
		len(h.Ulimits) != 1 || *h.Ulimits[0] != (container.Ulimit{Name: "nproc", Soft: 256, Hard: 256}) {
		t.Errorf("runsc: runtime %q, pids %d, ulimits %v", h.Runtime, *h.PidsLimit, h.Ulimits)
	}
	if pids != 256 {
		t.Error("applyRuntime changed the caller's pids limit")
	}
}

func TestUnknownRuntimeError(t *testing.T) {
	t.Parallel()
	have := map[string]system.RuntimeWithStatus{"runc": {}, "io.containerd.runc.v2": {}}
	err := unknownRuntime("unix:///var/run/docker.sock", "runsc", have)
	msg := err.Error()
	for _, want := range []string{`has no runtime "runsc"`, "SANDBOX__DOCKER_RUNTIME", "it has: io.containerd.runc.v2, runc.",
		"apt-get install runsc", `"runsc": {"path": "/usr/bin/runsc"}`, "/etc/docker/daemon.json", "kill -HUP"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("error %v is not ErrUnavailable", err)
	}
	msg = unknownRuntime("unix:///x", "kata", nil).Error()
	if !strings.Contains(msg, "it has: none.") || strings.Contains(msg, "runsc") || !strings.Contains(msg, `register it under "runtimes"`) {
		t.Errorf("kata: %q", msg)
	}

	p := Probe{Available: true, Host: "unix:///x", Runtimes: []string{"runc", "runsc"}}
	if err := p.CheckRuntime("runsc"); err != nil {
		t.Errorf("CheckRuntime(runsc) = %v", err)
	}
	if err := p.CheckRuntime(""); err != nil {
		t.Errorf("CheckRuntime(\"\") = %v", err)
	}
	if err := p.CheckRuntime("gvisor"); err == nil || !strings.Contains(err.Error(), "it has: runc, runsc.") {
		t.Errorf("CheckRuntime(gvisor) = %v", err)
	}
}

func TestStartError(t *testing.T) {
	t.Parallel()
	netns := errors.New(`OCI runtime start failed: starting container: setting up network: creating interfaces from net namespace "/proc/1/ns/net": cannot run with network enabled in root network namespace: unknown`)
	err := Runtime{Name: "runsc", GVisor: true}.startError(netns)
	if !errors.Is(err, netns) || !strings.Contains(err.Error(), `"runtimeArgs": ["--network=host"]`) || !strings.Contains(err.Error(), "gVisor issue 10704") {
		t.Errorf("startError = %v", err)
	}
	other := errors.New("OCI runtime create failed: x")
	if err := (Runtime{Name: "runsc", GVisor: true}).startError(other); err != other {
		t.Errorf("startError(other) = %v", err)
	}
	if err := (Runtime{Name: "runc"}).startError(netns); err != netns {
		t.Errorf("runc startError = %v", err)
	}
}

// TestRuntimeOnEngine: New reports the daemon's default runtime, and
// refuses one the daemon does not have, naming those it has.
func TestRuntimeOnEngine(t *testing.T) {
	t.Parallel()
	p := provider(t)
	rt := p.Runtime()
	if !rt.Default || rt.Name == "" || rt.GVisor && rt.Name != "runsc" {
		t.Errorf("default runtime = %+v", rt)
	}
	_, err := New(t.Context(), Options{Runtime: "warden-no-such-runtime", KeepOrphans: true})
	if err == nil || !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), `no runtime "warden-no-such-runtime"`) ||
		!strings.Contains(err.Error(), rt.Name) {
		t.Fatalf("New with an unknown runtime = %v", err)
	}
}

var (
	gvisorOnce sync.Once
	gvisor     *Provider
	gvisorErr  error
)

// gvisorProvider returns one provider running sandboxes under gVisor: the
// runtime WARDEN_TEST_RUNSC names, runsc by default. Without it the test
// is skipped, unless WARDEN_REQUIRE_RUNSC=1.
func gvisorProvider(t *testing.T) *Provider {
	t.Helper()
	testutil.RequireDocker(t)
	gvisorOnce.Do(func() {
		name := os.Getenv("WARDEN_TEST_RUNSC")
		if name == "" {
			name = "runsc"
		}
		gvisor, gvisorErr = New(context.Background(), Options{WorkspaceRoot: filepath.Join(os.TempDir(), "warden-test"), Runtime: name, KeepOrphans: true})
	})
	switch {
	case gvisorErr == nil:
	case errors.Is(gvisorErr, sandbox.ErrUnavailable) && !testutil.Required("WARDEN_REQUIRE_RUNSC"):
		t.Skipf("no gVisor: %v", gvisorErr)
	default:
		t.Fatalf("%v (WARDEN_REQUIRE_RUNSC=1 requires it)", gvisorErr)
	}
	if !gvisor.Runtime().GVisor {
		t.Fatalf("%s is not gVisor's runsc", gvisor.Runtime())
	}
	return gvisor
}

func createIn(t *testing.T, p *Provider, spec sandbox.Spec) sandbox.ID {
	t.Helper()
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
	return info.ID
}

// TestHardeningGVisor checks the hardened container under gVisor from
// inside and on the engine: what holds as under runc, and what differs
// (the README's gVisor column).
func TestHardeningGVisor(t *testing.T) {
	t.Parallel()
	p := gvisorProvider(t)
	id := createIn(t, p, sandbox.Spec{CPULimit: 0.5, PidsLimit: 100})
	checks := []struct {
		name, cmd, want string
	}{
		{"gVisor's kernel", "dmesg | head -1 | cut -c16-", "Starting gVisor...\n"},
		{"uid", "id -u; id -g", "1000\n1000\n"},
		{"no capabilities", "grep CapEff /proc/self/status", "CapEff:\t0000000000000000\n"},
		// gVisor's /proc/self/status has no NoNewPrivs line; prctl answers.
		{"no new privileges", `python3 -c 'import ctypes; print(ctypes.CDLL(None).prctl(39, 0, 0, 0, 0))'`, "1\n"},
		// runsc applies no OCI seccomp profile unless --oci-seccomp.
		{"no seccomp filter inside", "grep '^Seccomp:' /proc/self/status", "Seccomp:\t0\n"},
		{"read-only root", "grep ' / ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1; touch /etc/x 2>&1", "ro\ntouch: cannot touch '/etc/x': Permission denied\n"},
		{"writable tmp", "echo hi > /tmp/t && cat /tmp/t && grep ' /tmp ' /proc/mounts | cut -d' ' -f3", "hi\ntmpfs\n"},
		{"writable workspace", "pwd; echo data > w.txt && cat w.txt", "/workspace\ndata\n"},
		{"no network", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '", "lo\n"},
		{"process limit", "ulimit -u", "100\n"},
		{"no cgroup files inside", "ls /sys/fs/cgroup 2>/dev/null | wc -l", "0\n"},
		{"init is pid 1", "cat /proc/1/comm", "docker-init\n"},
	}
	for _, c := range checks {
		r := run(t, p, id, sandbox.Shell, c.cmd, 0)
		if string(r.Stdout) != c.want {
			t.Errorf("%s: %q = %q (stderr %q), want %q", c.name, c.cmd, r.Stdout, r.Stderr, c.want)
		}
	}
	// Zombies are reaped: an orphaned child that exits does not linger.
	run(t, p, id, sandbox.Shell, "sh -c 'sleep 0.2 & exit 0'; sleep 1", 0)
	if r := run(t, p, id, sandbox.Python, procCount("state == 'Z'"), 0); r.ReturnValue == nil || *r.ReturnValue != "0" {
		t.Errorf("zombies: %s %+v", deref(r.ReturnValue), r.Error)
	}
	// What the engine was told.
	info, err := p.Info(id)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := p.cli.ContainerInspect(t.Context(), info.Name, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := ins.Container.HostConfig
	if h.Runtime != p.Runtime().Name || h.NanoCPUs != 5e8 || h.PidsLimit == nil || *h.PidsLimit != 100*gvisorPidsFactor+gvisorPidsBase ||
		!h.ReadonlyRootfs || h.Init == nil || !*h.Init || !slices.Equal(h.CapDrop, []string{"ALL"}) || h.Memory != sandbox.DefaultMemoryLimit ||
		!slices.ContainsFunc(h.Ulimits, func(u *container.Ulimit) bool { return u.Name == "nproc" && u.Soft == 100 && u.Hard == 100 }) {
		t.Errorf("host config: runtime %q, cpus %d, pids %v, ro %v, init %v, capdrop %v, memory %d, ulimits %v",
			h.Runtime, h.NanoCPUs, h.PidsLimit, h.ReadonlyRootfs, h.Init, h.CapDrop, h.Memory, h.Ulimits)
	}
	// The CPU quota is the host's, on gVisor's own processes (time
	// inside gVisor is its own: getrusage does not show the throttling).
	quota, procs := hostCgroup(ins.Container.ID, "cpu", "cpu.cfs_quota_us", "cpu.max")
	switch {
	case quota == "":
		t.Logf("the container's CPU cgroup is not where this test looks (a remote daemon, or another cgroup layout): CPU quota not checked on the host")
	case strings.Fields(quota)[0] != "50000" || procs == 0:
		t.Errorf("host CPU cgroup: quota %q with %d processes, want 50000 on gVisor's processes", quota, procs)
	}
}

// hostCgroup reads file (cgroup v1 controller ctl) or file2 (v2) of a
// container's cgroup with Docker's cgroupfs or systemd layout, and counts
// the processes in it; "" when it is not found.
func hostCgroup(id, ctl, file, file2 string) (string, int) {
	for _, dir := range []string{
		filepath.Join("/sys/fs/cgroup", ctl, "docker", id),
		filepath.Join("/sys/fs/cgroup", ctl, "system.slice", "docker-"+id+".scope"),
		filepath.Join("/sys/fs/cgroup/docker", id),
		filepath.Join("/sys/fs/cgroup/system.slice", "docker-"+id+".scope"),
	} {
		for _, f := range []string{file, file2} {
			b, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				continue
			}
			procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
			return strings.TrimSpace(string(b)), len(strings.Fields(string(procs)))
		}
	}
	return "", 0
}

// TestMemoryLimitGVisor: under gVisor the memory limit holds for the
// whole sandbox, and going past it ends the sandbox: the execution comes
// back at once as out of memory, with a note, and the sandbox refuses
// more work.
func TestMemoryLimitGVisor(t *testing.T) {
	t.Parallel()
	p := gvisorProvider(t)
	id := createIn(t, p, sandbox.Spec{MemoryLimit: 128 << 20})
	run(t, p, id, sandbox.Python, "x = 42", 0)
	start := time.Now()
	r := run(t, p, id, sandbox.Python, "b = bytearray(400 * 1024 * 1024)\nprint('allocated')", 30*time.Second)
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("the allocation took %s to come back", took)
	}
	if !r.OOMKilled || r.ExitCode != 137 || strings.Contains(string(r.Stdout), "allocated") ||
		!slices.ContainsFunc(r.Notes, func(n string) bool { return strings.Contains(n, "memory limit") && strings.Contains(n, "gVisor") }) {
		t.Fatalf("allocation past the limit = exit %d, oom %v, stdout %q, notes %q", r.ExitCode, r.OOMKilled, r.Stdout, r.Notes)
	}
	_, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Python, Code: "x"})
	if !errors.Is(err, sandbox.ErrConflict) || !strings.Contains(err.Error(), "memory limit") {
		t.Fatalf("Exec after the sandbox ended = %v", err)
	}
}
