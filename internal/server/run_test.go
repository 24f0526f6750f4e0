package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/policy"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// runRecorder is a capable provider with a one-shot path that records
// what reached it and runs on its Fake: code "1/0" raises, "loop" runs
// until its timeout, anything else is echoed.
type runRecorder struct {
	capableProvider
	mu   sync.Mutex
	runs int
	spec sandbox.Spec
	req  sandbox.ExecRequest
}

func newRunRecorder() *runRecorder {
	r := &runRecorder{capableProvider: capableProvider{&sandboxtest.Fake{}}}
	r.Fake.ExecFunc = func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		switch req.Code {
		case "1/0":
			return sandbox.ExecResult{ExitCode: 1, Stdout: []byte{}, Error: &sandbox.ExecError{Name: "ZeroDivisionError",
				Value: "division by zero", Traceback: "ZeroDivisionError: division by zero", Line: 1}}, nil
		case "loop":
			select {
			case <-time.After(req.Timeout):
				return sandbox.ExecResult{Stdout: []byte("partial"), TimedOut: true, ExitCode: sandbox.TimeoutExitCode}, nil
			case <-ctx.Done():
				return sandbox.ExecResult{}, ctx.Err()
			}
		}
		out := req.Code
		if len(req.Argv) > 0 {
			out = strings.Join(req.Argv, " ")
		}
		if req.OnOutput != nil {
			req.OnOutput(sandbox.Stdout, []byte(out))
		}
		return sandbox.ExecResult{Stdout: []byte(out), Stderr: []byte{}}, nil
	}
	return r
}

func (r *runRecorder) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	r.mu.Lock()
	r.runs++
	r.spec, r.req = spec, req
	r.req.OnOutput, r.req.OnDisplay = nil, nil
	r.mu.Unlock()
	return sandbox.RunWith(ctx, r.Fake, spec, req)
}

// seen returns the number of runs so far and the last spec and request.
func (r *runRecorder) seen() (int, sandbox.Spec, sandbox.ExecRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs, r.spec, r.req
}

