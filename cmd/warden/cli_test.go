package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/testutil"
)

// The tests in this file run the warden binary as a user does, and check
// its exit code, stdout and stderr.

var (
	cliBinOnce sync.Once
	cliBin     string
	cliBinErr  error
	cliBinDir  string
)

// wardenBinary builds warden once for the tests of this file.
func wardenBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	cliBinOnce.Do(func() {
		cliBinDir, cliBinErr = os.MkdirTemp("", "warden-cli-test-")
		if cliBinErr != nil {
			return
		}
		cliBin = cliBinDir + "/warden"
		// warden-init beside it, as the scripts and go install leave them.
		out, err := exec.Command("go", "build", "-o", cliBinDir+"/", ".", "../warden-init").CombinedOutput()
		if err != nil {
			cliBinErr = errors.New(string(out))
		}
	})
	if cliBinErr != nil {
		t.Fatalf("go build: %v", cliBinErr)
	}
	return cliBin
}

// wardenCmd runs the binary with args and extra environment variables, in
// dir when it is not "".
func wardenCmd(t *testing.T, dir string, environ []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), wardenBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SANDBOX__IMAGE="+testutil.Image())
	cmd.Env = append(cmd.Env, environ...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if _, ok := errors.AsType[*exec.ExitError](err); err != nil && !ok {
		t.Fatalf("warden %q: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestCLIHelp: help goes to stdout with exit 0 and shows the command's
// synopsis, description and flags with their defaults, whichever way it
// is asked for.
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"Commands:", "  exec ", "  image ", "warden help COMMAND"}},
		{[]string{"--help"}, []string{"Commands:"}},
		{[]string{"help", "exec"}, []string{"warden exec [flags] --python CODE", "Creates one sandbox", "--memory SIZE", "default 512m", "--write-dir DIR"}},
		{[]string{"exec", "--help"}, []string{"warden exec [flags] --python CODE", "--memory SIZE"}},
		{[]string{"exec", "-h"}, []string{"warden exec [flags] --python CODE"}},
		{[]string{"image", "--help"}, []string{"warden image build [flags]", "--rebuild-base", "--strategy STRING"}},
		{[]string{"help", "image"}, []string{"warden image build [flags]"}},
		{[]string{"image", "build", "--help"}, []string{"warden image build [flags]"}},
		{[]string{"help", "run"}, []string{"warden run [flags] SCRIPT...", "--parallel N", "(default 30m)"}},
		{[]string{"help", "prune"}, []string{"warden prune"}},
		{[]string{"serve", "--help"}, []string{"warden serve [flags]", "--port PORT", "default 8000"}},
	}
	for _, c := range cases {
		code, stdout, stderr := wardenCmd(t, "", nil, c.args...)
		if code != 0 || stderr != "" {
			t.Errorf("warden %q = exit %d, stderr %q; want 0 and nothing", c.args, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("warden %q: stdout lacks %q:\n%s", c.args, w, stdout)
			}
		}
		if strings.Contains(stdout, "Usage of ") {
			t.Errorf("warden %q prints Go's bare usage:\n%s", c.args, stdout)
		}
	}
}

// TestCLIUsageErrors: a mistake in the command line gets one line in the
// user's terms (with the nearest command or flag when there is one), a
// pointer to the help, exit 2, and nothing runs.
func TestCLIUsageErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"exce"}, `warden: unknown command "exce"; did you mean "exec"?`},
		{[]string{"help", "exce"}, `did you mean "exec"?`},
		{[]string{"exec", "--pyton", "1"}, "warden exec: unknown flag --pyton; did you mean --python?"},
		{[]string{"exec", "--memory", "1m", "--python", "1"}, `warden exec: --memory "1m": must be at least 6m`},
		{[]string{"exec", "--cpus", "lots", "--python", "1"}, `warden exec: --cpus "lots": `},
		{[]string{"exec", "--python"}, "warden exec: --python needs a value"},
		{[]string{"exec", "--python", "print(1)", "oops"}, `unexpected argument "oops"; put a program to run after --`},
		{[]string{"exec", "--server", "http://127.0.0.1:1", "--provider", "docker", "--python", "1"}, "--provider cannot be used with --server"},
		{[]string{"exec", "--env", "novalue", "--python", "1"}, `--env "novalue" is not K=V`},
		{[]string{"prune", "extra"}, `warden prune: unexpected argument "extra"`},
		{[]string{"image", "build", "extra"}, `warden image: unexpected argument "extra"`},
		{[]string{"image", "biuld"}, `unknown subcommand "biuld"; did you mean "build"?`},
		{[]string{"image"}, "want warden image build"},
		{[]string{"doctor", "now"}, `unexpected argument "now"`},
		{[]string{"run", "a.py", "--paralel", "2"}, "did you mean --parallel?"},
	}
	for _, c := range cases {
		code, stdout, stderr := wardenCmd(t, "", nil, c.args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) {
			t.Errorf("warden %q = exit %d, stdout %q, stderr %q; want 2, nothing, and %q", c.args, code, stdout, stderr, c.want)
		}
		if strings.Contains(stderr, "SANDBOX__") || strings.Contains(stderr, ": usage") ||
			strings.Contains(stderr, ": invalid argument") || strings.Contains(stderr, "Usage of") {
			t.Errorf("warden %q: stderr speaks Warden's internals: %q", c.args, stderr)
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n != 1 {
			t.Errorf("warden %q: stderr has %d lines, want the message and the pointer to help:\n%s", c.args, n+1, stderr)
		}
	}
}

