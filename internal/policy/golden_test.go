package policy

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

var update = flag.Bool("update", false, "rewrite the decisions in testdata/*.golden")

// A golden file holds policy cases, one block each:
//
//	=== deny <name>
//	@ extra=bash,xargs ops=& argv
//	<input, one or more lines>
//	--> deny shell_command: Unsafe command: rm
//
// The header says what the case must decide (allow or deny): that is
// asserted even with -update, so a regression that lets a bypass through
// cannot be recorded as the new truth. The "-->" line is the recorded
// decision (rule and reason), compared exactly and rewritten by -update.
// The optional "@" line sets policy options. Lines before the first block
// are kept as they are.
type goldenCase struct {
	want    string // "allow" or "deny"
	name    string
	opts    map[string]string
	input   string
	got     string // the recorded decision
	line    int
	comment []string // lines before the header
}

func readGolden(t *testing.T, file string) (header []string, cases []*goldenCase) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var c *goldenCase
	var pending []string
	var input []string
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "=== "):
			want, name, _ := strings.Cut(strings.TrimPrefix(l, "=== "), " ")
			if want != "allow" && want != "deny" {
				t.Fatalf("%s:%d: header must start with allow or deny: %q", file, i+1, l)
			}
			c = &goldenCase{want: want, name: name, line: i + 1, opts: map[string]string{}, comment: pending}
			pending, input = nil, nil
		case c == nil && len(cases) == 0:
			header = append(header, l)
		case c == nil:
			pending = append(pending, l)
		case strings.HasPrefix(l, "--> "):
			c.input = strings.Join(input, "\n")
			c.got = strings.TrimPrefix(l, "--> ")
			cases = append(cases, c)
			c = nil
		case strings.HasPrefix(l, "@ ") && len(input) == 0 && len(c.opts) == 0:
			for _, kv := range strings.Fields(strings.TrimPrefix(l, "@ ")) {
				k, v, _ := strings.Cut(kv, "=")
				c.opts[k] = v
			}
		default:
			input = append(input, l)
		}
	}
	if c != nil {
		t.Fatalf("%s:%d: case %q has no --> line", file, c.line, c.name)
	}
	// Trailing blank lines between blocks belong to no case.
	for _, tc := range cases {
		for len(tc.comment) > 0 && tc.comment[0] == "" {
			tc.comment = tc.comment[1:]
		}
	}
	return header, cases
}

func writeGolden(t *testing.T, file string, header []string, cases []*goldenCase) {
	t.Helper()
	var b strings.Builder
	for _, l := range header {
		b.WriteString(l + "\n")
	}
	for _, c := range cases {
		b.WriteString("\n")
		for _, l := range c.comment {
			b.WriteString(l + "\n")
		}
		fmt.Fprintf(&b, "=== %s %s\n", c.want, c.name)
		if len(c.opts) > 0 {
			var kv []string
			for _, k := range []string{"bypass", "extra", "ops", "argv", "imports", "functions", "obfuscation", "trusted"} {
				if v, ok := c.opts[k]; ok {
					if v == "" && k != "imports" && k != "functions" {
						kv = append(kv, k)
					} else {
						kv = append(kv, k+"="+v)
					}
				}
			}
			b.WriteString("@ " + strings.Join(kv, " ") + "\n")
		}
		b.WriteString(c.input + "\n")
		b.WriteString("--> " + c.got + "\n")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// decision renders a check's result as a golden line, and checks the error
// contract on the way: every refusal is a *PolicyError with a rule and a
// reason that unwraps to sandbox.ErrDenied.
func decision(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return "allow"
	}
	if err := checkRefusal(err); err != nil {
		t.Error(err)
	}
	var pe *PolicyError
	errors.As(err, &pe)
	return "deny " + string(pe.Rule) + ": " + pe.Reason
}

// checkRefusal returns why err breaks the refusal contract, or nil.
func checkRefusal(err error) error {
	var pe *PolicyError
	if !errors.As(err, &pe) {
		return fmt.Errorf("refusal %v (%T) is not a *PolicyError", err, err)
	}
	if pe.Rule == "" || pe.Reason == "" {
		return fmt.Errorf("refusal %#v lacks a rule or a reason", pe)
	}
	if !errors.Is(err, sandbox.ErrDenied) {
		return fmt.Errorf("refusal %v does not unwrap to sandbox.ErrDenied", err)
	}
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

func shellPolicyFor(opts map[string]string) ShellPolicy {
	var p ShellPolicy
	if _, ok := opts["bypass"]; ok {
		p.Bypass = true
	}
	if v, ok := opts["extra"]; ok {
		p.ExtraCommands = splitList(v)
	}
	if v, ok := opts["ops"]; ok {
		p.ExtraOperators = splitList(v)
	}
	return p
}

func pythonPolicyFor(opts map[string]string) PythonPolicy {
	var p PythonPolicy
	if v, ok := opts["imports"]; ok {
		p.AuthorizedImports = splitList(v)
	}
	if v, ok := opts["functions"]; ok {
		p.AuthorizedFunctions = splitList(v)
	}
	p.CheckStringObfuscation = opts["obfuscation"] != "false"
	if _, ok := opts["trusted"]; ok {
		p.Trusted = true
	}
	return p
}

func runGolden(t *testing.T, file string, check func(c *goldenCase) error) {
	header, cases := readGolden(t, file)
	names := map[string]int{}
	for _, c := range cases {
		if prev, dup := names[c.name]; dup {
			t.Errorf("%s:%d: case name %q already used at line %d", file, c.line, c.name, prev)
		}
		names[c.name] = c.line
		got := decision(t, check(c))
		kind, _, _ := strings.Cut(got, " ")
		if kind != c.want {
			t.Errorf("%s:%d: %s\n%s\n  = %s, want %s", file, c.line, c.name, c.input, got, c.want)
		}
		if got != c.got {
			if *update {
				c.got = got
			} else {
				t.Errorf("%s:%d: %s\n%s\n  = %s\nwant %s", file, c.line, c.name, c.input, got, c.got)
			}
		}
	}
	if *update {
		writeGolden(t, file, header, cases)
	}
}

func TestShellGolden(t *testing.T) {
	runGolden(t, "testdata/shell.golden", func(c *goldenCase) error {
		p := shellPolicyFor(c.opts)
		if _, ok := c.opts["argv"]; ok {
			var argv []string
			if err := json.Unmarshal([]byte(c.input), &argv); err != nil {
				t.Fatalf("line %d: argv input is not a JSON array of strings: %v", c.line, err)
			}
			return p.CheckArgv(argv)
		}
		return p.Check(c.input)
	})
}

func TestPythonGolden(t *testing.T) {
	runGolden(t, "testdata/python.golden", func(c *goldenCase) error {
		return pythonPolicyFor(c.opts).Check(c.input)
	})
}
