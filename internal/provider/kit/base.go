package kit

import (
	"context"
	"errors"
	"fmt"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Base implements, for a provider that embeds it, every method of
// [sandbox.Provider] but Name, Capabilities and Create, and the optional
// abilities that come with the agent: [sandbox.ProcessHost], [Checkpointer]
// and [Lister]. A provider's Create builds a [Sandbox] with [NewSession]
// and registers it with Boxes.Add; the rest is forwarding to the session.
//
// Set the hooks before the first Create and leave them alone afterwards.
// A provider may still define any of these methods itself (Docker wraps
// Exec) and call Base's from it.
type Base[B any] struct {
	// Boxes are the live sandboxes.
	Boxes Sandboxes[B]
	// Teardown removes what the backend has of a sandbox that Destroy
	// has just unregistered: its session, processes, container,
	// directories. It must run to completion even when ctx is cancelled.
	// Return [Retry] to keep the sandbox registered so that Destroy can
	// be tried again. Nil: nothing to remove.
	Teardown func(ctx context.Context, sb *Sandbox[B]) error
	// Warning is put on every execution result, also the one that comes
	// with an error: providers without isolation say so.
	Warning string
	// ReservedEnv are environment variable names sandboxes may not set
	// (the provider's own markers); UpdateEnv and StartProcess refuse
	// them with ErrInvalid. ProviderName names the provider in that
	// message.
	ReservedEnv  []string
	ProviderName sandbox.ProviderName
}

var (
	_ sandbox.ProcessHost  = (*Base[struct{}])(nil)
	_ sandbox.Checkpointer = (*Base[struct{}])(nil)
	_ sandbox.Lister       = (*Base[struct{}])(nil)
)

// NewSession returns the (not yet started) agent session of a sandbox
// created from spec: the spec's timeout, output limit and environment, and
// workspace, the workspace's path as the sandbox sees it.
func NewSession(l agent.Launcher, spec sandbox.Spec, workspace string) *agent.Session {
	return agent.NewSession(l, agent.Options{
		Workspace:   workspace,
		Timeout:     spec.Timeout,
		OutputLimit: spec.OutputLimit,
		Env:         spec.Env,
	})
}

// Retry marks an error of a Teardown after which the sandbox still exists
// and stays registered, so that Destroy can be tried again rather than
// leak something nobody can reach.
func Retry(err error) error { return &retryError{err} }

type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// Exec implements sandbox.Provider. An execution that Destroy ended
// returns an error wrapping ErrNotFound.
func (b *Base[B]) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	sb, err := b.Boxes.Get(id)
	if err != nil {
		return sandbox.ExecResult{Warning: b.Warning}, err
	}
	res, err := sb.Session.Exec(ctx, req)
	if b.Warning != "" {
		res.Warning = b.Warning
	}
	if sb.Gone() {
		// The processes were killed under the execution; say why.
		return res, fmt.Errorf("sandbox %s was destroyed during the execution: %w", id, sandbox.ErrNotFound)
	}
	return res, err
}

// Checkpoint implements [sandbox.Checkpointer] (see [agent.Session.Checkpoint]).
func (b *Base[B]) Checkpoint(ctx context.Context, id sandbox.ID) error {
	sb, err := b.Boxes.Get(id)
	if err != nil {
		return err
	}
	return sb.Session.Checkpoint(ctx)
}

// UpdateEnv implements sandbox.Provider. ReservedEnv cannot be set.
func (b *Base[B]) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	if err := b.checkEnv(u.Set); err != nil {
		return nil, err
	}
	sb, err := b.Boxes.Get(id)
	if err != nil {
		return nil, err
	}
	return sb.Session.UpdateEnv(u)
}

// Env implements sandbox.Provider.
func (b *Base[B]) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	sb, err := b.Boxes.Get(id)
	if err != nil {
		return nil, err
	}
	return sb.Session.Env(), nil
}

// CheckEnv refuses the ReservedEnv names among env's, all of them.
func (b *Base[B]) checkEnv(env map[string]string) error {
	var errs []error
	for _, k := range b.ReservedEnv {
		if _, ok := env[k]; ok {
			errs = append(errs, fmt.Errorf("environment variable %s is reserved by the %s provider: %w", k, b.ProviderName, sandbox.ErrInvalid))
		}
	}
	return errors.Join(errs...)
}

// CheckEnv refuses a spec's environment that sets a ReservedEnv name, for
// Create.
func (b *Base[B]) CheckEnv(env map[string]string) error { return b.checkEnv(env) }

// Info implements [sandbox.Lister].
func (b *Base[B]) Info(id sandbox.ID) (sandbox.Info, error) { return b.Boxes.Info(id) }

// List implements [sandbox.Lister].
func (b *Base[B]) List() []sandbox.Info { return b.Boxes.List() }

// Processes implements sandbox.ProcessHost: background processes beside
// each sandbox's Python session. Their environment may not set
// ReservedEnv.
func (b *Base[B]) Processes() sandbox.ProcessRunner {
	if len(b.ReservedEnv) == 0 {
		return &b.Boxes
	}
	return checkedProcesses[B]{&b.Boxes, b}
}

type checkedProcesses[B any] struct {
	*Sandboxes[B]
	b *Base[B]
}

func (c checkedProcesses[B]) StartProcess(ctx context.Context, id sandbox.ID, spec sandbox.ProcessSpec) (sandbox.ProcessInfo, *sandbox.ProcessWatch, error) {
	if err := c.b.checkEnv(spec.Env); err != nil {
		return sandbox.ProcessInfo{}, nil, err
	}
	return c.Sandboxes.StartProcess(ctx, id, spec)
}

// Destroy implements sandbox.Provider: it unregisters the sandbox, so a
// running execution ends with ErrNotFound, and calls Teardown.
func (b *Base[B]) Destroy(ctx context.Context, id sandbox.ID) error {
	sb, err := b.Boxes.Remove(id)
	if err != nil {
		return err
	}
	sb.gone.Store(true)
	if b.Teardown == nil {
		return nil
	}
	err = b.Teardown(ctx, sb)
	if r, ok := errors.AsType[*retryError](err); ok {
		sb.gone.Store(false)
		b.Boxes.Add(sb)
		return r.err
	}
	return err
}

// Close implements sandbox.Provider: it destroys every sandbox,
// concurrently. A provider with more to close calls it from its own.
func (b *Base[B]) Close(ctx context.Context) error {
	return b.Boxes.DestroyAll(ctx, b.Destroy)
}
