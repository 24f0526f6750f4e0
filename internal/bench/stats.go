package bench

import (
	"math"
	"slices"
	"time"
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
	s.Median = percentile(sorted, 0.5)
	s.P10 = percentile(sorted, 0.1)
	s.P90 = percentile(sorted, 0.9)
	s.Min = sorted[0]
	s.Max = sorted[len(sorted)-1]
	s.MedianMS, s.P10MS, s.P90MS = ms(s.Median), ms(s.P10), ms(s.P90)
	s.MinMS, s.MaxMS = ms(s.Min), ms(s.Max)
	return s
}

// percentile returns the p-quantile (0 <= p <= 1) of sorted samples,
// interpolating linearly between the two nearest ranks (the default of
// numpy and R, "type 7"): the median of an even number of samples is the
// mean of the middle two.
func percentile(sorted []time.Duration, p float64) time.Duration {
	switch n := len(sorted); {
	case n == 0:
		return 0
	case n == 1 || p <= 0:
		return sorted[0]
	case p >= 1:
		return sorted[n-1]
	}
	h := float64(len(sorted)-1) * p
	lo := int(math.Floor(h))
	if lo+1 >= len(sorted) {
		return sorted[lo]
	}
	frac := h - float64(lo)
	return sorted[lo] + time.Duration(math.Round(frac*float64(sorted[lo+1]-sorted[lo])))
}

// ratio is baseline/warden, or 0 when either is missing.
func ratio(baseline, warden time.Duration) float64 {
	if baseline <= 0 || warden <= 0 {
		return 0
	}
	return float64(baseline) / float64(warden)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
