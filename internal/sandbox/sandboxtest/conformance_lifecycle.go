package sandboxtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/wire"
)

// Lifecycle, errors, the shape of results, and concurrency.

// wantGone checks that every operation on id reports ErrNotFound.
func wantGone(t *testing.T, p sandbox.Provider, id sandbox.ID, why string) {
	t.Helper()
	ctx := t.Context()
	if _, err := p.Exec(ctx, id, py("1")); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("%s: Exec(python) = %v, want ErrNotFound", why, err)
	}
	if _, err := p.Exec(ctx, id, sh("true")); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("%s: Exec(shell) = %v, want ErrNotFound", why, err)
	}
	if _, err := p.Env(ctx, id); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("%s: Env = %v, want ErrNotFound", why, err)
	}
	if _, err := p.UpdateEnv(ctx, id, sandbox.EnvUpdate{Set: map[string]string{"A": "1"}}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("%s: UpdateEnv = %v, want ErrNotFound", why, err)
	}
	if err := p.Destroy(ctx, id); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("%s: Destroy = %v, want ErrNotFound", why, err)
	}
}

func wantNoDir(t *testing.T, dir, why string) {
	t.Helper()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: %s still exists (%v)", why, dir, err)
	}
}

func testDestroy(t *testing.T, s *suite) {
	b := s.create(t, nil)
	b.ok(t, sh("echo data > f.txt && mkdir -p d/e && echo x > d/e/g && chmod 500 d/e"))
	ws := b.info.Workspace
	if st, err := os.Stat(ws); err != nil || !st.IsDir() {
		t.Fatalf("Info.Workspace %q: %v", ws, err)
	}
	if err := b.p.Destroy(t.Context(), b.info.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	wantNoDir(t, ws, "after Destroy, the workspace the provider created")
	wantGone(t, b.p, b.info.ID, "after Destroy")
}

// testDestroyKillsProcesses: processes the sandbox left running, in the
// background or in a session of their own, die with it.
func testDestroyKillsProcesses(t *testing.T, s *suite) {
	dir := hostDir(t)
	b := s.create(t, func(sp *sandbox.Spec) { sp.WorkspaceDir = dir })
	b.ok(t, sh("nohup sh -c 'trap \"\" INT TERM HUP; while :; do echo t >> sh-ticks; sleep 0.05; done' >/dev/null 2>&1 &"))
	b.ok(t, py("import subprocess\nsubprocess.Popen(['sh', '-c', 'while :; do echo t >> py-ticks; sleep 0.05; done'], "+
		"start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nNone"))
	shTicks, pyTicks := filepath.Join(dir, "sh-ticks"), filepath.Join(dir, "py-ticks")
	waitGrowing(t, shTicks)
	waitGrowing(t, pyTicks)
	if err := b.p.Destroy(t.Context(), b.info.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	wantStill(t, shTicks, "after Destroy")
	wantStill(t, pyTicks, "after Destroy")
}

// testDestroyDuringExec: Destroy ends a running execution, which returns
// ErrNotFound at once.
func testDestroyDuringExec(t *testing.T, s *suite) {
	b := s.create(t, nil)
	done := make(chan error, 1)
	go func() {
		_, err := b.p.Exec(t.Context(), b.info.ID, withTimeout(sh("sleep 30"), time.Minute))
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	if err := b.p.Destroy(t.Context(), b.info.ID); err != nil {
		t.Fatalf("Destroy during an execution: %v", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("Exec interrupted by Destroy = %v, want ErrNotFound", err)
		}
	case <-time.After(slack):
		t.Fatalf("Exec still runs %s after Destroy", slack)
	}
	wantNoDir(t, b.info.Workspace, "after Destroy during an execution")
}

// testWorkspaceDirKept: a workspace the caller gave is used in place and
// left, with what the sandbox wrote, by Destroy.
func testWorkspaceDirKept(t *testing.T, s *suite) {
	dir := hostDir(t)
	if err := os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := s.create(t, func(sp *sandbox.Spec) { sp.WorkspaceDir = dir })
	if b.info.Workspace != dir {
		t.Errorf("Info.Workspace = %q, want the given workspace_dir %q", b.info.Workspace, dir)
	}
	b.wantStdout(t, "cat keep.txt", "kept")
	b.ok(t, sh("echo made > made.txt"))
	if err := b.p.Destroy(t.Context(), b.info.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for name, want := range map[string]string{"keep.txt": "kept", "made.txt": "made\n"} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(got) != want {
			t.Errorf("after Destroy, %s in the given workspace = %q, %v; want %q", name, got, err, want)
		}
	}
}

func testUnknownAndInvalidIDs(t *testing.T, s *suite) {
	for _, id := range []sandbox.ID{sandbox.NewID(), "sb-0000000000000000", "unknown"} {
		wantGone(t, s.p, id, "unknown id "+string(id))
	}
	ctx := t.Context()
	for _, id := range []sandbox.ID{"", ".", "..", "../etc", "a/b", "-x", "a b", sandbox.ID(strings.Repeat("x", sandbox.MaxIDLength+1))} {
		if _, err := s.p.Exec(ctx, id, py("1")); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Exec(%q) = %v, want ErrInvalid", id, err)
		}
		if _, err := s.p.Env(ctx, id); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Env(%q) = %v, want ErrInvalid", id, err)
		}
		if _, err := s.p.UpdateEnv(ctx, id, sandbox.EnvUpdate{}); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("UpdateEnv(%q) = %v, want ErrInvalid", id, err)
		}
		if err := s.p.Destroy(ctx, id); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Destroy(%q) = %v, want ErrInvalid", id, err)
		}
	}
}

