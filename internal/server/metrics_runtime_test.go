package server_test

import (
	"bufio"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseExposition reads Prometheus text: the TYPE of every metric family
// and the value of every sample, keyed by the sample's name and labels
// as written. It fails t on a line that is neither a comment nor a sample,
// on a sample of a family with no TYPE, and on a family typed twice.
func parseExposition(t *testing.T, text string) (types map[string]string, values map[string]float64) {
	t.Helper()
	types, values = map[string]string{}, map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if _, dup := types[name]; dup {
				t.Errorf("family %s typed twice", name)
			}
			types[name] = typ
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Errorf("malformed sample line %q", line)
			continue
		}
		key, val := line[:i], line[i+1:]
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			t.Errorf("sample %q: value %q: %v", key, val, err)
		}
		name, _, _ := strings.Cut(key, "{")
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, suffix); ok && types[f] == "histogram" {
				family = f
			}
		}
		if types[family] == "" {
			t.Errorf("sample %q has no TYPE line", key)
		}
		values[key] = v
	}
	return types, values
}

// The Go runtime's and the process's series, under the names of
// Prometheus' Go client, with values that follow what the process does.
func TestRuntimeMetrics(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})

	// Lower bounds the test controls, whatever tests run beside it: 200
	// goroutines parked, and 64 MiB held on the heap.
	stop := make(chan struct{})
	for range 200 {
		go func() { <-stop }()
	}
	defer close(stop)
	ballast := make([]byte, 64<<20)
	for i := range ballast {
		ballast[i] = byte(i)
	}
	before := time.Now()

	resp := ts.do(t, http.MethodGet, "/metrics", nil)
	if resp.status != http.StatusOK {
		t.Fatalf("GET /metrics = %d", resp.status)
	}
	runtime.KeepAlive(ballast)
	types, values := parseExposition(t, string(resp.body))

	want := map[string]string{
		"go_goroutines":                      "gauge",
		"go_threads":                         "gauge",
		"go_memstats_heap_alloc_bytes":       "gauge",
		"go_memstats_heap_inuse_bytes":       "gauge",
		"go_gc_heap_live_bytes":              "gauge",
		"go_memstats_next_gc_bytes":          "gauge",
		"go_memstats_sys_bytes":              "gauge",
		"go_memstats_alloc_bytes_total":      "counter",
		"go_gc_cycles_total_gc_cycles_total": "counter",
		"go_info":                            "gauge",
	}
	if runtime.GOOS == "linux" {
		for _, n := range []string{"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"} {
			want[n] = "gauge"
		}
		want["process_cpu_seconds_total"] = "counter"
	}
	for name, typ := range want {
		if types[name] != typ {
			t.Errorf("TYPE of %s = %q, want %q", name, types[name], typ)
		}
	}
	if v := values[`go_info{version="`+runtime.Version()+`"}`]; v != 1 {
		t.Errorf("go_info for %s = %v, want 1", runtime.Version(), v)
	}

	atLeast := func(name string, min float64) {
		t.Helper()
		if v, ok := values[name]; !ok || v < min {
			t.Errorf("%s = %v (present %t), want at least %v", name, v, ok, min)
		}
	}
	atLeast("go_goroutines", 200)
	atLeast("go_threads", 1)
	atLeast("go_memstats_heap_alloc_bytes", 64<<20)
	atLeast("go_memstats_heap_inuse_bytes", values["go_memstats_heap_alloc_bytes"])
	atLeast("go_memstats_sys_bytes", values["go_memstats_heap_inuse_bytes"])
	atLeast("go_memstats_alloc_bytes_total", 64<<20)
	if runtime.GOOS != "linux" {
		return
	}
	// The ballast was written, so it is resident.
	atLeast("process_resident_memory_bytes", 64<<20)
	atLeast("process_virtual_memory_bytes", values["process_resident_memory_bytes"])
	atLeast("process_open_fds", 3) // stdin, stdout, stderr at least
	if fds, max := values["process_open_fds"], values["process_max_fds"]; fds > max {
		t.Errorf("process_open_fds %v above process_max_fds %v", fds, max)
	}
	atLeast("process_cpu_seconds_total", 0)
	// The test binary started before this test, and not days ago.
	start := time.Unix(0, int64(values["process_start_time_seconds"]*1e9))
	if start.After(before) || before.Sub(start) > 24*time.Hour {
		t.Errorf("process_start_time_seconds = %v (%s), want shortly before %s", values["process_start_time_seconds"], start, before)
	}
}
