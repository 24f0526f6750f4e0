package load

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// worker is one client: a sandbox at a time, executions one after the
// other, as an agent runs them.
type worker struct {
	r   *runner
	idx int

	sb   string // the current sandbox, "" when none
	ws   string // its workspace on the server's host
	gen  int    // the kill generation it was created in (FaultKillServer)
	st   sandboxState
	seq  int // executions in this sandbox
	i    int // executions of this client: the position in the schedule
	next []func() step
	// after a fault, the next execution's latency is recorded as a
	// recovery, and must stay under limit when that is set.
	recovering bool
	limit      time.Duration
	started    bool // has had a sandbox
}

func (w *worker) run(ctx context.Context) {
	r := w.r
	soak := r.opts.Soak > 0
	deadline := r.start.Add(r.opts.Soak)
	remaining := r.opts.Executions
	defer w.deleteSandbox(ctx)
	for ctx.Err() == nil {
		if soak && time.Now().After(deadline) || !soak && remaining == 0 {
			return
		}
		if w.sb != "" && r.ks != nil {
			if g, err := r.ks.wait(ctx); err != nil {
				return
			} else if g != w.gen {
				w.lost(ctx)
			}
		}
		if w.sb == "" && !w.create(ctx) {
			if ctx.Err() != nil {
				return
			}
			if !soak {
				r.rec.skip(remaining)
				return
			}
			sleep(ctx, time.Second)
			continue
		}
		if w.execute(ctx, w.nextStep()) {
			remaining--
		}
		if soak && w.seq >= r.opts.Executions {
			w.deleteSandbox(ctx)
		}
	}
}

// nextStep is a fault's follow-up if one is due, else the fault's own
// execution if its turn has come, else the mix's.
func (w *worker) nextStep() step {
	w.seq++
	w.i++
	tag := fmt.Sprintf("%s-%d", w.st.token, w.seq)
	if len(w.next) > 0 {
		f := w.next[0]
		w.next = w.next[1:]
		s := f()
		s.tag = tag
		return s
	}
	switch w.r.opts.Fault {
	case FaultDisconnect:
		if w.i%cutEvery == cutEvery-1 {
			return cutStep(tag, w.i/cutEvery)
		}
	case FaultKillAgent:
		if w.i%killEvery == killAt {
			if (w.i/killEvery+w.idx)%2 == 0 {
				return killAgentStep(tag)
			}
			return killWorkerStep(&w.st, tag)
		}
	}
	return mixStep(&w.st, w.idx, w.i, tag)
}

// execute runs s and checks its result. It returns whether s counts as
// one of the client's executions: one cut short by the server's death
// does not.
func (w *worker) execute(ctx context.Context, s step) bool {
	if s.kind == KindCut {
		return w.cut(ctx, s)
	}
	r := w.r
	opts := s.opts
	opts.Timeout = r.opts.Timeout
	var streamed []byte
	if s.stream {
		opts.OnOutput = func(st api.Stream, p []byte) {
			if st == api.Stdout {
				streamed = append(streamed, p...)
			}
		}
	}
	cctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	t0 := time.Now()
	res, err := r.c.Execute(cctx, w.sb, opts)
	d := time.Since(t0)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		if r.ks.hit(w.gen) {
			w.interrupted(ctx)
			return false
		}
		w.fail(s, ClassRequest, err.Error())
		if errors.Is(err, client.ErrNotFound) {
			w.sb = "" // gone (idle timeout?): the next execution gets a new one
		}
		w.next = nil
		if s.kind == KindState {
			w.st.count++ // it may well have run
			w.next = append(w.next, func() step { return stateStep(&w.st, "", stateWant{n: w.st.count + 1, loose: true}) })
		}
		return true
	}
	r.rec.done(s.kind, d, true)
	class := ClassCheck
	if s.kind == KindKillAgent || s.kind == KindKillWorker || s.kind == KindMarker {
		class = ClassFault
	}
	msg := s.check(res, streamed)
	if msg != "" {
		w.fail(s, class, msg)
	}
	if w.recovering {
		w.recovering = false
		r.rec.recovered(d)
		if w.limit > 0 && d > w.limit {
			r.rec.fail(ErrorSample{Kind: KindCut, Class: ClassFault, Client: w.idx, Sandbox: w.sb, Tag: s.tag,
				Message: fmt.Sprintf("the execution after a cut took %s: the cut execution went on running", d.Round(time.Millisecond))})
		}
		w.limit = 0
	}
	w.after(s, res, msg == "")
	return true
}

// after updates what the client expects of its sandbox, and queues a
// fault's follow-ups.
func (w *worker) after(s step, res api.ExecResult, ok bool) {
	st := &w.st
	switch s.kind {
	case KindState:
		if n, parsed := parseState(res.ReturnValue, st.token); parsed {
			st.count = n
		} else {
			st.count++
		}
	case KindKillAgent:
		w.r.rec.injected()
		if !ok {
			// The agent may live on: resynchronise rather than pile up errors.
			w.next = append(w.next, func() step { return stateStep(st, "", stateWant{n: st.count + 1, loose: true}) })
			return
		}
		// A new agent, a new session: the counter starts again, and the
		// result says why. The workspace is the same.
		marker := s.tag
		w.recovering = true
		w.next = append(w.next,
			func() step { return stateStep(st, "", stateWant{n: 1, note: "the Python session was restarted"}) },
			func() step { return markerStep("", marker) })
	case KindKillWorker:
		w.r.rec.injected()
		want := stateWant{n: st.count + 1, loose: !ok}
		if r, known := restoredState(res); known {
			switch r {
			case restoreKept:
				w.r.rec.restored("kept") // the increment of the killed cell is lost
			case restoreOlder:
				w.r.rec.restored("older")
				want.loose = true
			case restoreFresh:
				w.r.rec.restored("fresh")
				want.n = 1
			}
		}
		w.recovering = true
		w.next = append(w.next, func() step { return stateStep(st, "", want) })
	}
}