// testClose: Close destroys every sandbox of that provider, and only of
// that one.
func testClose(t *testing.T, s *suite) {
	p := s.provider(t)
	a, b := s.createOn(t, p, nil), s.createOn(t, p, nil)
	a.ok(t, sh("echo a > f"))
	b.ok(t, py("x = 1"))
	other := s.create(t, nil) // on the suite's provider
	// Providers do not know each other's sandboxes.
	if _, err := s.p.Exec(t.Context(), a.info.ID, py("1")); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("another provider's Exec of the sandbox = %v, want ErrNotFound", err)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, x := range []*handle{a, b} {
		wantGone(t, p, x.info.ID, "after Close")
		wantNoDir(t, x.info.Workspace, "after Close")
	}
	other.wantStdout(t, "echo alive", "alive\n")
}

func testInfo(t *testing.T, s *suite) {
	switch s.caps.Isolation {
	case sandbox.IsolationNone, sandbox.IsolationNamespace, sandbox.IsolationContainer:
	default:
		t.Errorf("Capabilities().Isolation = %q, want none, namespace or container", s.caps.Isolation)
	}
	env := map[string]string{"WARDEN_CT_I": "1"}
	labels := map[string]string{"team": "conformance"}
	b := s.create(t, func(sp *sandbox.Spec) {
		sp.Env, sp.Labels = maps.Clone(env), maps.Clone(labels)
		sp.Timeout, sp.OutputLimit = 7*time.Second, 12345
	})
	i := b.info
	if i.Provider == "" || i.Provider != s.p.Name() {
		t.Errorf("Info.Provider = %q, want Name() %q", i.Provider, s.p.Name())
	}
	if i.Spec.Timeout != 7*time.Second || i.Spec.OutputLimit != 12345 || !maps.Equal(i.Spec.Env, env) || !maps.Equal(i.Spec.Labels, labels) {
		t.Errorf("Info.Spec = timeout %s, output limit %d, env %v, labels %v; want the spec's", i.Spec.Timeout, i.Spec.OutputLimit, i.Spec.Env, i.Spec.Labels)
	}
	if i.Spec.Image != b.spec.Image || i.Spec.MemoryLimit != b.spec.MemoryLimit {
		t.Errorf("Info.Spec = image %q, memory %d; want %q, %d", i.Spec.Image, i.Spec.MemoryLimit, b.spec.Image, b.spec.MemoryLimit)
	}
	c := s.create(t, nil)
	// An empty Workspace: the provider's workspaces are not on this host
	// (Kubernetes pods), so there is nothing to compare.
	if c.info.ID == i.ID || c.info.Workspace != "" && c.info.Workspace == i.Workspace {
		t.Errorf("two sandboxes share id %q or workspace %q", i.ID, i.Workspace)
	}
}

