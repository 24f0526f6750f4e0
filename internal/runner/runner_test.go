package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// fakeProvider is sandboxtest.Fake plus what the runner relies on that
// the fake does not model: Destroy ends a running execution (as a real
// provider's does), and the specs sandboxes were created with.
type fakeProvider struct {
	*sandboxtest.Fake
	// exec answers executions; it gets a channel closed when the
	// sandbox is destroyed.
	exec func(ctx context.Context, req sandbox.ExecRequest, gone <-chan struct{}) (sandbox.ExecResult, error)

	// destroyErr, if set, makes Destroy fail (after ending executions).
	destroyErr error

	mu    sync.Mutex
	specs []sandbox.Spec
	gone  map[sandbox.ID]chan struct{}
}

func newFake(exec func(ctx context.Context, req sandbox.ExecRequest, gone <-chan struct{}) (sandbox.ExecResult, error)) *fakeProvider {
	f := &fakeProvider{Fake: &sandboxtest.Fake{}, exec: exec, gone: map[sandbox.ID]chan struct{}{}}
	f.Fake.ExecFunc = func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		f.mu.Lock()
		gone := f.gone[id]
		f.mu.Unlock()
		return f.exec(ctx, req, gone)
	}
	return f
}

func (f *fakeProvider) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	info, err := f.Fake.Create(ctx, spec)
	if err != nil {
		return info, err
	}
	f.mu.Lock()
	f.specs = append(f.specs, spec)
	f.gone[info.ID] = make(chan struct{})
	f.mu.Unlock()
	return info, nil
}

func (f *fakeProvider) Destroy(ctx context.Context, id sandbox.ID) error {
	f.mu.Lock()
	if c := f.gone[id]; c != nil {
		close(c)
		delete(f.gone, id)
	}
	f.mu.Unlock()
	if f.destroyErr != nil {
		return f.destroyErr
	}
	return f.Fake.Destroy(ctx, id)
}

// emit answers an execution with output chunks and an exit code.
func emit(code int, chunks ...any) func(context.Context, sandbox.ExecRequest, <-chan struct{}) (sandbox.ExecResult, error) {
	return func(_ context.Context, req sandbox.ExecRequest, _ <-chan struct{}) (sandbox.ExecResult, error) {
		r := sandbox.ExecResult{ExitCode: code}
		for i := 0; i < len(chunks); i += 2 {
			s, p := chunks[i].(sandbox.Stream), []byte(chunks[i+1].(string))
			req.OnOutput(s, p)
			if s == sandbox.Stdout {
				r.Stdout = append(r.Stdout, p...)
			} else {
				r.Stderr = append(r.Stderr, p...)
			}
		}
		return r, nil
	}
}

