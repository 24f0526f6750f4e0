package kit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Sandbox is one live sandbox of a provider: its description, the agent
// session that runs its code, and the provider's own state B.
type Sandbox[B any] struct {
	Info    sandbox.Info
	Session *agent.Session
	Box     B

	gone atomic.Bool // set when its Destroy starts
}

// Gone reports whether the sandbox's Destroy has started.
func (sb *Sandbox[B]) Gone() bool { return sb.gone.Load() }

// Sandboxes is a provider's set of live sandboxes: it looks sandboxes up
// (ErrInvalid for a malformed ID, ErrNotFound for an unknown one). The
// zero value is ready to use; it is safe for concurrent use.
type Sandboxes[B any] struct {
	mu    sync.Mutex
	boxes map[sandbox.ID]*Sandbox[B]
}

// Add registers sb under sb.Info.ID.
func (s *Sandboxes[B]) Add(sb *Sandbox[B]) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.boxes == nil {
		s.boxes = map[sandbox.ID]*Sandbox[B]{}
	}
	s.boxes[sb.Info.ID] = sb
}

// Get returns the live sandbox id.
func (s *Sandboxes[B]) Get(id sandbox.ID) (*Sandbox[B], error) {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	sb := s.boxes[id]
	s.mu.Unlock()
	if sb == nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	return sb, nil
}

// Remove unregisters the sandbox id and returns it, for Destroy. A
// provider whose teardown fails may Add it back, so Destroy can be
// retried.
func (s *Sandboxes[B]) Remove(id sandbox.ID) (*Sandbox[B], error) {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return nil, err
	}
	s.mu.Lock()
	sb := s.boxes[id]
	delete(s.boxes, id)
	s.mu.Unlock()
	if sb == nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	return sb, nil
}

// IDs returns the IDs of the live sandboxes.
func (s *Sandboxes[B]) IDs() []sandbox.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return keys(s.boxes)
}

func keys[B any](m map[sandbox.ID]*Sandbox[B]) []sandbox.ID {
	out := make([]sandbox.ID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}

// List returns the descriptions of the live sandboxes.
func (s *Sandboxes[B]) List() []sandbox.Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]sandbox.Info, 0, len(s.boxes))
	for _, sb := range s.boxes {
		out = append(out, sb.Info)
	}
	return out
}

// Info returns the description of a live sandbox, with its own copy of
// the environment.
func (s *Sandboxes[B]) Info(id sandbox.ID) (sandbox.Info, error) {
	sb, err := s.Get(id)
	if err != nil {
		return sandbox.Info{}, err
	}
	info := sb.Info
	info.Spec.Env = maps.Clone(info.Spec.Env)
	return info, nil
}

// DestroyAll calls destroy for every live sandbox, concurrently, and joins
// the errors; a sandbox destroyed meanwhile (ErrNotFound) is not an error.
func (s *Sandboxes[B]) DestroyAll(ctx context.Context, destroy func(context.Context, sandbox.ID) error) error {
	ids := s.IDs()
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() {
			if err := destroy(ctx, id); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

var _ sandbox.ProcessRunner = (*Sandboxes[struct{}])(nil)

// StartProcess starts a background process in the sandbox's session.
func (s *Sandboxes[B]) StartProcess(ctx context.Context, id sandbox.ID, spec sandbox.ProcessSpec) (sandbox.ProcessInfo, *sandbox.ProcessWatch, error) {
	sb, err := s.Get(id)
	if err != nil {
		return sandbox.ProcessInfo{}, nil, err
	}
	return sb.Session.StartProcess(ctx, spec)
}

// Processes lists the sandbox's background processes.
func (s *Sandboxes[B]) Processes(ctx context.Context, id sandbox.ID) ([]sandbox.ProcessInfo, error) {
	sb, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	return sb.Session.Processes(), nil
}

// WatchProcess watches one of the sandbox's processes.
func (s *Sandboxes[B]) WatchProcess(ctx context.Context, id sandbox.ID, pid int, fromStart bool) (*sandbox.ProcessWatch, error) {
	sb, err := s.Get(id)
	if err != nil {
		return nil, err
	}
	return sb.Session.WatchProcess(pid, fromStart)
}

// SendInput writes to a process's standard input.
func (s *Sandboxes[B]) SendInput(ctx context.Context, id sandbox.ID, pid int, data []byte) error {
	sb, err := s.Get(id)
	if err != nil {
		return err
	}
	return sb.Session.SendInput(pid, data)
}

// CloseInput closes a process's standard input.
func (s *Sandboxes[B]) CloseInput(ctx context.Context, id sandbox.ID, pid int) error {
	sb, err := s.Get(id)
	if err != nil {
		return err
	}
	return sb.Session.CloseInput(pid)
}

// SignalProcess signals a process's group.
func (s *Sandboxes[B]) SignalProcess(ctx context.Context, id sandbox.ID, pid int, sig syscall.Signal) error {
	sb, err := s.Get(id)
	if err != nil {
		return err
	}
	return sb.Session.SignalProcess(ctx, pid, sig)
}
