package config

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// valueError is a value that does not parse. Its reason is phrased to follow
// the value: `"5x" is not a byte size (...)`.
type valueError struct {
	value, reason string
}

func (e *valueError) Error() string { return fmt.Sprintf("%q is %s", e.value, e.reason) }

// Unwrap makes every parse error match [sandbox.ErrInvalid].
func (e *valueError) Unwrap() error { return sandbox.ErrInvalid }

func badValue(s, reason string) error { return &valueError{value: s, reason: reason} }

// byteUnits maps a lower-case unit suffix to its multiplier. Like
// `docker run --memory`, k, m, g and t are powers of 1024 whatever the
// spelling (k, kb, kib).
var byteUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
	"t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40,
}

const bytesReason = "not a byte size (want a whole number with an optional unit b, k, m, g or t, e.g. 512m)"

// ParseBytes parses a byte size: a whole decimal number of bytes followed by
// an optional unit, case-insensitive, with no space between. The units k, m,
// g and t (also written kb/kib, mb/mib, ...) are powers of 1024, as with
// `docker run --memory`; b or no unit means bytes. So "512m", "1g", "2048k",
// "1048576" and "1024b" are accepted, and the seed's form `^\d+[kmg]$` is a
// subset. Fractions, signs and spaces inside the value are rejected;
// surrounding spaces are ignored. The result never overflows int64.
func ParseBytes(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	mult, ok := byteUnits[t[i:]]
	if i == 0 || !ok {
		return 0, badValue(s, bytesReason)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil || n > math.MaxInt64/mult {
		return 0, badValue(s, "too large a byte size")
	}
	return n * mult, nil
}

// FormatBytes formats n with the largest unit (t, g, m, k) that divides it
// exactly, in the lower-case form [ParseBytes] reads back: 512m, 1g, 1536m,
// 1025. Negative sizes get a leading minus, which ParseBytes rejects.
func FormatBytes(n int64) string {
	if n == 0 {
		return "0"
	}
	sign := ""
	u := uint64(n)
	if n < 0 {
		sign, u = "-", -u
	}
	for _, unit := range []struct {
		suffix string
		mult   uint64
	}{{"t", 1 << 40}, {"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if u%unit.mult == 0 {
			return sign + strconv.FormatUint(u/unit.mult, 10) + unit.suffix
		}
	}
	return sign + strconv.FormatUint(u, 10)
}

const durationReason = "not a duration (want seconds such as 30 or 1.5, or a Go duration such as 90s or 2m)"

// ParseDuration parses a duration given either as a number of seconds, the
// seed's form ("30", "1.5"), or as a Go duration ("90s", "2m", "1h30m").
// A sign is allowed so that range checks can report negative values.
func ParseDuration(s string) (time.Duration, error) {
	t := strings.TrimSpace(s)
	if isDecimal(t) {
		if n, err := strconv.ParseInt(t, 10, 64); err == nil {
			if n > math.MaxInt64/int64(time.Second) || n < math.MinInt64/int64(time.Second) {
				return 0, badValue(s, "too long a duration")
			}
			return time.Duration(n) * time.Second, nil // exact for whole seconds
		}
		f, err := strconv.ParseFloat(t, 64)
		ns := math.Round(f * float64(time.Second))
		// float64(math.MaxInt64) is 2^63, the first value out of range.
		if err != nil || math.Abs(ns) >= float64(math.MaxInt64) {
			return 0, badValue(s, "too long a duration")
		}
		return time.Duration(ns), nil
	}
	d, err := time.ParseDuration(t)
	if err != nil {
		return 0, badValue(s, durationReason)
	}
	return d, nil
}

// isDecimal reports whether s is an optionally signed decimal number with
// digits on at least one side of an optional point: no exponent, hex,
// underscores, Inf or NaN, which strconv.ParseFloat would also take.
func isDecimal(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	digits, points := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			points++
		default:
			return false
		}
	}
	return digits > 0 && points <= 1
}