func testInvalidSpec(t *testing.T, s *suite) {
	cases := []struct {
		name string
		mod  func(*sandbox.Spec)
	}{
		{"negative output limit", func(sp *sandbox.Spec) { sp.OutputLimit = -1 }},
		{"negative memory limit", func(sp *sandbox.Spec) { sp.MemoryLimit = -1 }},
		{"negative cpu limit", func(sp *sandbox.Spec) { sp.CPULimit = -1 }},
		{"negative pids limit", func(sp *sandbox.Spec) { sp.PidsLimit = -1 }},
		{"negative timeout", func(sp *sandbox.Spec) { sp.Timeout = -time.Second }},
		{"bad env name", func(sp *sandbox.Spec) { sp.Env = map[string]string{"1BAD": "x"} }},
		{"relative workspace dir", func(sp *sandbox.Spec) { sp.WorkspaceDir = "relative/dir" }},
		{"missing workspace dir", func(sp *sandbox.Spec) { sp.WorkspaceDir = "/nonexistent/warden-conformance" }},
		{"workspace path over /etc", func(sp *sandbox.Spec) { sp.WorkspacePath = "/etc" }},
		{"relative mount source", func(sp *sandbox.Spec) { sp.Mounts = []sandbox.Mount{{Source: "relative"}} }},
		{"missing mount source", func(sp *sandbox.Spec) {
			sp.Mounts = []sandbox.Mount{{Source: "/nonexistent/warden-conformance"}}
		}},
		{"mount over /usr", func(sp *sandbox.Spec) { sp.Mounts = []sandbox.Mount{{Source: t.TempDir(), Target: "/usr/x"}} }},
	}
	for _, c := range cases {
		info, err := s.p.Create(t.Context(), s.spec(c.mod))
		if err == nil {
			_ = s.p.Destroy(context.WithoutCancel(t.Context()), info.ID)
		}
		if !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Create(%s) = %v, want ErrInvalid", c.name, err)
		}
	}
}

func testInvalidRequest(t *testing.T, s *suite) {
	b := s.create(t, nil)
	for _, req := range []sandbox.ExecRequest{
		{Language: "ruby", Code: "1"},
		{Language: sandbox.Shell},
		{Language: sandbox.Shell, Code: "ls", Argv: []string{"ls"}},
		{Language: sandbox.Python, Argv: []string{"x"}},
		{Language: sandbox.Python, Code: "1", Timeout: -time.Second},
	} {
		if _, err := b.p.Exec(t.Context(), b.info.ID, req); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Exec(%+v) = %v, want ErrInvalid", req, err)
		}
	}
	b.wantValue(t, "1", "1")
}

// testResultShape compares the JSON form of results with what every
// provider must give for the same code. Only what legitimately differs is
// masked: durations, tracebacks (they quote the interpreter's source
// formatting) and messages with timings.
func testResultShape(t *testing.T, s *suite) {
	b := s.create(t, func(sp *sandbox.Spec) { sp.OutputLimit = 1000 })
	for _, c := range resultShapes() {
		s.checkShape(t, c, b.exec(t, c.req))
	}
}

// resultShape is an execution and the JSON result it must give (through
// the API's wire form), with a spec's OutputLimit of 1000.
type resultShape struct {
	name string
	req  sandbox.ExecRequest
	mask []string // string fields whose value may differ: "a" or "a.b"
	want string
}

