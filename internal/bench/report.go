package bench

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the result of Run. It marshals to JSON as is.
type Report struct {
	// Date is when the run started (UTC).
	Date time.Time `json:"date"`
	// Image is the image measured, and ImageID its content ID.
	Image   string `json:"image"`
	ImageID string `json:"image_id"`
	// RunID is the value of the LabelRun label on this run's containers.
	RunID string `json:"run_id"`
	// Seed is the seed of the order of operations within rounds.
	Seed    uint64  `json:"seed"`
	Machine Machine `json:"machine"`
	// Cases says how each case ran.
	Cases []CaseInfo `json:"cases"`
	// Stats holds one entry per measured operation, case by case.
	Stats []Stats `json:"stats"`
	// Comparisons pairs Warden operations with their baselines.
	Comparisons []Comparison `json:"comparisons"`
	// Memory holds the idle memory measurements, sandboxes and baselines.
	Memory []MemStats `json:"memory,omitempty"`
	// Notes are remarks on this run, such as a skipped baseline.
	Notes []string `json:"notes,omitempty"`
}

// CaseInfo describes how one case ran.
type CaseInfo struct {
	Name     string        `json:"name"`
	N        int           `json:"n"`
	Warmup   int           `json:"warmup"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	ElapsedS float64       `json:"elapsed_s"`
}

// Comparison sets a Warden operation against a plain-Docker baseline.
type Comparison struct {
	// Operation is what both sides do, in words.
	Operation string `json:"operation"`
	// Warden and Baseline name the two Stats compared.
	Warden   string `json:"warden"`
	Baseline string `json:"baseline"`
	// BaselineLabel describes the baseline in words.
	BaselineLabel string `json:"baseline_label"`

	WardenMedian     time.Duration `json:"warden_median_ns"`
	BaselineMedian   time.Duration `json:"baseline_median_ns"`
	WardenMedianMS   float64       `json:"warden_median_ms"`
	BaselineMedianMS float64       `json:"baseline_median_ms"`
	// Ratio is BaselineMedian / WardenMedian: above 1, Warden is faster.
	Ratio float64 `json:"ratio"`
}

// Stat returns the stats of the named operation.
func (r Report) Stat(name string) (Stats, bool) {
	for _, s := range r.Stats {
		if s.Name == name {
			return s, true
		}
	}
	return Stats{}, false
}

// Markdown renders the report for a README: the comparison table, a
// table of every measurement, the machine and the notes.
func (r Report) Markdown() string {
	var b strings.Builder
	b.WriteString("| operation | Warden median | baseline | baseline median | speed-up |\n")
	b.WriteString("|---|--:|---|--:|--:|\n")
	for _, c := range r.Comparisons {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n",
			c.Operation, fmtDuration(c.WardenMedian), c.BaselineLabel, fmtDuration(c.BaselineMedian), fmtRatio(c.Ratio))
	}
	b.WriteString("\n")
	b.WriteString(r.method())
	b.WriteString("\n\n")
	b.WriteString("| measurement | n | median | p10 | p90 | min | max |\n")
	b.WriteString("|---|--:|--:|--:|--:|--:|--:|\n")
	for _, s := range r.Stats {
		desc := s.Description
		if s.Parent != "" {
			desc = "&nbsp;&nbsp;" + desc // indent the steps under their operation
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s |\n", desc, s.N,
			fmtDuration(s.Median), fmtDuration(s.P10), fmtDuration(s.P90), fmtDuration(s.Min), fmtDuration(s.Max))
	}
	b.WriteString("\n")
	if len(r.Memory) > 0 {
		b.WriteString("| idle memory | n | median PSS | min | max | by process (medians) |\n")
		b.WriteString("|---|--:|--:|--:|--:|---|\n")
		for _, m := range r.Memory {
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", m.Description, m.N,
				fmtBytes(m.Median), fmtBytes(m.Min), fmtBytes(m.Max), m.roleLine())
		}
		b.WriteString("\n")
	}
	b.WriteString(r.machineLine())
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

// Text renders the report for a terminal.
func (r Report) Text() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATION\t   WARDEN\tBASELINE\t   MEDIAN\tSPEED-UP")
	for _, c := range r.Comparisons {
		fmt.Fprintf(tw, "%s\t%9s\t%s\t%9s\t%8s\n", plain(c.Operation), fmtDuration(c.WardenMedian), plain(c.BaselineLabel), fmtDuration(c.BaselineMedian), fmtRatio(c.Ratio))
	}
	tw.Flush()
	b.WriteString("\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASUREMENT\t    N\t   MEDIAN\t      P10\t      P90\t      MIN\t      MAX")
	for _, s := range r.Stats {
		name := s.Name
		if s.Parent != "" {
			name = "  " + name
		}
		fmt.Fprintf(tw, "%s\t%5d\t%9s\t%9s\t%9s\t%9s\t%9s\n", name, s.N,
			fmtDuration(s.Median), fmtDuration(s.P10), fmtDuration(s.P90), fmtDuration(s.Min), fmtDuration(s.Max))
	}
	tw.Flush()
	b.WriteString("\n")
	if len(r.Memory) > 0 {
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "IDLE MEMORY\t    N\t  MEDIAN\t     MIN\t     MAX\tBY PROCESS")
		for _, m := range r.Memory {
			fmt.Fprintf(tw, "%s\t%5d\t%8s\t%8s\t%8s\t%s\n", m.Name, m.N, fmtBytes(m.Median), fmtBytes(m.Min), fmtBytes(m.Max), m.roleLine())
		}
		tw.Flush()
		b.WriteString("\n")
	}
	b.WriteString(plain(r.method()))
	b.WriteString("\n")
	b.WriteString(plain(r.machineLine()))
	b.WriteString("\n")
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	return b.String()
}

// method explains how to read the figures.
func (r Report) method() string {
	var parts []string
	extra := ""
	for _, c := range r.Cases {
		parts = append(parts, fmt.Sprintf("%s: n=%d after %d warm-up samples", c.Name, c.N, c.Warmup))
		if c.Name == CaseBwrap {
			extra += " In the bwrap case, the Warden side is the bubblewrap provider and the baseline Warden's Docker provider, " +
				"both through the provider interface with the same default spec; its lifecycle operations take the lifecycle sample count. " +
				"Its floors of a fresh sandbox run the sandboxes' interpreter (the host's /usr) in bare bwrap (`--unshare-all`, nothing else) and plainly on the host; " +
				"CPU times add Warden's own to that of the sandbox's processes (or the command's). " +
				"Idle memory is the PSS of every process of each of several sandboxes (or plain interpreters) alive side by side, after one execution and 0.3 s idle."
		}
		if c.Name == CasePool {
			extra += " In the pool case, two clients at once create a sandbox through warden serve's handler on the bubblewrap provider (the Go client over loopback HTTP), " +
				"run print(1) and delete it, with a warm pool of 2 (each refill starts when the sandbox it replaces is deleted, at the lowest CPU weight) and without one; each sample then waits until the pool is full again " +
				"and the deleted sandboxes are removed; the figures are the slower client's."
		}
		if c.Name == CaseRunsc {
			extra += " In the runsc case, the Warden side is the Docker provider with its containers under gVisor's runsc, " +
				"the baselines the same provider under runc and plain `docker exec`/`docker run` of runsc containers; " +
				"below 1× gVisor is slower; its lifecycle operations take the lifecycle sample count."
		}
	}
	return "Medians of interleaved samples (rounds run every operation in a random order, exec operations 10 times in a row, lifecycle ones once; " + strings.Join(parts, "; ") + "); " +
		"speed-up = baseline median / Warden median, above 1× Warden is faster. " +
		"Baselines run in a plain container of the same image (`--network none`, no other option); " +
		"Warden sandboxes are hardened (uid 1000, no capabilities, read-only root, init, CPU/memory/pids limits). " +
		"C is the long-lived baseline container; IMG the image." + extra
}

func (r Report) machineLine() string {
	m := r.Machine
	var parts []string
	add := func(format string, args ...any) { parts = append(parts, fmt.Sprintf(format, args...)) }
	if m.CPUModel != "" {
		add("%s", m.CPUModel)
	}
	add("%d CPUs", m.CPUs)
	if m.MemoryBytes > 0 {
		add("%.1f GiB RAM", float64(m.MemoryBytes)/(1<<30))
	}
	if m.OS != "" {
		add("%s", m.OS)
	}
	if m.Kernel != "" {
		add("kernel %s", m.Kernel)
	}
	if m.DockerEngine != "" {
		detail := "API " + m.DockerAPI
		if m.StorageDriver != "" {
			detail += ", " + m.StorageDriver
		}
		add("Docker Engine %s (%s)", m.DockerEngine, detail)
	}
	if m.DockerCLI != "" {
		add("docker CLI %s", m.DockerCLI)
	}
	add("%s", m.GoVersion)
	if m.PageFault > 0 && m.Syscall > 0 {
		cost := fmt.Sprintf("a page fault %s", fmtMicros(m.PageFault))
		if m.PopulatePage > 0 {
			cost += fmt.Sprintf(" (%s per page made present by madvise, without the trap)", fmtMicros(m.PopulatePage))
		}
		add("%s, a system call %s", cost, fmtMicros(m.Syscall))
	}
	img := r.Image
	if id := strings.TrimPrefix(r.ImageID, "sha256:"); len(id) >= 12 {
		img += " (" + id[:12] + ")"
	}
	return fmt.Sprintf("Measured %s on %s; image `%s`.", r.Date.Format(time.DateOnly), strings.Join(parts, ", "), img)
}

// fmtMicros prints d in microseconds with two decimals.
func fmtMicros(d time.Duration) string {
	return fmt.Sprintf("%.2f µs", float64(d.Nanoseconds())/1e3)
}

// fmtDuration prints d in milliseconds with three significant digits
// (seconds from 10 s up).
func fmtDuration(d time.Duration) string {
	v := ms(d)
	switch {
	case d <= 0:
		return "–"
	case v < 1:
		return fmt.Sprintf("%.3f ms", v)
	case v < 10:
		return fmt.Sprintf("%.2f ms", v)
	case v < 100:
		return fmt.Sprintf("%.1f ms", v)
	case v < 10000:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f s", v/1000)
	}
}

func fmtRatio(r float64) string {
	switch {
	case r <= 0:
		return "–"
	case r < 1:
		return fmt.Sprintf("%.2f×", r)
	case r < 10:
		return fmt.Sprintf("%.1f×", r)
	default:
		return fmt.Sprintf("%.0f×", r)
	}
}

// fmtBytes prints b in MiB.
func fmtBytes(b int64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", mib(b))
}

// roleLine lists the median PSS of each kind of process.
func (m MemStats) roleLine() string {
	var parts []string
	for _, r := range m.Roles {
		parts = append(parts, fmt.Sprintf("%s %.1f", r.Role, r.MedianMiB))
	}
	return strings.Join(parts, ", ")
}

// plain drops Markdown code quotes for the terminal.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }
