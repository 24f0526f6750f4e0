package policy

import (
	"context"
	"fmt"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Rules of the input bound of a [Guard]: the command or code is longer
// than the checks read ([Guard.MaxInput]). It cannot be checked, so it
// does not run.
const (
	RuleShellInputSize  Rule = "shell_input_too_large"
	RulePythonInputSize Rule = "python_input_too_large"
)

// DefaultMaxInput is the longest command or piece of code a [Guard]
// checks when MaxInput is zero: 256 KiB, which the checks read in about
// 0.1 s at their slowest.
const DefaultMaxInput = 256 << 10

// Guard applies a shell and a Python policy in front of a provider: every
// execution, and every environment a sandbox is given, is checked before
// the provider sees it, so a refused command never starts a process. It
// implements sandbox.Provider and passes everything else through.
//
// Refusals are [*PolicyError] values (sandbox.ErrDenied): Exec and Run
// return one with a zero result, Create and UpdateEnv return one and change
// nothing. [RefusalResult] renders one in TinyAgent's result shape.
type Guard struct {
	sandbox.Provider
	// Shell checks shell commands (strings and argv) and environment
	// variables. With Shell.Bypass nothing shell-side is checked.
	Shell ShellPolicy
	// Python checks Python code. With Python.Trusted it is not checked.
	Python PythonPolicy
	// MaxInput bounds the bytes of a command or of code the checks read
	// (0: DefaultMaxInput). Longer input that a policy would check is
	// refused with RuleShellInputSize or RulePythonInputSize; input no policy checks is not bounded
	// here.
	MaxInput int
}

var (
	_ sandbox.Provider = (*Guard)(nil)
	_ sandbox.Runner   = (*Guard)(nil)
)

// Check decides whether req may run: nil, or a [*PolicyError]. A request
// of the wrong shape is left for the provider to refuse.
func (g *Guard) Check(req sandbox.ExecRequest) error {
	switch req.Language {
	case sandbox.Python:
		if g.Python.Trusted {
			return nil
		}
		if err := g.bound(RulePythonInputSize, len(req.Code)); err != nil {
			return err
		}
		return g.Python.Check(req.Code)
	case sandbox.Shell:
		if g.Shell.bypass() {
			return nil
		}
		if len(req.Argv) > 0 {
			n := 0
			for _, a := range req.Argv {
				n += len(a)
			}
			if err := g.bound(RuleShellInputSize, n); err != nil {
				return err
			}
			return g.Shell.CheckArgv(req.Argv)
		}
		if err := g.bound(RuleShellInputSize, len(req.Code)); err != nil {
			return err
		}
		return g.Shell.Check(req.Code)
	}
	return nil
}

func (g *Guard) bound(rule Rule, n int) error {
	limit := g.MaxInput
	if limit <= 0 {
		limit = DefaultMaxInput
	}
	if n > limit {
		return deny(rule, fmt.Sprintf("the input is %d bytes and the safety checks read at most %d; split it, or raise SANDBOX__POLICY_MAX_INPUT", n, limit))
	}
	return nil
}

// Exec implements sandbox.Provider: the request runs only if [Guard.Check]
// allows it.
func (g *Guard) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if err := g.Check(req); err != nil {
		return sandbox.ExecResult{}, err
	}
	return g.Provider.Exec(ctx, id, req)
}

// Create implements sandbox.Provider: the spec's environment variables are
// checked as an execution's would be (PATH, LD_PRELOAD, BASH_ENV, ...).
func (g *Guard) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	if err := g.Shell.CheckEnv(spec.Env); err != nil {
		return sandbox.Info{}, err
	}
	return g.Provider.Create(ctx, spec)
}

// Run implements sandbox.Runner: a one-shot run passes the checks of
// Create (the spec's environment) and of Exec (the request) before the
// guarded provider sees it. A refusal is returned as Exec returns one,
// with a zero result, and nothing is created.
func (g *Guard) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if err := g.Check(req); err != nil {
		return sandbox.ExecResult{}, err
	}
	if err := g.Shell.CheckEnv(spec.Env); err != nil {
		return sandbox.ExecResult{}, err
	}
	return sandbox.Run(ctx, g.Provider, spec, req)
}

// UpdateEnv implements sandbox.Provider: the variables set are checked
// first.
func (g *Guard) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	if err := g.Shell.CheckEnv(u.Set); err != nil {
		return nil, err
	}
	return g.Provider.UpdateEnv(ctx, id, u)
}

// Unwrap returns the guarded provider, for callers that need a concrete
// provider's extra methods (the Docker client of the Docker provider).
func (g *Guard) Unwrap() sandbox.Provider { return g.Provider }

// RefusalResult renders a refusal as the result TinyAgent gave for one:
// exit code 1 and the refusal's text ("Command rejected for security
// reasons: <reason>", or "SECURITY VIOLATION: <reason>" for Python) on
// stderr, and for Python also as the error, so error_traceback carries it.
// Nothing ran: Duration is zero.
func RefusalResult(e *PolicyError) sandbox.ExecResult {
	r := sandbox.ExecResult{ExitCode: 1, Stderr: []byte(e.Error() + "\n")}
	if e.Rule.Python() {
		r.Error = &sandbox.ExecError{Name: "SecurityError", Value: e.Error(), Traceback: e.Error()}
	}
	return r
}

// Processes implements sandbox.ProcessHost when the guarded provider runs
// background processes: a process's command and environment pass the
// same checks as an execution's.
func (g *Guard) Processes() sandbox.ProcessRunner {
	r := sandbox.ProcessesOf(g.Provider)
	if r == nil {
		return nil
	}
	return guardedProcesses{ProcessRunner: r, g: g}
}

type guardedProcesses struct {
	sandbox.ProcessRunner
	g *Guard
}

func (p guardedProcesses) StartProcess(ctx context.Context, id sandbox.ID, spec sandbox.ProcessSpec) (sandbox.ProcessInfo, *sandbox.ProcessWatch, error) {
	if err := p.g.Check(sandbox.ExecRequest{Language: sandbox.Shell, Code: spec.Command, Argv: spec.Argv}); err != nil {
		return sandbox.ProcessInfo{}, nil, err
	}
	if err := p.g.Shell.CheckEnv(spec.Env); err != nil {
		return sandbox.ProcessInfo{}, nil, err
	}
	return p.ProcessRunner.StartProcess(ctx, id, spec)
}
