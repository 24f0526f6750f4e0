package config

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestParseDotenv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "simple", in: "A=1\nB=two\n", want: map[string]string{"A": "1", "B": "two"}},
		{name: "no final newline", in: "A=1", want: map[string]string{"A": "1"}},
		{name: "comments and blanks", in: "# c\n\n   \n\t# indented\nA=1\n", want: map[string]string{"A": "1"}},
		{name: "export", in: "export A=1\nexport\tB=2\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "key named export", in: "export=1\n", want: map[string]string{"export": "1"}},
		{name: "key starting with export", in: "exported=1\n", want: map[string]string{"exported": "1"}},
		{name: "spaces around equals", in: "  A  =  1  \n", want: map[string]string{"A": "1"}},
		{name: "empty value", in: "A=\nB= \n", want: map[string]string{"A": "", "B": ""}},
		{name: "inline comment", in: "A=1 # one\nB=2\t#two\n", want: map[string]string{"A": "1", "B": "2"}},
		{name: "hash without blank is value", in: "A=a#b\nB=#x\n", want: map[string]string{"A": "a#b", "B": "#x"}},
		{name: "comment as whole value", in: "A= # nothing\n", want: map[string]string{"A": ""}},
		{name: "inner spaces kept", in: "A=a b  c\n", want: map[string]string{"A": "a b  c"}},
		{name: "equals in value", in: "A=b=c\n", want: map[string]string{"A": "b=c"}},
		{name: "unquoted quote in middle", in: `A=it's`, want: map[string]string{"A": "it's"}},
		{name: "unquoted backslash literal", in: `A=a\nb`, want: map[string]string{"A": `a\nb`}},
		{name: "single quotes literal", in: `A='a\nb #c' # d`, want: map[string]string{"A": `a\nb #c`}},
		{name: "double quotes escapes", in: `A="a\nb\tc\\d\"e\'f\$g"`, want: map[string]string{"A": "a\nb\tc\\d\"e'f$g"}},
		{name: "double quotes unknown escape kept", in: `A="a\qb"`, want: map[string]string{"A": `a\qb`}},
		{name: "double quotes hash", in: `A="a # b"`, want: map[string]string{"A": "a # b"}},
		{name: "quoted leading spaces kept", in: `A="  x  "`, want: map[string]string{"A": "  x  "}},
		{name: "empty quotes", in: "A=\"\"\nB=''\n", want: map[string]string{"A": "", "B": ""}},
		{name: "multi-line double", in: "A=\"line1\nline2\"\nB=1\n", want: map[string]string{"A": "line1\nline2", "B": "1"}},
		{name: "multi-line single", in: "A='x\n\ny'\n", want: map[string]string{"A": "x\n\ny"}},
		{name: "no expansion", in: "A=${HOME}\nB=\"$HOME\"\n", want: map[string]string{"A": "${HOME}", "B": "$HOME"}},
		{name: "last wins", in: "A=1\nA=2\n", want: map[string]string{"A": "2"}},
		{name: "case kept", in: "sandbox__image=x\n", want: map[string]string{"sandbox__image": "x"}},
		{name: "crlf", in: "A=1\r\nB=\"x\"\r\n", want: map[string]string{"A": "1", "B": "x"}},
		{name: "bom", in: "\ufeffA=1\n", want: map[string]string{"A": "1"}},
		{name: "digits in key", in: "A1_B2=x\n_X=y\n", want: map[string]string{"A1_B2": "x", "_X": "y"}},
		{name: "quote then comment", in: `A="x" # c`, want: map[string]string{"A": "x"}},
		{name: "utf-8", in: "A=héllo ✓\n", want: map[string]string{"A": "héllo ✓"}},
		{name: "seed secret", in: "SECURITY__SECRET_KEY=your-super-secret-key-change-this-in-production\n",
			want: map[string]string{"SECURITY__SECRET_KEY": "your-super-secret-key-change-this-in-production"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDotenv(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseDotenv(%q) error: %v", tt.in, err)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("ParseDotenv(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseDotenvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string // every error, in order
	}{
		{name: "no equals", in: "A=1\nJUSTKEY\n", want: []string{"line 2: expected KEY=VALUE"}},
		{name: "bare export", in: "export A\n", want: []string{"line 1: expected KEY=VALUE"}},
		{name: "empty key", in: "=1\n", want: []string{"line 1: expected KEY=VALUE"}},
		{name: "key with dash", in: "A-B=1\n", want: []string{"line 1: expected KEY=VALUE"}},
		{name: "key starts with digit", in: "1A=1\n", want: []string{"line 1: expected KEY=VALUE"}},
		{name: "space in key", in: "A B=1\n", want: []string{"line 1: expected KEY=VALUE"}},
		{name: "colon syntax", in: "A: 1\n", want: []string{"line 1: expected KEY=VALUE"}},
		{name: "unterminated double", in: "A=1\nB=\"abc\nC=2\n", want: []string{`line 2: unterminated "-quoted value`}},
		{name: "unterminated single", in: "B='abc", want: []string{`line 1: unterminated '-quoted value`}},
		{name: "escaped quote does not close", in: `A="abc\"`, want: []string{`line 1: unterminated "-quoted value`}},
		{name: "text after quote", in: "A=\"x\" y\n", want: []string{"line 1: unexpected text after the closing quote"}},
		{name: "text after multi-line quote", in: "A='x\ny'z\n", want: []string{"line 1: unexpected text after the closing quote"}},
		{name: "every error reported", in: "bad\nA=1\nalso bad\nB=\"x\"y\n",
			want: []string{"line 1: expected KEY=VALUE", "line 3: expected KEY=VALUE", "line 4: unexpected text after the closing quote"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDotenv(strings.NewReader(tt.in))
			if err == nil {
				t.Fatalf("ParseDotenv(%q) = %q, want error", tt.in, got)
			}
			if got != nil {
				t.Errorf("ParseDotenv(%q) returned variables %q with its error", tt.in, got)
			}
			if msgs := strings.Split(err.Error(), "\n"); !slices.Equal(msgs, tt.want) {
				t.Errorf("ParseDotenv(%q) errors = %q, want %q", tt.in, msgs, tt.want)
			}
			if !errors.Is(err, sandbox.ErrInvalid) {
				t.Errorf("ParseDotenv(%q) error does not match sandbox.ErrInvalid", tt.in)
			}
			var de *DotenvError
			if !errors.As(err, &de) || de.Line < 1 {
				t.Errorf("ParseDotenv(%q) error is not a *DotenvError with a line", tt.in)
			}
		})
	}
}

func TestParseDotenvLimits(t *testing.T) {
	t.Parallel()
	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		big := strings.Repeat("# padding\n", maxDotenvSize/10+1)
		if _, err := ParseDotenv(strings.NewReader(big)); err == nil {
			t.Error("ParseDotenv(over 1 MiB) = nil error")
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		t.Parallel()
		in := "A=1\n" + strings.Repeat("#", maxDotenvSize-4)
		if _, err := ParseDotenv(strings.NewReader(in)); err != nil {
			t.Errorf("ParseDotenv(1 MiB) = %v", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		t.Parallel()
		boom := errors.New("boom")
		if _, err := ParseDotenv(iotest.ErrReader(boom)); !errors.Is(err, boom) {
			t.Errorf("ParseDotenv(failing reader) = %v, want it to wrap %v", err, boom)
		}
	})
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.env")
	if err := os.WriteFile(good, []byte("SANDBOX__IMAGE=img:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("ok=1\nnope\nB='x\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("good", func(t *testing.T) {
		t.Parallel()
		m, err := LoadFile(good)
		if err != nil || !maps.Equal(m, map[string]string{"SANDBOX__IMAGE": "img:1"}) {
			t.Errorf("LoadFile(good) = %q, %v", m, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		t.Parallel()
		_, err := LoadFile(filepath.Join(dir, "missing.env"))
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("LoadFile(missing) = %v, want fs.ErrNotExist", err)
		}
	})
	t.Run("malformed", func(t *testing.T) {
		t.Parallel()
		_, err := LoadFile(bad)
		want := []string{bad + ":2: expected KEY=VALUE: invalid argument", bad + `:3: unterminated '-quoted value: invalid argument`}
		if err == nil || !slices.Equal(strings.Split(err.Error(), "\n"), want) {
			t.Errorf("LoadFile(bad) = %v, want %q", err, want)
		}
		if !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("LoadFile(bad) error does not match sandbox.ErrInvalid")
		}
	})
}

func TestQuoteDotenv(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"", ""},
		{"plain-value_1.2", "plain-value_1.2"},
		{"unix:///var/run/docker.sock", "unix:///var/run/docker.sock"},
		{"/a,/b", "/a,/b"},
		{"a b", `"a b"`},
		{"a#b", `"a#b"`},
		{`"q"`, `"\"q\""`},
		{`back\slash`, `"back\\slash"`},
		{"line\nbreak\r\ttab", `"line\nbreak\r\ttab"`},
		{"it's", `"it's"`},
		{"${HOME}", `"${HOME}"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got := quoteDotenv(tt.in)
			if got != tt.want {
				t.Errorf("quoteDotenv(%q) = %s, want %s", tt.in, got, tt.want)
			}
			m, err := ParseDotenv(strings.NewReader("K=" + got))
			if err != nil || m["K"] != tt.in {
				t.Errorf("ParseDotenv(K=%s) = %q, %v, want %q", got, m["K"], err, tt.in)
			}
		})
	}
}

// FuzzParseDotenv checks that ParseDotenv never panics, that every error
// carries a line number, and that what it parses survives writing back in
// .env syntax with quoteDotenv.
func FuzzParseDotenv(f *testing.F) {
	for _, s := range []string{
		"", "A=1\n", "export A='x'\n", "A=\"a\\nb\" # c\n", "# c\n\nA= b #c\n",
		"A=\"multi\nline\"\n", "A='unterminated\n", "=x\n", "A=\"x\"y\n",
		"\ufeffA=1\r\nB=2\r\n", "A=\"\\\\\\\"\"\n", "A=\"x\\\ny\"\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseDotenv(strings.NewReader(in))
		if err != nil {
			for _, e := range unjoin(err) {
				var de *DotenvError
				if !errors.As(e, &de) || de.Line < 1 || de.Line > strings.Count(in, "\n")+1 {
					t.Fatalf("ParseDotenv(%q) error %v has no valid line number", in, e)
				}
			}
			return
		}
		var b strings.Builder
		for _, k := range slices.Sorted(maps.Keys(m)) {
			b.WriteString(k + "=" + quoteDotenv(m[k]) + "\n")
		}
		back, err := ParseDotenv(strings.NewReader(b.String()))
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip of %q: got %q, want %q", in, back, m)
		}
	})
}
