package server

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
)

// The Go runtime's own series, under the names Prometheus' Go client gives
// them, so dashboards and alerts written for any Go service work here. Read
// from runtime/metrics, which does not stop the world as
// runtime.ReadMemStats does: a scrape every few seconds costs the server
// nothing measurable.
var runtimeSeries = []struct {
	name, typ, help string
	samples         []string // summed
}{
	{"go_goroutines", "gauge", "Number of goroutines that currently exist.", []string{"/sched/goroutines:goroutines"}},
	{"go_threads", "gauge", "Number of OS threads the Go runtime has created and that exist.", []string{"/sched/threads/total:threads"}},
	{"go_memstats_heap_alloc_bytes", "gauge", "Bytes of allocated heap objects, reachable or not yet swept.", []string{"/memory/classes/heap/objects:bytes"}},
	{"go_memstats_heap_inuse_bytes", "gauge", "Bytes in in-use heap spans.", []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}},
	{"go_gc_heap_live_bytes", "gauge", "Heap memory occupied by live objects, as of the last garbage collection.", []string{"/gc/heap/live:bytes"}},
	{"go_memstats_next_gc_bytes", "gauge", "Heap size target of the next garbage collection.", []string{"/gc/heap/goal:bytes"}},
	{"go_memstats_sys_bytes", "gauge", "Bytes of memory obtained from the OS by the Go runtime.", []string{"/memory/classes/total:bytes"}},
	{"go_memstats_alloc_bytes_total", "counter", "Bytes allocated on the heap since the process started.", []string{"/gc/heap/allocs:bytes"}},
	{"go_gc_cycles_total_gc_cycles_total", "counter", "Garbage collection cycles completed.", []string{"/gc/cycles/total:gc-cycles"}},
}

// renderRuntime writes the Go runtime's series and, where /proc is there
// (Linux), the process's: resident memory, open descriptors, CPU time and
// start time, as Prometheus' process collector names them.
func renderRuntime(b *bytes.Buffer) {
	var names []string
	for _, s := range runtimeSeries {
		names = append(names, s.samples...)
	}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	metrics.Read(samples)
	vals := make(map[string]metrics.Value, len(samples))
	for _, s := range samples {
		vals[s.Name] = s.Value
	}

	fmt.Fprintf(b, "# HELP go_info Information about the Go environment.\n# TYPE go_info gauge\ngo_info{version=%s} 1\n", quoteLabel(runtime.Version()))
series:
	for _, s := range runtimeSeries {
		var sum uint64
		for _, n := range s.samples {
			// A name this Go release does not know reads as KindBad:
			// leave the series out rather than report a made-up zero.
			if vals[n].Kind() != metrics.KindUint64 {
				continue series
			}
			sum += vals[n].Uint64()
		}
		writeSeries(b, s.name, s.typ, s.help, strconv.FormatUint(sum, 10))
	}

	p, ok := readProcSelf()
	if !ok {
		return
	}
	writeSeries(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", strconv.FormatUint(p.rss, 10))
	writeSeries(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", strconv.FormatUint(p.vsize, 10))
	writeSeries(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", formatFloat(p.cpuSeconds))
	if p.openFDs >= 0 {
		writeSeries(b, "process_open_fds", "gauge", "Number of open file descriptors.", strconv.Itoa(p.openFDs))
	}
	if p.maxFDs > 0 {
		writeSeries(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.", strconv.FormatUint(p.maxFDs, 10))
	}
	if p.startTime > 0 {
		writeSeries(b, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.", formatFloat(p.startTime))
	}
}

func writeSeries(b *bytes.Buffer, name, typ, help, value string) {
	fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, typ, name, value)
}

// procSelf is what /proc says about this process.
type procSelf struct {
	rss, vsize uint64  // bytes
	cpuSeconds float64 // user + system
	openFDs    int     // -1 if unknown
	maxFDs     uint64  // the soft limit; 0 if unknown or unlimited
	startTime  float64 // Unix seconds; 0 if unknown
}

// userHZ is the unit of the clock-tick fields of /proc (USER_HZ), fixed at
// 100 on every Linux architecture as part of the kernel's ABI.
const userHZ = 100

// readProcSelf reads /proc/self; ok is false where there is no /proc
// (macOS), and the process series are then left out.
func readProcSelf() (p procSelf, ok bool) {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return p, false
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// count the fields after its closing one. state is field 3.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return p, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 22 {
		return p, false
	}
	field := func(n int) uint64 { v, _ := strconv.ParseUint(f[n-3], 10, 64); return v }
	p.cpuSeconds = float64(field(14)+field(15)) / userHZ
	p.vsize = field(23)
	p.rss = field(24) * uint64(os.Getpagesize())
	if bt := bootTime(); bt > 0 {
		p.startTime = float64(bt) + float64(field(22))/userHZ
	}
	p.openFDs = -1
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		// ReadDir's own descriptor on the directory is among them, as it
		// is for Prometheus' collector.
		p.openFDs = len(fds)
	}
	p.maxFDs = maxOpenFiles()
	return p, true
}

// bootTime is the "btime" line of /proc/stat: the boot time in Unix
// seconds, 0 if unknown.
func bootTime() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// maxOpenFiles is the soft limit of "Max open files" in /proc/self/limits,
// 0 if unknown or unlimited.
func maxOpenFiles() uint64 {
	b, err := os.ReadFile("/proc/self/limits")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}
