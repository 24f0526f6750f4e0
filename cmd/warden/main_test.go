package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	environ := []string{"SANDBOX__IMAGE=" + testutil.Image()}
	code = run(t.Context(), args, env{environ: environ, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb})
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"nope"}, {"exec"}, {"exec", "--env", "novalue", "--python", "1"}, {"image"}} {
		if code, _, stderr := runCLI(t, "", args...); code != 2 || stderr == "" {
			t.Errorf("warden %v = exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
	if code, _, stderr := runCLI(t, "", "exec", "--memory", "5", "--cpus", "-1", "--python", "1"); code != 2 ||
		!strings.Contains(stderr, `--memory "5"`) || !strings.Contains(stderr, `--cpus "-1"`) {
		t.Errorf("bad flags: exit %d, stderr %q; want both named", code, stderr)
	}
}

func TestExec(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	cases := []struct {
		name     string
		stdin    string
		args     []string
		code     int
		stdout   string
		inStderr string
	}{
		{"session", "", []string{"--python", "x = 42", "--python", "print(x)", "--python", "x + 1"}, 0, "42\n43\n", ""},
		{"stdin", "print('from stdin')", []string{"--python", "-"}, 0, "from stdin\n", ""},
		{"exception", "", []string{"--python", "raise ValueError('bad')"}, 1, "", "ValueError: bad"},
		{"sys.exit", "", []string{"--python", "import sys; sys.exit(5)"}, 5, "", ""},
		{"shell", "", []string{"--shell", "echo 'a|b' | cut -d'|' -f2; exit 3"}, 3, "b\n", ""},
		{"argv", "", []string{"--", "printf", "%s", "$HOME"}, 0, "$HOME", ""},
		{"env", "", []string{"--env", "GREETING=hi there", "--shell", `echo "$GREETING"`}, 0, "hi there\n", ""},
		{"timeout", "", []string{"--timeout", "1", "--python", "import time; time.sleep(30)"}, 124, "", "timed out after 1 seconds"},
		{"stops at first failure", "", []string{"--shell", "exit 2", "--shell", "echo never"}, 2, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, c.stdin, append([]string{"exec"}, c.args...)...)
			if code != c.code || stdout != c.stdout || !strings.Contains(stderr, c.inStderr) {
				t.Errorf("warden exec %q = exit %d, stdout %q, stderr %q; want %d, %q, containing %q",
					c.args, code, stdout, stderr, c.code, c.stdout, c.inStderr)
			}
		})
	}
}

// TestExecStartError: a sandbox that cannot start is reported as such,
// with one cell (a one-shot run) as with several (a session).
func TestExecStartError(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	for _, cells := range [][]string{{"--python", "1"}, {"--python", "1", "--python", "2"}} {
		code, stdout, stderr := runCLI(t, "", append([]string{"exec", "--image", "warden-no-such-image:latest"}, cells...)...)
		if code != 1 || stdout != "" || !strings.Contains(stderr, `image "warden-no-such-image:latest" is not on the Docker engine`) ||
			strings.Contains(stderr, "cell 1") {
			t.Errorf("warden exec %q with a missing image = exit %d, stdout %q, stderr %q", cells, code, stdout, stderr)
		}
	}
}

func TestExecJSON(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	code, stdout, _ := runCLI(t, "", "exec", "--json", "--python", "y = 2", "--python", "1/0")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 1 || len(lines) != 2 {
		t.Fatalf("exit %d, %d lines: %s", code, len(lines), stdout)
	}
	var r struct {
		Cell           int     `json:"cell"`
		SandboxID      string  `json:"sandbox_id"`
		ExitCode       int     `json:"exit_code"`
		ErrorTraceback *string `json:"error_traceback"`
		Error          struct {
			Name      string `json:"name"`
			Line      int    `json:"line"`
			Traceback string `json:"traceback"`
		} `json:"error"`
		DurationMS float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &r); err != nil {
		t.Fatal(err)
	}
	if r.Cell != 2 || r.SandboxID == "" || r.ExitCode != 1 || r.Error.Name != "ZeroDivisionError" || r.Error.Line != 1 ||
		!strings.Contains(r.Error.Traceback, "division by zero") || r.ErrorTraceback != nil || r.DurationMS <= 0 {
		t.Errorf("json result = %+v", r)
	}
}

