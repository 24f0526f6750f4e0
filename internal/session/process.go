package session

import (
	"context"
	"fmt"
	"syscall"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// runner returns the provider's process runner, with the sandbox marked
// in use until done is called and ctx bound to its life (see Destroy);
// ErrUnsupported when the provider runs no background processes.
func (m *Manager) runner(ctx context.Context, id sandbox.ID) (_ sandbox.ProcessRunner, _ context.Context, done func(), _ error) {
	e, err := m.acquire(id)
	if err != nil {
		return nil, nil, nil, err
	}
	r := sandbox.ProcessesOf(m.p)
	if r == nil {
		m.release(e)
		return nil, nil, nil, fmt.Errorf("the %s provider runs no background processes: %w", m.p.Name(), sandbox.ErrUnsupported)
	}
	ctx, cancel := e.bind(ctx)
	return r, ctx, func() { cancel(); m.release(e) }, nil
}

// StartProcess starts a background process in a sandbox (see
// sandbox.ProcessRunner). Processes do not keep a sandbox from being
// reaped when idle: only calls do.
func (m *Manager) StartProcess(ctx context.Context, id sandbox.ID, spec sandbox.ProcessSpec) (sandbox.ProcessInfo, *sandbox.ProcessWatch, error) {
	r, ctx, done, err := m.runner(ctx, id)
	if err != nil {
		return sandbox.ProcessInfo{}, nil, err
	}
	defer done()
	return r.StartProcess(ctx, id, spec)
}

// Processes lists a sandbox's background processes.
func (m *Manager) Processes(ctx context.Context, id sandbox.ID) ([]sandbox.ProcessInfo, error) {
	r, ctx, done, err := m.runner(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return r.Processes(ctx, id)
}

// WatchProcess watches a background process.
func (m *Manager) WatchProcess(ctx context.Context, id sandbox.ID, pid int, fromStart bool) (*sandbox.ProcessWatch, error) {
	r, ctx, done, err := m.runner(ctx, id)
	if err != nil {
		return nil, err
	}
	defer done()
	return r.WatchProcess(ctx, id, pid, fromStart)
}

// SendInput writes to a background process's standard input.
func (m *Manager) SendInput(ctx context.Context, id sandbox.ID, pid int, data []byte) error {
	r, ctx, done, err := m.runner(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return r.SendInput(ctx, id, pid, data)
}

// CloseInput closes a background process's standard input.
func (m *Manager) CloseInput(ctx context.Context, id sandbox.ID, pid int) error {
	r, ctx, done, err := m.runner(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return r.CloseInput(ctx, id, pid)
}

// SignalProcess signals a background process's group.
func (m *Manager) SignalProcess(ctx context.Context, id sandbox.ID, pid int, sig syscall.Signal) error {
	r, ctx, done, err := m.runner(ctx, id)
	if err != nil {
		return err
	}
	defer done()
	return r.SignalProcess(ctx, id, pid, sig)
}