func TestRun(t *testing.T) {
	t.Parallel()
	rec := newRunRecorder()
	ts := newServer(t, setup{provider: rec})

	resp := ts.do(t, "POST", "/sandbox/run", `{"code":"print(1)","memory_limit":"256m","environment_variables":{"A":"1"},"timeout":2}`)
	if resp.status != http.StatusOK || resp.header.Get("Content-Type") != "application/json" {
		t.Fatalf("POST /sandbox/run = %d %s", resp.status, resp.body)
	}
	res := decode[map[string]any](t, resp)
	want := map[string]any{
		"stdout": "print(1)", "stderr": "", "exit_code": 0.0, "error": nil, "error_traceback": nil,
		"return_value": nil, "timed_out": false, "oom_killed": false, "duration_ms": 0.0, "truncated": false,
		"success": true, "execution_time": 0.0, "stdout_truncated": false, "stderr_truncated": false,
	}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("POST /sandbox/run = %v, want %v (the execute answer)", res, want)
	}
	runs, spec, req := rec.seen()
	if runs != 1 || spec.MemoryLimit != 256<<20 || spec.Env["A"] != "1" || spec.Image != sandbox.DefaultImage {
		t.Errorf("the run reached the provider %d times with spec %+v", runs, spec)
	}
	if want := (sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)", Timeout: 2 * time.Second}); !reflect.DeepEqual(req, want) {
		t.Errorf("the run's request = %+v, want %+v", req, want)
	}

	resp = ts.do(t, "POST", "/sandbox/run", `{"language":"shell","command":["ls","-l"],"workdir":"sub","workspace_mount_path":"/home/user"}`)
	if r := decode[api.ExecResult](t, resp); resp.status != http.StatusOK || r.Stdout != "ls -l" {
		t.Errorf("shell run = %d %s", resp.status, resp.body)
	}
	if _, spec, req := rec.seen(); spec.WorkspacePath != "/home/user" || req.Workdir != "sub" || req.Timeout != 0 {
		t.Errorf("shell run: spec %+v, request %+v", spec, req)
	}

	// A Python exception and a timeout are results.
	resp = ts.do(t, "POST", "/sandbox/run", `{"code":"1/0"}`)
	r := decode[api.ExecResult](t, resp)
	if resp.status != http.StatusOK || r.Success || r.ExitCode != 1 || r.Error == nil || r.Error.Name != "ZeroDivisionError" ||
		r.ErrorTraceback == nil || !strings.Contains(*r.ErrorTraceback, "division by zero") {
		t.Errorf("run raising = %d %s, want 200 with the exception", resp.status, resp.body)
	}
	resp = ts.do(t, "POST", "/sandbox/run", `{"code":"loop","timeout":0.05}`)
	r = decode[api.ExecResult](t, resp)
	if resp.status != http.StatusOK || !r.TimedOut || r.ExitCode != 124 || r.Success || r.Stdout != "partial" {
		t.Errorf("run timing out = %d %s, want 200 with timed_out", resp.status, resp.body)
	}

	// Nothing is left: no sandbox in the provider, none registered, no run.
	if rec.Live() != 0 || rec.Created != 4 || ts.mgr.Active() != 0 || ts.mgr.Runs() != 0 {
		t.Errorf("after the runs: %d live in the provider, %d created, %d registered, %d runs; want 0, 4, 0, 0",
			rec.Live(), rec.Created, ts.mgr.Active(), ts.mgr.Runs())
	}
	m := string(ts.do(t, "GET", "/metrics", nil).body)
	for _, want := range []string{
		`warden_executions_total{language="python",outcome="ok"} 1`,
		`warden_executions_total{language="python",outcome="error"} 1`,
		`warden_executions_total{language="python",outcome="timeout"} 1`,
		`warden_executions_total{language="shell",outcome="ok"} 1`,
		`warden_http_requests_total{route="POST /sandbox/run",code="200"} 4`,
		"warden_runs_live 0", "warden_sandboxes_live 0",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("GET /metrics after the runs lacks %q", want)
		}
	}
}

// TestRunWithoutRunner: on a provider without a one-shot path the run
// creates, executes and destroys.
func TestRunWithoutRunner(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	resp := ts.do(t, "POST", "/sandbox/run", `{"language":"shell","code":"exit 3"}`)
	if r := decode[api.ExecResult](t, resp); resp.status != http.StatusOK || r.ExitCode != 3 || r.Success {
		t.Errorf("run = %d %s, want exit code 3", resp.status, resp.body)
	}
	if ts.fake.Created != 1 || ts.fake.Live() != 0 {
		t.Errorf("created %d, live %d; want 1, 0", ts.fake.Created, ts.fake.Live())
	}
}

