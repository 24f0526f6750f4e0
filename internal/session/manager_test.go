package session

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type counter struct {
	created, destroyed, executed atomic.Int64
	reasons                      sync.Map
}

func (c *counter) SandboxCreated() { c.created.Add(1) }
func (c *counter) SandboxDestroyed(reason DestroyReason) {
	c.destroyed.Add(1)
	c.reasons.Store(reason, true)
}
func (c *counter) Executed(sandbox.Language, ExecOutcome, time.Duration) { c.executed.Add(1) }

func TestLimitAndLookup(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	obs := &counter{}
	m := New(f, Options{MaxSandboxes: 2, Observer: obs})
	a, err := m.Create(t.Context(), sandbox.Spec{Env: map[string]string{"TOKEN": "secret"}}, -1)
	if err != nil {
		t.Fatal(err)
	}
	if a.Spec.Env != nil {
		t.Errorf("Create returned the environment in the description: %v", a.Spec.Env)
	}
	if env, err := m.Env(t.Context(), a.ID); err != nil || env["TOKEN"] != "secret" {
		t.Errorf("Env = %v, %v", env, err)
	}
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); !errors.Is(err, sandbox.ErrLimit) {
		t.Fatalf("third Create = %v, want ErrLimit", err)
	}
	if got, err := m.Get(a.ID); err != nil || got.Status != "running" || got.Image != sandbox.DefaultImage {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if n := len(m.List()); n != 2 || m.Active() != 2 {
		t.Fatalf("List = %d, Active = %d", n, m.Active())
	}
	r, err := m.Exec(t.Context(), a.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "hi"})
	if err != nil || string(r.Stdout) != "hi" {
		t.Fatalf("Exec = %q, %v", r.Stdout, err)
	}
	if got, _ := m.Get(a.ID); got.Executions != 1 {
		t.Fatalf("Executions = %d", got.Executions)
	}
	if err := m.Destroy(t.Context(), a.ID); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{
		m.Destroy(t.Context(), a.ID),
		func() error { _, err := m.Get(a.ID); return err }(),
		func() error {
			_, err := m.Exec(t.Context(), a.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"})
			return err
		}(),
		func() error { _, err := m.Env(t.Context(), a.ID); return err }(),
	} {
		if !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("after Destroy: %v, want ErrNotFound", err)
		}
	}
	if _, err := m.Get("../x"); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Get(../x) = %v, want ErrInvalid", err)
	}
	m.removals.Wait() // the slot is free once the removal is done
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); err != nil {
		t.Fatalf("Create after a destroy frees a slot: %v", err)
	}
	if obs.created.Load() != 3 || obs.destroyed.Load() != 1 || obs.executed.Load() != 1 {
		t.Errorf("observer: created %d destroyed %d executed %d", obs.created.Load(), obs.destroyed.Load(), obs.executed.Load())
	}
}

func TestDisabled(t *testing.T) {
	t.Parallel()
	m := New(nil, Options{})
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); !errors.Is(err, sandbox.ErrDisabled) {
		t.Fatalf("Create without provider = %v, want ErrDisabled", err)
	}
}

