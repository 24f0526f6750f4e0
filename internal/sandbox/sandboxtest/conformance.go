package sandboxtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// Config adapts the conformance suite to a provider's test environment.
// The zero value suits most providers.
type Config struct {
	// Spec is the base of every spec the suite creates: set what the
	// backend needs to run at all, such as the image. The suite sets the
	// fields it tests (Env, Mounts, Timeout, OutputLimit, WorkspaceDir,
	// limits) itself and applies [sandbox.Spec.WithDefaults].
	Spec sandbox.Spec
	// RuntimeImage says that sandboxes run Warden's runtime image (or its
	// root filesystem), whose Python has matplotlib, numpy and pandas: the
	// cases that use them fail, rather than skip, when they are missing.
	RuntimeImage bool
	// Only, if set, names the cases to run, e.g. "RichOutputsLibraries";
	// empty runs them all.
	Only []string
	// Skip maps the names of cases this environment cannot pass to why;
	// they are skipped with that reason. Keep it to what a backend
	// cannot do by nature and say so precisely: everything else is a bug.
	Skip map[string]string
}

// Run is the conformance suite: every provider's tests call it against
// the real backend, so that all providers agree on the contract of
// [sandbox.Provider]. newProvider returns a new, working provider each
// time it is called; the suite closes every provider it gets.
//
// What the provider cannot enforce is skipped according to its
// Capabilities (mounts, memory limit, network switch), never by a flag.
// Every case checks concrete values and runs in parallel with the others
// where that is safe; the whole suite takes seconds, not minutes.
func Run(t *testing.T, newProvider func(t *testing.T) sandbox.Provider) {
	t.Helper()
	Config{}.Run(t, newProvider)
}

// Run runs the conformance suite with c; see the package-level [Run].
func (c Config) Run(t *testing.T, newProvider func(t *testing.T) sandbox.Provider) {
	t.Helper()
	s := &suite{cfg: c, newProvider: newProvider}
	s.p = s.provider(t)
	s.caps = s.p.Capabilities()
	for _, tc := range cases {
		if len(c.Only) > 0 && !slices.Contains(c.Only, tc.name) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			if why, ok := c.Skip[tc.name]; ok {
				t.Skip(why)
			}
			t.Parallel()
			tc.run(t, s)
		})
	}
}

// Cases returns the names of the conformance cases, in order.
func Cases() []string {
	names := make([]string, len(cases))
	for i, tc := range cases {
		names[i] = tc.name
	}
	return names
}

// cases are the conformance cases, grouped by topic in the files of this
// package.
var cases = []struct {
	name string
	run  func(t *testing.T, s *suite)
}{
	{"PythonState", testPythonState},
	{"PythonOutput", testPythonOutput},
	{"PythonErrors", testPythonErrors},
	{"PythonCrashRecovers", testPythonCrashRecovers},
	{"Shell", testShell},
	{"WorkingDirectory", testWorkingDirectory},
	{"FilesShared", testFilesShared},
	{"Env", testEnv},
	{"EnvDuringExec", testEnvDuringExec},
	{"EnvNotOnCommandLine", testEnvNotOnCommandLine},
	{"Mounts", testMounts},
	{"Network", testNetwork},
	{"MemoryLimit", testMemoryLimit},
	{"PidsLimit", testPidsLimit},
	{"TimeoutPython", testTimeoutPython},
	{"TimeoutPythonUninterruptible", testTimeoutPythonUninterruptible},
	{"TimeoutShell", testTimeoutShell},
	{"TimeoutKillsBackgroundChild", testTimeoutKillsBackgroundChild},
	{"TimeoutDefault", testTimeoutDefault},
	{"Cancel", testCancel},
	{"OutputLimit", testOutputLimit},
	{"OutputFlood", testOutputFlood},
	{"Streaming", testStreaming},
	{"RichOutputs", testRichOutputs},
	{"RichOutputsLibraries", testRichOutputsLibraries},
	{"Processes", testProcesses},
	{"DestroyEndsProcesses", testDestroyEndsProcesses},
	{"WorkspaceQuota", testWorkspaceQuota},
	{"Destroy", testDestroy},
	{"DestroyKillsProcesses", testDestroyKillsProcesses},
	{"DestroyDuringExec", testDestroyDuringExec},
	{"WorkspaceDirKept", testWorkspaceDirKept},
	{"UnknownAndInvalidIDs", testUnknownAndInvalidIDs},
	{"Close", testClose},
	{"Info", testInfo},
	{"InvalidSpec", testInvalidSpec},
	{"InvalidRequest", testInvalidRequest},
	{"ResultShape", testResultShape},
	{"OneShot", testOneShot},
	{"Serialised", testSerialised},
	{"Independent", testIndependent},
}