// FormatDuration formats d like [time.Duration.String] without the zero
// minutes and seconds it appends: "10m" rather than "10m0s", "1h" rather
// than "1h0m0s". [ParseDuration] reads the result back.
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

var boolWords = map[string]bool{
	"true": true, "t": true, "1": true, "yes": true, "y": true, "on": true,
	"false": false, "f": false, "0": false, "no": false, "n": false, "off": false,
}

// ParseBool parses a boolean the way pydantic (and so the seed) did:
// true/false, 1/0, yes/no, on/off, t/f and y/n, in any case.
func ParseBool(s string) (bool, error) {
	v, ok := boolWords[strings.ToLower(strings.TrimSpace(s))]
	if !ok {
		return false, badValue(s, "not a boolean (want true/false, 1/0, yes/no or on/off)")
	}
	return v, nil
}

func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, badValue(s, "not a whole number")
	}
	return n, nil
}

func parseFloat(s string) (float64, error) {
	t := strings.TrimSpace(s)
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || !isDecimal(t) {
		return 0, badValue(s, "not a decimal number")
	}
	return f, nil
}

// splitPaths splits a directory list on commas and the OS path-list
// separator, drops empty entries and cleans the rest (so "/data/../etc" is
// checked as "/etc"). Relative entries are kept for Validate to report.
func splitPaths(s string) []string {
	var out []string
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == os.PathListSeparator }) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, filepath.Clean(p))
		}
	}
	return out
}

// splitKeys splits a comma-separated key list, dropping empty entries.
func splitKeys(s string) []Secret {
	var out []Secret
	for k := range strings.SplitSeq(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, Secret(k))
		}
	}
	return out
}

// enum is the set of values of an enumerated setting.
type enum struct {
	what    string
	values  []string
	aliases map[string]string
}

func (e *enum) parse(s string) (string, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	if a, ok := e.aliases[v]; ok {
		v = a
	}
	if !slices.Contains(e.values, v) {
		return "", badValue(s, fmt.Sprintf("not a %s (want one of %s)", e.what, strings.Join(e.values, ", ")))
	}
	return v, nil
}

// enumValue is implemented by the enumerated setting types.
type enumValue interface {
	Set(string) error
	choices() *enum
}

// setValue parses s into the field p points to, which must be one of the
// types the registry uses.
func setValue(p any, s string) error {
	switch p := p.(type) {
	case *bool:
		v, err := ParseBool(s)
		if err != nil {
			return err
		}
		*p = v
	case *int:
		v, err := parseInt(s)
		if err != nil {
			return err
		}
		*p = v
	case *float64:
		v, err := parseFloat(s)
		if err != nil {
			return err
		}
		*p = v
	case *string:
		*p = strings.TrimSpace(s)
	case *time.Duration:
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*p = v
	case *[]string:
		*p = splitPaths(s)
	case *Secret:
		*p = Secret(strings.TrimSpace(s))
	case *[]Secret:
		*p = splitKeys(s)
	case interface{ Set(string) error }: // ByteSize and the enums
		return p.Set(s)
	default:
		panic(fmt.Sprintf("config: unsupported field type %T", p))
	}
	return nil
}

// formatValue formats the field p points to in the form setValue reads.
// Secrets are returned in clear: callers redact them.
func formatValue(p any) string {
	switch p := p.(type) {
	case *bool:
		return strconv.FormatBool(*p)
	case *int:
		return strconv.Itoa(*p)
	case *float64:
		return strconv.FormatFloat(*p, 'f', -1, 64)
	case *string:
		return *p
	case *time.Duration:
		return FormatDuration(*p)
	case *[]string:
		return strings.Join(*p, ",")
	case *Secret:
		return string(*p)
	case *[]Secret:
		keys := make([]string, len(*p))
		for i, k := range *p {
			keys[i] = string(k)
		}
		return strings.Join(keys, ",")
	case fmt.Stringer:
		return p.String()
	}
	panic(fmt.Sprintf("config: unsupported field type %T", p))
}