func TestDoctor(t *testing.T) {
	testutil.RequireDocker(t)
	testutil.RequireBwrap(t)
	t.Parallel()
	code, stdout, stderr := runCLI(t, "", "doctor", "--json")
	var rep doctorReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s%s", err, stdout, stderr)
	}
	// This machine has bubblewrap and Docker: auto takes bubblewrap, and
	// docker is listed as available with its probe.
	if rep.Selected != "bubblewrap" || strings.Join(rep.Available, ",") != "bubblewrap,docker,forkserver" ||
		rep.Docker == nil || rep.Docker.APIVersion == "" || !rep.ImagePresent || rep.Policy == "" || len(rep.Providers) != 5 {
		t.Errorf("doctor = %+v", rep)
	}
	if code != 0 {
		t.Errorf("doctor exit %d with usable providers", code)
	}
	// Text form, and the reasoning when docker is asked for without
	// fallback and cannot be reached.
	code, stdout, _ = runCLI(t, "", "doctor", "--provider", "seatbelt")
	if code != 0 || !strings.Contains(stdout, "✗ seatbelt") || !strings.Contains(stdout, "✓ bubblewrap") || !strings.Contains(stdout, "Selected: bubblewrap") {
		t.Errorf("doctor --provider seatbelt = exit %d:\n%s", code, stdout)
	}
}

// TestExecPolicy switches the checks on: a refused command exits 1 with
// TinyAgent's wording and never runs, not even the harmless part before
// the refused command.
func TestExecPolicy(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	ws := testutil.SharedDir(t) // the sandbox user must reach and write it
	if err := os.Chmod(ws, 0o777); err != nil {
		t.Fatal(err)
	}
	environ := []string{"SANDBOX__IMAGE=" + testutil.Image(), "SANDBOX__BYPASS_SHELL_SAFETY=false", "SANDBOX__PYTHON_SAFETY=true"}
	for _, c := range []struct {
		args     []string
		inStderr string
		inStdout string
	}{
		{[]string{"--shell", "echo hi > made; FOO=1 rm -rf /"}, "Command rejected for security reasons: ", ""},
		{[]string{"--", "rm", "-rf", "/"}, "Command rejected for security reasons: ", ""},
		{[]string{"--python", "open('made', 'w').write('x')"}, "SECURITY VIOLATION: ", ""},
		{[]string{"--json", "--python", "import subprocess"}, "", `"exit_code":1`},
	} {
		var out, errb bytes.Buffer
		code := run(t.Context(), append([]string{"exec", "--workspace", ws}, c.args...),
			env{environ: environ, stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
		if code != 1 || !strings.Contains(errb.String(), c.inStderr) || !strings.Contains(out.String(), c.inStdout) {
			t.Errorf("warden exec %q = exit %d, stdout %q, stderr %q; want 1 and the refusal", c.args, code, out.String(), errb.String())
		}
	}
	if _, err := os.Stat(filepath.Join(ws, "made")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused command ran: %v", err)
	}
	// Allowed commands still run.
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"exec", "--workspace", ws, "--shell", "echo 'a;b' | wc -c"},
		env{environ: environ, stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
	if code != 0 || strings.TrimSpace(out.String()) != "4" {
		t.Errorf("allowed command = exit %d, %q, %q", code, out.String(), errb.String())
	}
}

// TestMain lets the test binary serve as the bubblewrap sandboxes' shim
// (Landlock and rlimits), as the warden binary does.
func TestMain(m *testing.M) {
	bwrap.Init()
	code := m.Run()
	if cliBinDir != "" {
		_ = os.RemoveAll(cliBinDir)
	}
	os.Exit(code)
}

// TestExecOutputDir: figures and rich reprs of a cell are written as
// files, in order, and the command says where; a display() without an
// image prints its text form.
func TestExecOutputDir(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := runCLI(t, "", "exec", "--provider", "docker", "--output-dir", dir, "--python",
		"import matplotlib.pyplot as plt\nimport pandas as pd\nprint('before')\nplt.plot([1, 2]); plt.show()\n"+
			"display(pd.DataFrame({'a': [7]}))\nprint('after')")
	if code != 0 || stdout != "before\n   a\n0  7\nafter\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	png, err := os.ReadFile(filepath.Join(dir, "cell1-output1.png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("figure file: %v (%d bytes)", err, len(png))
	}
	html, err := os.ReadFile(filepath.Join(dir, "cell1-output2.html"))
	if err != nil || !strings.Contains(string(html), "<table") {
		t.Fatalf("table file: %v %q", err, html)
	}
	if !strings.Contains(stderr, "saved to "+filepath.Join(dir, "cell1-output1.png")) {
		t.Errorf("stderr %q does not say where the figure went", stderr)
	}
	// Without --output-dir the figure is announced, not lost silently.
	code, _, stderr = runCLI(t, "", "exec", "--provider", "docker", "--python", "import matplotlib.pyplot as plt\nplt.plot([1]); plt.show()")
	if code != 0 || !strings.Contains(stderr, "give --output-dir") {
		t.Errorf("without --output-dir: exit %d, stderr %q", code, stderr)
	}
}