// Bounds of the suite. Timeouts are short to keep it fast; slack is what
// a provider may take beyond a timeout to report it (the agent's grace
// between SIGINT and SIGKILL, recovery, a loaded machine).
const (
	shortTimeout = 1 * time.Second
	slack        = 5 * time.Second
	// idleForSnapshot is a pause long enough for a provider that
	// snapshots an idle Python session to have done so.
	idleForSnapshot = 300 * time.Millisecond
)

type suite struct {
	cfg         Config
	newProvider func(t *testing.T) sandbox.Provider
	p           sandbox.Provider
	caps        sandbox.Capabilities
}

// provider returns a new provider that is closed when t ends (unless the
// test closed it itself; a second Close must then be harmless).
func (s *suite) provider(t *testing.T) sandbox.Provider {
	t.Helper()
	p := s.newProvider(t)
	if p == nil {
		t.Fatal("newProvider returned nil")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			t.Errorf("%s: Close: %v", p.Name(), err)
		}
	})
	return p
}

// spec returns the base spec changed by mod, with defaults applied.
func (s *suite) spec(mod func(*sandbox.Spec)) sandbox.Spec {
	spec := s.cfg.Spec
	spec.Env = maps.Clone(spec.Env)
	spec.Labels = maps.Clone(spec.Labels)
	spec.Mounts = append([]sandbox.Mount(nil), spec.Mounts...)
	if mod != nil {
		mod(&spec)
	}
	return spec.WithDefaults()
}

// handle is one sandbox of the suite's provider.
type handle struct {
	s    *suite
	p    sandbox.Provider
	info sandbox.Info
	spec sandbox.Spec // as given to Create
}

// create makes a sandbox on the suite's provider, destroyed when t ends.
func (s *suite) create(t *testing.T, mod func(*sandbox.Spec)) *handle {
	t.Helper()
	return s.createOn(t, s.p, mod)
}

func (s *suite) createOn(t *testing.T, p sandbox.Provider, mod func(*sandbox.Spec)) *handle {
	t.Helper()
	spec := s.spec(mod)
	info, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatalf("Create(%+v): %v", spec, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Destroy(ctx, info.ID); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("Destroy(%s): %v", info.ID, err)
		}
	})
	if err := sandbox.ValidateID(string(info.ID)); err != nil {
		t.Fatalf("Create returned an invalid id: %v", err)
	}
	return &handle{s: s, p: p, info: info, spec: spec}
}

func py(code string) sandbox.ExecRequest {
	return sandbox.ExecRequest{Language: sandbox.Python, Code: code}
}

func sh(cmd string) sandbox.ExecRequest {
	return sandbox.ExecRequest{Language: sandbox.Shell, Code: cmd}
}

func withTimeout(req sandbox.ExecRequest, d time.Duration) sandbox.ExecRequest {
	req.Timeout = d
	return req
}

// exec runs req and fails t on an error. It checks the invariants every
// result must keep.
func (b *handle) exec(t *testing.T, req sandbox.ExecRequest) sandbox.ExecResult {
	t.Helper()
	r, err := b.p.Exec(t.Context(), b.info.ID, req)
	if err != nil {
		t.Fatalf("Exec(%s %q): %v", req.Language, req.Code, err)
	}
	b.check(t, req, r)
	return r
}

// check verifies what holds for every result.
func (b *handle) check(t *testing.T, req sandbox.ExecRequest, r sandbox.ExecResult) {
	t.Helper()
	what := fmt.Sprintf("Exec(%s %.60q)", req.Language, req.Code)
	if unisolated := b.s.caps.Isolation == sandbox.IsolationNone; unisolated != (r.Warning != "") {
		t.Errorf("%s: Warning = %q with isolation %q; want a warning exactly when the provider does not isolate", what, r.Warning, b.s.caps.Isolation)
	}
	if r.ExitCode < 0 || r.ExitCode > 255 {
		t.Errorf("%s: ExitCode = %d, want 0..255", what, r.ExitCode)
	}
	if r.TimedOut && r.ExitCode != sandbox.TimeoutExitCode {
		t.Errorf("%s: timed out with ExitCode %d, want %d", what, r.ExitCode, sandbox.TimeoutExitCode)
	}
	if r.Error != nil && r.ExitCode == 0 {
		t.Errorf("%s: Error %+v with ExitCode 0", what, r.Error)
	}
	limit := b.spec.OutputLimit
	if len(r.Stdout) > limit || len(r.Stderr) > limit {
		t.Errorf("%s: %d bytes of stdout and %d of stderr, over the limit of %d", what, len(r.Stdout), len(r.Stderr), limit)
	}
	if r.StdoutTruncated && len(r.Stdout) != limit {
		t.Errorf("%s: stdout truncated at %d bytes, want exactly the limit %d", what, len(r.Stdout), limit)
	}
	if r.StderrTruncated && len(r.Stderr) != limit {
		t.Errorf("%s: stderr truncated at %d bytes, want exactly the limit %d", what, len(r.Stderr), limit)
	}
	if r.Duration < 0 {
		t.Errorf("%s: Duration = %s", what, r.Duration)
	}
	if r.Stdout == nil || r.Stderr == nil {
		t.Errorf("%s: Stdout or Stderr is nil, want empty slices", what)
	}
	size, results := 0, 0
	for i, o := range r.Outputs {
		if err := o.Validate(); err != nil {
			t.Errorf("%s: output %d: %v", what, i, err)
		}
		size += o.Size()
		if o.Type == sandbox.OutputResult {
			results++
		}
	}
	if size > limit || len(r.Outputs) > sandbox.MaxOutputs || results > 1 {
		t.Errorf("%s: %d outputs of %d bytes, %d results; want at most %d outputs, %d bytes, 1 result", what, len(r.Outputs), size, results, sandbox.MaxOutputs, limit)
	}
	if req.Language == sandbox.Shell && (len(r.Outputs) > 0 || r.OutputsTruncated) {
		t.Errorf("%s: a shell execution has rich outputs %+v", what, r.Outputs)
	}
}

