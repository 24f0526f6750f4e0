package policy

import (
	"errors"
	"slices"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// TestShellAcceptance holds the acceptance cases with the rule each
// refusal must carry.
func TestShellAcceptance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policy   ShellPolicy
		command  string
		wantRule Rule // "" means allowed
	}{
		{name: "pipe to wc", command: `echo "hello world" | wc -w`},
		{name: "rm -rf /", command: "rm -rf /", wantRule: RuleShellCommand},
		{name: "python -c under the default list", command: "python -c 'import os'", wantRule: RuleShellCommand},
		{name: "redirect target", command: "echo hi > out.txt"},
		{name: "quoted pipe", command: "echo 'a|b'"},
		{name: "find -exec refused for -exec", command: `find . -exec rm {} \;`, wantRule: RuleShellDangerous},
		{name: "assignment prefix", command: "FOO=1 rm -rf /", wantRule: RuleShellCommand},
		{name: "if body", command: "if true; then rm -rf /; fi", wantRule: RuleShellCommand},
		{name: "time", command: "time rm x", wantRule: RuleShellCommand},
		{name: "substitution", command: "echo $(rm -rf /)", wantRule: RuleShellCommand},
		{name: "backticks", command: "ls `rm -rf /`", wantRule: RuleShellCommand},
		{name: "background", command: "ls & rm x", wantRule: RuleShellOperator},
		{name: "newline", command: "ls\nrm -rf /", wantRule: RuleShellCommand},
		{name: "find -delete", command: "find / -delete", wantRule: RuleShellDangerous},
		{name: "awk system", command: `awk 'BEGIN{system("id")}'`, wantRule: RuleShellDangerous},
		{name: "sed -i", command: "sed -i s/a/b/ f", wantRule: RuleShellDangerous},
		{name: "sed e", command: "sed 'e id'", wantRule: RuleShellDangerous},
		{name: "dynamic name", command: "$CMD -rf /", wantRule: RuleShellDynamic},
		{name: "quoted name resolves", command: `"r""m" -rf /`, wantRule: RuleShellCommand},
		{name: "parse error", command: "echo 'x", wantRule: RuleShellSyntax},
		{name: "bypass", policy: ShellPolicy{Bypass: true}, command: "rm -rf /"},
		{name: "extra *", policy: ShellPolicy{ExtraCommands: []string{"*"}}, command: "rm -rf /"},
		{name: "extra command", policy: ShellPolicy{ExtraCommands: []string{"rm"}}, command: "rm x"},
		{name: "extra operator", policy: ShellPolicy{ExtraOperators: []string{"&"}}, command: "ls & pwd"},
		{name: "bash -c reparsed", policy: ShellPolicy{ExtraCommands: []string{"bash"}}, command: "bash -c 'rm x'", wantRule: RuleShellCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Check(tt.command)
			if tt.wantRule == "" {
				if err != nil {
					t.Fatalf("Check(%q) = %v, want nil", tt.command, err)
				}
				return
			}
			if perr := checkRefusal(err); err == nil || perr != nil {
				t.Fatalf("Check(%q) = %v, want a refusal by %s (%v)", tt.command, err, tt.wantRule, perr)
			}
			var pe *PolicyError
			errors.As(err, &pe)
			if pe.Rule != tt.wantRule {
				t.Errorf("Check(%q) rule = %s (%s), want %s", tt.command, pe.Rule, pe.Reason, tt.wantRule)
			}
		})
	}
}

func TestPolicyError(t *testing.T) {
	t.Parallel()
	err := ShellPolicy{}.Check("rm -rf /")
	if got, want := err.Error(), "Command rejected for security reasons: Unsafe command: rm"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, sandbox.ErrDenied) {
		t.Errorf("errors.Is(%v, sandbox.ErrDenied) = false, want true", err)
	}
	if errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("errors.Is(%v, sandbox.ErrInvalid) = true, want false", err)
	}
	perr := PythonPolicy{}.Check("import os")
	if got, want := perr.Error(), "SECURITY VIOLATION: Importing module(s) os is not allowed."; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	// A nil result is an untyped nil, not a nil *PolicyError.
	if err := (ShellPolicy{}).Check("ls"); err != nil {
		t.Errorf("Check(ls) = %#v, want nil", err)
	}
	if err := (ShellPolicy{}).CheckArgv([]string{"ls"}); err != nil {
		t.Errorf("CheckArgv(ls) = %#v, want nil", err)
	}
	if err := (PythonPolicy{}).Check("print(1)"); err != nil {
		t.Errorf("Check(print) = %#v, want nil", err)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	want := []string{"ls", "cat", "grep", "find", "echo", "pwd", "whoami", "date", "head", "tail",
		"wc", "sort", "uniq", "tr", "cut", "sed", "awk", "ps", "df", "du", "uname", "which", "type",
		"file", "stat", "rg", "if", "tree"}
	if got := DefaultSafeCommands(); !slices.Equal(got, want) {
		t.Errorf("DefaultSafeCommands() = %v, want %v", got, want)
	}
	DefaultSafeCommands()[0] = "rm" // a copy: the defaults cannot be changed
	if got := DefaultSafeCommands()[0]; got != "ls" {
		t.Errorf("DefaultSafeCommands()[0] = %q after changing a returned slice, want ls", got)
	}
	if got, want := DefaultControlOperators(), []string{"&&", "||", ";", "|"}; !slices.Equal(got, want) {
		t.Errorf("DefaultControlOperators() = %v, want %v", got, want)
	}
	if got := DangerousModules(); len(got) != 17 || !slices.Contains(got, "webbrowser") {
		t.Errorf("DangerousModules() = %v, want TinyAgent's 17", got)
	}
	if got, want := DangerousFunctions(), []string{"exec", "eval", "compile", "__import__", "open", "input", "breakpoint"}; !slices.Equal(got, want) {
		t.Errorf("DangerousFunctions() = %v, want %v", got, want)
	}
}

