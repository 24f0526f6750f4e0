package policy

import (
	"context"
	"errors"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// runnerFake is a provider with a one-shot path that counts its runs.
type runnerFake struct {
	*sandboxtest.Fake
	runs int
}

func (r *runnerFake) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	r.runs++
	return sandbox.ExecResult{Stdout: []byte("one-shot")}, nil
}

// TestGuardRun: a one-shot run passes Exec's checks on its request and
// Create's on its environment; a refusal is a *PolicyError with a zero
// result and the provider never sees the run. Allowed runs take the
// provider's one-shot path when it has one, else create, exec, destroy.
func TestGuardRun(t *testing.T) {
	t.Parallel()
	spec := sandbox.Spec{}.WithDefaults()
	for _, c := range []struct {
		name string
		env  map[string]string
		req  sandbox.ExecRequest
		rule Rule // "" = allowed
	}{
		{"allowed shell", nil, sandbox.ExecRequest{Language: sandbox.Shell, Code: "ls -l | wc -l"}, ""},
		{"allowed python", map[string]string{"GREETING": "hi"}, sandbox.ExecRequest{Language: sandbox.Python, Code: "x = 1"}, ""},
		{"refused shell", nil, sandbox.ExecRequest{Language: sandbox.Shell, Code: "rm -rf /"}, RuleShellCommand},
		{"refused argv", nil, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"rm", "-rf", "/"}}, RuleShellCommand},
		{"refused python", nil, sandbox.ExecRequest{Language: sandbox.Python, Code: "import os\nos.system('id')"}, RulePythonImport},
		{"refused env", map[string]string{"LD_PRELOAD": "/x.so"}, sandbox.ExecRequest{Language: sandbox.Shell, Code: "ls"}, RuleShellEnv},
	} {
		spec := spec
		spec.Env = c.env
		r := &runnerFake{Fake: &sandboxtest.Fake{}}
		f, calls := countingFake()
		for _, p := range []sandbox.Provider{r, f} {
			g := &Guard{Provider: p, Python: DefaultPythonPolicy()}
			res, err := g.Run(t.Context(), spec, c.req)
			if c.rule == "" {
				if err != nil || len(res.Stdout) == 0 {
					t.Errorf("%s on %T: %q, %v; want it to run", c.name, p, res.Stdout, err)
				}
				continue
			}
			pe, ok := errors.AsType[*PolicyError](err)
			if !ok || pe.Rule != c.rule || !errors.Is(err, sandbox.ErrDenied) || res.ExitCode != 0 || res.Stdout != nil {
				t.Errorf("%s on %T: %+v, %v; want a %s refusal and a zero result", c.name, p, res, err, c.rule)
			}
		}
		want := 1
		if c.rule != "" {
			want = 0
		}
		if r.runs != want || r.Created != 0 {
			t.Errorf("%s: the one-shot provider ran %d times and created %d sandboxes, want %d and 0", c.name, r.runs, r.Created, want)
		}
		if calls.Load() != int64(want) || f.Created != want || f.Live() != 0 {
			t.Errorf("%s: the plain provider executed %d times, created %d, kept %d; want %d, %d, 0", c.name, calls.Load(), f.Created, f.Live(), want, want)
		}
	}
}