// ok runs req and fails t unless it succeeded.
func (b *handle) ok(t *testing.T, req sandbox.ExecRequest) sandbox.ExecResult {
	t.Helper()
	r := b.exec(t, req)
	if r.ExitCode != 0 || r.Error != nil || r.TimedOut {
		t.Fatalf("Exec(%s %q) = exit %d, error %+v, timed out %v; stdout %q stderr %q", req.Language, req.Code, r.ExitCode, r.Error, r.TimedOut, r.Stdout, r.Stderr)
	}
	return r
}

// value runs Python code and returns the repr of its final expression.
func (b *handle) value(t *testing.T, code string) string {
	t.Helper()
	r := b.ok(t, py(code))
	if r.ReturnValue == nil {
		t.Fatalf("Exec(python %q): no ReturnValue (stdout %q)", code, r.Stdout)
	}
	return *r.ReturnValue
}

// wantValue checks the repr of Python code's final expression.
func (b *handle) wantValue(t *testing.T, code, want string) {
	t.Helper()
	if got := b.value(t, code); got != want {
		t.Errorf("Exec(python %q).ReturnValue = %s, want %s", code, got, want)
	}
}

// stdout runs a shell command that must succeed and returns its stdout.
func (b *handle) stdout(t *testing.T, cmd string) string {
	t.Helper()
	return string(b.ok(t, sh(cmd)).Stdout)
}

// wantStdout checks a successful shell command's stdout.
func (b *handle) wantStdout(t *testing.T, cmd, want string) {
	t.Helper()
	if got := b.stdout(t, cmd); got != want {
		t.Errorf("Exec(shell %q).Stdout = %q, want %q", cmd, got, want)
	}
}

// timed runs req and returns the result with the wall time Exec took.
func (b *handle) timed(t *testing.T, req sandbox.ExecRequest) (sandbox.ExecResult, time.Duration) {
	t.Helper()
	start := time.Now()
	r := b.exec(t, req)
	return r, time.Since(start)
}

// hostDir returns a new host directory that any user may change, so
// sandboxed code (uid 1000 in containers) can write it whoever runs the
// tests.
func hostDir(t *testing.T) string {
	t.Helper()
	d := testutil.SharedDir(t)
	if err := os.Chmod(d, 0o777); err != nil {
		t.Fatal(err)
	}
	return d
}

// fileSize returns the size of a host file, -1 if it does not exist.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// waitGrowing waits until the host file at path exists and grows, proof
// that the process writing it runs.
func waitGrowing(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(slack)
	first := fileSize(t, path)
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if n := fileSize(t, path); n > 0 && n > first {
			return
		}
	}
	t.Fatalf("%s does not grow: the writer never ran", path)
}

// wantStill checks that the host file at path stops changing: the process
// that wrote it is gone.
func wantStill(t *testing.T, path, why string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // a write in flight may land
	before := fileSize(t, path)
	time.Sleep(700 * time.Millisecond)
	if after := fileSize(t, path); after != before {
		t.Errorf("%s grew from %d to %d bytes %s: a process of the sandbox still runs", path, before, after, why)
	}
}

// collector records OnOutput chunks.
type collector struct {
	mu     sync.Mutex
	chunks []chunk
}

type chunk struct {
	s  sandbox.Stream
	p  string
	at time.Time
}

func (c *collector) on(s sandbox.Stream, p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chunks = append(c.chunks, chunk{s: s, p: string(p), at: time.Now()})
}

// joined returns everything delivered on stream s.
func (c *collector) joined(s sandbox.Stream) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, ch := range c.chunks {
		if ch.s == s {
			b.WriteString(ch.p)
		}
	}
	return b.String()
}

// firstWith returns when a chunk of stream s containing sub arrived.
func (c *collector) firstWith(s sandbox.Stream, sub string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var seen strings.Builder
	for _, ch := range c.chunks {
		if ch.s != s {
			continue
		}
		seen.WriteString(ch.p)
		if strings.Contains(seen.String(), sub) {
			return ch.at, true
		}
	}
	return time.Time{}, false
}