func TestDefaultPolicies(t *testing.T) {
	t.Parallel()
	for iso, wantBypass := range map[sandbox.Isolation]bool{
		sandbox.IsolationNone:      false,
		sandbox.IsolationNamespace: true,
		sandbox.IsolationContainer: true,
		sandbox.IsolationSeatbelt:  true,
		"unknown":                  false,
	} {
		if got := DefaultShellPolicy(iso); got.Bypass != wantBypass {
			t.Errorf("DefaultShellPolicy(%q).Bypass = %v, want %v", iso, got.Bypass, wantBypass)
		}
	}
	if err := DefaultShellPolicy(sandbox.IsolationNone).Check("rm -rf /"); err == nil {
		t.Error("DefaultShellPolicy(none).Check(rm -rf /) = nil, want a refusal")
	}
	if p := DefaultPythonPolicy(); !p.CheckStringObfuscation || p.Trusted || p.AuthorizedImports != nil {
		t.Errorf("DefaultPythonPolicy() = %+v, want obfuscation checks on, no allow-list, untrusted", p)
	}
}

func TestCheckEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env      map[string]string
		wantDeny bool
	}{
		{env: nil},
		{env: map[string]string{"LANG": "C", "TZ": "UTC"}},
		{env: map[string]string{"PATH": "/tmp"}, wantDeny: true},
		{env: map[string]string{"LD_PRELOAD": "/tmp/x.so"}, wantDeny: true},
		{env: map[string]string{"BASH_ENV": "/tmp/x"}, wantDeny: true},
		{env: map[string]string{"BASH_FUNC_ls%%": "() { rm -rf /; }"}, wantDeny: true},
	}
	for _, tt := range tests {
		err := ShellPolicy{}.CheckEnv(tt.env)
		if (err != nil) != tt.wantDeny {
			t.Errorf("CheckEnv(%v) = %v, want refusal %v", tt.env, err, tt.wantDeny)
		}
		if err != nil {
			if perr := checkRefusal(err); perr != nil {
				t.Error(perr)
			}
		}
	}
	if err := (ShellPolicy{Bypass: true}).CheckEnv(map[string]string{"PATH": "/tmp"}); err != nil {
		t.Errorf("CheckEnv with Bypass = %v, want nil", err)
	}
}

// fuzzPolicies are the shell policies the fuzz target cycles through, so
// that wrappers and shells are reached too.
var fuzzPolicies = []ShellPolicy{
	{},
	{ExtraCommands: []string{"bash", "sh", "xargs", "env", "eval", "watch", "timeout", "nice", "command", "builtin", "exec", "sudo", "busybox", "gawk", "read", "printf", "[", "declare", "let"}},
	{ExtraOperators: []string{"*"}},
}

func FuzzCheckShell(f *testing.F) {
	for _, s := range []string{
		"ls -la", "echo $(rm -rf /)", "find . -name '*.go' -delete", "awk '{print $1}'",
		"sed -n '1,5p;s/a/b/w out' f", "bash -c 'ls | wc'", "x=1; echo $((x + 1))",
		"for ((i=0;i<3;i++)); do echo ${a[i]}; done", "cat <<EOF\n$(id)\nEOF", "f() { ls; }; f",
		"xargs -I{} sh -c 'echo {}'", "sort -o out", "echo ${x@P} ${!y}",
	} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, command string, variant uint8) {
		p := fuzzPolicies[int(variant)%len(fuzzPolicies)]
		if err := p.Check(command); err != nil {
			if perr := checkRefusal(err); perr != nil {
				t.Fatalf("Check(%q): %v", command, perr)
			}
		}
		if err := p.CheckArgv([]string{"bash", "-c", command}); err != nil {
			if perr := checkRefusal(err); perr != nil {
				t.Fatalf("CheckArgv(bash -c %q): %v", command, perr)
			}
		}
	})
}

func BenchmarkCheckShell(b *testing.B) {
	cases := map[string]string{
		"simple":   "ls -la",
		"pipeline": `grep -rn "TODO" src | sort | uniq -c | sort -rn | head -20`,
		"script":   `for f in *.txt; do wc -l "$f"; done && find . -name '*.go' -type f | head; sed -n '1,5p' notes.txt; awk -F: '{print $1}' /etc/passwd`,
	}
	for name, command := range cases {
		b.Run(name, func(b *testing.B) {
			p := ShellPolicy{}
			for b.Loop() {
				if err := p.Check(command); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