func writeScript(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newTestRunner(t *testing.T, p sandbox.Provider, opts Options) *Runner {
	t.Helper()
	if opts.LogDir == "" {
		opts.LogDir = filepath.Join(t.TempDir(), "logs")
	}
	r, err := New(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func readResult(t *testing.T, dir string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ResultFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("result.json: %v\n%s", err, b)
	}
	return m
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunRecordsOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                    string
		exec                    func(context.Context, sandbox.ExecRequest, <-chan struct{}) (sandbox.ExecResult, error)
		success                 bool
		exit                    int
		errText                 string
		stdout, stderr, console string
	}{
		{
			name: "success", exec: emit(0, sandbox.Stdout, "hello\n"),
			success: true, exit: 0, stdout: "hello\n", console: "hello\n",
		},
		{
			name: "failure keeps its exit code", exec: emit(3, sandbox.Stdout, "partial\n", sandbox.Stderr, "boom\n"),
			exit: 3, errText: "script exited with code 3", stdout: "partial\n", stderr: "boom\n", console: "partial\nboom\n",
		},
		{
			name: "interleaved in arrival order", exec: emit(0, sandbox.Stdout, "1", sandbox.Stderr, "2", sandbox.Stdout, "3", sandbox.Stderr, "4"),
			success: true, stdout: "13", stderr: "24", console: "1234",
		},
		{
			name: "binary bytes kept", exec: emit(0, sandbox.Stdout, "\x00\xff\xfe\n", sandbox.Stderr, "\x80"),
			success: true, stdout: "\x00\xff\xfe\n", stderr: "\x80", console: "\x00\xff\xfe\n\x80",
		},
		{
			name: "out of memory",
			exec: func(_ context.Context, req sandbox.ExecRequest, _ <-chan struct{}) (sandbox.ExecResult, error) {
				req.OnOutput(sandbox.Stdout, []byte("alloc\n"))
				return sandbox.ExecResult{ExitCode: 137, OOMKilled: true}, nil
			},
			exit: 137, errText: "out of memory", stdout: "alloc\n", console: "alloc\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newFake(tt.exec)
			r := newTestRunner(t, p, Options{})
			res, err := r.Run(t.Context(), Job{Script: writeScript(t, "task.py", "print('hello')\n"), Framework: "none"})
			if err != nil {
				t.Fatalf("Run() error = %v", err)
			}
			if res.Success != tt.success || res.ExitCode != tt.exit || !strings.Contains(res.Error, tt.errText) || (tt.errText == "") != (res.Error == "") {
				t.Errorf("Run() = success %v, exit %d, error %q; want %v, %d, %q", res.Success, res.ExitCode, res.Error, tt.success, tt.exit, tt.errText)
			}
			for name, want := range map[string]string{StdoutLog: tt.stdout, StderrLog: tt.stderr, ConsoleLog: tt.console} {
				if got := readFile(t, res.LogDir, name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			m := readResult(t, res.LogDir)
			for _, key := range []string{"success", "exit_code", "stdout", "stderr", "log_dir", "run_id", "duration", "timed_out", "error", "script", "framework", "image", "started_at"} {
				if _, ok := m[key]; !ok {
					t.Errorf("result.json lacks %q", key)
				}
			}
			if m["success"] != tt.success || m["exit_code"] != float64(tt.exit) || m["log_dir"] != res.LogDir || m["run_id"] != res.RunID || m["framework"] != "none" {
				t.Errorf("result.json = %v, want it to match %+v", m, res)
			}
			if p.Live() != 0 {
				t.Errorf("%d sandboxes left after Run", p.Live())
			}
		})
	}
}

func TestRunSpecAndJobUntouched(t *testing.T) {
	t.Parallel()
	p := newFake(emit(0))
	creds := t.TempDir()
	r := newTestRunner(t, p, Options{
		Spec:        sandbox.Spec{Image: "img:base", MemoryLimit: 64 << 20, Env: map[string]string{"BASE": "1", "PYTHONUNBUFFERED": "0"}},
		OutputLimit: 5 << 20,
	})
	env := map[string]string{"FOO": "bar", "PYTHONUNBUFFERED": ""}
	args := []string{"--x", "a b"}
	job := Job{Script: writeScript(t, "my script.py", ""), Args: args, Env: env, Image: "img:job", Credentials: creds, Network: true, Timeout: 7 * time.Second}
	envBefore, argsBefore := maps.Clone(env), slices.Clone(args)

	var argv []string
	p.exec = func(_ context.Context, req sandbox.ExecRequest, _ <-chan struct{}) (sandbox.ExecResult, error) {
		argv = req.Argv
		if req.Timeout <= 7*time.Second {
			t.Errorf("exec timeout %s: want a backstop beyond the run's own 7s", req.Timeout)
		}
		return sandbox.ExecResult{}, nil
	}
	res, err := r.Run(t.Context(), job)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(env, envBefore) || !slices.Equal(args, argsBefore) {
		t.Errorf("Run modified the job: env %v, args %v; were %v, %v", env, args, envBefore, argsBefore)
	}
	if len(p.specs) != 1 {
		t.Fatalf("%d sandboxes created, want 1", len(p.specs))
	}
	s := p.specs[0]
	wantEnv := map[string]string{"BASE": "1", "FOO": "bar", "PYTHONUNBUFFERED": "", "WARDEN_RUN_ID": res.RunID, "WARDEN_CREDENTIALS": CredentialsPath}
	if !maps.Equal(s.Env, wantEnv) {
		t.Errorf("sandbox env = %v, want %v", s.Env, wantEnv)
	}
	if s.Image != "img:job" || s.MemoryLimit != 64<<20 || !s.Network || s.OutputLimit != 5<<20 {
		t.Errorf("spec = image %q, memory %d, network %v, output limit %d", s.Image, s.MemoryLimit, s.Network, s.OutputLimit)
	}
	if s.WorkspaceDir != filepath.Join(res.LogDir, WorkspaceDir) {
		t.Errorf("workspace %q, want the run's own %q", s.WorkspaceDir, filepath.Join(res.LogDir, WorkspaceDir))
	}
	if want := []sandbox.Mount{{Source: creds, Target: CredentialsPath, ReadOnly: true}}; !slices.Equal(s.Mounts, want) {
		t.Errorf("mounts = %v, want %v", s.Mounts, want)
	}
	if want := []string{"python3", "/workspace/my script.py", "--x", "a b"}; !slices.Equal(argv, want) {
		t.Errorf("argv = %q, want %q", argv, want)
	}
	if b, err := os.ReadFile(filepath.Join(s.WorkspaceDir, "my script.py")); err != nil || len(b) != 0 {
		t.Errorf("script copy: %q, %v", b, err)
	}
	if !regexp.MustCompile(`^run_my_script_[0-9a-f]{8}$`).MatchString(res.RunID) {
		t.Errorf("run id %q", res.RunID)
	}
	if res.Image != "img:job" || res.Timeout != 7 || !slices.Equal(res.Args, args) {
		t.Errorf("result image %q, timeout %v, args %v", res.Image, res.Timeout, res.Args)
	}

	// Read-write on request; the base spec's env is not changed either.
	job.CredentialsWritable = true
	if _, err := r.Run(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	if m := p.specs[1].Mounts; len(m) != 1 || m[0].ReadOnly {
		t.Errorf("mounts with CredentialsWritable = %v", m)
	}
	if r.opts.Spec.Env["PYTHONUNBUFFERED"] != "0" || len(r.opts.Spec.Env) != 2 {
		t.Errorf("Options.Spec.Env modified: %v", r.opts.Spec.Env)
	}
}

func TestRunDefaultsUnbuffered(t *testing.T) {
	t.Parallel()
	p := newFake(emit(0))
	r := newTestRunner(t, p, Options{})
	if _, err := r.Run(t.Context(), Job{Script: writeScript(t, "a.py", "")}); err != nil {
		t.Fatal(err)
	}
	if s := p.specs[0]; s.Env["PYTHONUNBUFFERED"] != "1" || s.Network || len(s.Mounts) != 0 {
		t.Errorf("default spec: env %v, network %v, mounts %v", s.Env, s.Network, s.Mounts)
	}
}

func TestRunRefusesBadJobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := writeScript(t, "ok.py", "")
	tests := []struct {
		name string
		job  Job
		want string
		is   error
	}{
		{"missing script", Job{Script: filepath.Join(dir, "nope.py")}, "nope.py: not found", sandbox.ErrNotFound},
		{"directory as script", Job{Script: dir}, "is not a regular file", sandbox.ErrInvalid},
		{"no script", Job{}, "no script", sandbox.ErrInvalid},
		{"bad env name", Job{Script: script, Env: map[string]string{"A-B": "x"}}, "A-B", sandbox.ErrInvalid},
		{"negative timeout", Job{Script: script, Timeout: -time.Second}, "negative", sandbox.ErrInvalid},
		{"credentials not a dir", Job{Script: script, Credentials: filepath.Join(dir, "none")}, "credentials", sandbox.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newFake(emit(0))
			r := newTestRunner(t, p, Options{})
			res, err := r.Run(t.Context(), tt.job)
			if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run() error = %v, want %v mentioning %q", err, tt.is, tt.want)
			}
			if res.Success || res.Error == "" || res.RunID != "" || res.LogDir != "" || res.ExitCode != -1 {
				t.Errorf("Run() = %+v, want a failure without run directory", res)
			}
			if p.Created != 0 {
				t.Errorf("a sandbox was created for a refused job")
			}
			if _, err := os.Stat(r.LogDir()); err == nil {
				if entries, _ := os.ReadDir(r.LogDir()); len(entries) > 0 {
					t.Errorf("run directories made for a refused job: %v", entries)
				}
			}
		})
	}
}

