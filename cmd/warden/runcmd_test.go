package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/runner"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// runScripts runs `warden run ARGS` in-process.
func runScripts(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	// These tests were written for Docker; TestCLIRunProvider covers the
	// default.
	e := env{environ: []string{"SANDBOX__IMAGE=" + testutil.Image(), "SANDBOX__PROVIDER=docker"}, stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code = run(t.Context(), append([]string{"run"}, args...), e)
	return code, out.String(), errb.String()
}

func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := script(t, dir, "a.py", "")
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no script"},
		{[]string{"--parallel", "2"}, "no script"},
		{[]string{a, "--framework", "smolagents"}, "autogen, crewai, langgraph, magentic, none, openai-agents"},
		{[]string{a, "--package", "x; rm -rf /"}, "--package"},
		{[]string{a, "--parallel", "0"}, "--parallel"},
		{[]string{a, "--timeout", "soon"}, "--timeout"},
		{[]string{a, "--timeout", "0"}, "--timeout"},
		{[]string{a, "--python-version", "3"}, "--python-version"},
		{[]string{a, "--output-limit", "lots"}, "--output-limit"},
		{[]string{a, "--env", "novalue"}, "K=V"},
		{[]string{a, "--wheels", dir}, "--wheels"},
	}
	for _, tt := range tests {
		code, _, stderr := runScripts(t, tt.args...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("warden run %q = exit %d, stderr %q; want 2 and %q", tt.args, code, stderr, tt.want)
		}
	}
}

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	n := fs.Int("n", 0, "")
	v := fs.Bool("v", false, "")
	pos, rest, err := parseInterleaved(fs, []string{"a.py", "-n", "3", "b.py", "-v", "c.py", "--", "-n", "x", "--"})
	if err != nil || *n != 3 || !*v || !slices.Equal(pos, []string{"a.py", "b.py", "c.py"}) || !slices.Equal(rest, []string{"-n", "x", "--"}) {
		t.Errorf("parseInterleaved = %q, %q, %v (n=%d v=%v)", pos, rest, err, *n, *v)
	}
	if got := scriptLabels([]string{"x/a.py", "y/a.py", "b.py", "z/a.py"}); !slices.Equal(got, []string{"a.py", "a.py#2", "b.py", "a.py#3"}) {
		t.Errorf("scriptLabels = %q", got)
	}
}

func TestPrefixer(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	p := &prefixer{stdout: &out, stderr: &errb}
	p.write("a.py", "stdout", []byte("one\ntw"))
	p.write("b.py", "stdout", []byte("x"))
	p.write("a.py", "stdout", []byte("o\nthree"))
	p.write("a.py", "stderr", []byte("err\n"))
	p.flush()
	if want := "[a.py] one\n[a.py] two\n[a.py] three\n[b.py] x\n"; out.String() != want {
		t.Errorf("stdout = %q, want %q", out.String(), want)
	}
	if want := "[a.py] err\n"; errb.String() != want {
		t.Errorf("stderr = %q, want %q", errb.String(), want)
	}
}

func TestRunOneScript(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	envFile := script(t, dir, "vars.env", "FROM_FILE=file value\nBOTH=file\n")
	s := script(t, dir, "task.py", `import os, sys
print("args", sys.argv[1:])
print("env", os.environ["FROM_FILE"], os.environ["BOTH"], os.environ["FLAG"])
print("to stderr", file=sys.stderr)
sys.exit(int(sys.argv[1]))
`)
	// Flags after the script, arguments after --.
	code, stdout, stderr := runScripts(t, s, "--log-dir", logs, "--env-file", envFile, "--env", "BOTH=flag", "--env", "FLAG=on", "--", "7", "a b")
	if code != 7 {
		t.Errorf("exit code %d, want the script's 7; stderr %q", code, stderr)
	}
	if want := "args ['7', 'a b']\nenv file value flag on\n"; stdout != want {
		t.Errorf("stdout = %q, want exactly the script's %q", stdout, want)
	}
	if !strings.Contains(stderr, "to stderr\n") || !strings.Contains(stderr, "task.py  failed  7") {
		t.Errorf("stderr = %q, want the script's stderr and the summary", stderr)
	}
	runs, _ := filepath.Glob(filepath.Join(logs, "run_task_*"))
	if len(runs) != 1 {
		t.Fatalf("run directories %v, want one", runs)
	}
	for _, f := range []string{runner.ConsoleLog, runner.StdoutLog, runner.StderrLog, runner.ResultFile} {
		if _, err := os.Stat(filepath.Join(runs[0], f)); err != nil {
			t.Error(err)
		}
	}
}

