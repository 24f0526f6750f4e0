// Package pool keeps warm sandboxes ready in front of a provider, so that
// creating a sandbox with the service's default settings costs a hand-over
// instead of a container start.
//
// A [Pool] is a sandbox.Provider. Create with a spec equal to the pool's
// (environment variables aside, which a sandbox takes per execution
// anyway) hands over a sandbox that was created fresh and never ran
// anything, and starts a replacement in the background; any other spec is
// created by the provider as usual. Every pooled sandbox is new: none is
// ever reused after a client had it. A one-shot run (sandbox.Runner) takes
// a pooled sandbox too, unless the provider has a one-shot path of its
// own.
//
// Refills are created in the background (sandbox.WithBackground): a
// provider that can starts them at the lowest CPU priority, so that they
// take only the CPU time running code leaves, and the pool raises a
// sandbox to the normal priority (sandbox.Foregrounder) when it hands it
// over.
//
// Refills do not start at a hand-over but once every sandbox handed over
// in the last Options.RefillDelay (250 ms) has been destroyed: a start is
// a burst of kernel work (namespaces, mounts, cgroups, page tables) that a
// low CPU weight does not keep off the CPUs, and on a small machine it
// tripled the time to the first results of the sandboxes just handed
// over. Sandboxes used once (one program, then deleted) are replaced as
// they go; one kept longer, a moment later. A create the pool cannot
// serve starts every refill owed at once.
package pool

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// DefaultRefillDelay is how long a hand-over holds the refills back at
// most while the sandbox handed over lives.
const DefaultRefillDelay = 250 * time.Millisecond

// Options configure a Pool.
type Options struct {
	// Spec is what pooled sandboxes are created with. WithDefaults is
	// applied.
	Spec sandbox.Spec
	// Size is how many sandboxes are kept ready. 0 keeps none: the pool
	// then only passes calls through.
	Size int
	// Log receives fill failures. Default: discard.
	Log *slog.Logger
	// RefillDelay bounds how long a hand-over holds the refills back
	// while the sandbox handed over lives. Default: DefaultRefillDelay.
	RefillDelay time.Duration
}

// Pool keeps Options.Size fresh sandboxes ready. It is safe for concurrent
// use.
type Pool struct {
	sandbox.Provider
	spec  sandbox.Spec
	size  int
	log   *slog.Logger
	delay time.Duration // Options.RefillDelay

	ctx    context.Context // ends at Close: stops filling
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	ready   []sandbox.Info
	filling int
	// owed holds the sandboxes handed over that hold the refills back
	// (see the package doc), each with its deadline.
	owed    map[sandbox.ID]*time.Timer
	closed  bool
	backoff time.Duration // after a failed fill; 0 when the last worked

	hits, misses atomic.Int64
}

var (
	_ sandbox.Provider = (*Pool)(nil)
	_ sandbox.Runner   = (*Pool)(nil)
)

// New starts filling a pool in front of p.
func New(p sandbox.Provider, opts Options) *Pool {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pl := &Pool{Provider: p, spec: opts.Spec.WithDefaults(), size: max(opts.Size, 0), log: log, ctx: ctx, cancel: cancel,
		owed: map[sandbox.ID]*time.Timer{}, delay: opts.RefillDelay}
	if pl.delay <= 0 {
		pl.delay = DefaultRefillDelay
	}
	pl.refill()
	return pl
}

// Stats reports how many creates were served from the pool (hits) and by
// the provider (misses), and how many sandboxes are ready now.
func (p *Pool) Stats() (hits, misses int64, ready int) {
	p.mu.Lock()
	ready = len(p.ready)
	p.mu.Unlock()
	return p.hits.Load(), p.misses.Load(), ready
}

// matches reports whether spec asks for exactly what the pool holds,
// environment variables aside.
func (p *Pool) matches(spec sandbox.Spec) bool {
	a, b := spec, p.spec
	a.Env, b.Env = nil, nil
	return reflect.DeepEqual(a, b)
}

// Create implements sandbox.Provider: a ready sandbox when spec matches
// the pool's, else a new one from the provider.
func (p *Pool) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	spec = spec.WithDefaults()
	if p.size > 0 && p.matches(spec) {
		for {
			info, ok := p.take()
			if !ok {
				break
			}
			if f, ok := sandbox.Ability[sandbox.Foregrounder](p.Provider); ok {
				if err := f.Foreground(ctx, info.ID); err != nil {
					p.log.Warn("dropping a pooled sandbox that kept its low priority", "id", info.ID, "err", err)
					p.destroy(info.ID)
					p.settle(info.ID)
					continue
				}
			}
			if len(spec.Env) > 0 || len(p.spec.Env) > 0 {
				if _, err := p.Provider.UpdateEnv(ctx, info.ID, sandbox.EnvUpdate{Set: maps.Clone(spec.Env), Replace: true}); err != nil {
					p.log.Warn("dropping a pooled sandbox that refused its environment", "id", info.ID, "err", err)
					p.destroy(info.ID)
					p.settle(info.ID)
					continue
				}
			}
			info.Spec.Env = maps.Clone(spec.Env)
			p.hits.Add(1)
			return info, nil
		}
	}
	p.misses.Add(1)
	if p.size > 0 && p.matches(spec) {
		p.settleAll() // the pool ran dry: refill now
	}
	return p.Provider.Create(ctx, spec)
}