func TestRunCreateFailureIsRecorded(t *testing.T) {
	t.Parallel()
	p := newFake(emit(0))
	p.CreateErr = errors.New("image \"x\" is not on the Docker engine")
	r := newTestRunner(t, p, Options{})
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "a.py", "")})
	if err == nil || !strings.Contains(err.Error(), "creating sandbox") {
		t.Fatalf("Run() error = %v, want a creation error", err)
	}
	m := readResult(t, res.LogDir)
	if m["success"] != false || !strings.Contains(m["error"].(string), "not on the Docker engine") || m["exit_code"] != float64(-1) {
		t.Errorf("result.json = %v", m)
	}
}

// A timeout destroys the sandbox; output up to then is in the logs, and
// nothing else.
func TestRunTimeout(t *testing.T) {
	t.Parallel()
	p := newFake(func(_ context.Context, req sandbox.ExecRequest, gone <-chan struct{}) (sandbox.ExecResult, error) {
		req.OnOutput(sandbox.Stdout, []byte("before\n"))
		req.OnOutput(sandbox.Stderr, []byte("warn\n"))
		<-gone
		return sandbox.ExecResult{ExitCode: 137}, errors.New("sandbox is closed")
	})
	r := newTestRunner(t, p, Options{})
	start := time.Now()
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "slow.py", ""), Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatalf("Run() error = %v, want a result", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Run() took %s", el)
	}
	if !res.TimedOut || res.Success || res.ExitCode != sandbox.TimeoutExitCode || res.Error != "Timeout after 0.3 seconds" {
		t.Errorf("Run() = %+v, want a timeout", res)
	}
	if got := readFile(t, res.LogDir, ConsoleLog); got != "before\nwarn\n" {
		t.Errorf("console.log = %q", got)
	}
	if p.Live() != 0 || p.Destroyed != 1 {
		t.Errorf("live %d, destroyed %d; want 0, 1", p.Live(), p.Destroyed)
	}
	if m := readResult(t, res.LogDir); m["timed_out"] != true || m["error"] != "Timeout after 0.3 seconds" || m["stdout"] != "before\n" {
		t.Errorf("result.json = %v", m)
	}
}