func resultShapes() []resultShape {
	// Long enough for the code to print before its timeout even when the
	// interpreter begins late (under gVisor a fork for an idle snapshot
	// took that long): a cell interrupted before it began prints nothing.
	const half = 2 * time.Second
	return []resultShape{
		{"python value", py("print('hi')\n40 + 2"), nil,
			`{"stdout":"hi\n","stderr":"","exit_code":0,"error":null,"error_traceback":null,"return_value":"42",
			"timed_out":false,"oom_killed":false,"truncated":false,"stdout_truncated":false,"stderr_truncated":false}`},
		{"python exception", py("1/0"), []string{"stderr", "error.traceback", "error_traceback"},
			`{"stdout":"","stderr":"*","exit_code":1,"error":{"name":"ZeroDivisionError","value":"division by zero","traceback":"*","line":1},
			"error_traceback":"*","return_value":null,"timed_out":false,"oom_killed":false,"truncated":false,"stdout_truncated":false,"stderr_truncated":false}`},
		{"python syntax error", py("x = 1\nif x"), []string{"stderr", "error.value", "error.traceback", "error_traceback"},
			`{"stdout":"","stderr":"*","exit_code":1,"error":{"name":"SyntaxError","value":"*","traceback":"*","line":2},
			"error_traceback":"*","return_value":null,"timed_out":false,"oom_killed":false,"truncated":false,"stdout_truncated":false,"stderr_truncated":false}`},
		{"python timeout", withTimeout(py("print('p')\nwhile True:\n    pass"), half), []string{"stderr", "error.value", "error.traceback", "error_traceback"},
			`{"stdout":"p\n","stderr":"*","exit_code":124,"error":{"name":"TimeoutError","value":"*","traceback":"*"},
			"error_traceback":"*","return_value":null,"timed_out":true,"oom_killed":false,"truncated":false,"stdout_truncated":false,"stderr_truncated":false}`},
		{"python truncated", py("print('z' * 3000)"), nil,
			`{"stdout":"` + strings.Repeat("z", 1000) + `","stderr":"","exit_code":0,"error":null,"error_traceback":null,"return_value":null,
			"timed_out":false,"oom_killed":false,"truncated":true,"stdout_truncated":true,"stderr_truncated":false}`},
		{"shell exit", sh("echo out; echo err >&2; exit 3"), nil,
			`{"stdout":"out\n","stderr":"err\n","exit_code":3,"error":null,"error_traceback":null,"return_value":null,
			"timed_out":false,"oom_killed":false,"truncated":false,"stdout_truncated":false,"stderr_truncated":false}`},
		{"shell timeout", withTimeout(sh("echo p; sleep 10"), half), []string{"stderr"},
			`{"stdout":"p\n","stderr":"*","exit_code":124,"error":null,"error_traceback":null,"return_value":null,
			"timed_out":true,"oom_killed":false,"truncated":false,"stdout_truncated":false,"stderr_truncated":false}`},
	}
}

