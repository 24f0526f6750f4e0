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
	// MaxSandboxes bounds the live sandboxes (creations in flight and
	// one-shot runs count). 0 means no limit.
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
	// HandOver, when set, is what Shutdown does with each live sandbox
	// instead of destroying it: leave it to another replica (ADR 0016).
	// A sandbox it fails to hand over is destroyed.
	HandOver func(ctx context.Context, id sandbox.ID) error
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

	mu       sync.Mutex
	boxes    map[sandbox.ID]*entry
	pending  int  // creations in flight
	runs     int  // one-shot runs in flight (RunOneShot)
	removing int  // deleted sandboxes whose removal has not finished
	closed   bool // Shutdown has begun
	running  sync.WaitGroup
	removals sync.WaitGroup // the removals in the background
	// retry is the first pause before a failed removal is tried again.
	retry time.Duration
}

type entry struct {
	info     Info
	idle     time.Duration
	busy     int
	lastUsed time.Time
	// ctx ends when the sandbox is deleted (or the service shuts down):
	// the calls running in it are cancelled then.
	ctx    context.Context
	cancel context.CancelFunc
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
	return &Manager{p: p, opts: opts, log: log, base: base, cancel: cancel, boxes: map[sandbox.ID]*entry{}, retry: time.Second}
}

// Provider returns the provider, nil when disabled.
func (m *Manager) Provider() sandbox.Provider { return m.p }

// Active returns the number of live sandboxes.
func (m *Manager) Active() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.boxes)
}

// Runs returns the number of one-shot runs in progress. Each holds a
// sandbox of its own, which counts toward MaxSandboxes.
func (m *Manager) Runs() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.runs
}

// Removing returns the number of deleted sandboxes whose removal is still
// under way. They count toward MaxSandboxes until they are gone.
func (m *Manager) Removing() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.removing
}

// Create creates a sandbox from spec with the given idle timeout (negative:
// the manager's default; 0: never reaped). It fails with
// sandbox.ErrDisabled when there is no provider or the manager is shutting
// down, and sandbox.ErrLimit when MaxSandboxes are live or being removed.
func (m *Manager) Create(ctx context.Context, spec sandbox.Spec, idle time.Duration) (Info, error) {
	return m.add(ctx, idle, func(ctx context.Context) (sandbox.Info, error) { return m.p.Create(ctx, spec) })
}

// Adopt registers the sandbox that adopt takes over from another Warden
// process (a replica that went away, ADR 0016) with the given idle
// timeout, as Create registers a new one: the same limits apply. It fails
// with sandbox.ErrConflict when the sandbox is registered already.
func (m *Manager) Adopt(ctx context.Context, id sandbox.ID, idle time.Duration, adopt func(context.Context) (sandbox.Info, error)) (Info, error) {
	if _, err := m.Get(id); err == nil {
		return Info{}, fmt.Errorf("sandbox %s is registered already: %w", id, sandbox.ErrConflict)
	}
	return m.add(ctx, idle, func(ctx context.Context) (sandbox.Info, error) {
		info, err := adopt(ctx)
		if err == nil && info.ID != id {
			return info, fmt.Errorf("adopting sandbox %s gave sandbox %s", id, info.ID)
		}
		return info, err
	})
}

// add registers the sandbox that open creates or adopts.
func (m *Manager) add(ctx context.Context, idle time.Duration, open func(context.Context) (sandbox.Info, error)) (Info, error) {
	if m.p == nil {
		return Info{}, fmt.Errorf("sandboxes are disabled: %w", sandbox.ErrDisabled)
	}
	if idle < 0 {
		idle = m.opts.IdleTimeout
	}
	m.mu.Lock()
	if err := m.admit(); err != nil {
		m.mu.Unlock()
		return Info{}, err
	}
	m.pending++
	m.mu.Unlock()

	info, err := open(ctx)

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
	if _, dup := m.boxes[info.ID]; dup { // adopted twice at once
		m.mu.Unlock()
		return Info{}, fmt.Errorf("sandbox %s is registered already: %w", info.ID, sandbox.ErrConflict)
	}
	now := m.opts.Now()
	ectx, cancel := context.WithCancel(m.base)
	// Environment values are often secrets and change later (UpdateEnv):
	// descriptions never carry them; Env is the way to read them.
	info.Spec.Env = nil
	e := &entry{
		info: Info{Info: info, Status: "running", Image: info.Spec.Image, CreatedAt: now, LastUsedAt: now,
			IdleTimeoutSeconds: idle.Seconds()},
		idle:     idle,
		lastUsed: now,
		ctx:      ectx,
		cancel:   cancel,
	}
	m.boxes[info.ID] = e
	m.mu.Unlock()
	if o := m.opts.Observer; o != nil {
		o.SandboxCreated()
	}
	m.log.Info("sandbox created", "sandbox_id", info.ID, "provider", info.Provider)
	return e.snapshot(), nil
}

// admit says whether a new sandbox may start now: nil, or why not. m.mu
// is held.
func (m *Manager) admit() error {
	switch {
	case m.closed:
		return fmt.Errorf("the service is shutting down: %w", sandbox.ErrDisabled)
	case m.opts.MaxSandboxes > 0 && len(m.boxes)+m.pending+m.runs+m.removing >= m.opts.MaxSandboxes:
		return fmt.Errorf("%d sandboxes are live or being removed, the maximum: %w", m.opts.MaxSandboxes, sandbox.ErrLimit)
	}
	return nil
}

