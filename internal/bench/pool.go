package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/pool"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// poolSize is the warm pool of the pool case: warden serve's default.
const poolSize = 2

// poolCase measures what two clients at once wait for from warden serve
// on the bubblewrap provider: each creates a sandbox, runs print(1) in it
// and deletes it. With the warm pool, the creates are hand-overs and the
// refills start meanwhile, at low priority; without it (the baseline),
// each create starts a sandbox. Each sample waits, after the pair, until
// the pool is full again and the deleted sandboxes are removed, so that
// every pair finds the pool full. The floor is two plain
// `python3 -c 'print(1)'` at once on the host.
func poolCase(bw sandbox.Provider) caseRunner {
	return func(ctx context.Context, e env, n, warmup int) (_ []Stats, err error) {
		spec := e.spec()
		warm, err := newService(ctx, bw, spec, poolSize)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, warm.close(context.WithoutCancel(ctx))) }()
		cold, err := newService(ctx, bw, spec, 0)
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, cold.close(context.WithoutCancel(ctx))) }()
		ops := []op{
			warm.pairOp(PoolPair, PoolFirst, PoolDelete),
			cold.pairOp(ColdPair, ColdFirst, ColdDelete),
		}
		if f, ferr := newFloor(); ferr == nil {
			ops = append(ops, hostPythonPair(f))
		} else {
			fmt.Fprintf(e.log, "%s: no python3 floor: %v\n", CasePool, ferr)
		}
		stats, err := measure(ctx, e, CasePool, ops, n, warmup, 1, lifecycleTimeout)
		if hits, misses, _ := warm.pool.Stats(); misses > 0 {
			e.addNote(fmt.Sprintf("pool case: %d of %d pooled creates found the pool empty and started a sandbox", misses, hits+misses))
		}
		return stats, err
	}
}

// service is warden serve's handler over a provider, with or without a
// warm pool, reached over loopback HTTP with the Go client.
type service struct {
	pool *pool.Pool // nil without
	mgr  *session.Manager
	srv  *http.Server
	c    *client.Client
}

func newService(ctx context.Context, p sandbox.Provider, spec sandbox.Spec, size int) (*service, error) {
	s := &service{}
	backend := p
	if size > 0 {
		s.pool = pool.New(unclosing{p}, pool.Options{Spec: spec, Size: size})
		backend = s.pool
	}
	s.mgr = session.New(backend, session.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.srv = &http.Server{Handler: server.New(server.Options{Manager: s.mgr, Defaults: spec, Version: "bench"}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	if s.c, err = client.New("http://" + ln.Addr().String()); err != nil {
		_ = s.close(ctx)
		return nil, err
	}
	return s, s.settle(ctx)
}

// unclosing keeps the pool's Close from closing the provider, which the
// bench does not own.
type unclosing struct{ sandbox.Provider }

func (unclosing) Close(context.Context) error { return nil }

// Unwrap and Run let the pool see a one-shot path of the provider's.
func (u unclosing) Unwrap() sandbox.Provider { return u.Provider }

func (u unclosing) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return sandbox.Run(ctx, u.Provider, spec, req)
}

func (s *service) close(ctx context.Context) error {
	_ = s.srv.Close()
	err := s.mgr.Shutdown(ctx)
	if s.pool != nil {
		err = errors.Join(err, s.pool.Close(ctx))
	}
	return err
}

// settle waits until the pool is full and no removal is under way.
func (s *service) settle(ctx context.Context) error {
	for {
		ready := poolSize
		if s.pool != nil {
			_, _, ready = s.pool.Stats()
		}
		if ready == poolSize && s.mgr.Removing() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the pool to fill: %w", ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// pairOp is two clients at once, each creating a sandbox, running
// print(1) and deleting it, then the wait for the pool to fill again. Its
// parts are the slower client's create → first result and the slower
// DELETE.
func (s *service) pairOp(name, first, del string) op {
	return op{name: name, parts: []string{first, del}, fn: func(ctx context.Context) ([]time.Duration, error) {
		var (
			wg           sync.WaitGroup
			mu           sync.Mutex
			tFirst, tDel time.Duration
			errs         []error
		)
		for range 2 {
			wg.Go(func() {
				f, d, err := s.once(ctx)
				mu.Lock()
				defer mu.Unlock()
				tFirst, tDel = max(tFirst, f), max(tDel, d)
				errs = append(errs, err)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		return []time.Duration{tFirst, tDel}, s.settle(ctx)
	}}
}

// once creates a sandbox, runs print(1) and deletes it, returning the
// time to the first result and the time DELETE took.
func (s *service) once(ctx context.Context) (first, del time.Duration, err error) {
	t0 := time.Now()
	sb, err := s.c.Create(ctx, client.CreateOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("creating: %w", err)
	}
	res, err := s.c.Execute(ctx, sb.ID, client.ExecuteOptions{Language: api.Python, Code: pyPrint})
	if err == nil && (!res.Success || strings.TrimSpace(res.Stdout) != "1") {
		err = fmt.Errorf("print(1): exit code %d, stdout %q, stderr %s", res.ExitCode, res.Stdout, tail([]byte(res.Stderr)))
	}
	first = time.Since(t0)
	t1 := time.Now()
	derr := s.c.Delete(context.WithoutCancel(ctx), sb.ID)
	del = time.Since(t1)
	return first, del, errors.Join(err, derr)
}

// hostPythonPair is the floor: two `python3 -c 'print(1)'` at once on the
// host, the slower one's time.
func hostPythonPair(f floor) op {
	return op{name: HostPythonPair, fn: func(ctx context.Context) ([]time.Duration, error) {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				cmd := exec.CommandContext(ctx, f.python, "-c", pyPrint)
				cmd.Env = f.env()
				out, err := cmd.Output()
				if err == nil && strings.TrimSpace(string(out)) != "1" {
					err = fmt.Errorf("python3 printed %q", out)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		return nil, errors.Join(errs...)
	}}
}