// checkShape checks r against c.
func (s *suite) checkShape(t *testing.T, c resultShape, r sandbox.ExecResult) {
	t.Helper()
	data, err := json.Marshal(wire.ExecResult(r))
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(c.want), &want); err != nil {
		t.Fatalf("%s: bad expectation: %v", c.name, err)
	}
	if ms, ok := got["duration_ms"].(float64); !ok || ms < 0 {
		t.Errorf("%s: duration_ms = %v", c.name, got["duration_ms"])
	}
	if sec, ok := got["execution_time"].(float64); !ok || math.Abs(sec*1000-got["duration_ms"].(float64)) > 1e-6 {
		t.Errorf("%s: execution_time = %v, want duration_ms in seconds", c.name, got["execution_time"])
	}
	wantSuccess := want["exit_code"] == 0.0 && want["error"] == nil && want["timed_out"] == false && want["oom_killed"] == false
	if got["success"] != wantSuccess {
		t.Errorf("%s: success = %v, want %v", c.name, got["success"], wantSuccess)
	}
	delete(got, "duration_ms")
	delete(got, "execution_time")
	delete(got, "success")
	if w, ok := got["warning"]; ok != (s.caps.Isolation == sandbox.IsolationNone) || ok && w == "" {
		t.Errorf("%s: warning = %v with isolation %q", c.name, w, s.caps.Isolation)
	}
	delete(got, "warning")
	if e, ok := got["error"].(map[string]any); ok && got["error_traceback"] != e["traceback"] {
		t.Errorf("%s: error_traceback %q differs from error.traceback %q", c.name, got["error_traceback"], e["traceback"])
	}
	for _, m := range c.mask {
		mask(t, c.name, got, m)
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s: result\n%s\nwant\n%s", c.name, g, w)
	}
}

// mask replaces the non-empty string at key ("a" or "a.b") by "*".
func mask(t *testing.T, name string, m map[string]any, key string) {
	t.Helper()
	k, rest, nested := strings.Cut(key, ".")
	if nested {
		sub, ok := m[k].(map[string]any)
		if !ok {
			t.Errorf("%s: %s is %v, want an object", name, k, m[k])
			return
		}
		mask(t, name, sub, rest)
		return
	}
	if v, ok := m[k].(string); !ok || v == "" {
		t.Errorf("%s: %s = %v, want a non-empty string", name, key, m[k])
		return
	}
	m[k] = "*"
}

// testSerialised: executions in one sandbox never overlap, whatever
// their language, and none is lost.
func testSerialised(t *testing.T, s *suite) {
	b := s.create(t, nil)
	b.ok(t, py("n = 0"))
	reqs := []sandbox.ExecRequest{
		py("import time\nopen('log', 'a').write('py-start\\n')\ntime.sleep(0.4)\nopen('log', 'a').write('py-end\\n')"),
		sh("echo sh-start >> log; sleep 0.4; echo sh-end >> log"),
	}
	for range 5 {
		reqs = append(reqs, py("import time\nm = n\ntime.sleep(0.02)\nn = m + 1"))
	}
	var wg sync.WaitGroup
	errs := make([]error, len(reqs))
	results := make([]sandbox.ExecResult, len(reqs))
	start := time.Now()
	for i, req := range reqs {
		wg.Go(func() { results[i], errs[i] = b.p.Exec(t.Context(), b.info.ID, req) })
	}
	wg.Wait()
	took := time.Since(start)
	for i, err := range errs {
		if err != nil || results[i].ExitCode != 0 {
			t.Fatalf("concurrent Exec(%q) = exit %d, %v (stderr %q)", reqs[i].Code, results[i].ExitCode, err, results[i].Stderr)
		}
	}
	if took < 800*time.Millisecond {
		t.Errorf("two executions of 0.4 s in one sandbox took %s together: they overlapped", took)
	}
	log := b.stdout(t, "cat log")
	if log != "py-start\npy-end\nsh-start\nsh-end\n" && log != "sh-start\nsh-end\npy-start\npy-end\n" {
		t.Errorf("log of two concurrent executions = %q: they interleaved", log)
	}
	b.wantValue(t, "n", "5")
}

