package bench

import (
	"math"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/stats"
)

func msd(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                       string
		samples                    []time.Duration
		median, p10, p90, min, max time.Duration
	}{
		{"empty", nil, 0, 0, 0, 0, 0},
		{"one", msd(7), msd(7)[0], msd(7)[0], msd(7)[0], msd(7)[0], msd(7)[0]},
		{"odd unsorted", msd(5, 1, 3), msd(3)[0], msd(1.4)[0], msd(4.6)[0], msd(1)[0], msd(5)[0]},
		// 1..10 ms, shuffled: median is the mean of the middle two,
		// p10 = 1 + 0.9*(2-1), p90 = 9 + 0.1*(10-9).
		{"even", msd(10, 2, 9, 3, 8, 1, 7, 4, 6, 5), msd(5.5)[0], msd(1.9)[0], msd(9.1)[0], msd(1)[0], msd(10)[0]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			orig := append([]time.Duration(nil), tt.samples...)
			s := summarize("x", "exec", "d", tt.samples)
			if s.N != len(tt.samples) || s.Median != tt.median || s.P10 != tt.p10 || s.P90 != tt.p90 || s.Min != tt.min || s.Max != tt.max {
				t.Errorf("summarize(%v) = n %d median %v p10 %v p90 %v min %v max %v, want n %d median %v p10 %v p90 %v min %v max %v",
					tt.samples, s.N, s.Median, s.P10, s.P90, s.Min, s.Max, len(tt.samples), tt.median, tt.p10, tt.p90, tt.min, tt.max)
			}
			if math.Abs(s.MedianMS-ms(tt.median)) > 1e-9 || math.Abs(s.P90MS-ms(tt.p90)) > 1e-9 {
				t.Errorf("summarize(%v) ms fields = %v, %v, want %v, %v", tt.samples, s.MedianMS, s.P90MS, ms(tt.median), ms(tt.p90))
			}
			for i := range orig {
				if tt.samples[i] != orig[i] || s.Samples[i] != orig[i] {
					t.Fatalf("summarize reordered the samples: %v, kept %v, want %v", tt.samples, s.Samples, orig)
				}
			}
		})
	}
}

func TestPercentileBounds(t *testing.T) {
	t.Parallel()
	sorted := msd(1, 2, 3, 4)
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{0, msd(1)[0]}, {-1, msd(1)[0]}, {1, msd(4)[0]}, {2, msd(4)[0]}, {0.5, msd(2.5)[0]}, {1.0 / 3, msd(2)[0]}} {
		if got := stats.Percentile(sorted, tt.p); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", sorted, tt.p, got, tt.want)
		}
	}
}

func TestRatio(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		baseline, warden time.Duration
		want             float64
	}{
		{60 * time.Millisecond, 500 * time.Microsecond, 120},
		{500 * time.Millisecond, time.Second, 0.5},
		{time.Second, 0, 0},
		{0, time.Second, 0},
	} {
		if got := ratio(tt.baseline, tt.warden); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("ratio(%v, %v) = %v, want %v", tt.baseline, tt.warden, got, tt.want)
		}
	}
}

func TestCompare(t *testing.T) {
	t.Parallel()
	stats := []Stats{
		summarize(WardenExecPython, CaseExec, "", msd(0.5, 0.5)),
		summarize(DockerExecSDK, CaseExec, "", msd(30, 30)),
		summarize(DockerExecCLI, CaseExec, "", nil), // not measured
		summarize(WardenLifecycle, CaseLifecycle, "", msd(1000)),
		summarize(DockerRunCLI, CaseLifecycle, "", msd(500)),
	}
	got := compare(stats)
	if len(got) != 2 {
		t.Fatalf("compare gave %d comparisons, want 2: %+v", len(got), got)
	}
	if got[0].Warden != WardenExecPython || got[0].Baseline != DockerExecSDK || got[0].Ratio != 60 {
		t.Errorf("compare()[0] = %s vs %s ratio %v, want %s vs %s ratio 60", got[0].Warden, got[0].Baseline, got[0].Ratio, WardenExecPython, DockerExecSDK)
	}
	if got[1].Baseline != DockerRunCLI || got[1].Ratio != 0.5 {
		t.Errorf("compare()[1] = %s ratio %v, want %s ratio 0.5", got[1].Baseline, got[1].Ratio, DockerRunCLI)
	}
}

func TestOptionsRounds(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts              Options
		kase              string
		wantN, wantWarmup int
	}{
		{Options{}, CaseExec, 200, 5},
		{Options{}, CaseLifecycle, 20, 2},
		{Options{N: 7, Warmup: 3}, CaseLifecycle, 7, 3},
		{Options{Warmup: -1}, CaseExec, 200, 0},
	} {
		if n, w := tt.opts.rounds(tt.kase); n != tt.wantN || w != tt.wantWarmup {
			t.Errorf("%+v.rounds(%s) = %d, %d, want %d, %d", tt.opts, tt.kase, n, w, tt.wantN, tt.wantWarmup)
		}
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	t.Parallel()
	// Options are checked before the provider is touched.
	for _, opts := range []Options{{Cases: []string{"exec", "bogus"}}, {N: -1}} {
		if _, err := Run(t.Context(), nil, opts); err == nil {
			t.Errorf("Run(%+v) = nil error, want one", opts)
		}
	}
}