func TestIdleReaping(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Unix(1000, 0)}
	f := &sandboxtest.Fake{}
	obs := &counter{}
	m := New(f, Options{IdleTimeout: time.Minute, Now: clk.Now, Observer: obs})
	idleBox, _ := m.Create(t.Context(), sandbox.Spec{}, -1)
	never, _ := m.Create(t.Context(), sandbox.Spec{}, 0)
	short, _ := m.Create(t.Context(), sandbox.Spec{}, 10*time.Second)
	busy, _ := m.Create(t.Context(), sandbox.Spec{}, 10*time.Second)

	clk.Add(30 * time.Second)
	// busy runs an execution across the reap; short was just used.
	started := make(chan struct{})
	f.ExecFunc = func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		if id == busy.ID {
			close(started)
			<-ctx.Done()
		}
		return sandbox.ExecResult{Stdout: []byte{}}, nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		m.Exec(ctx, busy.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "x"})
		close(done)
	}()
	<-started
	if n := m.Reap(t.Context()); n != 1 { // short: idle 30s > 10s
		t.Fatalf("Reap at +30s = %d, want 1 (short)", n)
	}
	if _, err := m.Get(short.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatal("short was not reaped")
	}
	if _, err := m.Get(busy.ID); err != nil {
		t.Fatal("a busy sandbox was reaped")
	}
	clk.Add(31 * time.Second) // idle: 61s > 1m
	if n := m.Reap(t.Context()); n != 1 {
		t.Fatalf("Reap at +61s = %d, want 1 (idle)", n)
	}
	if _, err := m.Get(idleBox.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatal("the default idle timeout did not reap")
	}
	if _, err := m.Get(never.ID); err != nil {
		t.Fatal("idle timeout 0 means never, but it was reaped")
	}
	cancel()
	<-done
	clk.Add(5 * time.Second)
	if n := m.Reap(t.Context()); n != 0 {
		t.Fatalf("busy was used 5s ago, reaped anyway")
	}
	m.removals.Wait()
	if _, ok := obs.reasons.Load(DestroyIdle); !ok {
		t.Error("observer saw no idle destruction")
	}
}

func TestRunReaps(t *testing.T) {
	t.Parallel()
	m := New(&sandboxtest.Fake{}, Options{IdleTimeout: 20 * time.Millisecond, ReapInterval: 5 * time.Millisecond})
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error)
	go func() { errc <- m.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for m.Active() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	if m.Active() != 0 {
		t.Fatal("Run did not reap the idle sandbox")
	}
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	m := New(f, Options{})
	quick, _ := m.Create(t.Context(), sandbox.Spec{}, -1)
	stuck, _ := m.Create(t.Context(), sandbox.Spec{}, -1)
	results := make(chan error, 2)
	run := func(id sandbox.ID, code string) {
		_, err := m.Exec(context.Background(), id, sandbox.ExecRequest{Language: sandbox.Python, Code: code})
		results <- err
	}
	go run(quick.ID, "sleep 50ms")
	go run(stuck.ID, "sleep 1h")
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %s", d)
	}
	var cancelled, finished int
	for range 2 {
		if err := <-results; err == nil {
			finished++
		} else if errors.Is(err, context.Canceled) {
			cancelled++
		}
	}
	if finished != 1 || cancelled != 1 {
		t.Fatalf("finished %d, cancelled %d; want the quick one to finish and the stuck one cancelled", finished, cancelled)
	}
	if f.Live() != 0 || m.Active() != 0 {
		t.Fatalf("after Shutdown: %d sandboxes live in the provider", f.Live())
	}
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); !errors.Is(err, sandbox.ErrDisabled) {
		t.Fatalf("Create after Shutdown = %v", err)
	}
}

// failingDestroy fails the first Destroy of each sandbox, and holds every
// Destroy until release is closed.
type failingDestroy struct {
	*sandboxtest.Fake
	release chan struct{}
	mu      sync.Mutex
	failed  map[sandbox.ID]bool
}

func (f *failingDestroy) Destroy(ctx context.Context, id sandbox.ID) error {
	<-f.release
	f.mu.Lock()
	first := !f.failed[id]
	f.failed[id] = true
	f.mu.Unlock()
	if first {
		return errors.New("daemon hiccup")
	}
	return f.Fake.Destroy(ctx, id)
}