// testIndependent: two sandboxes share no state, and run at the same time.
func testIndependent(t *testing.T, s *suite) {
	a, b := s.create(t, nil), s.create(t, nil)
	a.ok(t, py("secret = 1"))
	a.ok(t, sh("echo a > only_a.txt"))
	if _, err := a.p.UpdateEnv(t.Context(), a.info.ID, sandbox.EnvUpdate{Set: map[string]string{"WARDEN_CT_ONLY_A": "1"}}); err != nil {
		t.Fatal(err)
	}
	b.wantValue(t, "'secret' in globals()", "False")
	if r := b.exec(t, sh("test -e only_a.txt")); r.ExitCode != 1 {
		t.Errorf("the other sandbox's workspace file is visible (test -e exit %d)", r.ExitCode)
	}
	b.wantStdout(t, "echo ${WARDEN_CT_ONLY_A-unset}", "unset\n")
	if env, err := b.p.Env(t.Context(), b.info.ID); err != nil || len(env) != 0 {
		t.Errorf("Env of the other sandbox = %v, %v; want empty", env, err)
	}
	a.wantValue(t, "secret", "1")

	// Each sandbox says when its command began and ended, by the clock
	// they share with the host: run at the same time, the two spans
	// overlap; serialised, one begins after the other ended. (A span, not
	// a total time: on a loaded machine a total proves nothing.)
	var (
		wg    sync.WaitGroup
		spans [2][2]float64
		errs  [2]error
	)
	for i, x := range []*handle{a, b} {
		wg.Go(func() {
			r, err := x.p.Exec(t.Context(), x.info.ID, sh("date +%s.%N; sleep 2; date +%s.%N"))
			if err == nil {
				f := strings.Fields(string(r.Stdout))
				if len(f) != 2 {
					err = fmt.Errorf("stdout %q, stderr %q", r.Stdout, r.Stderr)
				} else {
					spans[i][0], err = strconv.ParseFloat(f[0], 64)
					if err == nil {
						spans[i][1], err = strconv.ParseFloat(f[1], 64)
					}
				}
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("timing a command in each sandbox: %v", err)
	}
	if begin, end := max(spans[0][0], spans[1][0]), min(spans[0][1], spans[1][1]); begin >= end {
		t.Errorf("a 2 s command in each of two sandboxes ran at %.3f-%.3f and %.3f-%.3f: sandboxes are serialised together",
			spans[0][0], spans[0][1], spans[1][0], spans[1][1])
	}
}

// testOneShot: sandbox.Run (the provider's one-shot path, or Create, Exec
// and Destroy) gives what an execution in a new sandbox gives, each run in
// a sandbox of its own.
func testOneShot(t *testing.T, s *suite) {
	ctx := t.Context()
	spec := s.spec(func(sp *sandbox.Spec) {
		sp.OutputLimit = 1000
		sp.Env = map[string]string{"WARDEN_ONE_SHOT": "yes"}
	})
	for _, c := range resultShapes() {
		r, err := sandbox.Run(ctx, s.p, spec, c.req)
		if err != nil {
			t.Fatalf("%s: Run: %v", c.name, err)
		}
		s.checkShape(t, c, r)
	}
	// The spec's environment, and nothing of an earlier run.
	run := func(req sandbox.ExecRequest) sandbox.ExecResult {
		t.Helper()
		r, err := sandbox.Run(ctx, s.p, spec, req)
		if err != nil {
			t.Fatalf("Run(%q): %v", req.Code, err)
		}
		return r
	}
	if r := run(sh("echo $WARDEN_ONE_SHOT > mark; cat mark")); string(r.Stdout) != "yes\n" || r.ExitCode != 0 {
		t.Errorf("first run: %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	if r := run(py("import os\nprint(os.path.exists('mark'))")); string(r.Stdout) != "False\n" {
		t.Errorf("a run sees an earlier run's workspace: %q %q", r.Stdout, r.Stderr)
	}
	// A bad request is refused, and a bad spec.
	if _, err := sandbox.Run(ctx, s.p, spec, sandbox.ExecRequest{Language: sandbox.Python, Code: "1", Workdir: "/tmp"}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Python with a workdir: %v, want ErrInvalid", err)
	}
	bad := spec
	bad.WorkspaceDir = filepath.Join(t.TempDir(), "missing")
	if _, err := sandbox.Run(ctx, s.p, bad, py("1")); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("a missing workspace dir: %v, want ErrInvalid", err)
	}
}
