package policy

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// countingFake is a fake provider that counts the executions reaching it.
func countingFake() (*sandboxtest.Fake, *atomic.Int64) {
	var n atomic.Int64
	f := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		n.Add(1)
		return sandbox.ExecResult{Stdout: []byte("ran")}, nil
	}}
	return f, &n
}

func TestGuardExec(t *testing.T) {
	t.Parallel()
	f, calls := countingFake()
	g := &Guard{Provider: f, Shell: ShellPolicy{}, Python: DefaultPythonPolicy(), MaxInput: 64}
	info, err := g.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		req  sandbox.ExecRequest
		rule Rule // "" = allowed
	}{
		{"allowed shell", sandbox.ExecRequest{Language: sandbox.Shell, Code: "echo 'a|b' | wc -c"}, ""},
		{"refused shell", sandbox.ExecRequest{Language: sandbox.Shell, Code: "FOO=1 rm -rf /"}, RuleShellCommand},
		{"refused argv", sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"rm", "-rf", "/"}}, RuleShellCommand},
		{"allowed argv", sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"ls", "-l"}}, ""},
		{"refused python", sandbox.ExecRequest{Language: sandbox.Python, Code: "getattr(__builtins__, 'exec')('1')"}, RulePythonFunction},
		{"allowed python", sandbox.ExecRequest{Language: sandbox.Python, Code: "x = 1 + 1\nx"}, ""},
		{"shell too long", sandbox.ExecRequest{Language: sandbox.Shell, Code: "echo " + strings.Repeat("a", 64)}, RuleShellInputSize},
		{"argv too long", sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"echo", strings.Repeat("a", 61)}}, RuleShellInputSize},
		{"python too long", sandbox.ExecRequest{Language: sandbox.Python, Code: strings.Repeat("1", 65)}, RulePythonInputSize},
	}
	for _, c := range cases {
		before := calls.Load()
		r, err := g.Exec(t.Context(), info.ID, c.req)
		ran := calls.Load() - before
		if c.rule == "" {
			if err != nil || ran != 1 || string(r.Stdout) != "ran" {
				t.Errorf("%s: err %v, ran %d, result %+v; want it to run", c.name, err, ran, r)
			}
			continue
		}
		pe, ok := errors.AsType[*PolicyError](err)
		if !ok || pe.Rule != c.rule || ran != 0 || !errors.Is(err, sandbox.ErrDenied) {
			t.Errorf("%s: err %v, ran %d; want a %s refusal and nothing run", c.name, err, ran, c.rule)
		}
	}
}

