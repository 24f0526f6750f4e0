package bench

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"
)

func part(s Stats, parent string) Stats {
	s.Parent = parent
	return s
}

func sampleReport() Report {
	stats := []Stats{
		summarize(WardenExecPython, CaseExec, describe(WardenExecPython), msd(0.4, 0.5, 0.6)),
		summarize(WardenExecShell, CaseExec, describe(WardenExecShell), msd(1.5, 2, 2.5)),
		summarize(DockerExecSDK, CaseExec, describe(DockerExecSDK), msd(29, 30, 31)),
		summarize(DockerExecCLI, CaseExec, describe(DockerExecCLI), msd(59, 60, 61)),
		summarize(DockerExecTrueCLI, CaseExec, describe(DockerExecTrueCLI), msd(49, 50, 51)),
		summarize(WardenLifecycle, CaseLifecycle, describe(WardenLifecycle), msd(900, 1000, 1100)),
		part(summarize(WardenCreate, CaseLifecycle, describe(WardenCreate), msd(600, 700, 800)), WardenLifecycle),
		summarize(DockerRunCLI, CaseLifecycle, describe(DockerRunCLI), msd(400, 500, 600)),
	}
	return Report{
		Date:        time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Image:       "warden-runtime:latest",
		ImageID:     "sha256:28cc6640e0d2c57f1588b72ce5ca5ac707e57ed3e0953e07498071b356da6426",
		Machine:     Machine{CPUModel: "Test CPU", CPUs: 2, MemoryBytes: 24 << 30, Kernel: "6.1.0", DockerEngine: "20.10.24", DockerAPI: "1.41", GoVersion: "go1.26"},
		Cases:       []CaseInfo{{Name: CaseExec, N: 3, Warmup: 1}, {Name: CaseLifecycle, N: 3, Warmup: 1}},
		Stats:       stats,
		Comparisons: compare(stats),
		Notes:       []string{"a note"},
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	r := sampleReport()
	md := r.Markdown()
	lines := strings.Split(md, "\n")
	if want := "| operation | Warden median | baseline | baseline median | speed-up |"; lines[0] != want {
		t.Fatalf("Markdown() first line = %q, want %q", lines[0], want)
	}
	if !strings.HasPrefix(lines[1], "|---|") {
		t.Errorf("Markdown() second line = %q, want a separator row", lines[1])
	}
	// One row per comparison, each with the five columns.
	rows := lines[2 : 2+len(r.Comparisons)]
	for _, row := range rows {
		if n := strings.Count(row, " | ") + 1; !strings.HasPrefix(row, "| ") || !strings.HasSuffix(row, " |") || n != 5 {
			t.Errorf("Markdown() row %q has %d columns, want 5", row, n)
		}
	}
	if len(r.Comparisons) != 4 {
		t.Fatalf("sample report has %d comparisons, want 4", len(r.Comparisons))
	}
	if lines[2+len(r.Comparisons)] != "" {
		t.Errorf("Markdown(): the comparison table does not end after %d rows: %q", len(r.Comparisons), lines[2+len(r.Comparisons)])
	}
	for _, want := range []string{
		"| exec `x = 1` (Python) | 0.500 ms | `docker exec C python3 -c 'x = 1'` | 60.0 ms | 120× |",
		"| exec `x = 1` (Python) | 0.500 ms | same exec via Docker SDK | 30.0 ms | 60× |",
		"| exec `true` (shell) | 2.00 ms | `docker exec C true` | 50.0 ms | 25× |",
		"| create + `print(1)` + destroy | 1000 ms | `docker run --rm IMG python3 -c 'print(1)'` | 500 ms | 0.50× |",
		"| measurement | n | median | p10 | p90 | min | max |",
		"| &nbsp;&nbsp;of which Create | 3 | 700 ms |",
		"exec: n=3 after 1 warm-up samples",
		"Measured 2026-01-02 on Test CPU, 2 CPUs, 24.0 GiB RAM, kernel 6.1.0, Docker Engine 20.10.24 (API 1.41), go1.26; image `warden-runtime:latest (28cc6640e0d2)`.",
		"- a note",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown() lacks %q:\n%s", want, md)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	txt := sampleReport().Text()
	for _, want := range []string{"SPEED-UP", "120×", WardenExecShell, "note: a note"} {
		if !strings.Contains(txt, want) {
			t.Errorf("Text() lacks %q:\n%s", want, txt)
		}
	}
	if strings.Contains(txt, "`") {
		t.Errorf("Text() contains Markdown quotes:\n%s", txt)
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	r := sampleReport()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"median_ms":0.5`, `"median_ns":500000`, `"ratio":120`, `"cpu_model":"Test CPU"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("json.Marshal(report) lacks %s: %s", want, b)
		}
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Stats[0].Median != r.Stats[0].Median || back.Comparisons[0].Ratio != r.Comparisons[0].Ratio {
		t.Errorf("JSON round trip changed the report: %+v", back.Stats[0])
	}
}

// TestMachineCosts: the costs a report's machine line gives, measured here
// (positive: the kernel maps, faults and populates) and printed.
func TestMachineCosts(t *testing.T) {
	r := sampleReport()
	r.Machine.PageFault, r.Machine.PopulatePage, r.Machine.Syscall = 11100*time.Nanosecond, 700*time.Nanosecond, 950*time.Nanosecond
	want := "go1.26, a page fault 11.10 µs (0.70 µs per page made present by madvise, without the trap), a system call 0.95 µs; image"
	if md := r.Markdown(); !strings.Contains(md, want) {
		t.Errorf("Markdown() lacks %q:\n%s", want, md)
	}
	if runtime.GOOS != "linux" {
		return
	}
	fault, populate, call := machineCosts()
	if fault <= 0 || populate <= 0 || call <= 0 {
		t.Errorf("machineCosts() = %v, %v, %v; want each measured", fault, populate, call)
	}
	t.Logf("page fault %v, populated page %v, system call %v", fault, populate, call)
}