// TestCLIMissingImage: a missing image is explained with what to run
// and the setting to change, not an API field or an error class.
func TestCLIMissingImage(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	code, stdout, stderr := wardenCmd(t, "", nil, "exec", "--provider", "docker", "--image", "warden-test-nope:latest", "--python", "1")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "warden image build") ||
		!strings.Contains(stderr, "SANDBOX__AUTO_PULL_IMAGE") || strings.Contains(stderr, "invalid argument") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestCLIInterrupt: Ctrl-C during an execution removes the sandbox and
// exits 130, as a shell reports a command ended by SIGINT.
func TestCLIInterrupt(t *testing.T) {
	testutil.RequireBwrap(t)
	t.Parallel()
	cmd := exec.CommandContext(t.Context(), wardenBinary(t), "exec", "--provider", "bubblewrap",
		"--python", "import time\nprint('ready', flush=True)\ntime.sleep(60)")
	cmd.Env = append(os.Environ(), "SANDBOX__PROVIDER_FALLBACK=false", "SANDBOX__BWRAP_ROOT=host",
		"SANDBOX__WORKSPACE_ROOT="+testutil.SharedDir(t))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("no ready line; stderr %q", errb.String())
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 || time.Since(start) > 20*time.Second {
		t.Errorf("after SIGINT: exit %d after %v, stderr %q; want 130 promptly", code, time.Since(start), errb.String())
	}
}

// TestCLIExecProbesOnlyWhatItNeeds: with bubblewrap chosen, exec does
// not contact Docker (here a daemon address that accepts connections and
// never answers, where each contact costs a connection timeout); doctor
// still looks at everything.
func TestCLIExecProbesOnlyWhatItNeeds(t *testing.T) {
	testutil.RequireBwrap(t)
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var contacts atomic.Int32
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			contacts.Add(1)
			held = append(held, c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	environ := []string{"DOCKER_HOST=tcp://" + ln.Addr().String(), "SANDBOX__DOCKER_CONNECTION_TIMEOUT=2s",
		"SANDBOX__BWRAP_ROOT=host", "SANDBOX__WORKSPACE_ROOT=" + testutil.SharedDir(t)}
	code, stdout, stderr := wardenCmd(t, "", environ, "exec", "--python", "print(1)")
	if code != 0 || stdout != "1\n" || contacts.Load() != 0 {
		t.Errorf("exec = exit %d, stdout %q, stderr %q, %d contacts with Docker; want 0, 1, no contact", code, stdout, stderr, contacts.Load())
	}
	code, stdout, _ = wardenCmd(t, "", environ, "doctor")
	if code != 0 || !strings.Contains(stdout, "✓ bubblewrap") || contacts.Load() == 0 {
		t.Errorf("doctor = exit %d, %d contacts with Docker; want 0 and a probe of Docker:\n%s", code, contacts.Load(), stdout)
	}
}

// TestCLINoSilentSubstitute: an image asked for is run or refused, never
// replaced by another root filesystem; a provider asked for that cannot
// run is named when another takes its place; exec and run choose alike,
// and run's record says which ran.
func TestCLINoSilentSubstitute(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireDocker(t)
	t.Parallel()
	root := testutil.SharedDir(t)
	environ := []string{"SANDBOX__WORKSPACE_ROOT=" + root}
	code, stdout, stderr := wardenCmd(t, "", environ, "exec", "--image", "warden-test-nope:latest", "--python", "print(1)")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "warden-test-nope:latest") {
		t.Errorf("exec --image missing = exit %d, stdout %q, stderr %q; want 1 and the image named", code, stdout, stderr)
	}
	code, stdout, stderr = wardenCmd(t, "", append(environ, "SANDBOX__PROVIDER_FALLBACK=false"),
		"exec", "--provider", "bubblewrap", "--image", "warden-test-nope:latest", "--python", "print(1)")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "cannot run image warden-test-nope:latest") ||
		!strings.Contains(stderr, "SANDBOX__BWRAP_ROOT=host") {
		t.Errorf("exec --provider bubblewrap --image missing = exit %d, stdout %q, stderr %q; want 1 and why", code, stdout, stderr)
	}
	// The default image asked for by name is no exception: with Docker out
	// of reach, bubblewrap refuses it rather than run on the host's /usr
	// (only an image nobody named may fall back, as documented).
	code, stdout, stderr = wardenCmd(t, "", append(environ, "SANDBOX__PROVIDER_FALLBACK=false", "DOCKER_HOST=unix:///nonexistent.sock"),
		"exec", "--provider", "bubblewrap", "--image", "warden-runtime:latest", "--python", "print(1)")
	if code != 1 || stdout != "" || !strings.Contains(stderr, "cannot run image warden-runtime:latest") {
		t.Errorf("exec --image warden-runtime:latest, Docker unreachable = exit %d, stdout %q, stderr %q; want 1 and why", code, stdout, stderr)
	}
	code, stdout, stderr = wardenCmd(t, "", append(environ, "SANDBOX__BWRAP_ROOT=/nonexistent-rootfs"),
		"exec", "--provider", "bubblewrap", "--python", "print(1)")
	if code != 0 || stdout != "1\n" || !strings.Contains(stderr, "warning: bubblewrap cannot run here") || !strings.Contains(stderr, "using docker instead") {
		t.Errorf("exec --provider bubblewrap, bubblewrap broken = exit %d, stdout %q, stderr %q; want the fallback said", code, stdout, stderr)
	}

	// warden run takes the same default as exec and records it.
	dir := testutil.SharedDir(t)
	if err := os.WriteFile(dir+"/task.py", []byte("print('ran')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = wardenCmd(t, dir, environ, "run", "--json", "task.py")
	var res struct {
		Provider string `json:"provider"`
		Stdout   string `json:"stdout"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); code != 0 || err != nil || res.Provider != "bubblewrap" || res.Stdout != "ran\n" {
		t.Errorf("run = exit %d, %+v (%v), stderr %q; want bubblewrap recorded", code, res, err, stderr)
	}
	runs, _ := filepath.Glob(filepath.Join(dir, "logs", "run_task_*", "result.json"))
	if len(runs) != 1 {
		t.Fatalf("result files %v, want one", runs)
	}
	if b, err := os.ReadFile(runs[0]); err != nil || !strings.Contains(string(b), `"provider": "bubblewrap"`) {
		t.Errorf("result.json = %s, %v; want the provider", b, err)
	}
}

// TestCLISmaller: prune for bubblewrap alone, a missing script, and
// exec --json as a reader wants it.
func TestCLISmaller(t *testing.T) {
	testutil.RequireBwrap(t)
	t.Parallel()
	root := testutil.SharedDir(t)
	code, stdout, stderr := wardenCmd(t, "", []string{"SANDBOX__PROVIDER=bubblewrap", "SANDBOX__WORKSPACE_ROOT=" + root}, "prune")
	if code != 0 || !strings.Contains(stdout, "orphaned bubblewrap sandboxes") || strings.Contains(stdout, "container") || stderr != "" {
		t.Errorf("prune on bubblewrap = exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, stdout, stderr = wardenCmd(t, t.TempDir(), nil, "run", "nope.py")
	if code != 2 || stdout != "" || !strings.Contains(stderr, "script nope.py: not found") || strings.Contains(stderr, "-1") {
		t.Errorf("run nope.py = exit %d, stdout %q, stderr %q; want 2 and one message", code, stdout, stderr)
	}

	code, stdout, stderr = wardenCmd(t, "", []string{"SANDBOX__WORKSPACE_ROOT=" + root, "SANDBOX__BWRAP_ROOT=host"},
		"exec", "--provider", "bubblewrap", "--json", "--python", "print('<a>'); 1/0")
	if code != 1 || !strings.Contains(stdout, `"stdout":"<a>\n"`) || strings.Contains(stdout, `\u003c`) ||
		strings.Contains(stdout, "error_traceback") || strings.Count(stdout, "ZeroDivisionError: division by zero") != 2 {
		t.Errorf("exec --json = exit %d, stdout %s, stderr %q; want <> as is, the traceback in stderr and error only", code, stdout, stderr)
	}
}

// TestCLIImageBuildProgress: a build shows one line per phase, the
// tools' output goes to a log file, and a failure shows the log's tail
// and where the log is; --quiet shows no phases.
func TestCLIImageBuildProgress(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	if _, err := net.LookupHost("registry-1.docker.io"); err == nil {
		t.Skip("a registry is reachable here: the pull would succeed and the build take minutes")
	}
	logPath := filepath.Join(t.TempDir(), "build.log")
	args := []string{"image", "build", "--name", "warden-test-never:latest", "--strategy", "official", "--log-file", logPath}
	code, stdout, stderr := wardenCmd(t, "", nil, args...)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "[0:00] pulling python:") ||
		!strings.Contains(stderr, "full build log: "+logPath) || strings.Contains(stderr, "\x1b[") {
		t.Errorf("image build = exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if b, err := os.ReadFile(logPath); err != nil || !strings.Contains(string(b), "==> pulling python:") {
		t.Errorf("build log: %v\n%s", err, b)
	}
	code, _, stderr = wardenCmd(t, "", nil, append(args, "--quiet")...)
	if code != 1 || strings.Contains(stderr, "[0:00]") || !strings.Contains(stderr, "full build log:") {
		t.Errorf("image build --quiet = exit %d, stderr %q", code, stderr)
	}
}

// TestBuildProgress renders phases and keeps the tail of the rest.
func TestBuildProgress(t *testing.T) {
	t.Parallel()
	var shown, failure bytes.Buffer
	logPath := filepath.Join(t.TempDir(), "log")
	p, err := newBuildProgress(&shown, logPath)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(p, "==> bootstrapping Debian...\nGet:1 http://deb \x1b[1mbold\x1b[0m\n")
	fmt.Fprint(p, "==> installing\npartial ")
	fmt.Fprint(p, "line\n")
	p.finish(errors.New("failed"), &failure, true)
	if want := "[0:00] bootstrapping Debian\n[0:00] installing\n"; shown.String() != want {
		t.Errorf("shown = %q, want %q", shown.String(), want)
	}
	if want := "last lines of the build log:\n  Get:1 http://deb bold\n  partial line\nfull build log: " + logPath + "\n"; failure.String() != want {
		t.Errorf("failure = %q, want %q", failure.String(), want)
	}
	if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "\x1b[1mbold") {
		t.Errorf("log = %q, want everything as written", b)
	}
}

// TestCLIRunParallelProgress: several scripts without --prefix say on
// stderr when each starts and how it ended, before the summary.
func TestCLIRunParallelProgress(t *testing.T) {
	testutil.RequireBwrap(t)
	t.Parallel()
	dir := testutil.SharedDir(t)
	for name, body := range map[string]string{"a.py": "print('a')\n", "b.py": "import sys; sys.exit(3)\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	environ := []string{"SANDBOX__WORKSPACE_ROOT=" + testutil.SharedDir(t), "SANDBOX__BWRAP_ROOT=host"}
	code, stdout, stderr := wardenCmd(t, dir, environ, "run", "--parallel", "2", "a.py", "b.py")
	for _, want := range []string{"warden run: a.py: started\n", "warden run: b.py: started\n",
		"warden run: a.py: ok, exit 0, ", "warden run: b.py: failed, exit 3, "} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if code != 3 || !strings.Contains(stdout, "SCRIPT") {
		t.Errorf("exit %d, stdout %q; want 3 and the summary", code, stdout)
	}
}

// TestCLILogFormatAuto: LOG__FORMAT=auto logs JSON when stderr is not a
// terminal, as documented.
func TestCLILogFormatAuto(t *testing.T) {
	testutil.RequireBwrap(t)
	t.Parallel()
	environ := []string{"SANDBOX__WORKSPACE_ROOT=" + testutil.SharedDir(t), "SANDBOX__BWRAP_ROOT=host", "LOG__LEVEL=debug"}
	_, _, stderr := wardenCmd(t, "", environ, "exec", "--provider", "bubblewrap", "--python", "1")
	first, _, _ := strings.Cut(stderr, "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(first), &rec); err != nil || rec["msg"] == nil {
		t.Errorf("first log line %q is not JSON: %v", first, err)
	}
	_, _, stderr = wardenCmd(t, "", append(environ, "LOG__FORMAT=text"), "exec", "--provider", "bubblewrap", "--python", "1")
	if !strings.HasPrefix(stderr, "time=") {
		t.Errorf("LOG__FORMAT=text: stderr %q", stderr)
	}
}
