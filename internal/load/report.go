package load

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/warden-sandbox/warden/internal/stats"
)

// Error classes.
const (
	ClassRequest = "request" // the call failed: transport error or an error status
	ClassCheck   = "check"   // the answer came, and was wrong
	ClassFault   = "fault"   // a fault mode's expectation did not hold
)

// Report is the outcome of [Run]. Durations are in milliseconds or
// seconds, as their names say.
type Report struct {
	URL           string  `json:"url"`
	ServerVersion string  `json:"server_version,omitempty"`
	Provider      string  `json:"provider,omitempty"`
	StartedServer bool    `json:"started_server"`
	Machine       Machine `json:"machine"`

	Clients             int     `json:"clients"`
	ExecutionsPerClient int     `json:"executions_per_client"`
	SoakSeconds         float64 `json:"soak_s,omitempty"`
	IntervalSeconds     float64 `json:"interval_s"`
	Fault               Fault   `json:"fault"`

	Started     time.Time `json:"started"`
	WallSeconds float64   `json:"wall_s"`
	// Executions counts the executions that returned, whether their check
	// passed or not; creates and deletes are not among them.
	Executions int `json:"executions"`
	// Errors counts every failure: calls, checks and fault expectations,
	// creates and deletes included.
	Errors int `json:"errors"`
	// ErrorsByKind counts errors by "kind/class".
	ErrorsByKind map[string]int `json:"errors_by_kind,omitempty"`
	// ErrorSamples keeps the first few errors of each kind and class.
	ErrorSamples []ErrorSample `json:"error_samples,omitempty"`
	// Skipped counts executions never run: their client could not get a
	// sandbox.
	Skipped int `json:"skipped,omitempty"`
	// Throughput is executions per second of wall time.
	Throughput float64     `json:"throughput_per_s"`
	Kinds      []KindStats `json:"kinds"`

	Faults *FaultReport `json:"faults,omitempty"`

	// Before is /metrics before the first client started, After once the
	// run was over and the server had settled; Samples are taken every
	// interval in between.
	Before  *Sample  `json:"before,omitempty"`
	Samples []Sample `json:"samples,omitempty"`
	After   *Sample  `json:"after,omitempty"`
	// Drift compares the first and the last quarter of the samples taken
	// while every client had a sandbox: after the last client got its
	// first, before the first client finished.
	Drift        []Drift `json:"drift,omitempty"`
	ScrapeErrors int     `json:"scrape_errors,omitempty"`
}

// OK reports whether the run had no error.
func (r *Report) OK() bool { return r.Errors == 0 && r.Skipped == 0 }

