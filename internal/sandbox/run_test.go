package sandbox_test

import (
	"context"
	"errors"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// runner is a provider with a one-shot path of its own.
type runner struct {
	*sandboxtest.Fake
	runs int
}

func (r *runner) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	r.runs++
	return sandbox.ExecResult{Stdout: []byte("one-shot")}, nil
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	spec := sandbox.Spec{}.WithDefaults()
	py := sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"}

	// Without a one-shot path: create, execute, destroy.
	f := &sandboxtest.Fake{}
	res, err := sandbox.Run(ctx, f, spec, py)
	if err != nil || string(res.Stdout) != "print(1)" {
		t.Fatalf("Run on the fake = %q, %v", res.Stdout, err)
	}
	if f.Created != 1 || f.Destroyed != 1 || f.Live() != 0 {
		t.Errorf("Run on the fake: created %d destroyed %d live %d, want 1 1 0", f.Created, f.Destroyed, f.Live())
	}
	// The sandbox goes when the execution fails too.
	boom := errors.New("boom")
	f.ExecFunc = func(context.Context, sandbox.ID, sandbox.ExecRequest) (sandbox.ExecResult, error) {
		return sandbox.ExecResult{}, boom
	}
	if _, err := sandbox.Run(ctx, f, spec, py); !errors.Is(err, boom) {
		t.Errorf("Run with a failing Exec = %v, want boom", err)
	}
	if f.Live() != 0 {
		t.Errorf("Run with a failing Exec left %d sandboxes", f.Live())
	}
	// A bad request creates nothing.
	if _, err := sandbox.Run(ctx, f, spec, sandbox.ExecRequest{Language: "perl", Code: "1"}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Run(perl) = %v, want ErrInvalid", err)
	}
	if f.Created != 2 {
		t.Errorf("Run(perl) created a sandbox (%d created)", f.Created)
	}

	// With one: that path only.
	r := &runner{Fake: &sandboxtest.Fake{}}
	if res, err := sandbox.Run(ctx, r, spec, py); err != nil || string(res.Stdout) != "one-shot" || r.runs != 1 || r.Created != 0 {
		t.Errorf("Run on a Runner = %q, %v (runs %d, created %d), want its own path only", res.Stdout, err, r.runs, r.Created)
	}
	// RunWith never takes it.
	if res, err := sandbox.RunWith(ctx, r, spec, py); err != nil || string(res.Stdout) != "print(1)" || r.runs != 1 || r.Created != 1 {
		t.Errorf("RunWith on a Runner = %q, %v (runs %d, created %d), want create, exec, destroy", res.Stdout, err, r.runs, r.Created)
	}
}