func TestRunCancelled(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	p := newFake(func(_ context.Context, req sandbox.ExecRequest, gone <-chan struct{}) (sandbox.ExecResult, error) {
		req.OnOutput(sandbox.Stdout, []byte("working\n"))
		close(started)
		<-gone
		return sandbox.ExecResult{ExitCode: 137}, errors.New("sandbox is closed")
	})
	r := newTestRunner(t, p, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { <-started; cancel() }()
	res, err := r.Run(ctx, Job{Script: writeScript(t, "a.py", "")})
	if !errors.Is(err, context.Canceled) || res.TimedOut || res.Success || !strings.Contains(res.Error, "cancelled") {
		t.Errorf("Run() = %+v, %v; want cancelled", res, err)
	}
	if got := readFile(t, res.LogDir, StdoutLog); got != "working\n" || p.Live() != 0 {
		t.Errorf("stdout.log = %q, live sandboxes %d", got, p.Live())
	}
	if m := readResult(t, res.LogDir); !strings.Contains(m["error"].(string), "cancelled") {
		t.Errorf("result.json = %v", m)
	}
}

func TestRunOutputLimitAndPreview(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 3000) + "é" + strings.Repeat("y", 99)
	p := newFake(emit(0, sandbox.Stdout, big[:1000], sandbox.Stdout, big[1000:], sandbox.Stderr, "short"))
	r := newTestRunner(t, p, Options{OutputLimit: 2000, PreviewLimit: 100})
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "a.py", "")})
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, res.LogDir, StdoutLog); got != big[:2000] {
		t.Errorf("stdout.log has %d bytes, want the first 2000", len(got))
	}
	if !res.StdoutTruncated || res.StderrTruncated || res.StdoutBytes != 2000 || res.StderrBytes != 5 {
		t.Errorf("truncated %v/%v, bytes %d/%d", res.StdoutTruncated, res.StderrTruncated, res.StdoutBytes, res.StderrBytes)
	}
	if res.Stdout != strings.Repeat("x", 100) || res.Stderr != "short" {
		t.Errorf("previews %q, %q", res.Stdout, res.Stderr)
	}

	// The preview is the end of the stream and never starts inside a
	// character.
	p2 := newFake(emit(0, sandbox.Stdout, big))
	r2 := newTestRunner(t, p2, Options{PreviewLimit: 100})
	res, _ = r2.Run(t.Context(), Job{Script: writeScript(t, "a.py", "")})
	if want := strings.Repeat("y", 99); res.Stdout != want {
		t.Errorf("preview = %q, want %q", res.Stdout, want)
	}
}

func TestRunLiveOutput(t *testing.T) {
	t.Parallel()
	p := newFake(emit(0, sandbox.Stdout, "a", sandbox.Stderr, "b"))
	r := newTestRunner(t, p, Options{})
	var got bytes.Buffer
	_, err := r.Run(t.Context(), Job{Script: writeScript(t, "a.py", ""), OnOutput: func(s sandbox.Stream, b []byte) {
		got.WriteString(string(s) + ":" + string(b) + ";")
	}})
	if err != nil || got.String() != "stdout:a;stderr:b;" {
		t.Errorf("live output %q, %v", got.String(), err)
	}
}

