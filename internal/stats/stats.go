// Package stats holds what warden bench and warden load both need to
// describe samples and the machine they were taken on.
package stats

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"strings"
	"time"
)

// Percentile returns the p-quantile (0 <= p <= 1) of sorted samples,
// interpolating linearly between the two nearest ranks (the default of
// numpy and R, "type 7"): the median of an even number of samples is the
// mean of the middle two.
func Percentile(sorted []time.Duration, p float64) time.Duration {
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

// FileField returns the trimmed value of the first "key<sep> value" line
// of file (as in /proc/cpuinfo or /etc/os-release), or "".
func FileField(file, key string, sep byte) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
