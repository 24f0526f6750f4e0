package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Options configure a Manager.
type Options struct {
	// MaxSandboxes bounds the live sandboxes (creations in flight count).
	// 0 means no limit.
	MaxSandboxes int
	// IdleTimeout is the default idle timeout of a sandbox; 0 never reaps.
	IdleTimeout time.Duration
	// ReapInterval is how often Run looks for idle sandboxes. Default 1s.
	ReapInterval time.Duration
	// Observer receives lifecycle events; nil ignores them.
	Observer Observer
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// Manager is the registry of a service's live sandboxes.
type Manager struct {
	p    sandbox.Provider
	opts Options
	log  *slog.Logger

	// base is cancelled by Shutdown once its grace period is over; every
	// execution's context is tied to it.
	base   context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	boxes   map[sandbox.ID]*entry
	pending int  // creations in flight
	closed  bool // Shutdown has begun
	running sync.WaitGroup
}

type entry struct {
	info     Info
	idle     time.Duration
	busy     int
	lastUsed time.Time
}

// New returns a Manager over p. p may be nil: the service is then
// disabled and Create fails with sandbox.ErrDisabled.
func New(p sandbox.Provider, opts Options) *Manager {
	if opts.ReapInterval <= 0 {
		opts.ReapInterval = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, cancel := context.WithCancel(context.Background())
	return &Manager{p: p, opts: opts, log: log, base: base, cancel: cancel, boxes: map[sandbox.ID]*entry{}}
}

// Provider returns the provider, nil when disabled.
func (m *Manager) Provider() sandbox.Provider { return m.p }

// Active returns the number of live sandboxes.
func (m *Manager) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.boxes)
}

// Create creates a sandbox from spec with the given idle timeout (negative:
// the manager's default; 0: never reaped). It fails with
// sandbox.ErrDisabled when there is no provider or the manager is shutting
// down, and sandbox.ErrLimit when MaxSandboxes are live.
func (m *Manager) Create(ctx context.Context, spec sandbox.Spec, idle time.Duration) (Info, error) {
	if m.p == nil {
		return Info{}, fmt.Errorf("sandboxes are disabled: %w", sandbox.ErrDisabled)
	}
	if idle < 0 {
		idle = m.opts.IdleTimeout
	}
	m.mu.Lock()
	switch {
	case m.closed:
		m.mu.Unlock()
		return Info{}, fmt.Errorf("the service is shutting down: %w", sandbox.ErrDisabled)
	case m.opts.MaxSandboxes > 0 && len(m.boxes)+m.pending >= m.opts.MaxSandboxes:
		m.mu.Unlock()
		return Info{}, fmt.Errorf("%d sandboxes are live, the maximum: %w", m.opts.MaxSandboxes, sandbox.ErrLimit)
	}
	m.pending++
	m.mu.Unlock()

	info, err := m.p.Create(ctx, spec)

	m.mu.Lock()
	m.pending--
	if err == nil && m.closed { // Shutdown began meanwhile: do not leak it
		m.mu.Unlock()
		_ = m.p.Destroy(context.WithoutCancel(ctx), info.ID)
		return Info{}, fmt.Errorf("the service is shutting down: %w", sandbox.ErrDisabled)
	}
	if err != nil {
		m.mu.Unlock()
		return Info{}, err
	}
	now := m.opts.Now()
	// Environment values are often secrets and change later (UpdateEnv):
	// descriptions never carry them; Env is the way to read them.
	info.Spec.Env = nil
	e := &entry{
		info: Info{Info: info, Status: "running", Image: info.Spec.Image, CreatedAt: now, LastUsedAt: now,
			IdleTimeoutSeconds: idle.Seconds()},
		idle:     idle,
		lastUsed: now,
	}
	m.boxes[info.ID] = e
	m.mu.Unlock()
	if o := m.opts.Observer; o != nil {
		o.SandboxCreated()
	}
	m.log.Info("sandbox created", "sandbox_id", info.ID, "provider", info.Provider)
	return e.snapshot(), nil
}

func (e *entry) snapshot() Info {
	i := e.info
	i.LastUsedAt = e.lastUsed
	i.Busy = e.busy > 0
	return i
}