// Run implements sandbox.Runner. A provider with a one-shot path of its
// own takes the run there, and the pool is not used; otherwise a sandbox
// of the pool (when spec matches the pool's) serves it: Create, Exec and
// Destroy on the pool, which then refills as after any hand-over.
func (p *Pool) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if oneShot(p.Provider) {
		return sandbox.Run(ctx, p.Provider, spec, req)
	}
	return sandbox.RunWith(ctx, p, spec, req)
}

// oneShot reports whether p takes runs on a one-shot path of its own: p is
// a sandbox.Runner, and so is the provider at the end of its chain of
// wrappers. Wrappers on the way (a workspace quota) implement Run only to
// pass the run on, so that a Run of theirs says nothing about the
// provider behind them.
func oneShot(p sandbox.Provider) bool {
	if _, ok := p.(sandbox.Runner); !ok {
		return false
	}
	for {
		w, ok := p.(sandbox.Wrapper)
		if !ok {
			_, ok := p.(sandbox.Runner)
			return ok
		}
		if p = w.Unwrap(); p == nil {
			return false
		}
	}
}

// Destroy implements sandbox.Provider; it lets the refills start if the
// sandbox was the last recent hand-over alive.
func (p *Pool) Destroy(ctx context.Context, id sandbox.ID) error {
	p.settle(id)
	return p.Provider.Destroy(ctx, id)
}

// settle notes that the sandbox id handed over is gone, or was handed over
// RefillDelay ago, and starts the refills owed once no other recent
// hand-over is alive.
func (p *Pool) settle(id sandbox.ID) {
	p.mu.Lock()
	t, ok := p.owed[id]
	if ok {
		t.Stop()
		delete(p.owed, id)
	}
	last := len(p.owed) == 0
	p.mu.Unlock()
	if ok && last {
		p.refill()
	}
}

// settleAll starts every refill owed: the pool ran dry.
func (p *Pool) settleAll() {
	p.mu.Lock()
	n := len(p.owed)
	for id, t := range p.owed {
		t.Stop()
		delete(p.owed, id)
	}
	p.mu.Unlock()
	if n > 0 {
		p.refill()
	}
}

func (p *Pool) take() (sandbox.Info, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) == 0 {
		return sandbox.Info{}, false
	}
	info := p.ready[0]
	p.ready = p.ready[1:]
	// It holds the refills back until it is destroyed (see the package doc).
	p.owed[info.ID] = time.AfterFunc(p.delay, func() { p.settle(info.ID) })
	return info, true
}

// refill starts as many background creates as the pool is short, but
// for the refills still owed.
func (p *Pool) refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.closed && len(p.ready)+p.filling+len(p.owed) < p.size {
		p.filling++
		p.wg.Add(1)
		go p.fill(p.backoff)
	}
}

func (p *Pool) fill(wait time.Duration) {
	defer p.wg.Done()
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-p.ctx.Done():
		}
	}
	var info sandbox.Info
	err := p.ctx.Err()
	if err == nil {
		info, err = p.Provider.Create(sandbox.WithBackground(p.ctx), p.spec)
	}
	p.mu.Lock()
	p.filling--
	switch {
	case err == nil && !p.closed:
		p.ready = append(p.ready, info)
		p.backoff = 0
		p.mu.Unlock()
		return
	case err == nil: // closed meanwhile
		p.mu.Unlock()
		p.destroy(info.ID)
		return
	case p.closed || errors.Is(err, context.Canceled):
		p.mu.Unlock()
		return
	}
	// A failed fill is retried with a growing pause, so a broken backend
	// is not hammered.
	p.backoff = min(max(2*p.backoff, time.Second), time.Minute)
	p.mu.Unlock()
	p.log.Warn("could not fill the warm pool", "err", err, "retry_in", p.backoff)
	p.refill()
}

func (p *Pool) destroy(id sandbox.ID) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := p.Provider.Destroy(ctx, id); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
		p.log.Warn("removing a pooled sandbox", "id", id, "err", err)
	}
}

// Close stops filling, destroys the ready sandboxes and closes the
// provider, which destroys every sandbox it still has.
func (p *Pool) Close(ctx context.Context) error {
	p.mu.Lock()
	p.closed = true
	ready := p.ready
	p.ready = nil
	for id, t := range p.owed {
		t.Stop()
		delete(p.owed, id)
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	var errs []error
	for _, info := range ready {
		if err := p.Provider.Destroy(ctx, info.ID); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, p.Provider.Close(ctx))
	return errors.Join(errs...)
}

// Unwrap returns the provider behind the pool.
func (p *Pool) Unwrap() sandbox.Provider { return p.Provider }

// Processes implements sandbox.ProcessHost when the provider does: a
// pooled sandbox is the provider's own once handed out.
func (p *Pool) Processes() sandbox.ProcessRunner { return sandbox.ProcessesOf(p.Provider) }
