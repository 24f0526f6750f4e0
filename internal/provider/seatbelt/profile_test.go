package seatbelt

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

var update = flag.Bool("update", false, "rewrite the golden profiles in testdata/")

// The directories of a sandbox as the darwin provider lays them out, with
// $TMPDIR under /var/folders (given unresolved, to check the /private
// mapping) and a Homebrew interpreter.
const (
	testDir  = "/var/folders/zz/abc123/T/warden/seatbelt-sb-0123456789abcdef"
	testPy   = "/opt/homebrew/Cellar/python@3.12/3.12.4/Frameworks/Python.framework/Versions/3.12/bin/python3.12"
	testPyPx = "/opt/homebrew/Cellar/python@3.12/3.12.4/Frameworks/Python.framework/Versions/3.12"
)

func baseOptions() ProfileOptions {
	return ProfileOptions{
		Workspace:  testDir + "/workspace",
		TmpDir:     testDir + "/tmp",
		HomeDir:    testDir + "/home",
		Python:     testPy,
		PythonDirs: []string{testPyPx, "/opt/homebrew/lib/python3.12/site-packages"},
	}
}

func TestProfileGolden(t *testing.T) {
	t.Parallel()
	network := baseOptions()
	network.Network = true
	dirs := baseOptions()
	dirs.ReadDirs = []string{"/Users/alice/data", testDir + "/workspace/inputs", "/tmp/shared in"}
	dirs.WriteDirs = []string{"/Users/alice/out/", "/Users/alice/out"}
	wide := baseOptions()
	wide.MetadataEverywhere = true
	for _, tc := range []struct {
		name string
		opts ProfileOptions
	}{
		{"default", baseOptions()},
		{"network", network},
		{"dirs", dirs},
		{"metadata_everywhere", wide},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Profile(tc.opts)
			if err != nil {
				t.Fatalf("Profile: %v", err)
			}
			if _, err := parseSBPL(got); err != nil {
				t.Fatalf("the profile does not parse: %v\n%s", err, got)
			}
			golden := filepath.Join("testdata", tc.name+".sb")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("Profile(%s) differs from %s (go test -update rewrites it):\n%s", tc.name, golden, lineDiff(string(want), got))
			}
		})
	}
}

