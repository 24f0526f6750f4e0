package load

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Names of the values a [Sample] holds, read from the server's /metrics.
const (
	MetricHeapLive   = "heap_live_bytes"  // go_gc_heap_live_bytes: live heap after the last GC
	MetricHeapAlloc  = "heap_alloc_bytes" // go_memstats_heap_alloc_bytes
	MetricRSS        = "rss_bytes"        // process_resident_memory_bytes
	MetricGoroutines = "goroutines"       // go_goroutines
	MetricThreads    = "threads"          // go_threads
	MetricFDs        = "open_fds"         // process_open_fds
	MetricSandboxes  = "sandboxes"        // warden_sandboxes_live
	MetricExecutions = "executions"       // warden_executions_total, all labels
	MetricStart      = "start_time"       // process_start_time_seconds: tells restarts apart
	MetricCut        = "execute_499"      // executions the client left before the answer
)

// series maps the exposition's sample names (with labels, as written) to
// the names above. Those marked sum add up every label set of the metric.
var series = []struct {
	name, key string
	sum       bool
}{
	{"go_gc_heap_live_bytes", MetricHeapLive, false},
	{"go_memstats_heap_alloc_bytes", MetricHeapAlloc, false},
	{"process_resident_memory_bytes", MetricRSS, false},
	{"go_goroutines", MetricGoroutines, false},
	{"go_threads", MetricThreads, false},
	{"process_open_fds", MetricFDs, false},
	{"warden_sandboxes_live", MetricSandboxes, false},
	{"warden_executions_total", MetricExecutions, true},
	{"process_start_time_seconds", MetricStart, false},
	{`warden_http_requests_total{route="POST /sandbox/{id}/execute",code="499"}`, MetricCut, false},
}

// Sample is one reading of the server's /metrics.
type Sample struct {
	// At is the time since the run started, in seconds.
	At float64 `json:"at_s"`
	// Values holds what the server exposes of the Metric* names; a name
	// it does not expose is absent.
	Values map[string]float64 `json:"values"`
}

// parseMetrics reads the values of a Sample from Prometheus text.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	vals := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		key := line[:i]
		name, _, _ := strings.Cut(key, "{")
		for _, s := range series {
			if key != s.name && !(s.sum && name == s.name) {
				continue
			}
			v, err := strconv.ParseFloat(line[i+1:], 64)
			if err != nil {
				return nil, fmt.Errorf("metric %s: %w", key, err)
			}
			vals[s.key] += v
		}
	}
	return vals, sc.Err()
}

// scraper reads /metrics.
type scraper struct {
	hc     *http.Client
	url    string
	apiKey string
	start  time.Time
}

func (s *scraper) sample(ctx context.Context) (Sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/metrics", nil)
	if err != nil {
		return Sample{}, err
	}
	if s.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.apiKey)
	}
	at := time.Since(s.start).Seconds()
	resp, err := s.hc.Do(req)
	if err != nil {
		return Sample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Sample{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	vals, err := parseMetrics(resp.Body)
	if err != nil {
		return Sample{}, err
	}
	return Sample{At: at, Values: vals}, nil
}

// Drift compares one metric at the start and at the end of a run: the mean
// of the first quarter of the samples against that of the last quarter.
type Drift struct {
	Metric string  `json:"metric"`
	First  float64 `json:"first_quarter"`
	Last   float64 `json:"last_quarter"`
	// Change is Last - First; Percent is Change relative to First (0
	// when First is 0).
	Change  float64 `json:"change"`
	Percent float64 `json:"percent"`
}

// driftMetrics are the metrics a report gives the drift of.
var driftMetrics = []string{MetricHeapLive, MetricHeapAlloc, MetricRSS, MetricGoroutines, MetricFDs, MetricThreads}

// drift computes the drift of each metric over samples of one server
// process, the last one: samples from before a restart would compare two
// processes. Run passes the samples taken while every client ran. With fewer than 4 samples, the quarters are the first and
// the last sample.
func drift(samples []Sample) []Drift {
	if len(samples) > 0 {
		last := samples[len(samples)-1].Values[MetricStart]
		i := len(samples) - 1
		for i > 0 && samples[i-1].Values[MetricStart] == last {
			i--
		}
		samples = samples[i:]
	}
	if len(samples) < 2 {
		return nil
	}
	q := max(len(samples)/4, 1)
	var out []Drift
	for _, m := range driftMetrics {
		first, okf := mean(samples[:q], m)
		last, okl := mean(samples[len(samples)-q:], m)
		if !okf || !okl {
			continue
		}
		d := Drift{Metric: m, First: first, Last: last, Change: last - first}
		if first != 0 {
			d.Percent = 100 * d.Change / first
		}
		out = append(out, d)
	}
	return out
}

// mean is the mean of metric m over samples, ok false if any lacks it.
func mean(samples []Sample, m string) (float64, bool) {
	var sum float64
	for _, s := range samples {
		v, ok := s.Values[m]
		if !ok {
			return 0, false
		}
		sum += v
	}
	return sum / float64(len(samples)), true
}
