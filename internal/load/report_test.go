package load

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/stats"
)

const exposition = `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_gc_heap_live_bytes 1.048576e+06
process_resident_memory_bytes 3.3554432e+07
process_open_fds 17
warden_sandboxes_live 3
warden_executions_total{language="python",outcome="ok"} 10
warden_executions_total{language="shell",outcome="error"} 5
warden_http_requests_total{route="POST /sandbox/{id}/execute",code="200"} 14
warden_http_requests_total{route="POST /sandbox/{id}/execute",code="499"} 2
warden_http_requests_total{route="GET /sandbox/{id}",code="499"} 7
`

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	got, err := parseMetrics(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{MetricGoroutines: 42, MetricHeapLive: 1 << 20, MetricRSS: 32 << 20, MetricFDs: 17,
		MetricSandboxes: 3, MetricExecutions: 15, MetricCut: 2}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got[MetricThreads]; ok {
		t.Errorf("threads present though not exposed: %v", got)
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines many\n")); err == nil {
		t.Error("a malformed value was accepted")
	}
}

func TestDrift(t *testing.T) {
	t.Parallel()
	s := func(start, heap float64) Sample {
		return Sample{Values: map[string]float64{MetricStart: start, MetricHeapLive: heap, MetricGoroutines: 10}}
	}
	// Eight samples of one process: quarters of two.
	var one []Sample
	for i := range 8 {
		one = append(one, s(1, float64(100+10*i)))
	}
	d := drift(one)
	var heap *Drift
	for i := range d {
		if d[i].Metric == MetricHeapLive {
			heap = &d[i]
		}
	}
	if heap == nil || heap.First != 105 || heap.Last != 165 || heap.Change != 60 || math.Abs(heap.Percent-100*60.0/105) > 1e-9 {
		t.Errorf("drift = %+v", d)
	}
	// A restart: only the samples of the last process count.
	restarted := append([]Sample{s(1, 1000), s(1, 2000)}, s(2, 100), s(2, 100))
	for _, d := range drift(restarted) {
		if d.Metric == MetricHeapLive && (d.First != 100 || d.Last != 100) {
			t.Errorf("drift across a restart = %+v", d)
		}
	}
	if d := drift(one[:1]); d != nil {
		t.Errorf("drift of one sample = %+v", d)
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	var sorted []time.Duration
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50500 * time.Microsecond}, {0.99, 99010 * time.Microsecond}, {1, 100 * time.Millisecond}} {
		if got := stats.Percentile(sorted, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if s := summarize("x", nil); s.N != 0 || s.P50MS != 0 {
		t.Errorf("summarize(nil) = %+v", s)
	}
}

func TestRecorderAndText(t *testing.T) {
	t.Parallel()
	rec := newRecorder(time.Now(), FaultKillAgent)
	for i := range 10 {
		rec.done(KindState, time.Duration(i+1)*time.Millisecond, true)
	}
	rec.done(KindCreate, time.Second, false)
	for range 7 {
		rec.fail(ErrorSample{Kind: KindShell, Class: ClassCheck, Client: 3, Sandbox: "sb-1", Tag: "c3-x-4", Message: "stdout wrong"})
	}
	rec.fail(ErrorSample{Kind: KindKillAgent, Class: ClassFault, Message: "agent lived"})
	rec.injected()
	rec.restored("kept")
	rec.recovered(20 * time.Millisecond)
	rec.note("a note")
	rep := &Report{Clients: 2, ExecutionsPerClient: 5, Fault: FaultKillAgent, WallSeconds: 2,
		Before: &Sample{Values: map[string]float64{MetricGoroutines: 20}}, After: &Sample{Values: map[string]float64{MetricGoroutines: 21}}}
	rec.fill(rep)
	if rep.Executions != 10 || rep.Errors != 8 || rep.ErrorsByKind["shell/check"] != 7 || len(rep.ErrorSamples) != maxSamplesPerKey+1 {
		t.Errorf("report = executions %d, errors %d, by kind %v, %d samples", rep.Executions, rep.Errors, rep.ErrorsByKind, len(rep.ErrorSamples))
	}
	if rep.OK() {
		t.Error("a report with errors is OK")
	}
	f := rep.Faults
	if f == nil || f.Injected != 1 || f.Violations != 1 || f.Restores["kept"] != 1 || f.Recovery == nil || f.Recovery.N != 1 || len(f.Notes) != 1 {
		t.Errorf("faults = %+v", f)
	}
	if len(rep.Kinds) != 4 || rep.Kinds[0].Kind != KindState || rep.Kinds[0].N != 10 || rep.Kinds[0].P50MS != 5.5 || rep.Kinds[0].MaxMS != 10 {
		t.Errorf("kinds = %+v", rep.Kinds)
	}
	text := rep.Text()
	for _, want := range []string{"2 clients × 5 executions", "executions 10 in 2s", "errors 8", "python_state", "5.50 ms",
		"shell/check 7", "stdout wrong", "fault kill-agent: 1 injected, 1 violations", "1 kept their variables", "a note", "before", "after"} {
		if !strings.Contains(text, want) {
			t.Errorf("Text() lacks %q:\n%s", want, text)
		}
	}
}
