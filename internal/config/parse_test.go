package config

import (
	"errors"
	"log/slog"
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestParseBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    int64
		wantErr bool
	}{
		{name: "seed megabytes", in: "512m", want: 512 << 20},
		{name: "seed upper case", in: "512M", want: 512 << 20},
		{name: "gigabytes", in: "1g", want: 1 << 30},
		{name: "kilobytes", in: "2048k", want: 2 << 20},
		{name: "terabytes", in: "2t", want: 2 << 40},
		{name: "plain bytes", in: "1024", want: 1024},
		{name: "b suffix", in: "1024b", want: 1024},
		{name: "B suffix", in: "1024B", want: 1024},
		{name: "kb is binary", in: "1kb", want: 1024},
		{name: "MB", in: "10MB", want: 10 << 20},
		{name: "MiB", in: "10MiB", want: 10 << 20},
		{name: "gib", in: "1gib", want: 1 << 30},
		{name: "zero", in: "0", want: 0},
		{name: "leading zeros", in: "0010k", want: 10 << 10},
		{name: "surrounding spaces", in: " 64m\t", want: 64 << 20},
		{name: "max int64", in: "9223372036854775807", want: math.MaxInt64},
		{name: "largest in t", in: "8388607t", want: 8388607 << 40},
		{name: "empty", in: "", wantErr: true},
		{name: "only spaces", in: "   ", wantErr: true},
		{name: "unit only", in: "m", wantErr: true},
		{name: "seed invalid", in: "invalid", wantErr: true},
		{name: "negative", in: "-1m", wantErr: true},
		{name: "plus sign", in: "+1m", wantErr: true},
		{name: "fraction", in: "1.5g", wantErr: true},
		{name: "space before unit", in: "512 m", wantErr: true},
		{name: "unknown unit", in: "5x", wantErr: true},
		{name: "petabytes unsupported", in: "1p", wantErr: true},
		{name: "ib without unit", in: "5ib", wantErr: true},
		{name: "double unit", in: "5mm", wantErr: true},
		{name: "overflow by unit", in: "8388608t", wantErr: true},
		{name: "overflow digits", in: "99999999999999999999", wantErr: true},
		{name: "hex", in: "0x10", wantErr: true},
		{name: "underscore", in: "1_000", wantErr: true},
		{name: "unicode digit", in: "٣m", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseBytes(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseBytes(%q) = %d, want error", tt.in, got)
				}
				if !errors.Is(err, sandbox.ErrInvalid) {
					t.Errorf("ParseBytes(%q) error %v does not match sandbox.ErrInvalid", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseBytes(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   int64
		want string
	}{
		{"zero", 0, "0"},
		{"bytes", 1025, "1025"},
		{"one k", 1024, "1k"},
		{"megabytes", 512 << 20, "512m"},
		{"not a whole g", 1536 << 20, "1536m"},
		{"gigabytes", 2 << 30, "2g"},
		{"terabytes", 3 << 40, "3t"},
		{"negative", -(6 << 20), "-6m"},
		{"min int64", math.MinInt64, "-8388608t"},
		{"max int64", math.MaxInt64, "9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := FormatBytes(tt.in); got != tt.want {
				t.Errorf("FormatBytes(%d) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func FuzzBytesRoundTrip(f *testing.F) {
	for _, n := range []int64{0, 1, 1023, 1024, 512 << 20, math.MaxInt64, 8388607 << 40} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, n int64) {
		s := FormatBytes(n)
		got, err := ParseBytes(s)
		if n < 0 {
			if err == nil {
				t.Fatalf("ParseBytes(FormatBytes(%d) = %q) accepted a negative size", n, s)
			}
			return
		}
		if err != nil || got != n {
			t.Fatalf("ParseBytes(FormatBytes(%d) = %q) = %d, %v", n, s, got, err)
		}
	})
}

func TestParseDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    time.Duration
		wantErr bool
	}{
		{name: "seed seconds", in: "30", want: 30 * time.Second},
		{name: "zero", in: "0", want: 0},
		{name: "fractional seconds", in: "1.5", want: 1500 * time.Millisecond},
		{name: "leading point", in: ".5", want: 500 * time.Millisecond},
		{name: "trailing point", in: "2.", want: 2 * time.Second},
		{name: "negative seconds", in: "-5", want: -5 * time.Second},
		{name: "plus seconds", in: "+5", want: 5 * time.Second},
		{name: "go seconds", in: "90s", want: 90 * time.Second},
		{name: "go minutes", in: "2m", want: 2 * time.Minute},
		{name: "go compound", in: "1h30m", want: 90 * time.Minute},
		{name: "go milliseconds", in: "250ms", want: 250 * time.Millisecond},
		{name: "go negative", in: "-1m", want: -time.Minute},
		{name: "spaces", in: " 10 ", want: 10 * time.Second},
		{name: "largest whole seconds", in: "9223372036", want: 9223372036 * time.Second},
		{name: "empty", in: "", wantErr: true},
		{name: "words", in: "soon", wantErr: true},
		{name: "unit only", in: "s", wantErr: true},
		{name: "days unsupported", in: "1d", wantErr: true},
		{name: "exponent", in: "1e3", wantErr: true},
		{name: "hex", in: "0x10", wantErr: true},
		{name: "inf", in: "inf", wantErr: true},
		{name: "nan", in: "NaN", wantErr: true},
		{name: "two points", in: "1.2.3", wantErr: true},
		{name: "only point", in: ".", wantErr: true},
		{name: "only sign", in: "-", wantErr: true},
		{name: "double sign", in: "--5", wantErr: true},
		{name: "seconds overflow", in: "9223372037", wantErr: true},
		{name: "negative seconds overflow", in: "-9223372037", wantErr: true},
		{name: "fractional overflow", in: "9223372036.9", wantErr: true},
		{name: "quarter seconds", in: "2.25", want: 2250 * time.Millisecond},
		{name: "nanosecond rounding", in: "0.0000000015", want: 2},
		{name: "huge seconds", in: "99999999999999999999999", wantErr: true},
		{name: "go overflow", in: "9999999999h", wantErr: true},
		{name: "space inside", in: "1 m", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseDuration(%q) = %v, want error", tt.in, got)
				}
				if !errors.Is(err, sandbox.ErrInvalid) {
					t.Errorf("ParseDuration(%q) error %v does not match sandbox.ErrInvalid", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseDuration(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"},
		{5 * time.Second, "5s"},
		{10 * time.Minute, "10m"},
		{time.Hour, "1h"},
		{90 * time.Minute, "1h30m"},
		{time.Hour + 5*time.Second, "1h0m5s"},
		{168 * time.Hour, "168h"},
		{250 * time.Millisecond, "250ms"},
		{time.Minute + 500*time.Millisecond, "1m0.5s"},
		{-time.Minute, "-1m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			got := FormatDuration(tt.in)
			if got != tt.want {
				t.Errorf("FormatDuration(%v) = %q, want %q", tt.in, got, tt.want)
			}
			if back, err := ParseDuration(got); err != nil || back != tt.in {
				t.Errorf("ParseDuration(%q) = %v, %v, want %v", got, back, err, tt.in)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{in: "true", want: true}, {in: "TRUE", want: true}, {in: "True", want: true},
		{in: "1", want: true}, {in: "yes", want: true}, {in: "YES", want: true},
		{in: "on", want: true}, {in: "t", want: true}, {in: "y", want: true},
		{in: " on ", want: true},
		{in: "false"}, {in: "False"}, {in: "0"}, {in: "no"}, {in: "off"},
		{in: "OFF"}, {in: "f"}, {in: "n"},
		{in: "", wantErr: true}, {in: "maybe", wantErr: true}, {in: "2", wantErr: true},
		{in: "-1", wantErr: true}, {in: "tru", wantErr: true}, {in: "enabled", wantErr: true},
		{in: "yes please", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			t.Parallel()
			got, err := ParseBool(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseBool(%q) = %v, %v, want %v (error %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestEnums(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		value   interface{ Set(string) error }
		in      string
		want    string
		wantErr string
	}{
		{name: "provider", value: new(ProviderName), in: "docker", want: "docker"},
		{name: "provider case", value: new(ProviderName), in: "Bubblewrap", want: "bubblewrap"},
		{name: "provider bwrap alias", value: new(ProviderName), in: "bwrap", want: "bubblewrap"},
		{name: "provider local", value: new(ProviderName), in: " LOCAL ", want: "local"},
		{name: "provider unknown", value: new(ProviderName), in: "modal",
			wantErr: `"modal" is not a provider (want one of auto, seatbelt, bubblewrap, docker, local, kubernetes, forkserver)`},
		{name: "provider empty", value: new(ProviderName), in: "",
			wantErr: `"" is not a provider (want one of auto, seatbelt, bubblewrap, docker, local, kubernetes, forkserver)`},
		{name: "level", value: new(LogLevel), in: "DEBUG", want: "debug"},
		{name: "level warning alias", value: new(LogLevel), in: "WARNING", want: "warn"},
		{name: "level unknown", value: new(LogLevel), in: "critical",
			wantErr: `"critical" is not a log level (want one of debug, info, warn, error)`},
		{name: "format", value: new(LogFormat), in: "JSON", want: "json"},
		{name: "format unknown", value: new(LogFormat), in: "logfmt",
			wantErr: `"logfmt" is not a log format (want one of text, json, auto)`},
		{name: "provider seatbelt", value: new(ProviderName), in: "Seatbelt", want: "seatbelt"},
		{name: "switch auto", value: new(Switch), in: "AUTO", want: "auto"},
		{name: "switch empty is auto", value: new(Switch), in: "", want: "auto"},
		{name: "switch yes", value: new(Switch), in: "yes", want: "true"},
		{name: "switch 0", value: new(Switch), in: "0", want: "false"},
		{name: "switch bad", value: new(Switch), in: "maybe",
			wantErr: `"maybe" is not a switch (want one of auto, true, false)`},
		{name: "words", value: new(Words), in: " git, make  npm,,", want: "git,make,npm"},
		{name: "words star", value: new(Words), in: "*", want: "*"},
		{name: "words operators", value: new(Words), in: "&,|&", want: "&,|&"},
		{name: "words empty", value: new(Words), in: " , ", want: ""},
		{name: "words control", value: new(Words), in: "a\x00b",
			wantErr: `"a\x00b" is not a list of names: it contains a control character`},
		{name: "bytes", value: new(ByteSize), in: "6m", want: "6m"},
		{name: "bytes bad", value: new(ByteSize), in: "6q",
			wantErr: `"6q" is not a byte size (want a whole number with an optional unit b, k, m, g or t, e.g. 512m)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.value.Set(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Set(%q) error = %v, want %q", tt.in, err, tt.wantErr)
				}
				if !errors.Is(err, sandbox.ErrInvalid) {
					t.Errorf("Set(%q) error does not match sandbox.ErrInvalid", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("Set(%q) = %v", tt.in, err)
			}
			if got := tt.value.(interface{ String() string }).String(); got != tt.want {
				t.Errorf("after Set(%q): String() = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLogLevelLevel(t *testing.T) {
	t.Parallel()
	want := map[LogLevel]slog.Level{
		LevelDebug: slog.LevelDebug, LevelInfo: slog.LevelInfo, LevelWarn: slog.LevelWarn,
		LevelError: slog.LevelError, "bogus": slog.LevelInfo,
	}
	for l, w := range want {
		if got := l.Level(); got != w {
			t.Errorf("LogLevel(%q).Level() = %v, want %v", l, got, w)
		}
	}
}

func TestSetValueScalars(t *testing.T) {
	t.Parallel()
	sep := string(os.PathListSeparator)
	tests := []struct {
		name    string
		field   func(*Config) any
		in      string
		want    string // formatValue after setting
		wantErr bool
	}{
		{name: "int", field: func(c *Config) any { return &c.Sandbox.PidsLimit }, in: " 42 ", want: "42"},
		{name: "int negative", field: func(c *Config) any { return &c.Sandbox.PidsLimit }, in: "-1", want: "-1"},
		{name: "int float", field: func(c *Config) any { return &c.Sandbox.PidsLimit }, in: "4.5", wantErr: true},
		{name: "int overflow", field: func(c *Config) any { return &c.Sandbox.PidsLimit }, in: "99999999999999999999", wantErr: true},
		{name: "int words", field: func(c *Config) any { return &c.Sandbox.PidsLimit }, in: "many", wantErr: true},
		{name: "float", field: func(c *Config) any { return &c.Sandbox.CPULimit }, in: "0.5", want: "0.5"},
		{name: "float int", field: func(c *Config) any { return &c.Sandbox.CPULimit }, in: "2", want: "2"},
		{name: "float nan", field: func(c *Config) any { return &c.Sandbox.CPULimit }, in: "NaN", wantErr: true},
		{name: "float inf", field: func(c *Config) any { return &c.Sandbox.CPULimit }, in: "+Inf", wantErr: true},
		{name: "float exponent", field: func(c *Config) any { return &c.Sandbox.CPULimit }, in: "1e1", wantErr: true},
		{name: "float comma", field: func(c *Config) any { return &c.Sandbox.CPULimit }, in: "0,5", wantErr: true},
		{name: "string trimmed", field: func(c *Config) any { return &c.Sandbox.Image }, in: " img:1 ", want: "img:1"},
		{name: "dirs commas", field: func(c *Config) any { return &c.Sandbox.AdditionalReadDirs }, in: "/a, /b/ ,,/c/../d", want: "/a,/b,/d"},
		{name: "dirs path list", field: func(c *Config) any { return &c.Sandbox.AdditionalReadDirs }, in: "/a" + sep + "/b", want: "/a,/b"},
		{name: "dirs relative kept", field: func(c *Config) any { return &c.Sandbox.AdditionalReadDirs }, in: "data", want: "data"},
		{name: "keys", field: func(c *Config) any { return &c.API.Keys }, in: " k1 ,, k2,", want: "k1,k2"},
		{name: "secret trimmed", field: func(c *Config) any { return &c.Security.SecretKey }, in: " s ", want: "s"},
		{name: "duration", field: func(c *Config) any { return &c.Sandbox.Timeout }, in: "90", want: "1m30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var c Config
			p := tt.field(&c)
			err := setValue(p, tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("setValue(%q) = nil, want error", tt.in)
				}
				return
			}
			if err != nil {
				t.Fatalf("setValue(%q) = %v", tt.in, err)
			}
			if got := formatValue(p); got != tt.want {
				t.Errorf("setValue(%q) then formatValue = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzParseBytes: ParseBytes never panics, never returns a negative size,
// and what it accepts survives FormatBytes.
func FuzzParseBytes(f *testing.F) {
	for _, s := range []string{"512m", "1G", "0", "1kib", "8388608t", "-1", " 5 ", "1.5g"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseBytes(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseBytes(%q) = %d", s, n)
		}
		if back, err := ParseBytes(FormatBytes(n)); err != nil || back != n {
			t.Fatalf("ParseBytes(FormatBytes(%d)) = %d, %v", n, back, err)
		}
	})
}

// FuzzParseDuration: ParseDuration never panics and what it accepts
// survives FormatDuration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30", "1.5", "-5", "90s", "1h30m", "9223372036", ".", "1e3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Fatalf("ParseDuration(FormatDuration(%v) = %q) = %v, %v", d, FormatDuration(d), back, err)
		}
	})
}