func TestRunAll(t *testing.T) {
	t.Parallel()
	var running, peak atomic.Int32
	p := newFake(func(_ context.Context, req sandbox.ExecRequest, _ <-chan struct{}) (sandbox.ExecResult, error) {
		n := running.Add(1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		running.Add(-1)
		code := 0
		if strings.HasSuffix(req.Argv[1], "bad.py") {
			code = 2
		}
		return sandbox.ExecResult{ExitCode: code}, nil
	})
	r := newTestRunner(t, p, Options{})
	dir := t.TempDir()
	var jobs []Job
	for _, n := range []string{"a.py", "bad.py", "c.py", "d.py", "e.py"} {
		os.WriteFile(filepath.Join(dir, n), nil, 0o644)
		jobs = append(jobs, Job{Script: filepath.Join(dir, n)})
	}
	jobs = append(jobs, Job{Script: filepath.Join(dir, "missing.py")})
	results := r.RunAll(t.Context(), jobs, 2)
	if len(results) != len(jobs) {
		t.Fatalf("%d results for %d jobs", len(results), len(jobs))
	}
	for i, res := range results {
		if res.Script != jobs[i].Script {
			t.Errorf("result %d is for %s, want %s", i, res.Script, jobs[i].Script)
		}
	}
	if peak.Load() != 2 {
		t.Errorf("peak concurrency %d, want 2", peak.Load())
	}
	if !results[0].Success || results[1].Success || results[1].ExitCode != 2 || results[5].Success || !strings.Contains(results[5].Error, "not found") {
		t.Errorf("results: %+v", results)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for _, res := range r.RunAll(ctx, jobs[:2], 1) {
		if res.Success || !strings.Contains(res.Error, "not started") {
			t.Errorf("after cancel: %+v", res)
		}
	}
}

func TestNewRunID(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"task":                   `^run_task_[0-9a-f]{8}$`,
		"my task (1)":            `^run_my_task__1__[0-9a-f]{8}$`,
		"../../etc":              `^run_.._.._etc_[0-9a-f]{8}$`,
		"":                       `^run_script_[0-9a-f]{8}$`,
		"..":                     `^run_script_[0-9a-f]{8}$`,
		"ünï":                    `^run_[_]+n[_]+_[0-9a-f]{8}$`,
		strings.Repeat("a", 100): `^run_a{40}_[0-9a-f]{8}$`,
	}
	for stem, want := range tests {
		id := NewRunID(stem)
		if !regexp.MustCompile(want).MatchString(id) {
			t.Errorf("NewRunID(%q) = %q, want %s", stem, id, want)
		}
		if err := sandbox.ValidateID(id); err != nil || strings.Contains(id, "/") {
			t.Errorf("NewRunID(%q) = %q is not a safe path component: %v", stem, id, err)
		}
	}
	if NewRunID("x") == NewRunID("x") {
		t.Error("NewRunID returned the same ID twice")
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil) = nil error")
	}
	for _, o := range []Options{{Timeout: -1}, {OutputLimit: -5}, {OutputLimit: 2 << 30}, {PreviewLimit: -1}} {
		if _, err := New(&sandboxtest.Fake{}, o); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", o, err)
		}
	}
	r, err := New(&sandboxtest.Fake{}, Options{})
	if err != nil || !filepath.IsAbs(r.LogDir()) || filepath.Base(r.LogDir()) != DefaultLogDir || r.opts.Timeout != DefaultTimeout || r.opts.OutputLimit != DefaultOutputLimit {
		t.Errorf("New() defaults: %+v, %v", r.opts, err)
	}
}

// Whatever the script's name, its run ID is one safe path component.
func FuzzNewRunID(f *testing.F) {
	for _, s := range []string{"task", "", "..", "../x", "a/b", "ünï", "\x00", strings.Repeat("z", 80)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stem string) {
		id := NewRunID(stem)
		if err := sandbox.ValidateID(id); err != nil || strings.ContainsAny(id, "/\\") || !strings.HasPrefix(id, "run_") {
			t.Fatalf("NewRunID(%q) = %q: %v", stem, id, err)
		}
	})
}

// A sandbox that could not be removed may still run: the run is not a
// success, and says why.
func TestRunDestroyFailure(t *testing.T) {
	t.Parallel()
	p := newFake(emit(0, sandbox.Stdout, "done\n"))
	p.destroyErr = errors.New("daemon went away")
	r := newTestRunner(t, p, Options{})
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "a.py", "")})
	if err == nil || !strings.Contains(err.Error(), "daemon went away") || res.Success || !strings.Contains(res.Error, "destroying sandbox") {
		t.Errorf("Run() = %+v, %v; want a failure naming the destroy error", res, err)
	}
	if m := readResult(t, res.LogDir); m["success"] != false || !strings.Contains(m["error"].(string), "daemon went away") {
		t.Errorf("result.json = %v", m)
	}
}