// KindStats are the latencies of one kind of operation, as the client
// measured them: from sending the request to having the whole answer.
type KindStats struct {
	Kind   string  `json:"kind"`
	N      int     `json:"n"`
	Errors int     `json:"errors"`
	P50MS  float64 `json:"p50_ms"`
	P90MS  float64 `json:"p90_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// ErrorSample is one error, as it happened.
type ErrorSample struct {
	Kind    string  `json:"kind"`
	Class   string  `json:"class"`
	Client  int     `json:"client"`
	Sandbox string  `json:"sandbox,omitempty"`
	Tag     string  `json:"tag,omitempty"`
	At      float64 `json:"at_s"`
	Message string  `json:"message"`
}

// FaultReport says what a fault mode did and what it found.
type FaultReport struct {
	Mode Fault `json:"mode"`
	// Injected counts the faults: cut requests, killed agents and
	// interpreters, server kills.
	Injected int `json:"injected"`
	// Violations counts the expectations that did not hold; each is an
	// error of class fault too.
	Violations int `json:"violations"`
	// Recovery are the latencies of the first execution after each fault.
	Recovery *KindStats `json:"recovery,omitempty"`
	// Restores counts, after killed interpreters, how the session came
	// back: "kept" (the variables from before the execution), "older"
	// (an older snapshot), "fresh" (a new interpreter).
	Restores map[string]int `json:"restores,omitempty"`
	// Notes say what happened, in words.
	Notes []string `json:"notes,omitempty"`
}

// maxSamplesPerKey bounds the ErrorSamples of one kind and class.
const maxSamplesPerKey = 5

// recorder collects what the clients measure. It is safe for concurrent
// use.
type recorder struct {
	start time.Time

	mu         sync.Mutex
	lat        map[string][]time.Duration // by kind
	errs       map[string]int             // by kind/class
	errsByKind map[string]int             // by kind
	samples    []ErrorSample
	executions int
	skipped    int
	fault      *FaultReport
	recovery   []time.Duration
}

func newRecorder(start time.Time, f Fault) *recorder {
	r := &recorder{start: start, lat: map[string][]time.Duration{}, errs: map[string]int{}, errsByKind: map[string]int{}}
	if f != FaultNone {
		r.fault = &FaultReport{Mode: f, Restores: map[string]int{}}
	}
	return r
}

// done records an operation that returned (its check may have failed);
// execution says whether it counts as an execution.
func (r *recorder) done(kind string, d time.Duration, execution bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lat[kind] = append(r.lat[kind], d)
	if execution {
		r.executions++
	}
}

// fail records an error.
func (r *recorder) fail(e ErrorSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e.At = time.Since(r.start).Seconds()
	key := e.Kind + "/" + e.Class
	r.errs[key]++
	r.errsByKind[e.Kind]++
	if r.errs[key] <= maxSamplesPerKey {
		r.samples = append(r.samples, e)
	}
	if e.Class == ClassFault && r.fault != nil {
		r.fault.Violations++
	}
}

func (r *recorder) skip(n int) {
	r.mu.Lock()
	r.skipped += n
	r.mu.Unlock()
}

func (r *recorder) injected() {
	r.mu.Lock()
	r.fault.Injected++
	r.mu.Unlock()
}

func (r *recorder) recovered(d time.Duration) {
	r.mu.Lock()
	r.recovery = append(r.recovery, d)
	r.mu.Unlock()
}

func (r *recorder) restored(how string) {
	r.mu.Lock()
	r.fault.Restores[how]++
	r.mu.Unlock()
}

func (r *recorder) note(format string, args ...any) {
	r.mu.Lock()
	r.fault.Notes = append(r.fault.Notes, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) executionsDone() (execs, errs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.errs {
		errs += n
	}
	return r.executions, errs
}

// fill completes rep with what was recorded.
func (r *recorder) fill(rep *Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Executions = r.executions
	rep.Skipped = r.skipped
	rep.ErrorsByKind = maps.Clone(r.errs)
	rep.ErrorSamples = slices.Clone(r.samples)
	for _, n := range r.errs {
		rep.Errors += n
	}
	order := append(mixKinds(), KindCut, KindKillAgent, KindKillWorker, KindMarker, KindKillServer, KindCreate, KindDelete)
	for k := range r.lat {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	for k := range r.errsByKind {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	for _, k := range order {
		if len(r.lat[k]) == 0 && r.errsByKind[k] == 0 {
			continue
		}
		ks := summarize(k, r.lat[k])
		ks.Errors = r.errsByKind[k]
		rep.Kinds = append(rep.Kinds, ks)
	}
	if r.fault != nil {
		f := *r.fault
		f.Restores = maps.Clone(r.fault.Restores)
		f.Notes = slices.Clone(r.fault.Notes)
		if len(r.recovery) > 0 {
			ks := summarize("recovery", r.recovery)
			f.Recovery = &ks
		}
		rep.Faults = &f
	}
}

// summarize computes the percentiles of samples, which it does not modify.
func summarize(kind string, samples []time.Duration) KindStats {
	s := KindStats{Kind: kind, N: len(samples)}
	if len(samples) == 0 {
		return s
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	s.P50MS = ms(stats.Percentile(sorted, 0.50))
	s.P90MS = ms(stats.Percentile(sorted, 0.90))
	s.P99MS = ms(stats.Percentile(sorted, 0.99))
	s.MaxMS = ms(sorted[len(sorted)-1])
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Text renders the report for a terminal.
func (r *Report) Text() string {
	var b strings.Builder
	what := fmt.Sprintf("%d clients × %d executions", r.Clients, r.ExecutionsPerClient)
	if r.SoakSeconds > 0 {
		what = fmt.Sprintf("soak of %s, %d clients, a new sandbox every %d executions", fmtSeconds(r.SoakSeconds), r.Clients, r.ExecutionsPerClient)
	}
	server := r.URL
	if r.Provider != "" {
		server += ", " + r.Provider
	}
	if r.ServerVersion != "" {
		server += ", warden " + r.ServerVersion
	}
	if r.StartedServer {
		server += ", started by the suite"
	}
	fmt.Fprintf(&b, "warden load: %s against %s; fault: %s\n", what, server, r.Fault)
	m := r.Machine
	fmt.Fprintf(&b, "machine: %s, %d CPUs, %.1f GiB, %s, kernel %s, %s; load average %.2f at the start\n\n",
		or(m.CPUModel, "?"), m.CPUs, float64(m.MemoryBytes)/(1<<30), or(m.OS, "?"), or(m.Kernel, "?"), m.GoVersion, m.LoadAverage)

	fmt.Fprintf(&b, "executions %d in %s (%.1f/s), errors %d", r.Executions, fmtSeconds(r.WallSeconds), r.Throughput, r.Errors)
	if r.Skipped > 0 {
		fmt.Fprintf(&b, ", skipped %d", r.Skipped)
	}
	b.WriteString("\n\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kind\tn\terrors\tp50\tp90\tp99\tmax\t")
	for _, k := range r.Kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t\n", k.Kind, k.N, k.Errors, fmtMS(k.P50MS), fmtMS(k.P90MS), fmtMS(k.P99MS), fmtMS(k.MaxMS))
	}
	tw.Flush()

	if len(r.ErrorSamples) > 0 {
		b.WriteString("\nerrors by kind and class:")
		for _, k := range slices.Sorted(maps.Keys(r.ErrorsByKind)) {
			fmt.Fprintf(&b, " %s %d;", k, r.ErrorsByKind[k])
		}
		b.WriteString("\nfirst errors:\n")
		for _, e := range r.ErrorSamples {
			fmt.Fprintf(&b, "  %6.1fs %s/%s client %d %s %s: %s\n", e.At, e.Kind, e.Class, e.Client, e.Sandbox, e.Tag, e.Message)
		}
	}

	if f := r.Faults; f != nil {
		fmt.Fprintf(&b, "\nfault %s: %d injected, %d violations", f.Mode, f.Injected, f.Violations)
		if f.Recovery != nil {
			fmt.Fprintf(&b, "; the execution after each: p50 %s, p99 %s, max %s", fmtMS(f.Recovery.P50MS), fmtMS(f.Recovery.P99MS), fmtMS(f.Recovery.MaxMS))
		}
		b.WriteString("\n")
		if len(f.Restores) > 0 {
			fmt.Fprintf(&b, "  sessions after a killed interpreter: %d kept their variables, %d an older snapshot, %d started fresh\n",
				f.Restores["kept"], f.Restores["older"], f.Restores["fresh"])
		}
		for _, n := range f.Notes {
			fmt.Fprintf(&b, "  %s\n", n)
		}
	}

	if len(r.Samples) > 0 || r.Before != nil {
		fmt.Fprintf(&b, "\nserver, from GET /metrics every %s:\n", fmtSeconds(r.IntervalSeconds))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "at\theap live\theap alloc\tRSS\tgoroutines\tthreads\tfds\tsandboxes\texecutions\t")
		row := func(label string, s *Sample) {
			v := func(m string, f func(float64) string) string {
				if x, ok := s.Values[m]; ok {
					return f(x)
				}
				return "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", label,
				v(MetricHeapLive, mib), v(MetricHeapAlloc, mib), v(MetricRSS, mib),
				v(MetricGoroutines, count), v(MetricThreads, count), v(MetricFDs, count),
				v(MetricSandboxes, count), v(MetricExecutions, count))
		}
		if r.Before != nil {
			row("before", r.Before)
		}
		for i := range r.Samples {
			row(fmtSeconds(r.Samples[i].At), &r.Samples[i])
		}
		if r.After != nil {
			row("after", r.After)
		}
		tw.Flush()
		if len(r.Drift) > 0 {
			b.WriteString("drift while every client had its sandbox, mean of the first quarter of those samples → the last quarter:\n")
			for _, d := range r.Drift {
				f := count
				if strings.HasSuffix(d.Metric, "_bytes") {
					f = mib
				}
				fmt.Fprintf(&b, "  %-16s %s → %s (%+.1f%%)\n", d.Metric, f(d.First), f(d.Last), d.Percent)
			}
		}
		if r.ScrapeErrors > 0 {
			fmt.Fprintf(&b, "%d scrapes of /metrics failed\n", r.ScrapeErrors)
		}
	}
	return b.String()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func mib(v float64) string   { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
func count(v float64) string { return fmt.Sprintf("%.0f", v) }

func fmtMS(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	case v < 1000:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.2f s", v/1000)
	}
}

func fmtSeconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Millisecond).String()
}