// cut runs s and goes away in the middle: once the stream has carried
// its first line, or, for JSON, once the sandbox reports the execution
// running. The next execution must follow at once, with the session's
// state intact.
func (w *worker) cut(ctx context.Context, s step) bool {
	r := w.r
	r.rec.injected()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opts := s.opts
	// Longer than the code sleeps, whatever -timeout says: only the cut
	// may end it early.
	opts.Timeout = (cutSleepSeconds + 60) * time.Second
	var seen []byte
	if s.stream {
		opts.OnOutput = func(_ api.Stream, p []byte) {
			seen = append(seen, p...)
			if strings.Contains(string(seen), "-start") {
				cancel()
			}
		}
	} else {
		go func() {
			// Owned by cut: ends with cctx, which the deferred cancel ends.
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-cctx.Done():
					return
				case <-t.C:
				}
				if sb, err := r.c.Get(cctx, w.sb); err == nil && sb.Busy {
					cancel()
					return
				}
			}
		}()
	}
	t0 := time.Now()
	tctx, tcancel := context.WithTimeout(cctx, r.callTimeout())
	_, err := r.c.Execute(tctx, w.sb, opts)
	tcancel()
	d := time.Since(t0)
	switch {
	case ctx.Err() != nil:
		return false
	case err == nil:
		w.fail(s, ClassFault, "the execution returned a result: it was never cut")
	case !errors.Is(err, context.Canceled):
		if r.ks.hit(w.gen) {
			w.interrupted(ctx)
			return false
		}
		w.fail(s, ClassRequest, err.Error())
	default:
		r.mu.Lock()
		r.cuts++
		r.mu.Unlock()
	}
	r.rec.done(KindCut, d, true)
	// The cut code changed no variable: the counter must be where it was,
	// and the next execution must not wait for the cut one's sleep.
	st := &w.st
	w.recovering, w.limit = true, cutRecovery
	w.next = append(w.next, func() step { return stateStep(st, "", stateWant{n: st.count + 1}) })
	return true
}

func (w *worker) fail(s step, class, msg string) {
	w.r.rec.fail(ErrorSample{Kind: s.kind, Class: class, Client: w.idx, Sandbox: w.sb, Tag: s.tag, Message: msg})
}

// create gets the client a new sandbox; false if it could not.
func (w *worker) create(ctx context.Context) bool {
	r := w.r
	for {
		g, err := r.ks.wait(ctx)
		if err != nil {
			return false
		}
		cctx, cancel := context.WithTimeout(ctx, createTimeout)
		t0 := time.Now()
		sb, err := r.c.Create(cctx, r.opts.Sandbox)
		d := time.Since(t0)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			if r.ks.hit(g) {
				continue // the server was killed meanwhile: again, once it is back
			}
			r.rec.fail(ErrorSample{Kind: KindCreate, Class: ClassRequest, Client: w.idx, Message: err.Error()})
			return false
		}
		r.rec.done(KindCreate, d, false)
		limit := sb.Spec.OutputLimit
		if limit <= 0 {
			limit = defaultLimit
		}
		if !w.started {
			w.started = true
			r.startedOne()
		}
		w.sb, w.ws, w.gen, w.seq, w.next, w.recovering = sb.ID, sb.Workspace, g, 0, nil, false
		w.st = sandboxState{token: fmt.Sprintf("c%d-%s", w.idx, randomHex(4)), limit: limit}
		return true
	}
}

// deleteSandbox deletes the client's sandbox, if it has one, even after
// ctx is cancelled.
func (w *worker) deleteSandbox(ctx context.Context) {
	if w.sb == "" {
		return
	}
	r := w.r
	id := w.sb
	w.sb = ""
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.callTimeout())
	defer cancel()
	t0 := time.Now()
	err := r.c.Delete(dctx, id)
	d := time.Since(t0)
	switch {
	case err == nil:
		r.rec.done(KindDelete, d, false)
		r.deleted(w.idx, id, w.ws)
	case r.ks.hit(w.gen):
		// The server that had it was killed; lost checks the new one.
	default:
		r.rec.fail(ErrorSample{Kind: KindDelete, Class: ClassRequest, Client: w.idx, Sandbox: id, Message: err.Error()})
	}
}

// interrupted follows a call the server's death cut short: wait for the
// new server, then give up the sandbox.
func (w *worker) interrupted(ctx context.Context) {
	if _, err := w.r.ks.wait(ctx); err == nil {
		w.lost(ctx)
	}
}

// lost gives up a sandbox of a killed server, checking the new one does
// not know it.
func (w *worker) lost(ctx context.Context) {
	r := w.r
	cctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	_, err := r.c.Get(cctx, w.sb)
	cancel()
	switch {
	case errors.Is(err, client.ErrNotFound):
		r.mu.Lock()
		r.lost++
		r.mu.Unlock()
	case ctx.Err() == nil:
		r.rec.fail(ErrorSample{Kind: KindKillServer, Class: ClassFault, Client: w.idx, Sandbox: w.sb,
			Message: fmt.Sprintf("GET of a sandbox of the killed server: %v; want 404", err)})
	}
	w.sb, w.next, w.recovering = "", nil, false
}
