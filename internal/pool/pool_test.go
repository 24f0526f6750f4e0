package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// waitReady waits until the pool holds n ready sandboxes.
func waitReady(t testing.TB, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, _, ready := p.Stats(); ready == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool never reached %d ready sandboxes", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestPoolHandsOverFreshSandboxes(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	p := New(f, Options{Size: 2})
	waitReady(t, p, 2)
	if f.Created != 2 {
		t.Fatalf("Created = %d, want 2 warm sandboxes", f.Created)
	}
	seen := map[sandbox.ID]bool{}
	for i := range 5 {
		info, err := p.Create(t.Context(), sandbox.Spec{Env: map[string]string{"N": "v"}})
		if err != nil {
			t.Fatal(err)
		}
		if seen[info.ID] {
			t.Fatalf("sandbox %s handed over twice", info.ID)
		}
		seen[info.ID] = true
		env, err := p.Env(t.Context(), info.ID)
		if err != nil || env["N"] != "v" || len(env) != 1 || info.Spec.Env["N"] != "v" {
			t.Fatalf("create %d: env %v, %v, spec env %v", i, env, err, info.Spec.Env)
		}
		if err := p.Destroy(t.Context(), info.ID); err != nil {
			t.Fatal(err)
		}
		waitReady(t, p, 2)
	}
	hits, misses, _ := p.Stats()
	if hits != 5 || misses != 0 {
		t.Errorf("hits %d, misses %d; want 5 and 0", hits, misses)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if f.Live() != 0 {
		t.Errorf("%d sandboxes left after Close", f.Live())
	}
}

func TestPoolOtherSpecsGoToTheProvider(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	p := New(f, Options{Size: 1})
	defer p.Close(context.Background())
	waitReady(t, p, 1)
	info, err := p.Create(t.Context(), sandbox.Spec{MemoryLimit: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if info.Spec.MemoryLimit != 64<<20 {
		t.Errorf("spec %+v, want the requested memory limit", info.Spec)
	}
	if hits, misses, ready := p.Stats(); hits != 0 || misses != 1 || ready != 1 {
		t.Errorf("hits %d misses %d ready %d; want 0, 1, 1", hits, misses, ready)
	}
}

func TestPoolEmptyOrZero(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	p := New(f, Options{Size: 0})
	if _, err := p.Create(t.Context(), sandbox.Spec{}); err != nil {
		t.Fatal(err)
	}
	if f.Created != 1 {
		t.Errorf("Created = %d with no pool, want 1", f.Created)
	}
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestPoolBackoff: a provider that cannot create is retried with pauses,
// not in a tight loop, and creates still report its error.
func TestPoolBackoff(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	boom := errors.New("backend down")
	f := &countingCreate{Fake: &sandboxtest.Fake{CreateErr: boom}, n: &calls}
	p := New(f, Options{Size: 3})
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n > 6 {
		t.Errorf("%d create attempts in 300ms against a failing backend; want a backoff", n)
	}
	if _, err := p.Create(t.Context(), sandbox.Spec{}); !errors.Is(err, boom) {
		t.Errorf("Create = %v, want the backend's error", err)
	}
	start := time.Now()
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close waited %s for a backoff", d)
	}
}

type countingCreate struct {
	*sandboxtest.Fake
	n *atomic.Int64
}

func (c *countingCreate) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	c.n.Add(1)
	return c.Fake.Create(ctx, spec)
}

// TestPoolDocker: a pooled Docker sandbox takes the requested
// environment, runs code, and nothing outlives Close.
func TestPoolDocker(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	d, err := docker.New(t.Context(), docker.Options{WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	spec := sandbox.Spec{Image: testutil.Image()}
	p := New(d, Options{Spec: spec, Size: 1})
	defer p.Close(context.Background())
	waitReady(t, p, 1)
	spec.Env = map[string]string{"GREETING": "hello"}
	info, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: `echo "$GREETING"; id -u`})
	if err != nil || string(r.Stdout) != "hello\n1000\n" {
		t.Fatalf("exec in a pooled sandbox = %q, %v", r.Stdout, err)
	}
	if hits, _, _ := p.Stats(); hits != 1 {
		t.Errorf("hits = %d, want 1", hits)
	}
	waitReady(t, p, 1)
	if err := p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Env(t.Context(), info.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("a sandbox survived Close: %v", err)
	}
}

// BenchmarkCreateAndRun measures what a client waits for, from create to
// the first result, with and without a warm sandbox ready (the refill
// between iterations is not timed), against the real Docker engine.
func BenchmarkCreateAndRun(b *testing.B) {
	testutil.RequireDocker(b)
	d, err := docker.New(b.Context(), docker.Options{WorkspaceRoot: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(context.Background())
	spec := sandbox.Spec{Image: testutil.Image()}
	for _, size := range []int{0, 1} {
		name := map[int]string{0: "direct", 1: "pooled"}[size]
		b.Run(name, func(b *testing.B) {
			p := New(d, Options{Spec: spec, Size: size})
			defer p.Close(context.Background())
			for b.Loop() {
				b.StopTimer()
				waitReady(b, p, size)
				b.StartTimer()
				info, err := p.Create(b.Context(), spec)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := p.Exec(b.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1 + 1"}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = p.Destroy(b.Context(), info.ID)
				b.StartTimer()
			}
		})
	}
}

// lowFake records which sandboxes were created in the background and
// which of those were raised to the foreground.
type lowFake struct {
	*sandboxtest.Fake
	mu  sync.Mutex
	low map[sandbox.ID]bool
}

func (f *lowFake) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	info, err := f.Fake.Create(ctx, spec)
	if err == nil {
		f.mu.Lock()
		f.low[info.ID] = sandbox.IsBackground(ctx)
		f.mu.Unlock()
	}
	return info, err
}

func (f *lowFake) Foreground(ctx context.Context, id sandbox.ID) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.low[id] = false
	return nil
}

// embedding wraps a provider as warden serve's quota wrapper does: by
// embedding the interface, which hides the wrapped provider's optional
// abilities from a type assertion.
type embedding struct{ sandbox.Provider }

func (e embedding) Unwrap() sandbox.Provider { return e.Provider }

// TestPoolRefillsInTheBackground: refills are created in the background,
// and what the pool hands over is in the foreground again, also through
// a wrapper between the pool and the provider (warden serve puts the
// workspace quota there: its pooled sandboxes once kept the lowest CPU
// weight for their whole life and starved under load); a create the pool
// cannot serve is never in the background.
func TestPoolRefillsInTheBackground(t *testing.T) {
	t.Parallel()
	for _, wrapped := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "wrapped"}[wrapped], func(t *testing.T) {
			t.Parallel()
			testPoolRefillsInTheBackground(t, wrapped)
		})
	}
}