func TestRunManyScripts(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	a := script(t, dir, "a.py", "print('hello from a')\nprint('second line')\n")
	b := script(t, dir, "b.py", "import sys\nprint('b fails', file=sys.stderr)\nsys.exit(4)\n")
	c := script(t, dir, "c.py", "import time\nprint('c', end='')\ntime.sleep(30)\n")
	code, stdout, stderr := runScripts(t, "--parallel", "2", "--prefix", "--timeout", "2", "--log-dir", logs, a, b, c)
	if code != 4 {
		t.Errorf("exit code %d, want 4 (the first failing script's); stderr %q", code, stderr)
	}
	for _, want := range []string{"[a.py] hello from a\n", "[a.py] second line\n", "[c.py] c\n", "SCRIPT", "LOG DIR"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "[b.py] b fails\n") {
		t.Errorf("stderr = %q, want b's prefixed stderr", stderr)
	}
	for _, row := range [][]string{{"a.py", "ok", "0"}, {"b.py", "failed", "4"}, {"c.py", "timeout", "124"}} {
		found := false
		for line := range strings.Lines(stdout) {
			if f := strings.Fields(line); len(f) == 5 && slices.Equal(f[:3], row) && strings.Contains(f[4], "run_"+strings.TrimSuffix(row[0], ".py")+"_") {
				found = true
			}
		}
		if !found {
			t.Errorf("summary has no row %v:\n%s", row, stdout)
		}
	}

	// --json gives the result objects.
	code, stdout, _ = runScripts(t, "--json", "--log-dir", logs, a, a)
	if code != 0 {
		t.Errorf("--json: exit %d", code)
	}
	var n int
	for line := range strings.Lines(stdout) {
		var res runner.Result
		if err := json.Unmarshal([]byte(line), &res); err != nil || !res.Success || res.Stdout != "hello from a\nsecond line\n" {
			t.Errorf("--json line %q: %+v, %v", line, res, err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("--json printed %d results, want 2", n)
	}
}

// Without PyPI, asking for a framework image fails within seconds, naming
// the missing index.
func TestRunFrameworkWithoutIndex(t *testing.T) {
	testutil.RequireDocker(t)
	if testing.Short() {
		t.Skip("builds an image; skipped with -short")
	}
	t.Parallel()
	if c, err := net.DialTimeout("tcp", "pypi.org:443", 3*time.Second); err == nil {
		c.Close()
		t.Skip("pypi.org is reachable here")
	}
	dir := t.TempDir()
	s := script(t, dir, "a.py", "print(1)\n")
	start := time.Now()
	code, _, stderr := runScripts(t, "--framework", "langgraph", "--log-dir", filepath.Join(dir, "logs"), s)
	if code != 1 || !strings.Contains(stderr, "no package index reachable") || !strings.Contains(stderr, "--wheels DIR") {
		if strings.Contains(stderr, "Debian mirror") {
			t.Skipf("no Debian mirror for pip: %s", stderr)
		}
		t.Errorf("exit %d, stderr %q; want 1 and the missing index", code, stderr)
	}
	if el := time.Since(start); el > 2*time.Minute {
		t.Errorf("took %s", el)
	}
}

// TestRunPolicy: with the Python check on, a script that fails it is
// refused before any sandbox starts.
func TestRunPolicy(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	dir := t.TempDir()
	bad := script(t, dir, "bad.py", "import subprocess\nsubprocess.run(['id'])\n")
	var out, errb bytes.Buffer
	e := env{environ: []string{"SANDBOX__IMAGE=" + testutil.Image(), "SANDBOX__PYTHON_SAFETY=true"},
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	err := cmdRun(t.Context(), []string{"--log-dir", filepath.Join(dir, "logs"), bad}, e)
	if err == nil || !strings.Contains(err.Error(), "SECURITY VIOLATION: ") || !strings.Contains(err.Error(), "subprocess") {
		t.Fatalf("cmdRun = %v, want the Python check's refusal", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "logs")); err == nil {
		t.Error("a refused script left a run record: it should not have started")
	}
}
