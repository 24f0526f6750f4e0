package session

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// gatedRunner is a provider with a one-shot path whose runs wait for
// release (or their ctx), reporting on started when they begin.
type gatedRunner struct {
	*sandboxtest.Fake
	started chan struct{}
	release chan struct{}
}

func (g *gatedRunner) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	g.started <- struct{}{}
	select {
	case <-g.release:
		return sandbox.ExecResult{Stdout: []byte("one-shot")}, nil
	case <-ctx.Done():
		return sandbox.ExecResult{}, ctx.Err()
	}
}

func newGated() *gatedRunner {
	return &gatedRunner{Fake: &sandboxtest.Fake{}, started: make(chan struct{}, 4), release: make(chan struct{})}
}

var pyReq = sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}

// TestRunOneShotLimit: a one-shot run holds a place under MaxSandboxes
// while it lasts, and gives it back when it ends; it is an execution for
// the observer and never shows among the sandboxes.
func TestRunOneShotLimit(t *testing.T) {
	t.Parallel()
	g := newGated()
	obs := &counter{}
	m := New(g, Options{MaxSandboxes: 2, Observer: obs})
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   sandbox.ExecResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := m.RunOneShot(context.Background(), sandbox.Spec{}.WithDefaults(), pyReq)
		done <- result{r, err}
	}()
	<-g.started
	if m.Runs() != 1 || m.Active() != 1 || len(m.List()) != 1 {
		t.Errorf("during the run: Runs %d, Active %d, listed %d; want 1, 1, 1", m.Runs(), m.Active(), len(m.List()))
	}
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); !errors.Is(err, sandbox.ErrLimit) {
		t.Errorf("Create during the run = %v, want ErrLimit", err)
	}
	if _, err := m.RunOneShot(t.Context(), sandbox.Spec{}.WithDefaults(), pyReq); !errors.Is(err, sandbox.ErrLimit) {
		t.Errorf("a second run at the limit = %v, want ErrLimit", err)
	}
	close(g.release)
	if res := <-done; res.err != nil || string(res.r.Stdout) != "one-shot" {
		t.Fatalf("RunOneShot = %q, %v; want the provider's one-shot path", res.r.Stdout, res.err)
	}
	if m.Runs() != 0 {
		t.Errorf("Runs = %d after the run", m.Runs())
	}
	if _, err := m.Create(t.Context(), sandbox.Spec{}, -1); err != nil {
		t.Errorf("Create after the run = %v; the run kept its place", err)
	}
	if obs.executed.Load() != 1 || obs.created.Load() != 2 || obs.destroyed.Load() != 0 {
		t.Errorf("observed %d executions, %d creates, %d destroys; want 1, 2, 0",
			obs.executed.Load(), obs.created.Load(), obs.destroyed.Load())
	}
}

// TestRunOneShotWithoutRunner: on a provider without a one-shot path the
// run creates, executes and destroys; a failing run gives its place back.
func TestRunOneShotWithoutRunner(t *testing.T) {
	t.Parallel()
	f := &sandboxtest.Fake{}
	m := New(f, Options{MaxSandboxes: 1})
	r, err := m.RunOneShot(t.Context(), sandbox.Spec{}.WithDefaults(), sandbox.ExecRequest{Language: sandbox.Shell, Code: "exit 3"})
	if err != nil || r.ExitCode != 3 || f.Created != 1 || f.Live() != 0 {
		t.Fatalf("RunOneShot = %+v, %v; created %d, live %d", r, err, f.Created, f.Live())
	}
	f.CreateErr = errors.New("backend down")
	if _, err := m.RunOneShot(t.Context(), sandbox.Spec{}.WithDefaults(), pyReq); !errors.Is(err, f.CreateErr) {
		t.Errorf("RunOneShot with a failing backend = %v", err)
	}
	f.CreateErr = nil
	if _, err := m.RunOneShot(t.Context(), sandbox.Spec{}.WithDefaults(), pyReq); err != nil {
		t.Errorf("RunOneShot after a failed run = %v; the failed run kept its place", err)
	}
	if _, err := New(nil, Options{}).RunOneShot(t.Context(), sandbox.Spec{}, pyReq); !errors.Is(err, sandbox.ErrDisabled) {
		t.Errorf("RunOneShot without a provider = %v, want ErrDisabled", err)
	}
}

// TestRunOneShotShutdown: Shutdown waits for a run for its grace period,
// then cancels it; runs started after it began are refused.
func TestRunOneShotShutdown(t *testing.T) {
	t.Parallel()
	g := newGated()
	m := New(g, Options{})
	errc := make(chan error, 1)
	go func() {
		_, err := m.RunOneShot(context.Background(), sandbox.Spec{}.WithDefaults(), pyReq)
		errc <- err
	}()
	<-g.started
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("Shutdown returned after %s, before its grace period, with a run going", d)
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("the run = %v, want it cancelled", err)
	}
	if _, err := m.RunOneShot(t.Context(), sandbox.Spec{}.WithDefaults(), pyReq); !errors.Is(err, sandbox.ErrDisabled) {
		t.Errorf("RunOneShot after Shutdown = %v, want ErrDisabled", err)
	}
}
