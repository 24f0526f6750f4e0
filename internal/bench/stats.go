package bench

import (
	"slices"
	"time"

	"github.com/warden-sandbox/warden/internal/stats"
)

// Stats summarizes the samples of one measured operation.
type Stats struct {
	// Name identifies the operation, e.g. [WardenExecPython].
	Name string `json:"name"`
	// Case is the case ([CaseExec] or [CaseLifecycle]) it was measured in.
	Case string `json:"case"`
	// Description says in a few words what one sample measures.
	Description string `json:"description"`
	// Parent, if set, names the operation of which this one is a step,
	// measured within the same samples (e.g. WardenCreate of
	// WardenLifecycle).
	Parent string `json:"parent,omitempty"`
	// N is the number of samples, warm-up excluded.
	N int `json:"n"`

	Median time.Duration `json:"median_ns"`
	P10    time.Duration `json:"p10_ns"`
	P90    time.Duration `json:"p90_ns"`
	Min    time.Duration `json:"min_ns"`
	Max    time.Duration `json:"max_ns"`

	// The same figures in milliseconds, for readers of the JSON.
	MedianMS float64 `json:"median_ms"`
	P10MS    float64 `json:"p10_ms"`
	P90MS    float64 `json:"p90_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`

	// Samples are the measurements in the order they were taken.
	Samples []time.Duration `json:"samples_ns"`
}

// summarize computes the statistics of samples, which it does not modify.
func summarize(name, kase, desc string, samples []time.Duration) Stats {
	s := Stats{Name: name, Case: kase, Description: desc, N: len(samples), Samples: slices.Clone(samples)}
	if len(samples) == 0 {
		return s
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	s.Median = stats.Percentile(sorted, 0.5)
	s.P10 = stats.Percentile(sorted, 0.1)
	s.P90 = stats.Percentile(sorted, 0.9)
	s.Min = sorted[0]
	s.Max = sorted[len(sorted)-1]
	s.MedianMS, s.P10MS, s.P90MS = ms(s.Median), ms(s.P10), ms(s.P90)
	s.MinMS, s.MaxMS = ms(s.Min), ms(s.Max)
	return s
}

// ratio is baseline/warden, or 0 when either is missing.
func ratio(baseline, warden time.Duration) float64 {
	if baseline <= 0 || warden <= 0 {
		return 0
	}
	return float64(baseline) / float64(warden)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