func TestRunInvalid(t *testing.T) {
	t.Parallel()
	rec := newRunRecorder()
	ts := newServer(t, setup{provider: rec})
	for _, tt := range []struct {
		path, body string
		want       []string
	}{
		{"/sandbox/run", ``, []string{"request body is empty"}},
		{"/sandbox/run", `[1]`, []string{"JSON object"}},
		{"/sandbox/run", `{"code":"x","idle_timeout":60}`, []string{`unknown field "idle_timeout"`}},
		{"/sandbox/run", `{}`, []string{"python execution needs code"}},
		{"/sandbox/run", `{"code":"x","command":["ls"]}`, []string{"python execution takes code, not command"}},
		{"/sandbox/run", `{"code":"x","timeout":0}`, []string{"timeout 0 s is outside (0, 3600]"}},
		{"/sandbox/run", `{"code":"x","memory_limit":"lots"}`, []string{"memory_limit"}},
		{"/sandbox/run", `{"language":"perl","code":"1","cpu_limit":-1}`, []string{`language "perl"`, "cpu_limit -1 must be positive"}},
		{"/sandbox/run", `{"code":"x","workspace_path":"/tmp","workspace_size":"1g"}`, []string{"workspace_size bounds"}},
		{"/sandbox/run?code=x", ``, []string{"JSON body, not as query parameters"}},
	} {
		resp := ts.do(t, "POST", tt.path, tt.body)
		e := wantError(t, "run "+tt.body, resp, http.StatusBadRequest, "invalid")
		for _, w := range tt.want {
			if !strings.Contains(e.Error.Message, w) {
				t.Errorf("run %s %s: message %q, want it to mention %q", tt.path, tt.body, e.Error.Message, w)
			}
		}
	}
	// A setting the provider cannot enforce is refused as create refuses it.
	limited := newServer(t, setup{provider: limitedProvider{&sandboxtest.Fake{}}})
	e := wantError(t, "run with a memory limit", limited.do(t, "POST", "/sandbox/run", `{"code":"x","memory_limit":"64m"}`), http.StatusBadRequest, "invalid")
	if !strings.Contains(e.Error.Message, "memory_limit: the fake provider cannot enforce it") {
		t.Errorf("run with a memory limit: %q", e.Error.Message)
	}
	if runs, _, _ := rec.seen(); runs != 0 || rec.Created != 0 {
		t.Errorf("invalid runs reached the provider: %d runs, %d created", runs, rec.Created)
	}
}

// TestRunRefused: a policy refusal, a host directory outside the allowed
// ones and the sandbox limit are answered as for create and execute, and
// nothing reaches the provider.
func TestRunRefused(t *testing.T) {
	t.Parallel()
	allowed, outside := t.TempDir(), t.TempDir()
	inside := filepath.Join(allowed, "project")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	rec := newRunRecorder()
	g := &policy.Guard{Provider: rec, Python: policy.DefaultPythonPolicy()}
	ts := newServer(t, setup{provider: g, allowedDirs: []string{allowed}, maxSandboxes: 1})

	for _, accept := range []string{"application/json", "text/event-stream"} {
		e := wantError(t, "refused shell run", ts.do(t, "POST", "/sandbox/run", `{"language":"shell","code":"rm -rf /"}`, "Accept", accept),
			http.StatusForbidden, "denied")
		if e.Error.Rule != string(policy.RuleShellCommand) || e.Error.Reason == "" {
			t.Errorf("refused shell run (%s): %+v, want rule %s", accept, e.Error, policy.RuleShellCommand)
		}
	}
	e := wantError(t, "refused python run", ts.do(t, "POST", "/sandbox/run", `{"code":"import os"}`), http.StatusForbidden, "denied")
	if e.Error.Rule != string(policy.RulePythonImport) {
		t.Errorf("refused python run: %+v", e.Error)
	}
	e = wantError(t, "run outside the allowed dirs", ts.do(t, "POST", "/sandbox/run",
		map[string]any{"code": "x", "additional_read_dirs": []string{outside}}), http.StatusForbidden, "denied")
	if e.Error.Rule != "allowed_host_dirs" {
		t.Errorf("run outside the allowed dirs: %+v", e.Error)
	}
	if runs, _, _ := rec.seen(); runs != 0 || rec.Created != 0 {
		t.Fatalf("refused runs reached the provider: %d runs, %d created", runs, rec.Created)
	}
	resp := ts.do(t, "POST", "/sandbox/run", map[string]any{"code": "x", "workspace_path": inside})
	if resp.status != http.StatusOK {
		t.Fatalf("run inside the allowed dirs = %d %s", resp.status, resp.body)
	}
	if _, spec, _ := rec.seen(); spec.WorkspaceDir != inside {
		t.Errorf("the run's workspace = %q, want %q", spec.WorkspaceDir, inside)
	}

	// At the limit, 429 as for create.
	ts.create(t, nil)
	wantError(t, "run at the limit", ts.do(t, "POST", "/sandbox/run", `{"code":"x"}`), http.StatusTooManyRequests, "limit")
}