func TestGuardBypass(t *testing.T) {
	t.Parallel()
	f, calls := countingFake()
	g := &Guard{Provider: f, Shell: ShellPolicy{Bypass: true}, Python: PythonPolicy{Trusted: true}, MaxInput: 8}
	info, err := g.Create(t.Context(), sandbox.Spec{Env: map[string]string{"LD_PRELOAD": "/x.so"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, req := range []sandbox.ExecRequest{
		{Language: sandbox.Shell, Code: "rm -rf /tmp/x && curl example.com"},
		{Language: sandbox.Python, Code: "import os; os.system('id')"},
	} {
		if _, err := g.Exec(t.Context(), info.ID, req); err != nil {
			t.Errorf("%q: %v; bypassed policies refuse nothing and bound nothing", req.Code, err)
		}
	}
	if calls.Load() != 2 {
		t.Errorf("%d executions reached the provider, want 2", calls.Load())
	}
}

func TestGuardEnv(t *testing.T) {
	t.Parallel()
	f, _ := countingFake()
	g := &Guard{Provider: f}
	if _, err := g.Create(t.Context(), sandbox.Spec{Env: map[string]string{"BASH_ENV": "/w/x"}}); !errors.Is(err, sandbox.ErrDenied) {
		t.Fatalf("Create with BASH_ENV: %v, want a refusal", err)
	}
	if f.Created != 0 {
		t.Fatalf("a refused spec reached the provider")
	}
	info, err := g.Create(t.Context(), sandbox.Spec{Env: map[string]string{"GREETING": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.UpdateEnv(t.Context(), info.ID, sandbox.EnvUpdate{Set: map[string]string{"PATH": "/w"}}); !errors.Is(err, sandbox.ErrDenied) {
		t.Fatalf("UpdateEnv PATH: %v, want a refusal", err)
	}
	env, err := g.Env(t.Context(), info.ID)
	if err != nil || env["PATH"] != "" || env["GREETING"] != "hi" {
		t.Fatalf("env after a refused update: %v %v", env, err)
	}
	if _, err := g.UpdateEnv(t.Context(), info.ID, sandbox.EnvUpdate{Set: map[string]string{"NAME": "x"}}); err != nil {
		t.Fatal(err)
	}
}

func TestRefusalResult(t *testing.T) {
	t.Parallel()
	sh := RefusalResult(&PolicyError{Rule: RuleShellCommand, Reason: "Command 'rm' is not allowed"})
	if sh.ExitCode != 1 || string(sh.Stderr) != "Command rejected for security reasons: Command 'rm' is not allowed\n" || sh.Error != nil {
		t.Errorf("shell refusal result: %+v", sh)
	}
	py := RefusalResult(&PolicyError{Rule: RulePythonImport, Reason: "Importing module(s) os is not allowed."})
	if py.ExitCode != 1 || py.Error == nil || py.ErrorTraceback() != "SECURITY VIOLATION: Importing module(s) os is not allowed." {
		t.Errorf("python refusal result: %+v", py)
	}
}

// BenchmarkGuardExec measures what the guard adds to one typical
// execution in front of a provider that does nothing.
func BenchmarkGuardExec(b *testing.B) {
	f, _ := countingFake()
	g := &Guard{Provider: f, Python: DefaultPythonPolicy()}
	info, err := g.Create(b.Context(), sandbox.Spec{})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		req  sandbox.ExecRequest
	}{
		{"shell", sandbox.ExecRequest{Language: sandbox.Shell, Code: `grep -rn "def " . | sort | uniq -c | head -20`}},
		{"python", sandbox.ExecRequest{Language: sandbox.Python, Code: "import json\ndata = [i * i for i in range(10)]\nprint(json.dumps({'sum': sum(data)}))\n"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := g.Exec(b.Context(), info.ID, c.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// procsFake is a provider whose process runner records starts.
type procsFake struct {
	*sandboxtest.Fake
	runner *fakeRunner
}

func (p procsFake) Processes() sandbox.ProcessRunner { return p.runner }

type fakeRunner struct {
	sandbox.ProcessRunner // unused methods panic
	started               []sandbox.ProcessSpec
}

func (r *fakeRunner) StartProcess(ctx context.Context, id sandbox.ID, spec sandbox.ProcessSpec) (sandbox.ProcessInfo, *sandbox.ProcessWatch, error) {
	r.started = append(r.started, spec)
	return sandbox.ProcessInfo{PID: len(r.started), Running: true}, nil, nil
}

// TestGuardProcesses: a background process's command and environment pass
// the checks an execution's do; without a runner below, the guard has
// none either.
func TestGuardProcesses(t *testing.T) {
	t.Parallel()
	r := &fakeRunner{}
	g := &Guard{Provider: procsFake{Fake: &sandboxtest.Fake{}, runner: r}, Shell: ShellPolicy{}, Python: DefaultPythonPolicy(), MaxInput: 1024}
	pr := g.Processes()
	if pr == nil {
		t.Fatal("the guard hides the provider's processes")
	}
	for _, c := range []struct {
		spec sandbox.ProcessSpec
		rule Rule
	}{
		{sandbox.ProcessSpec{Command: "ls -l | wc -l"}, ""},
		{sandbox.ProcessSpec{Argv: []string{"cat", "f"}}, ""},
		{sandbox.ProcessSpec{Command: "sleep 1; rm -rf /"}, RuleShellCommand},
		{sandbox.ProcessSpec{Argv: []string{"rm", "-rf", "/"}}, RuleShellCommand},
		{sandbox.ProcessSpec{Command: "ls", Env: map[string]string{"LD_PRELOAD": "/x.so"}}, RuleShellEnv},
	} {
		before := len(r.started)
		_, _, err := pr.StartProcess(t.Context(), "sb-1", c.spec)
		pe, refused := errors.AsType[*PolicyError](err)
		switch {
		case c.rule == "" && err != nil:
			t.Errorf("%+v refused: %v", c.spec, err)
		case c.rule != "" && (!refused || pe.Rule != c.rule):
			t.Errorf("%+v = %v, want rule %s", c.spec, err, c.rule)
		case c.rule != "" && len(r.started) != before:
			t.Errorf("%+v was refused but started", c.spec)
		}
	}
	if (&Guard{Provider: &sandboxtest.Fake{}}).Processes() != nil {
		t.Error("a guard over a provider without processes offers them")
	}
}
