package pool

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// oneShotFake is a provider with a one-shot path of its own.
type oneShotFake struct {
	*sandboxtest.Fake
	runs atomic.Int64
}

func (o *oneShotFake) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	o.runs.Add(1)
	return sandbox.ExecResult{Stdout: []byte("one-shot")}, nil
}

// passOn is a wrapper that implements Run only to pass runs on, as the
// workspace quota does.
type passOn struct{ sandbox.Provider }

func (w passOn) Unwrap() sandbox.Provider { return w.Provider }
func (w passOn) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return sandbox.Run(ctx, w.Provider, spec, req)
}

var py = sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"}

// TestRunOneShotPath: a provider with a one-shot path takes the run, also
// behind a wrapper that passes runs on; the pool is not touched.
func TestRunOneShotPath(t *testing.T) {
	t.Parallel()
	for name, wrap := range map[string]func(sandbox.Provider) sandbox.Provider{
		"direct":  func(p sandbox.Provider) sandbox.Provider { return p },
		"wrapped": func(p sandbox.Provider) sandbox.Provider { return passOn{p} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := &oneShotFake{Fake: &sandboxtest.Fake{}}
			p := New(wrap(r), Options{Size: 2})
			defer p.Close(context.Background())
			waitReady(t, p, 2)
			for range 3 {
				res, err := p.Run(t.Context(), sandbox.Spec{}.WithDefaults(), py)
				if err != nil || string(res.Stdout) != "one-shot" {
					t.Fatalf("Run = %q, %v; want the one-shot path", res.Stdout, err)
				}
			}
			hits, misses, ready := p.Stats()
			if r.runs.Load() != 3 || hits != 0 || misses != 0 || ready != 2 || r.Created != 2 || r.Destroyed != 0 {
				t.Errorf("runs %d, hits %d, misses %d, ready %d, created %d, destroyed %d; want 3 runs and the pool untouched",
					r.runs.Load(), hits, misses, ready, r.Created, r.Destroyed)
			}
		})
	}
}

// TestRunFromThePool: without a one-shot path (also behind a wrapper that
// has Run), a pooled sandbox serves the run, is destroyed after it, and
// the pool refills.
func TestRunFromThePool(t *testing.T) {
	t.Parallel()
	for name, wrap := range map[string]func(sandbox.Provider) sandbox.Provider{
		"direct":  func(p sandbox.Provider) sandbox.Provider { return p },
		"wrapped": func(p sandbox.Provider) sandbox.Provider { return passOn{p} },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var ran atomic.Pointer[sandbox.ID]
			f := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
				ran.Store(&id)
				return sandbox.ExecResult{Stdout: []byte("pooled")}, nil
			}}
			p := New(wrap(f), Options{Size: 2})
			defer p.Close(context.Background())
			waitReady(t, p, 2)
			p.mu.Lock()
			warm := map[sandbox.ID]bool{p.ready[0].ID: true, p.ready[1].ID: true}
			p.mu.Unlock()

			res, err := p.Run(t.Context(), sandbox.Spec{Env: map[string]string{"A": "1"}}.WithDefaults(), py)
			if err != nil || string(res.Stdout) != "pooled" {
				t.Fatalf("Run = %q, %v", res.Stdout, err)
			}
			if id := ran.Load(); id == nil || !warm[*id] {
				t.Errorf("the run ran in %v, not in a sandbox of the pool %v", id, warm)
			}
			if hits, misses, _ := p.Stats(); hits != 1 || misses != 0 {
				t.Errorf("hits %d, misses %d; want 1 and 0", hits, misses)
			}
			waitReady(t, p, 2) // the refill
			if f.Created != 3 || f.Destroyed != 1 || f.Live() != 2 {
				t.Errorf("created %d, destroyed %d, live %d; want 3, 1, 2", f.Created, f.Destroyed, f.Live())
			}

			// Another spec: the provider creates the run's sandbox, the pool stays.
			if _, err := p.Run(t.Context(), sandbox.Spec{MemoryLimit: 64 << 20}.WithDefaults(), py); err != nil {
				t.Fatal(err)
			}
			if hits, misses, ready := p.Stats(); hits != 1 || misses != 1 || ready != 2 || f.Live() != 2 {
				t.Errorf("hits %d, misses %d, ready %d, live %d; want 1, 1, 2, 2", hits, misses, ready, f.Live())
			}
		})
	}
}
