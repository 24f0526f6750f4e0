package load

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/client"
)

// Options configure [Run].
type Options struct {
	// URL is the server's base URL, such as http://127.0.0.1:8000.
	URL string
	// APIKey is sent as a bearer key when set.
	APIKey string
	// Clients is the number of concurrent clients, each with a sandbox of
	// its own. Default 1.
	Clients int
	// Executions is the number of executions of each client. In a soak,
	// it is the number each sandbox runs before its client deletes it and
	// creates another. Default 200.
	Executions int
	// Soak, when positive, runs the clients for this long instead of a
	// fixed number of executions.
	Soak time.Duration
	// Interval is how often the server's /metrics is sampled, and progress
	// reported on Log. Default 10 s.
	Interval time.Duration
	// Fault is the fault mode. Default FaultNone.
	Fault Fault
	// Server is the server the suite started, if it did: FaultKillServer
	// needs it.
	Server *Server
	// Timeout bounds each execution, on the server. Default 60 s.
	Timeout time.Duration
	// Sandbox holds the settings of the clients' sandboxes. The zero
	// value takes the server's defaults, and so its warm pool.
	Sandbox client.CreateOptions
	// Log receives a line of progress every interval. Default: discard.
	Log io.Writer
}

func (o Options) withDefaults() Options {
	if o.Clients <= 0 {
		o.Clients = 1
	}
	if o.Executions <= 0 {
		o.Executions = 200
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Fault == "" {
		o.Fault = FaultNone
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Run drives the server at opts.URL with opts.Clients concurrent clients,
// checks every result, and returns the report. Errors of the server, even
// every one of them, are in the report, not in err: err is for a run that
// could not start (no server there) or was cancelled, in which case the
// report holds what was done until then. Sandboxes the clients created are
// deleted before Run returns.
func Run(ctx context.Context, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	if _, err := ParseFault(string(opts.Fault)); err != nil {
		return nil, err
	}
	if opts.Fault == FaultKillServer && opts.Server == nil {
		return nil, errors.New("the kill-server fault needs a server the suite started itself")
	}
	// One keep-alive connection per client, as agents keep theirs.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: opts.Clients + 4,
		IdleConnTimeout:     90 * time.Second,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	c, err := client.New(opts.URL, client.WithHTTPClient(hc), client.WithAPIKey(opts.APIKey), client.WithUserAgent("warden-load"))
	if err != nil {
		return nil, err
	}
	h, err := c.Health(ctx)
	if err != nil {
		return nil, fmt.Errorf("the server at %s does not answer /health: %w", opts.URL, err)
	}

	rep := &Report{
		URL:                 opts.URL,
		ServerVersion:       h.Version,
		Provider:            string(h.SandboxMode),
		StartedServer:       opts.Server != nil,
		Machine:             machineInfo(),
		Clients:             opts.Clients,
		ExecutionsPerClient: opts.Executions,
		SoakSeconds:         opts.Soak.Seconds(),
		IntervalSeconds:     opts.Interval.Seconds(),
		Fault:               opts.Fault,
	}
	sc := &scraper{hc: hc, url: opts.URL, apiKey: opts.APIKey, start: time.Now()}
	if rep.Before = quiet(ctx, sc); rep.Before == nil {
		rep.ScrapeErrors++
	} else {
		rep.Before.At = 0
	}
	// The run, its soak and its samples' times start now, the server idle.
	start := time.Now()
	sc.start, rep.Started = start, start

	r := &runner{opts: opts, c: c, rec: newRecorder(start, opts.Fault), start: start}
	if opts.Fault == FaultKillServer {
		r.ks = &killSwitch{back: closedChan()}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()

	var bg sync.WaitGroup
	bg.Go(func() { r.sampleEvery(runCtx, sc, rep) })
	if r.ks != nil {
		bg.Go(func() { r.killServer(runCtx) })
	}
	var clients sync.WaitGroup
	for i := range opts.Clients {
		clients.Go(func() {
			(&worker{r: r, idx: i}).run(runCtx)
			r.finished()
		})
	}
	clients.Wait()
	rep.WallSeconds = time.Since(start).Seconds()
	stop()
	bg.Wait()
	if r.ks != nil && ctx.Err() == nil {
		if r.rec.fault.Injected == 0 {
			r.rec.fail(ErrorSample{Kind: KindKillServer, Class: ClassFault, Client: -1, Message: "the run ended before the server was killed"})
		} else {
			r.rec.note("%d clients found their sandbox unknown to the new server (404) and went on in a new one", r.lost)
		}
	}

	if ctx.Err() == nil {
		// The server settles: the clients' connections close, their
		// sandboxes are gone, and what was allocated for them should be
		// too.
		tr.CloseIdleConnections()
		if rep.After = r.settle(ctx, sc, rep.Before); rep.After == nil {
			rep.ScrapeErrors++
		}
		if opts.Fault == FaultDisconnect {
			r.check499(rep.Before, rep.After)
		}
		r.checkDeleted()
	}
	r.rec.fill(rep)
	if rep.WallSeconds > 0 {
		rep.Throughput = float64(rep.Executions) / rep.WallSeconds
	}
	// The drift is that of the full load: samples taken before every
	// client had its sandbox, or once clients began to finish, would show
	// the load coming or going, not the server drifting.
	var full []Sample
	for _, s := range rep.Samples {
		if s.At >= r.allRunning.Seconds() && s.At <= r.firstDone.Seconds() {
			full = append(full, s)
		}
	}
	rep.Drift = drift(full)
	return rep, ctx.Err()
}

// runner is one Run: what its clients share.
type runner struct {
	opts  Options
	c     *client.Client
	rec   *recorder
	start time.Time
	ks    *killSwitch // FaultKillServer only

	mu         sync.Mutex
	cuts       int           // executions cut by FaultDisconnect
	lost       int           // sandboxes of a killed server its clients found gone (404)
	running    int           // clients that have had a sandbox
	allRunning time.Duration // when the last of them got its first, since start
	firstDone  time.Duration // when the first client finished, since start
	gone       []gone        // sandboxes deleted, to check for traces
}

// startedOne records that a client got its first sandbox.
func (r *runner) startedOne() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running++; r.running == r.opts.Clients {
		r.allRunning = time.Since(r.start)
	}
}

// finished records that a client is done.
func (r *runner) finished() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.firstDone == 0 {
		r.firstDone = time.Since(r.start)
	}
}

// callTimeout bounds one call on the client's side, so a wedged server
// fails the call instead of hanging the run.
func (r *runner) callTimeout() time.Duration { return r.opts.Timeout + time.Minute }

// createTimeout bounds a create on the client's side. Creates queue on the
// server for a turn to start (a few at once), and on a small machine whose
// CPUs the other clients' executions keep busy, the last of a burst of 50
// waited two minutes: a patient agent waits that long, and the report
// shows how long it took.
const createTimeout = 5 * time.Minute

// sampleEvery scrapes /metrics and reports progress every interval until
// ctx ends. rep's samples are its own until then.
func (r *runner) sampleEvery(ctx context.Context, sc *scraper, rep *Report) {
	t := time.NewTicker(r.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, err := sc.sample(ctx)
		if err != nil {
			if ctx.Err() == nil {
				rep.ScrapeErrors++
			}
		} else {
			rep.Samples = append(rep.Samples, s)
		}
		execs, errs := r.rec.executionsDone()
		el := time.Since(r.start)
		fmt.Fprintf(r.opts.Log, "warden load: %s: %d executions (%.1f/s), %d errors\n",
			el.Round(time.Second), execs, float64(execs)/el.Seconds(), errs)
	}
}

// quiet waits, up to 20 s, for the server to be idle: the same number of
// goroutines and descriptors for two seconds (a server just started is
// still filling its warm pool). It returns the last sample, nil if none
// could be taken.
func quiet(ctx context.Context, sc *scraper) *Sample {
	deadline := time.Now().Add(20 * time.Second)
	var last *Sample
	same := 0
	for {
		if s, err := sc.sample(ctx); err == nil {
			if last != nil && s.Values[MetricGoroutines] == last.Values[MetricGoroutines] && s.Values[MetricFDs] == last.Values[MetricFDs] {
				same++
			} else {
				same = 0
			}
			last = &s
			if same == 8 {
				return last
			}
		}
		if time.Now().After(deadline) || !sleep(ctx, 250*time.Millisecond) {
			return last
		}
	}
}

// settle waits, up to 30 s, for the server to be back where it was before
// the run: as many live sandboxes, and no more than a few goroutines more.
// It returns the last sample, nil if none could be taken.
func (r *runner) settle(ctx context.Context, sc *scraper, before *Sample) *Sample {
	deadline := time.Now().Add(30 * time.Second)
	var last *Sample
	for {
		if s, err := sc.sample(ctx); err == nil {
			last = &s
			if before == nil || (s.Values[MetricSandboxes] <= before.Values[MetricSandboxes] &&
				s.Values[MetricGoroutines] <= before.Values[MetricGoroutines]+5) {
				return last
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return last
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// gone is a sandbox whose DELETE answered 200.
type gone struct {
	client    int
	id        string
	workspace string
}

// deleted records a sandbox DELETE removed, when the server runs on this
// machine (the suite started it): checkDeleted looks for its traces.
func (r *runner) deleted(client int, id, workspace string) {
	if r.opts.Server == nil {
		return
	}
	r.mu.Lock()
	r.gone = append(r.gone, gone{client, id, workspace})
	r.mu.Unlock()
}

// removalGrace is how long a deleted sandbox may take to disappear: DELETE
// answers at once and the server removes it in the background (ADR 0014).
const removalGrace = 60 * time.Second

// checkDeleted checks that the sandboxes the clients deleted left nothing
// on the machine, once their removal in the background had time to finish:
// neither their private workspace nor a cgroup.
func (r *runner) checkDeleted() {
	r.mu.Lock()
	list := r.gone
	r.mu.Unlock()
	deadline := time.Now().Add(removalGrace)
	for _, g := range list {
		var traces []string
		for {
			traces = traces[:0]
			if g.workspace != "" {
				if _, err := os.Lstat(g.workspace); err == nil {
					traces = append(traces, "workspace "+g.workspace)
				}
			}
			for _, cg := range leftoverCgroups(g.id) {
				traces = append(traces, "cgroup "+cg)
			}
			if len(traces) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(traces) > 0 {
			r.rec.fail(ErrorSample{Kind: KindDelete, Class: ClassCheck, Client: g.client, Sandbox: g.id,
				Message: fmt.Sprintf("left %s after DELETE answered: %s", removalGrace, strings.Join(traces, ", "))})
		}
	}
}

// check499 compares the cut executions with what the server counted as
// 499 (docs/api.md): every cut must be there.
func (r *runner) check499(before, after *Sample) {
	if before == nil || after == nil {
		r.rec.note("the 499 count could not be checked: /metrics was not read before and after the run")
		return
	}
	got := after.Values[MetricCut] - before.Values[MetricCut]
	r.mu.Lock()
	cuts := r.cuts
	r.mu.Unlock()
	r.rec.note("the server counted %.0f executions as 499 (client gone); the clients cut %d", got, cuts)
	if got < float64(cuts) {
		r.rec.fail(ErrorSample{Kind: KindCut, Class: ClassFault, Client: -1,
			Message: fmt.Sprintf("the server counted %.0f executions as 499, the clients cut %d", got, cuts)})
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// sleep waits d or until ctx ends; false if ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
