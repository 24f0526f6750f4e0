package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/provider/forkserver"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// requireForkServer skips unless the fork server provider can run here:
// bubblewrap, a root Warden, and the kernel calls it needs.
func requireForkServer(t testing.TB) {
	t.Helper()
	testutil.RequireBwrap(t)
	testutil.RequireRoot(t)
	if err := forkserver.Check(forkserver.Options{}); err != nil {
		t.Skip("the fork server cannot run here:", err)
	}
}

// TestServeForkServer runs `warden serve` with SANDBOX__PROVIDER=forkserver
// and drives it with the client and `warden exec --server`; then `warden
// exec --provider forkserver` without a server. After SIGTERM nothing of
// the service's sandboxes is left: no workspace, no cgroup, no process of
// its fork server.
func TestServeForkServer(t *testing.T) {
	requireForkServer(t)
	bin := wardenBinary(t)
	root := testutil.SharedDir(t)
	const key = "forkserver-e2e-key-0123456789"
	url, stop := startServe(t, bin, "API__KEYS="+key, "SANDBOX__PROVIDER=forkserver", "SANDBOX__PROVIDER_FALLBACK=false",
		"SANDBOX__IMAGE="+testutil.Image(), "SANDBOX__WORKSPACE_ROOT="+root, "LOG__LEVEL=warn")
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	ctx := t.Context()
	c, _ := client.New(url, client.WithAPIKey(key))
	if h, err := c.Health(ctx); err != nil || h.SandboxMode != "forkserver" {
		t.Fatalf("health = %+v, %v; want sandbox_mode forkserver", h, err)
	}
	st, err := c.Status(ctx)
	if err != nil || st.Provider == nil || st.Provider.Name != "forkserver" || st.Provider.Isolation != "namespace" {
		t.Fatalf("status = %+v, %v; want the forkserver provider, namespace isolation", st, err)
	}
	info, err := c.Create(ctx, client.CreateOptions{MemoryLimit: "256m"})
	if err != nil {
		t.Fatal(err)
	}
	if info.Provider != "forkserver" {
		t.Errorf("sandbox provider = %q, want forkserver", info.Provider)
	}
	if _, err := c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Python, Code: "x = 20"}); err != nil {
		t.Fatal(err)
	}
	// State persists between executions; numpy comes from the runtime
	// image (SANDBOX__BWRAP_ROOT=auto), and the agent is its pid
	// namespace's init.
	r, err := c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Python,
		Code: "import numpy, os\nprint(os.getppid() == 1 or os.getpid() == 1)\nint(numpy.int64(x) * 2)"})
	if err != nil || r.ReturnValue == nil || *r.ReturnValue != "40" || string(r.Stdout) != "True\n" {
		t.Fatalf("execute = %+v, %v", r, err)
	}
	if r, err := c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Shell, Code: "echo ok > marker && cat marker && id -u"}); err != nil ||
		string(r.Stdout) != "ok\n1000\n" {
		t.Fatalf("shell = %+v, %v", r, err)
	}
	// The CLI against the service.
	{
		var out, errb bytes.Buffer
		code := run(ctx, []string{"exec", "--server", url, "--python", "y = 2", "--python", "y + 1"},
			env{environ: []string{"WARDEN_API_KEY=" + key}, stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
		if code != 0 || out.String() != "3\n" {
			t.Fatalf("warden exec --server = %d, %q, %q", code, out.String(), errb.String())
		}
	}
	// A one-shot run takes the fork server's own path (its runner is
	// the only interpreter: sys.argv as python3 -c has it, where a
	// session's worker has more), through the quota wrapper and the pool.
	for _, size := range []string{"", "16m"} {
		r, err := c.Run(ctx, client.RunOptions{CreateOptions: client.CreateOptions{WorkspaceSize: size},
			ExecuteOptions: client.ExecuteOptions{Language: api.Python, Code: "import sys, os\nprint(sys.argv, os.getcwd())\n6 * 7"}})
		if err != nil || r.ReturnValue == nil || *r.ReturnValue != "42" || r.Stdout != "['-c'] /workspace\n" {
			t.Fatalf("run (workspace size %q) = %+v, %v", size, r, err)
		}
	}
	if err := c.Delete(ctx, info.ID); err != nil {
		t.Fatal(err)
	}
	// What runs under the service (bwrap, the fork server, the warm
	// pool's sandboxes) must end with it.
	pid := servePID(t, url, bin)
	kids := map[int]uint64{}
	if pid > 0 {
		for _, k := range descendants(pid) {
			kids[k] = owner.StartTime(k)
		}
	}
	stop()
	stopped = true
	checkNoWorkspaces(t, "forkserver", root)
	// The service's cgroups are named <id>@<pid>-<start time>.
	for _, ctl := range []string{"memory", "pids", "cpu"} {
		ents, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", ctl, "warden-fork"))
		for _, e := range ents {
			if strings.Contains(e.Name(), "@"+strconv.Itoa(pid)+"-") {
				t.Errorf("cgroup %s/warden-fork/%s left after warden serve stopped", ctl, e.Name())
			}
		}
	}
	// A zombie not yet reaped by its new parent runs nothing; a process
	// killed with the service may still be tearing its memory down (a
	// while on a slow machine; its cmdline is empty then): given 10 s.
	remains := func(k int, start uint64) bool {
		return start != 0 && owner.StartTime(k) == start && procState(k) != "Z"
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		left := 0
		for k, start := range kids {
			if remains(k, start) {
				left++
			}
		}
		if left == 0 {
			break
		}
	}
	for k, start := range kids {
		if remains(k, start) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(k), "cmdline"))
			t.Errorf("process %d (%q, state %s) of the stopped service remains", k, strings.ReplaceAll(string(cmdline), "\x00", " "), procState(k))
		}
	}

	// warden exec and warden run without a server open the provider
	// themselves (on the root filesystem extracted above), and run
	// records it.
	environ := []string{"SANDBOX__WORKSPACE_ROOT=" + root, "SANDBOX__PROVIDER_FALLBACK=false"}
	// One cell is a one-shot run (Python in the sandbox's init, pid 1);
	// more share a session (its worker is not pid 1).
	code, stdout, stderr := wardenCmd(t, "", environ, "exec", "--provider", "forkserver", "--python", "import os; print(os.getuid(), os.getpid())")
	if code != 0 || stdout != "1000 1\n" {
		t.Fatalf("warden exec --provider forkserver = %d, %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = wardenCmd(t, "", environ, "exec", "--provider", "forkserver", "--python", "import os", "--python", "print(os.getpid() != 1)")
	if code != 0 || stdout != "True\n" {
		t.Fatalf("warden exec --provider forkserver, two cells = %d, %q, stderr %q", code, stdout, stderr)
	}
	dir := testutil.SharedDir(t)
	if err := os.WriteFile(filepath.Join(dir, "task.py"), []byte("print('ran')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = wardenCmd(t, dir, append(environ, "SANDBOX__PROVIDER=forkserver"), "run", "--json", "task.py")
	var res struct {
		Provider string `json:"provider"`
		Stdout   string `json:"stdout"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || res.Provider != "forkserver" || res.Stdout != "ran\n" {
		t.Fatalf("warden run with SANDBOX__PROVIDER=forkserver = %d, %+v (%v), stderr %q", code, res, err, stderr)
	}
}

// TestForkServerUnavailable: asked for where it cannot run (here: no
// bubblewrap on PATH), the fork server fails start-up with the reason,
// and never falls back to another provider, fallback on or not.
func TestForkServerUnavailable(t *testing.T) {
	bin := wardenBinary(t)
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), bin, "exec", "--provider", "forkserver", "--python", "print(1)")
	cmd.Env = []string{"PATH=" + t.TempDir(), "SANDBOX__PROVIDER_FALLBACK=true", "SANDBOX__WORKSPACE_ROOT=" + t.TempDir(),
		"SANDBOX__DOCKER_AUTO_DETECT=false"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err == nil || out.String() != "" || !strings.Contains(errb.String(), "SANDBOX__PROVIDER=forkserver") ||
		!strings.Contains(errb.String(), "bubblewrap") || !strings.Contains(errb.String(), "never falls back") {
		t.Fatalf("warden exec --provider forkserver without bwrap = %v, stdout %q, stderr %q", err, out.String(), errb.String())
	}
}

// servePID returns the pid of the warden serve process listening at url,
// found as the one running bin serve; 0 if it cannot be told apart.
func servePID(t *testing.T, url, bin string) int {
	t.Helper()
	pids := findProcesses(bin, "serve")
	if len(pids) != 1 {
		t.Logf("%d warden serve processes of %s running; not checking the service's cgroups and processes", len(pids), url)
		return 0
	}
	return pids[0]
}

// procState is field 3 of /proc/PID/stat ("Z" for a zombie).
func procState(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return ""
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 1 {
		return ""
	}
	return f[0]
}

// descendants returns the pids of pid's descendants still running.
func descendants(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		for q := p; q > 1; {
			b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(q), "stat"))
			if err != nil {
				break
			}
			s := string(b)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
			if len(f) < 2 {
				break
			}
			q, _ = strconv.Atoi(f[1])
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