// TestProfileAvoidsOriginalWeaknesses checks, rule by rule, that none of
// the holes of TinyAgent's default profile comes back: (allow network*)
// and friends with networking off, an unfiltered (allow file-read-data)
// or file-read-metadata re-allowing the whole disk, /Users, /Library, /opt
// and the shared /private/tmp readable, /dev writable, and
// file-issue-extension, iokit-open or unfiltered mach-lookup allowed.
func TestProfileAvoidsOriginalWeaknesses(t *testing.T) {
	t.Parallel()
	for _, network := range []bool{false, true} {
		t.Run(fmt.Sprintf("network=%v", network), func(t *testing.T) {
			t.Parallel()
			o := baseOptions()
			o.Network = network
			o.WriteDirs = []string{"/Users/alice/out"}
			text, err := Profile(o)
			if err != nil {
				t.Fatal(err)
			}
			rules, err := parseSBPL(text)
			if err != nil {
				t.Fatal(err)
			}
			if len(rules) < 3 || rules[0].String() != "(version 1)" || rules[1].String() != "(deny default)" {
				t.Fatalf("profile does not start with (version 1) (deny default): %v", rules[:min(3, len(rules))])
			}
			writable := []string{"/private" + testDir + "/workspace", "/private" + testDir + "/tmp", "/private" + testDir + "/home", "/Users/alice/out"}
			for _, r := range rules[2:] {
				action, ops, filters := r.rule()
				if action == "" {
					t.Errorf("top-level form %v is not a rule", r)
					continue
				}
				if action == "deny" {
					continue // denials narrow; they are checked below
				}
				// Rules without filters: only these operations.
				if len(filters) == 0 && !slices.Equal(ops, []string{"process-fork"}) &&
					!slices.Equal(ops, []string{"process-exec"}) && !slices.Equal(ops, []string{"ipc-posix-sem"}) {
					t.Errorf("unfiltered rule %v", r)
				}
				for _, op := range ops {
					switch {
					case strings.HasPrefix(op, "network"):
						if !network {
							t.Errorf("networking is off but %v allows %s", r, op)
						}
						if op != "network-outbound" {
							t.Errorf("%v allows %s; only network-outbound is ever allowed", r, op)
						}
					case op == "default", op == "file-issue-extension", op == "iokit-open",
						op == "mach-priv-task-port", op == "file-link", op == "process-info-setcontrol",
						op == "sysctl-write", op == "ipc-posix-shm", strings.HasPrefix(op, "ipc-posix-shm"):
						t.Errorf("%v allows %s", r, op)
					case strings.HasPrefix(op, "file-write"):
						for _, f := range filters {
							p := f.path()
							devWrite := op == "file-write-data" && (p == "/dev/null" || p == "/dev/zero" || p == "/dev/fd" ||
								p == "/dev/stdin" || p == "/dev/stdout" || p == "/dev/stderr")
							if !devWrite && !slices.Contains(writable, p) {
								t.Errorf("%v lets %s write %v", r, op, f)
							}
						}
					case op == "file-read*" || op == "file-read-data":
						for _, f := range filters {
							p := f.path()
							if f.kind() == "subpath" && slices.Contains([]string{"/", "/Users", "/Library", "/opt", "/System", "/System/Volumes/Data", "/private", "/private/tmp", "/private/var", "/private/var/tmp", "/private/etc", "/usr", "/usr/local", "/Applications", "/Volumes", "/dev"}, p) {
								t.Errorf("%v lets %s read all of %s", r, op, p)
							}
							if strings.HasPrefix(p, "/Users/") && !strings.HasPrefix(p, "/Users/alice/out") {
								t.Errorf("%v lets %s read %s", r, op, p)
							}
						}
					case op == "file-read-metadata":
						for _, f := range filters {
							if f.kind() == "subpath" && !strings.HasPrefix(f.path(), testPyPx) && !strings.HasPrefix(f.path(), "/opt/homebrew/lib") {
								if f.path() == "/" || f.path() == "/Users" {
									t.Errorf("%v lets metadata of all %s be read", r, f.path())
								}
							}
						}
					case op == "mach-lookup":
						for _, f := range filters {
							if f.kind() != "global-name" {
								t.Errorf("%v: mach-lookup filter %v is not a global name", r, f)
							}
						}
					case op == "signal" || op == "process-info*":
						if len(filters) != 1 || filters[0].String() != "(target same-sandbox)" {
							t.Errorf("%v: %s beyond the same sandbox", r, op)
						}
					}
				}
			}
			if network {
				last := rules[len(rules)-1].String()
				if last != `(deny network-outbound (remote ip "localhost:*"))` {
					t.Errorf("the last rule is %s, want the localhost denial (the last matching rule wins)", last)
				}
			} else if strings.Contains(text, "(allow network") || strings.Contains(text, "network*") {
				t.Errorf("networking is off but the profile mentions it in a rule:\n%s", text)
			}
			// Metadata is not readable everywhere by default.
			if strings.Contains(text, "(allow file-read-metadata file-test-existence)\n") || strings.Contains(text, "(allow file-read-metadata)") {
				t.Error("metadata is readable everywhere by default")
			}
		})
	}
}

func TestProfileReadOnlyInsideWritable(t *testing.T) {
	t.Parallel()
	o := baseOptions()
	o.ReadDirs = []string{testDir + "/workspace/in", "/Users/alice/data", "/Users/alice/both"}
	o.WriteDirs = []string{"/Users/alice/both"}
	text, err := Profile(o)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := parseSBPL(text)
	if err != nil {
		t.Fatal(err)
	}
	var allowAt, denyAt int
	var denied []string
	for i, r := range rules {
		action, ops, filters := r.rule()
		if !slices.Contains(ops, "file-write*") {
			continue
		}
		if action == "allow" {
			allowAt = i
		} else {
			denyAt = i
			for _, f := range filters {
				denied = append(denied, f.path())
			}
		}
	}
	// Only the read directory inside the workspace needs the denial; one
	// also listed as writable stays writable.
	if want := []string{"/private" + testDir + "/workspace/in"}; !slices.Equal(denied, want) {
		t.Errorf("write denials = %q, want %q", denied, want)
	}
	if denyAt < allowAt {
		t.Errorf("the write denial (rule %d) precedes the write allow (rule %d); the last matching rule wins", denyAt, allowAt)
	}
}

func TestCanonicalPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"/tmp", "/private/tmp"},
		{"/tmp/x", "/private/tmp/x"},
		{"/var/folders/a/../b/", "/private/var/folders/b"},
		{"/etc/hosts", "/private/etc/hosts"},
		{"/private/tmp/x", "/private/tmp/x"},
		{"/tmpfoo/x", "/tmpfoo/x"},
		{"/variable", "/variable"},
		{"/a//b/./c/", "/a/b/c"},
		{"/Users/al ice/Ünïcode", "/Users/al ice/Ünïcode"},
		{"/", "/"},
	} {
		got, err := canonicalPath(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("canonicalPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestProfileEscaping(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ dir, literal string }{
		{`/Users/alice/we"ird`, `"/Users/alice/we\"ird"`},
		{`/Users/alice/back\slash`, `"/Users/alice/back\\slash"`},
		{`/Users/alice/\"`, `"/Users/alice/\\\""`},
		// An injection attempt stays one string.
		{`/Users/alice/x"))(allow default)(allow file-read* (subpath "`, `"/Users/alice/x\"))(allow default)(allow file-read* (subpath \""`},
	} {
		o := baseOptions()
		o.WriteDirs = []string{tc.dir}
		text, err := Profile(o)
		if err != nil {
			t.Fatalf("Profile with write dir %q: %v", tc.dir, err)
		}
		if !strings.Contains(text, "(subpath "+tc.literal+")") {
			t.Errorf("Profile with write dir %q lacks (subpath %s)", tc.dir, tc.literal)
		}
		rules, err := parseSBPL(text)
		if err != nil {
			t.Fatalf("Profile with write dir %q does not parse: %v", tc.dir, err)
		}
		var found bool
		for _, r := range rules {
			action, ops, filters := r.rule()
			if action == "allow" && slices.Contains(ops, "default") {
				t.Errorf("write dir %q injected %v", tc.dir, r)
			}
			if action == "allow" && slices.Contains(ops, "file-write*") {
				for _, f := range filters {
					found = found || f.path() == tc.dir
				}
			}
		}
		if !found {
			t.Errorf("write dir %q does not read back as one string from the profile", tc.dir)
		}
	}
}

func TestProfileRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*ProfileOptions)
		want   string
	}{
		{"no workspace", func(o *ProfileOptions) { o.Workspace = "" }, `workspace "": path is empty`},
		{"no tmp dir", func(o *ProfileOptions) { o.TmpDir = "" }, `tmp dir "": path is empty`},
		{"relative workspace", func(o *ProfileOptions) { o.Workspace = "work" }, "not absolute"},
		{"relative read dir", func(o *ProfileOptions) { o.ReadDirs = []string{"./data"} }, `read dir "./data": path is not absolute`},
		{"relative python", func(o *ProfileOptions) { o.Python = "python3" }, "not absolute"},
		{"root read dir", func(o *ProfileOptions) { o.ReadDirs = []string{"/"} }, "whole file system"},
		{"root write dir", func(o *ProfileOptions) { o.WriteDirs = []string{"/tmp/.."} }, "whole file system"},
		{"root python dir", func(o *ProfileOptions) { o.PythonDirs = []string{"/"} }, "whole file system"},
		{"NUL", func(o *ProfileOptions) { o.WriteDirs = []string{"/Users/a\x00b"} }, "control character U+0000"},
		{"newline", func(o *ProfileOptions) { o.ReadDirs = []string{"/Users/a\n(allow default)"} }, "control character U+000A"},
		{"carriage return", func(o *ProfileOptions) { o.HomeDir = "/Users/a\rb" }, "control character U+000D"},
		{"tab", func(o *ProfileOptions) { o.TmpDir = "/tmp/a\tb" }, "control character U+0009"},
		{"DEL", func(o *ProfileOptions) { o.Workspace = "/w\x7f" }, "control character U+007F"},
		{"invalid UTF-8", func(o *ProfileOptions) { o.ReadDirs = []string{"/Users/\xff"} }, "not valid UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := baseOptions()
			tc.change(&o)
			got, err := Profile(o)
			if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Profile = %v, want an ErrInvalid mentioning %q", err, tc.want)
			}
			if got != "" {
				t.Errorf("Profile returned a profile with its error")
			}
		})
	}
	// Every problem is reported at once.
	_, err := Profile(ProfileOptions{Workspace: "rel", ReadDirs: []string{"/"}})
	for _, want := range []string{`workspace "rel"`, `tmp dir ""`, `read dir "/"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Profile with three problems = %v, want it to mention %s", err, want)
		}
	}
}

func TestProfileDeterministic(t *testing.T) {
	t.Parallel()
	o := baseOptions()
	o.ReadDirs = []string{"/b", "/a", "/b"}
	a, err := Profile(o)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if b, _ := Profile(o); a != b {
			t.Fatal("Profile is not deterministic")
		}
	}
	if strings.Count(a, `(subpath "/b")`) != 1 {
		t.Error("a repeated read dir appears twice")
	}
}

// lineDiff shows the first differing line of two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want %q\n  got  %q", i+1, wl, gl)
		}
	}
	return "(no difference)"
}

// sexp is a parsed SBPL form: a list, a string literal or a symbol.
type sexp struct {
	list   []sexp
	isList bool
	str    string
	isStr  bool
	sym    string
}

func (s sexp) String() string {
	switch {
	case s.isList:
		parts := make([]string, len(s.list))
		for i, e := range s.list {
			parts[i] = e.String()
		}
		return "(" + strings.Join(parts, " ") + ")"
	case s.isStr:
		return quote(s.str)
	default:
		return s.sym
	}
}

// rule splits (allow|deny op... filter...) into its parts; action is ""
// for other forms.
func (s sexp) rule() (action string, ops []string, filters []sexp) {
	if !s.isList || len(s.list) == 0 || (s.list[0].sym != "allow" && s.list[0].sym != "deny") {
		return "", nil, nil
	}
	for _, e := range s.list[1:] {
		if e.isList {
			filters = append(filters, e)
		} else {
			ops = append(ops, e.sym)
		}
	}
	return s.list[0].sym, ops, filters
}

// kind and path describe a filter such as (subpath "/x").
func (s sexp) kind() string {
	if s.isList && len(s.list) > 0 {
		return s.list[0].sym
	}
	return ""
}

func (s sexp) path() string {
	if s.isList && len(s.list) == 2 && s.list[1].isStr {
		return s.list[1].str
	}
	return ""
}

// parseSBPL parses the subset of SBPL that Profile emits: lists, symbols,
// string literals with backslash escapes, and ; comments. It is strict, so
// a quoting bug shows up as a parse error or as an extra form.
func parseSBPL(text string) ([]sexp, error) {
	p := &sbplParser{s: text}
	var forms []sexp
	for {
		p.skip()
		if p.i >= len(p.s) {
			return forms, nil
		}
		f, err := p.form()
		if err != nil {
			return nil, err
		}
		if !f.isList {
			return nil, fmt.Errorf("top-level %v is not a list", f)
		}
		forms = append(forms, f)
	}
}

type sbplParser struct {
	s string
	i int
}

func (p *sbplParser) skip() {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == ';':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		case c == ' ' || c == '\n' || c == '\t':
			p.i++
		default:
			return
		}
	}
}

func (p *sbplParser) form() (sexp, error) {
	p.skip()
	if p.i >= len(p.s) {
		return sexp{}, errors.New("unexpected end")
	}
	switch p.s[p.i] {
	case '(':
		p.i++
		l := sexp{isList: true}
		for {
			p.skip()
			if p.i >= len(p.s) {
				return sexp{}, errors.New("unclosed list")
			}
			if p.s[p.i] == ')' {
				p.i++
				return l, nil
			}
			e, err := p.form()
			if err != nil {
				return sexp{}, err
			}
			l.list = append(l.list, e)
		}
	case ')':
		return sexp{}, fmt.Errorf("unexpected ) at %d", p.i)
	case '"':
		p.i++
		var b strings.Builder
		for {
			if p.i >= len(p.s) {
				return sexp{}, errors.New("unterminated string")
			}
			c := p.s[p.i]
			p.i++
			switch c {
			case '"':
				return sexp{isStr: true, str: b.String()}, nil
			case '\\':
				if p.i >= len(p.s) || (p.s[p.i] != '\\' && p.s[p.i] != '"') {
					return sexp{}, fmt.Errorf("escape other than \\\\ or \\\" at %d", p.i)
				}
				b.WriteByte(p.s[p.i])
				p.i++
			case '\n':
				return sexp{}, errors.New("newline in string")
			default:
				b.WriteByte(c)
			}
		}
	default:
		start := p.i
		for p.i < len(p.s) && !strings.ContainsRune("() \n\t;\"", rune(p.s[p.i])) {
			p.i++
		}
		return sexp{sym: p.s[start:p.i]}, nil
	}
}