// TestDestroyInBackground: Destroy returns before the provider has removed
// the sandbox; from then on nothing runs in it, and it counts toward the
// limit until the removal, tried again after a failure, is done.
func TestDestroyInBackground(t *testing.T) {
	t.Parallel()
	f := &failingDestroy{Fake: &sandboxtest.Fake{}, release: make(chan struct{}), failed: map[sandbox.ID]bool{}}
	obs := &counter{}
	m := New(f, Options{MaxSandboxes: 2, Observer: obs})
	m.retry = time.Millisecond
	a, _ := m.Create(t.Context(), sandbox.Spec{}, -1)
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); err != nil {
		t.Fatal(err)
	}
	// An execution running in a when it is deleted is cancelled.
	started := make(chan struct{})
	f.ExecFunc = func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		close(started)
		<-ctx.Done()
		return sandbox.ExecResult{}, ctx.Err()
	}
	running := make(chan error, 1)
	go func() {
		_, err := m.Exec(context.Background(), a.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "x"})
		running <- err
	}()
	<-started
	if err := m.Destroy(t.Context(), a.ID); err != nil { // returns with the provider's Destroy held
		t.Fatalf("Destroy = %v", err)
	}
	if err := <-running; !errors.Is(err, context.Canceled) {
		t.Errorf("execution running across Destroy = %v, want it cancelled", err)
	}
	for _, err := range []error{
		func() error { _, err := m.Get(a.ID); return err }(),
		func() error {
			_, err := m.Exec(t.Context(), a.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"})
			return err
		}(),
		func() error {
			_, _, err := m.StartProcess(t.Context(), a.ID, sandbox.ProcessSpec{Command: "true"})
			return err
		}(),
		m.Destroy(t.Context(), a.ID),
	} {
		if !errors.Is(err, sandbox.ErrNotFound) {
			t.Errorf("after Destroy: %v, want ErrNotFound", err)
		}
	}
	if m.Active() != 1 || m.Removing() != 1 || f.Live() != 2 {
		t.Fatalf("while removing: Active %d, Removing %d, live in the provider %d; want 1, 1, 2", m.Active(), m.Removing(), f.Live())
	}
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); !errors.Is(err, sandbox.ErrLimit) {
		t.Fatalf("Create while a removal holds the last slot = %v, want ErrLimit", err)
	}
	close(f.release) // the first removal fails, the second succeeds
	m.removals.Wait()
	if m.Removing() != 0 || f.Live() != 1 || obs.destroyed.Load() != 1 {
		t.Fatalf("after the removal: Removing %d, live %d, destroyed %d; want 0, 1, 1", m.Removing(), f.Live(), obs.destroyed.Load())
	}
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); err != nil {
		t.Fatalf("Create once the removal is done = %v", err)
	}
}

// TestAdoptAndHandOver: Adopt registers what its function takes over,
// within the limit, once; Shutdown with HandOver leaves sandboxes to it
// rather than destroying them, and destroys those it fails to hand over.
func TestAdoptAndHandOver(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	other := New(f, Options{})
	info, err := other.Create(t.Context(), sandbox.Spec{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	var handed []sandbox.ID
	m := New(f, Options{MaxSandboxes: 1, HandOver: func(_ context.Context, id sandbox.ID) error {
		if id != info.ID {
			return errors.New("refused")
		}
		handed = append(handed, id)
		return nil
	}})
	adopt := func(context.Context) (sandbox.Info, error) { return info.Info, nil }
	got, err := m.Adopt(t.Context(), info.ID, time.Minute, adopt)
	if err != nil || got.ID != info.ID || got.IdleTimeoutSeconds != 60 {
		t.Fatalf("Adopt = %+v, %v", got, err)
	}
	if _, err := m.Adopt(t.Context(), info.ID, -1, adopt); !errors.Is(err, sandbox.ErrConflict) {
		t.Errorf("second Adopt = %v, want ErrConflict", err)
	}
	if _, err := m.Adopt(t.Context(), "sb-0000000000000001", -1, func(context.Context) (sandbox.Info, error) {
		return sandbox.Info{ID: "sb-0000000000000001"}, nil
	}); !errors.Is(err, sandbox.ErrLimit) {
		t.Errorf("Adopt past MaxSandboxes = %v, want ErrLimit", err)
	}
	if _, err := m.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}); err != nil {
		t.Errorf("Exec in the adopted sandbox: %v", err)
	}
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(handed) != 1 || m.Active() != 0 {
		t.Errorf("handed over %v, %d left", handed, m.Active())
	}
	if _, err := f.Env(t.Context(), info.ID); err != nil {
		t.Errorf("the handed-over sandbox was destroyed: %v", err)
	}
}