func testPoolRefillsInTheBackground(t *testing.T, wrapped bool) {
	f := &lowFake{Fake: &sandboxtest.Fake{}, low: map[sandbox.ID]bool{}}
	var under sandbox.Provider = f
	if wrapped {
		under = embedding{f}
	}
	p := New(under, Options{Size: 1})
	waitReady(t, p, 1)
	f.mu.Lock()
	for id, low := range f.low {
		if !low {
			t.Errorf("refill %s was not created in the background", id)
		}
	}
	f.mu.Unlock()
	for _, spec := range []sandbox.Spec{{}, {MemoryLimit: 64 << 20}} {
		info, err := p.Create(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		low := f.low[info.ID]
		f.mu.Unlock()
		if low {
			t.Errorf("Create(%+v) handed over %s still in the background", spec, info.ID)
		}
	}
}

// TestPoolRefillWaitsForTheEnd: refills start once every sandbox handed
// over in the last Options.RefillDelay has been destroyed, and at once
// when a create finds the pool empty; never at a hand-over itself, nor
// with its executions.
func TestPoolRefillWaitsForTheEnd(t *testing.T) {
	t.Parallel()
	startN := func(t *testing.T, size int, delay time.Duration) (*Pool, *atomic.Int64) {
		var calls atomic.Int64
		p := New(&countingCreate{Fake: &sandboxtest.Fake{}, n: &calls}, Options{Size: size, RefillDelay: delay})
		t.Cleanup(func() { _ = p.Close(context.Background()) })
		waitReady(t, p, size)
		return p, &calls
	}
	start := func(t *testing.T, delay time.Duration) (*Pool, *atomic.Int64) { return startN(t, 1, delay) }
	// destroy destroys id and, once the pool is full again, checks that
	// it made want sandboxes in all.
	destroy := func(t *testing.T, p *Pool, calls *atomic.Int64, id sandbox.ID, size int, want int64) {
		t.Helper()
		if err := p.Destroy(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		waitReady(t, p, size)
		if n := calls.Load(); n != want {
			t.Errorf("%d creates, want %d", n, want)
		}
	}
	// noRefill checks that the pool, after a hand-over, started none.
	noRefill := func(t *testing.T, p *Pool, calls *atomic.Int64, when string) {
		t.Helper()
		time.Sleep(20 * time.Millisecond)
		if hits, _, ready := p.Stats(); hits != 1 || calls.Load() != 1 || ready != 0 {
			t.Fatalf("%s: %d hits, %d creates, %d ready; want 1, 1 (no refill yet), 0", when, hits, calls.Load(), ready)
		}
	}
	handOver := func(t *testing.T, p *Pool, calls *atomic.Int64) sandbox.ID {
		info, err := p.Create(t.Context(), sandbox.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		noRefill(t, p, calls, "after the hand-over")
		return info.ID
	}
	t.Run("destroyed", func(t *testing.T) {
		t.Parallel()
		p, calls := start(t, time.Hour)
		id := handOver(t, p, calls)
		for range 2 {
			if _, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}); err != nil {
				t.Fatal(err)
			}
		}
		noRefill(t, p, calls, "after two executions")
		destroy(t, p, calls, id, 1, 2)
	})
	t.Run("every recent hand-over destroyed", func(t *testing.T) {
		t.Parallel()
		p, calls := startN(t, 2, time.Hour)
		var ids []sandbox.ID
		for range 2 {
			info, err := p.Create(t.Context(), sandbox.Spec{})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, info.ID)
		}
		if err := p.Destroy(t.Context(), ids[0]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if n := calls.Load(); n != 2 {
			t.Fatalf("%d creates while a sandbox handed over still lives, want 2", n)
		}
		destroy(t, p, calls, ids[1], 2, 4)
	})
	t.Run("delay", func(t *testing.T) {
		t.Parallel()
		p, calls := start(t, 300*time.Millisecond)
		handOver(t, p, calls)
		waitReady(t, p, 1)
	})
	t.Run("pool empty", func(t *testing.T) {
		t.Parallel()
		p, calls := start(t, time.Hour)
		handOver(t, p, calls)
		if _, err := p.Create(t.Context(), sandbox.Spec{}); err != nil {
			t.Fatal(err)
		}
		waitReady(t, p, 1)
		if hits, misses, _ := p.Stats(); hits != 1 || misses != 1 || calls.Load() != 3 {
			t.Errorf("%d hits, %d misses, %d creates; want 1, 1, 3", hits, misses, calls.Load())
		}
	})
}
