package stats

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	for _, c := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.9, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2500 * time.Microsecond},
		{ms(1, 2, 3, 4, 5), 0.5, 3 * time.Millisecond},
		{ms(0, 10), 0.9, 9 * time.Millisecond},
		{ms(1, 2, 3), 0, time.Millisecond},
		{ms(1, 2, 3), 1, 3 * time.Millisecond},
	} {
		if got := Percentile(c.in, c.p); got != c.want {
			t.Errorf("Percentile(%v, %g) = %v, want %v", c.in, c.p, got, c.want)
		}
	}
}

func TestFileField(t *testing.T) {
	f := filepath.Join(t.TempDir(), "cpuinfo")
	if err := os.WriteFile(f, []byte("processor\t: 0\nmodel name\t: Test CPU @ 2GHz\nPRETTY_NAME=\"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := FileField(f, "model name", ':'); got != "Test CPU @ 2GHz" {
		t.Errorf("model name = %q", got)
	}
	if got := FileField(f, "PRETTY_NAME", '='); got != `"x"` {
		t.Errorf("PRETTY_NAME = %q", got)
	}
	if got := FileField(f, "missing", ':'); got != "" {
		t.Errorf("missing = %q", got)
	}
	if got := FileField(filepath.Join(t.TempDir(), "none"), "x", ':'); got != "" {
		t.Errorf("no file = %q", got)
	}
}
