package sandbox

import (
	"context"
	"errors"
)

// Runner is implemented by providers that run one execution in a sandbox
// made for it alone, faster than Create, Exec and Destroy would: a
// one-shot run. Wrappers that must see every execution or sandbox (the
// policy guard, workspace quotas, a warm pool) implement it themselves and
// pass the run on with [Run].
type Runner interface {
	// Run runs req in a fresh sandbox made from spec (which must have been
	// through Spec.WithDefaults) and removes the sandbox before it returns.
	// The sandbox is isolated as one from Create is, with the same limits;
	// nothing of it outlives the call (no process, no private workspace).
	// The result is what Exec would return for req in a new sandbox: a
	// timeout, a non-zero exit, an exception and an out-of-memory kill are
	// results. Cancelling ctx stops the run and returns an error wrapping
	// ctx.Err() with the partial result.
	Run(ctx context.Context, spec Spec, req ExecRequest) (ExecResult, error)
}

// Run runs req in a sandbox of its own made from spec, on p's one-shot
// path when p is a [Runner], else with Create, Exec and Destroy. The
// sandbox is destroyed before Run returns, whatever happened; an error
// destroying it is returned only when the execution itself succeeded.
func Run(ctx context.Context, p Provider, spec Spec, req ExecRequest) (ExecResult, error) {
	if r, ok := p.(Runner); ok {
		return r.Run(ctx, spec, req)
	}
	return RunWith(ctx, p, spec, req)
}

// RunWith is Run with Create, Exec and Destroy on p, never its one-shot
// path: what a [Runner] that cannot take a run on its own path falls back to.
func RunWith(ctx context.Context, p Provider, spec Spec, req ExecRequest) (ExecResult, error) {
	if err := req.Validate(); err != nil {
		return ExecResult{}, err
	}
	info, err := p.Create(ctx, spec)
	if err != nil {
		return ExecResult{}, err
	}
	res, err := p.Exec(ctx, info.ID, req)
	if derr := p.Destroy(context.WithoutCancel(ctx), info.ID); derr != nil && !errors.Is(derr, ErrNotFound) && err == nil {
		err = derr
	}
	return res, err
}
