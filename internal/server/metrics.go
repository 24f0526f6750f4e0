package server

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

// durationBuckets are the upper bounds, in seconds, of both duration
// histograms: from a trivial request to the longest execution.
var durationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics counts what the service does, for GET /metrics in the Prometheus
// text format. It implements [session.Observer]: pass the same Metrics to
// session.Options.Observer and to Options.Metrics. Every label has a
// bounded set of values (HTTP routes are mux patterns, never raw paths).
// It is safe for concurrent use.
type Metrics struct {
	mu        sync.Mutex
	created   uint64
	destroyed map[string]uint64     // by reason
	execs     map[execKey]uint64    // by language and outcome
	execDur   map[string]*histogram // by language
	requests  map[requestKey]uint64 // by route and status
	reqDur    map[string]*histogram // by route
}

type execKey struct{ language, outcome string }

type requestKey struct {
	route string
	code  int
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative
	sum    float64
	count  uint64
}

func (h *histogram) observe(v float64) {
	if i, _ := slices.BinarySearch(durationBuckets, v); i < len(durationBuckets) {
		h.counts[i]++
	}
	h.sum += v
	h.count++
}

var _ session.Observer = (*Metrics)(nil)

// NewMetrics returns a Metrics with the known label values at zero, so
// their series exist from the start.
func NewMetrics() *Metrics {
	m := &Metrics{
		destroyed: map[string]uint64{},
		execs:     map[execKey]uint64{},
		execDur:   map[string]*histogram{},
		requests:  map[requestKey]uint64{},
		reqDur:    map[string]*histogram{},
	}
	for _, reason := range session.DestroyReasons() {
		m.destroyed[string(reason)] = 0
	}
	for _, lang := range []sandbox.Language{sandbox.Python, sandbox.Shell} {
		for _, outcome := range session.ExecOutcomes() {
			m.execs[execKey{string(lang), string(outcome)}] = 0
		}
		m.execDur[string(lang)] = newHistogram()
	}
	return m
}

func newHistogram() *histogram { return &histogram{counts: make([]uint64, len(durationBuckets))} }

// SandboxCreated implements [session.Observer].
func (m *Metrics) SandboxCreated() {
	m.mu.Lock()
	m.created++
	m.mu.Unlock()
}

// SandboxDestroyed implements [session.Observer].
func (m *Metrics) SandboxDestroyed(reason session.DestroyReason) {
	m.mu.Lock()
	m.destroyed[string(reason)]++
	m.mu.Unlock()
}

// Executed implements [session.Observer].
func (m *Metrics) Executed(lang sandbox.Language, outcome session.ExecOutcome, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.execs[execKey{string(lang), string(outcome)}]++
	h := m.execDur[string(lang)]
	if h == nil {
		h = newHistogram()
		m.execDur[string(lang)] = h
	}
	h.observe(d.Seconds())
}

func (m *Metrics) observeHTTP(route string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{route, code}]++
	h := m.reqDur[route]
	if h == nil {
		h = newHistogram()
		m.reqDur[route] = h
	}
	h.observe(d.Seconds())
}

// writeTo writes the exposition, series sorted by labels, then the Go
// runtime's and the process's series. live is the number of live sandboxes
// now, runs that of one-shot runs. The text is rendered under the lock and written after it, so a slow
// scraper never blocks the observers.
func (m *Metrics) writeTo(w io.Writer, live, runs, removing int) (int64, error) {
	var buf bytes.Buffer
	m.render(&buf, live, runs, removing)
	renderRuntime(&buf)
	return buf.WriteTo(w)
}

func (m *Metrics) render(b *bytes.Buffer, live, runs, removing int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	header := func(name, typ, help string) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}

	header("warden_sandboxes_live", "gauge", "Sandboxes live now.")
	fmt.Fprintf(b, "warden_sandboxes_live %d\n", live)

	header("warden_runs_live", "gauge", "One-shot runs (POST /sandbox/run) in progress; each holds a sandbox that counts toward the limit.")
	fmt.Fprintf(b, "warden_runs_live %d\n", runs)

	header("warden_sandboxes_removing", "gauge", "Sandboxes deleted whose removal is still under way; they count toward the limit.")
	fmt.Fprintf(b, "warden_sandboxes_removing %d\n", removing)

	header("warden_sandboxes_created_total", "counter", "Sandboxes created.")
	fmt.Fprintf(b, "warden_sandboxes_created_total %d\n", m.created)

	header("warden_sandboxes_destroyed_total", "counter", "Sandboxes destroyed, by reason (deleted, idle, shutdown).")
	for _, reason := range slices.Sorted(maps.Keys(m.destroyed)) {
		fmt.Fprintf(b, "warden_sandboxes_destroyed_total{reason=%s} %d\n", quoteLabel(reason), m.destroyed[reason])
	}

	header("warden_executions_total", "counter", "Executions, by language and outcome (ok, error, timeout, oom, failed).")
	execKeys := slices.SortedFunc(maps.Keys(m.execs), func(a, b execKey) int {
		return cmp.Or(cmp.Compare(a.language, b.language), cmp.Compare(a.outcome, b.outcome))
	})
	for _, k := range execKeys {
		fmt.Fprintf(b, "warden_executions_total{language=%s,outcome=%s} %d\n", quoteLabel(k.language), quoteLabel(k.outcome), m.execs[k])
	}

	header("warden_execution_duration_seconds", "histogram", "Wall time of executions, by language.")
	for _, lang := range slices.Sorted(maps.Keys(m.execDur)) {
		writeHistogram(b, "warden_execution_duration_seconds", "language="+quoteLabel(lang), m.execDur[lang])
	}

	header("warden_http_requests_total", "counter", "HTTP requests, by route (the mux pattern) and status code.")
	reqKeys := slices.SortedFunc(maps.Keys(m.requests), func(a, b requestKey) int {
		return cmp.Or(cmp.Compare(a.route, b.route), cmp.Compare(a.code, b.code))
	})
	for _, k := range reqKeys {
		fmt.Fprintf(b, "warden_http_requests_total{route=%s,code=\"%d\"} %d\n", quoteLabel(k.route), k.code, m.requests[k])
	}

	header("warden_http_request_duration_seconds", "histogram", "HTTP request durations, by route.")
	for _, route := range slices.Sorted(maps.Keys(m.reqDur)) {
		writeHistogram(b, "warden_http_request_duration_seconds", "route="+quoteLabel(route), m.reqDur[route])
	}
}

func writeHistogram(w io.Writer, name, labels string, h *histogram) {
	var cum uint64
	for i, le := range durationBuckets {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{%s,le=\"%s\"} %d\n", name, labels, formatFloat(le), cum)
	}
	fmt.Fprintf(w, "%s_bucket{%s,le=\"+Inf\"} %d\n", name, labels, h.count)
	fmt.Fprintf(w, "%s_sum{%s} %s\n", name, labels, formatFloat(h.sum))
	fmt.Fprintf(w, "%s_count{%s} %d\n", name, labels, h.count)
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// quoteLabel quotes a label value as the text format wants: backslash,
// double quote and newline escaped.
func quoteLabel(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v) + `"`
}