// Get returns a live sandbox.
func (m *Manager) Get(id sandbox.ID) (Info, error) {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return Info{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.boxes[id]
	if e == nil {
		return Info{}, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	return e.snapshot(), nil
}

// List returns the live sandboxes, oldest first.
func (m *Manager) List() []Info {
	m.mu.Lock()
	out := make([]Info, 0, len(m.boxes))
	for _, e := range m.boxes {
		out = append(out, e.snapshot())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// acquire marks a sandbox in use so the reaper leaves it alone.
func (m *Manager) acquire(id sandbox.ID) (*entry, error) {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.boxes[id]
	if e == nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	e.busy++
	e.lastUsed = m.opts.Now()
	m.running.Add(1)
	return e, nil
}

func (m *Manager) release(e *entry) {
	m.mu.Lock()
	e.busy--
	e.lastUsed = m.opts.Now()
	m.mu.Unlock()
	m.running.Done()
}

// Exec runs one execution in a sandbox. Its context is also cancelled when
// a shutdown's grace period runs out.
func (m *Manager) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	e, err := m.acquire(id)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	defer m.release(e)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(m.base, cancel)
	defer stop()
	start := m.opts.Now()
	r, err := m.p.Exec(ctx, id, req)
	m.mu.Lock()
	e.info.Executions++
	m.mu.Unlock()
	if o := m.opts.Observer; o != nil {
		o.Executed(req.Language, Outcome(r, err), m.opts.Now().Sub(start))
	}
	return r, err
}

// Env returns a copy of a sandbox's environment variables.
func (m *Manager) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	e, err := m.acquire(id)
	if err != nil {
		return nil, err
	}
	defer m.release(e)
	return m.p.Env(ctx, id)
}

// UpdateEnv changes a sandbox's environment variables.
func (m *Manager) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	e, err := m.acquire(id)
	if err != nil {
		return nil, err
	}
	defer m.release(e)
	return m.p.UpdateEnv(ctx, id, u)
}

// Touch marks a sandbox used now (for file operations the API performs
// itself) and returns it.
func (m *Manager) Touch(id sandbox.ID) (Info, error) {
	e, err := m.acquire(id)
	if err != nil {
		return Info{}, err
	}
	defer m.release(e)
	return e.snapshot(), nil
}

// Destroy removes a sandbox. Unknown IDs give sandbox.ErrNotFound.
func (m *Manager) Destroy(ctx context.Context, id sandbox.ID) error {
	return m.destroy(ctx, id, "deleted")
}

func (m *Manager) destroy(ctx context.Context, id sandbox.ID, reason string) error {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return err
	}
	m.mu.Lock()
	e, ok := m.boxes[id]
	delete(m.boxes, id)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	err := m.p.Destroy(ctx, id)
	if errors.Is(err, sandbox.ErrNotFound) {
		err = nil // gone already, as asked
	}
	if err != nil {
		// The backend could not remove it: keep it listed so the caller
		// sees it and can retry, rather than losing track of it.
		m.mu.Lock()
		m.boxes[id] = e
		m.mu.Unlock()
		return fmt.Errorf("destroying sandbox %s: %w", id, err)
	}
	if o := m.opts.Observer; o != nil {
		o.SandboxDestroyed(reason)
	}
	m.log.Info("sandbox destroyed", "sandbox_id", id, "reason", reason)
	return err
}

// Run destroys sandboxes that have been idle longer than their idle
// timeout, until ctx ends. It returns ctx's error.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.opts.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			m.Reap(ctx)
		}
	}
}

// Reap destroys the sandboxes idle past their timeout now, and returns
// how many it destroyed.
func (m *Manager) Reap(ctx context.Context) int {
	now := m.opts.Now()
	var idle []sandbox.ID
	m.mu.Lock()
	for id, e := range m.boxes {
		if e.idle > 0 && e.busy == 0 && now.Sub(e.lastUsed) > e.idle {
			idle = append(idle, id)
		}
	}
	m.mu.Unlock()
	n := 0
	for _, id := range idle {
		if err := m.destroy(ctx, id, "idle"); err == nil {
			n++
		} else if !errors.Is(err, sandbox.ErrNotFound) {
			m.log.Warn("destroying idle sandbox", "sandbox_id", id, "err", err)
		}
	}
	return n
}

// Shutdown refuses new sandboxes, lets running executions finish until ctx
// is done, then cancels those still running and destroys every sandbox
// (with a fresh 60-second budget, so removal outlives ctx).
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	done := make(chan struct{})
	go func() {
		m.running.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		m.cancel() // cancel what still runs; the provider stops it in the sandbox
		<-done
	}
	m.cancel()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	m.mu.Lock()
	ids := make([]sandbox.ID, 0, len(m.boxes))
	for id := range m.boxes {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Go(func() { errs[i] = m.destroy(dctx, id, "shutdown") })
	}
	wg.Wait()
	return errors.Join(errs...)
}