func TestRunStream(t *testing.T) {
	t.Parallel()
	rec := newRunRecorder()
	ts := newServer(t, setup{provider: rec})
	resp := ts.do(t, "POST", "/sandbox/run", `{"language":"shell","code":"echo hi"}`, "Accept", "text/event-stream")
	if resp.status != http.StatusOK || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("streamed run = %d %s %s", resp.status, resp.header.Get("Content-Type"), resp.body)
	}
	r := bufio.NewReader(strings.NewReader(string(resp.body)))
	var events []sseEvent
	for {
		ev, err := readEvent(t, r)
		if err != nil {
			break
		}
		events = append(events, ev)
	}
	if len(events) != 2 || events[0] != (sseEvent{"stdout", `{"text":"echo hi"}`}) || events[1].name != "result" {
		t.Fatalf("events = %+v, want stdout then result", events)
	}
	var res api.ExecResult
	if err := json.Unmarshal([]byte(events[1].data), &res); err != nil || res.Stdout != "echo hi" || !res.Success {
		t.Errorf("result event %s: %v", events[1].data, err)
	}
	if rec.Live() != 0 {
		t.Errorf("%d sandboxes left after a streamed run", rec.Live())
	}
}

func TestRunBodyLimit(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{maxBody: 64})
	body, _ := json.Marshal(map[string]string{"code": strings.Repeat("x", 100)})
	wantError(t, "run over the body cap", ts.do(t, "POST", "/sandbox/run", body), http.StatusRequestEntityTooLarge, "too_large")
	if ts.fake.Created != 0 {
		t.Errorf("a run over the body cap created %d sandboxes", ts.fake.Created)
	}
}

// TestRunClient: the Go client's Run against the server, plain and
// streamed, and its errors.
func TestRunClient(t *testing.T) {
	t.Parallel()
	rec := newRunRecorder()
	g := &policy.Guard{Provider: rec, Python: policy.DefaultPythonPolicy()}
	ts := newServer(t, setup{provider: g})
	c := ts.client(t)

	res, err := c.Run(t.Context(), client.RunOptions{
		CreateOptions:  client.CreateOptions{MemoryLimit: "128m", Timeout: 3 * time.Second},
		ExecuteOptions: client.ExecuteOptions{Code: "print(1)"},
	})
	if err != nil || res.Stdout != "print(1)" || !res.Success {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	if _, spec, req := rec.seen(); spec.MemoryLimit != 128<<20 || req.Timeout != 3*time.Second {
		t.Errorf("the run reached the provider with memory %d, timeout %s; want 128 MiB and 3s", spec.MemoryLimit, req.Timeout)
	}

	var streamed strings.Builder
	res, err = c.Run(t.Context(), client.RunOptions{ExecuteOptions: client.ExecuteOptions{Language: api.Shell, Command: []string{"echo", "hi"},
		OnOutput: func(s api.Stream, p []byte) { streamed.WriteString(string(s) + ":" + string(p)) }}})
	if err != nil || res.Stdout != "echo hi" || streamed.String() != "stdout:echo hi" {
		t.Errorf("streamed Run = %+v, %v; streamed %q", res, err, streamed.String())
	}

	_, err = c.Run(t.Context(), client.RunOptions{ExecuteOptions: client.ExecuteOptions{Language: api.Shell, Code: "rm -rf /"}})
	if ae, ok := errors.AsType[*client.APIError](err); !errors.Is(err, client.ErrDenied) || !ok || ae.Rule != string(policy.RuleShellCommand) {
		t.Errorf("refused Run = %v, want ErrDenied with rule %s", err, policy.RuleShellCommand)
	}
	if _, err := c.Run(t.Context(), client.RunOptions{CreateOptions: client.CreateOptions{CPULimit: -1}}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Run with cpu_limit -1 = %v, want ErrInvalid", err)
	}
	if runs, _, _ := rec.seen(); runs != 2 || rec.Live() != 0 {
		t.Errorf("%d runs reached the provider, %d sandboxes left; want 2 and 0", runs, rec.Live())
	}
}