// RunOneShot runs req in a sandbox of its own made from spec, removed
// before it returns (sandbox.Run: the provider's one-shot path, or
// create, execute, destroy). The sandbox is never registered, but it
// counts toward MaxSandboxes while the run lasts (see Runs), so RunOneShot
// fails as Create does: sandbox.ErrDisabled without a provider or while
// shutting down, sandbox.ErrLimit at the limit. The run is reported to the
// Observer as an execution; Shutdown waits for it as for Exec, and
// cancels it when its grace period runs out.
func (m *Manager) RunOneShot(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if m.p == nil {
		return sandbox.ExecResult{}, fmt.Errorf("sandboxes are disabled: %w", sandbox.ErrDisabled)
	}
	m.mu.Lock()
	if err := m.admit(); err != nil {
		m.mu.Unlock()
		return sandbox.ExecResult{}, err
	}
	m.runs++
	m.running.Add(1)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.runs--
		m.mu.Unlock()
		m.running.Done()
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(m.base, cancel)()

	start := m.opts.Now()
	r, err := sandbox.Run(ctx, m.p, spec, req)
	d := m.opts.Now().Sub(start)
	if o := m.opts.Observer; o != nil {
		o.Executed(req.Language, Outcome(r, err), d)
	}
	m.log.Debug("one-shot run", "language", req.Language, "duration", d, "err", err)
	return r, err
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

// bind returns ctx, also cancelled when the sandbox is deleted or the
// service's grace period runs out.
func (e *entry) bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(e.ctx, cancel)
	return ctx, func() { stop(); cancel() }
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
	ctx, cancel := e.bind(ctx)
	defer cancel()
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
	ctx, cancel := e.bind(ctx)
	defer cancel()
	return m.p.Env(ctx, id)
}

// UpdateEnv changes a sandbox's environment variables.
func (m *Manager) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	e, err := m.acquire(id)
	if err != nil {
		return nil, err
	}
	defer m.release(e)
	ctx, cancel := e.bind(ctx)
	defer cancel()
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

// Destroy deletes a sandbox and returns at once; unknown IDs give
// sandbox.ErrNotFound. From its return on, the sandbox is gone for every
// caller: no call starts in it any more, and the calls running in it are
// cancelled. The provider removes it in the background (see Removing); a
// removal that fails is tried again, and the sandbox counts toward
// MaxSandboxes until it is gone.
func (m *Manager) Destroy(ctx context.Context, id sandbox.ID) error {
	return m.destroy(id, DestroyDeleted)
}

// destroy takes a sandbox out of the registry, cancels what runs in it and
// starts its removal.
func (m *Manager) destroy(id sandbox.ID, reason DestroyReason) error {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return err
	}
	m.mu.Lock()
	e, ok := m.boxes[id]
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	delete(m.boxes, id)
	m.removing++
	m.removals.Add(1)
	m.mu.Unlock()
	e.cancel()
	if o := m.opts.Observer; o != nil {
		o.SandboxDestroyed(reason)
	}
	m.log.Info("sandbox destroyed", "sandbox_id", id, "reason", reason)
	go m.remove(id)
	return nil
}

// handOver takes a sandbox out of the registry and hands it over with
// Options.HandOver; it reports false, leaving the sandbox registered, when
// that fails.
func (m *Manager) handOver(id sandbox.ID) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.opts.HandOver(ctx, id); err != nil {
		m.log.Warn("handing a sandbox over failed; destroying it", "sandbox_id", id, "err", err)
		return false
	}
	m.mu.Lock()
	e, ok := m.boxes[id]
	delete(m.boxes, id)
	m.mu.Unlock()
	if ok {
		e.cancel()
	}
	m.log.Info("sandbox handed over", "sandbox_id", id)
	return true
}

// remove has the provider remove a deleted sandbox, trying again with
// growing pauses while it fails, until the service shuts down.
func (m *Manager) remove(id sandbox.ID) {
	defer m.removals.Done()
	wait := m.retry
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := m.p.Destroy(ctx, id)
		cancel()
		if err == nil || errors.Is(err, sandbox.ErrNotFound) {
			break
		}
		if m.base.Err() != nil {
			m.log.Error("removing a deleted sandbox failed; the service is shutting down, so it is left to the provider's sweep", "sandbox_id", id, "err", err)
			return // still counted: its resources may be held
		}
		m.log.Warn("removing a deleted sandbox failed; trying again", "sandbox_id", id, "err", err, "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-m.base.Done():
		}
		wait = min(2*wait, time.Minute)
	}
	m.mu.Lock()
	m.removing--
	m.mu.Unlock()
	m.log.Debug("sandbox removed", "sandbox_id", id)
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

// Reap deletes the sandboxes idle past their timeout now, and returns how
// many it deleted; their removal finishes in the background.
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
		if err := m.destroy(id, DestroyIdle); err == nil {
			n++
		} else if !errors.Is(err, sandbox.ErrNotFound) {
			m.log.Warn("destroying idle sandbox", "sandbox_id", id, "err", err)
		}
	}
	return n
}

// Shutdown refuses new sandboxes, lets running executions finish until ctx
// is done, then cancels those still running, destroys (or, with
// Options.HandOver, hands over) every sandbox and
// waits for every removal (each with a fresh 60-second budget, so removal
// outlives ctx). It reports the sandboxes it could not remove.
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
	m.mu.Lock()
	ids := make([]sandbox.ID, 0, len(m.boxes))
	for id := range m.boxes {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	for _, id := range ids {
		if m.opts.HandOver != nil && m.handOver(id) {
			continue
		}
		_ = m.destroy(id, DestroyShutdown)
	}
	m.removals.Wait()
	if n := m.Removing(); n > 0 {
		return fmt.Errorf("%d sandboxes could not be removed", n)
	}
	return nil
}
