package runner

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// dockerRunner returns a runner on the real engine, its provider and its
// log directory.
func dockerRunner(t *testing.T, opts Options) (*Runner, *docker.Provider) {
	t.Helper()
	testutil.RequireDocker(t)
	p, err := docker.New(t.Context(), docker.Options{KeepOrphans: true})
	if err != nil {
		t.Fatalf("docker.New() = %v", err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	opts.Spec.Image = testutil.Image()
	return newTestRunner(t, p, opts), p
}

// containersOf lists the containers, running or not, of a sandbox.
func containersOf(t *testing.T, p *docker.Provider, id string) int {
	t.Helper()
	list, err := p.Client().ContainerList(context.Background(), client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", docker.LabelSandbox+"="+id),
	})
	if err != nil {
		t.Fatal(err)
	}
	return len(list.Items)
}

func TestDockerRunOutcomes(t *testing.T) {
	t.Parallel()
	r, p := dockerRunner(t, Options{})
	tests := []struct {
		name    string
		script  string
		args    []string
		exit    int
		stdout  string
		stderr  string // substring
		success bool
	}{
		{name: "success", script: "print('hello')\n", stdout: "hello\n", success: true},
		{name: "exit code", script: "import sys\nprint('before')\nsys.exit(3)\n", exit: 3, stdout: "before\n"},
		{name: "exception", script: "raise ValueError('boom')\n", exit: 1, stderr: "ValueError: boom"},
		{name: "killed by a signal", script: "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n", exit: 128 + 15},
		{name: "arguments without a shell", script: "import sys\nprint(sys.argv[1:])\n", args: []string{"a b", "$HOME", "--x", ";id"},
			stdout: "['a b', '$HOME', '--x', ';id']\n", success: true},
		{name: "runs in its workspace", script: "import os\nprint(os.getcwd(), sorted(os.listdir('.')), os.getuid())\n",
			stdout: "/workspace ['script.py'] 1000\n", success: true},
		{name: "network off", script: "import os\nprint(sorted(os.listdir('/sys/class/net')))\n", stdout: "['lo']\n", success: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := r.Run(t.Context(), Job{Script: writeScript(t, "script.py", tt.script), Args: tt.args, Timeout: time.Minute})
			if err != nil {
				t.Fatalf("Run() error = %v", err)
			}
			if res.ExitCode != tt.exit || res.Success != tt.success || res.TimedOut {
				t.Errorf("Run() = exit %d, success %v, error %q; want exit %d, success %v", res.ExitCode, res.Success, res.Error, tt.exit, tt.success)
			}
			if got := readFile(t, res.LogDir, StdoutLog); got != tt.stdout {
				t.Errorf("stdout.log = %q, want %q", got, tt.stdout)
			}
			if got := readFile(t, res.LogDir, StderrLog); !strings.Contains(got, tt.stderr) || (tt.stderr == "" && got != "") {
				t.Errorf("stderr.log = %q, want %q", got, tt.stderr)
			}
			m := readResult(t, res.LogDir)
			if m["exit_code"] != float64(tt.exit) || m["success"] != tt.success {
				t.Errorf("result.json = %v", m)
			}
			if n := containersOf(t, p, res.SandboxID); n != 0 {
				t.Errorf("%d containers left for sandbox %s", n, res.SandboxID)
			}
		})
	}
}

// The logs hold exactly what the script wrote: binary bytes, invalid
// UTF-8, no newline at the end, more than the sandbox's default 1 MiB
// output limit, and the order between the streams when the script
// flushes between writes.
func TestDockerRunLogsByteExact(t *testing.T) {
	t.Parallel()
	r, _ := dockerRunner(t, Options{})
	const script = `
import sys, time
out, err = sys.stdout.buffer, sys.stderr.buffer
def w(f, b):
    f.write(b); f.flush(); time.sleep(0.05)
w(out, b"out-1\n")
w(err, b"err-1\n")
w(out, bytes(range(256)))
w(err, b"\xff\xfe invalid utf-8 \x80\n")
w(out, b"\r\nno newline at the end")
w(err, b"err-2")
big = b"".join(b"line %07d %s\n" % (i, b"x" * 40) for i in range(60000))
out.write(big); out.flush()
`
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "bytes.py", script), Timeout: 2 * time.Minute})
	if err != nil || !res.Success {
		t.Fatalf("Run() = %+v, %v", res, err)
	}
	var big bytes.Buffer
	for i := range 60000 {
		fmt.Fprintf(&big, "line %07d %s\n", i, strings.Repeat("x", 40))
	}
	seq := make([]byte, 256)
	for i := range seq {
		seq[i] = byte(i)
	}
	wantOut := "out-1\n" + string(seq) + "\r\nno newline at the end" + big.String()
	wantErr := "err-1\n\xff\xfe invalid utf-8 \x80\nerr-2"
	wantConsole := "out-1\nerr-1\n" + string(seq) + "\xff\xfe invalid utf-8 \x80\n" + "\r\nno newline at the end" + "err-2" + big.String()
	for name, want := range map[string]string{StdoutLog: wantOut, StderrLog: wantErr, ConsoleLog: wantConsole} {
		got := readFile(t, res.LogDir, name)
		if got != want {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			t.Errorf("%s: %d bytes, want %d; first difference at byte %d: got %q, want %q", name, len(got), len(want), i,
				got[i:min(len(got), i+40)], want[i:min(len(want), i+40)])
		}
	}
	if res.StdoutBytes != int64(len(wantOut)) || res.StdoutTruncated {
		t.Errorf("stdout_bytes %d, truncated %v; want %d, false", res.StdoutBytes, res.StdoutTruncated, len(wantOut))
	}
	if want := wantOut[len(wantOut)-DefaultPreviewLimit:]; res.Stdout != want {
		t.Errorf("stdout preview: %d bytes, want the last %d of the stream", len(res.Stdout), DefaultPreviewLimit)
	}
}

func TestDockerRunOutputCap(t *testing.T) {
	t.Parallel()
	r, _ := dockerRunner(t, Options{OutputLimit: 10000})
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "loud.py", "import sys\nsys.stdout.write('y' * 50000)\nprint('done', file=sys.stderr)\n")})
	if err != nil || !res.Success {
		t.Fatalf("Run() = %+v, %v", res, err)
	}
	if got := readFile(t, res.LogDir, StdoutLog); got != strings.Repeat("y", 10000) || !res.StdoutTruncated || res.StderrTruncated {
		t.Errorf("stdout.log %d bytes, truncated %v/%v; want 10000, true/false", len(got), res.StdoutTruncated, res.StderrTruncated)
	}
	if got := readFile(t, res.LogDir, StderrLog); got != "done\n" {
		t.Errorf("stderr.log = %q", got)
	}
}

// A timeout kills the sandbox (no container is left), keeps what was
// printed until then, and says so.
func TestDockerRunTimeout(t *testing.T) {
	t.Parallel()
	r, p := dockerRunner(t, Options{})
	script := "import sys, time\nprint('started', flush=True)\nprint('warming up', file=sys.stderr, flush=True)\ntime.sleep(300)\nprint('never')\n"
	start := time.Now()
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "hang.py", script), Timeout: 2 * time.Second})
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("Run() error = %v", err)
	}
	if !res.TimedOut || res.Success || res.ExitCode != sandbox.TimeoutExitCode || res.Error != "Timeout after 2 seconds" {
		t.Errorf("Run() = timed out %v, success %v, exit %d, error %q", res.TimedOut, res.Success, res.ExitCode, res.Error)
	}
	if elapsed > 20*time.Second {
		t.Errorf("Run() took %s for a 2s timeout", elapsed)
	}
	if n := containersOf(t, p, res.SandboxID); n != 0 {
		t.Errorf("%d containers left for sandbox %s after the timeout", n, res.SandboxID)
	}
	if len(p.List()) != 0 {
		t.Errorf("provider still lists %d sandboxes", len(p.List()))
	}
	for name, want := range map[string]string{StdoutLog: "started\n", StderrLog: "warming up\n", ConsoleLog: "started\nwarming up\n"} {
		if got := readFile(t, res.LogDir, name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	m := readResult(t, res.LogDir)
	if m["timed_out"] != true || m["error"] != "Timeout after 2 seconds" || m["stdout"] != "started\n" || m["stderr"] != "warming up\n" {
		t.Errorf("result.json = %v", m)
	}
}

func TestDockerRunEnv(t *testing.T) {
	t.Parallel()
	r, _ := dockerRunner(t, Options{Spec: sandbox.Spec{Env: map[string]string{"FROM_SPEC": "spec"}}})
	env := map[string]string{"GREETING": "hello world", "QUOTED": `it's "x" $HOME`, "EMPTY": ""}
	before := maps.Clone(env)
	script := "import os\nfor k in ['GREETING', 'QUOTED', 'EMPTY', 'FROM_SPEC', 'PYTHONUNBUFFERED', 'WARDEN_RUN_ID']:\n    print(k, repr(os.environ.get(k)))\n"
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "env.py", script), Env: env})
	if err != nil || !res.Success {
		t.Fatalf("Run() = %+v, %v", res, err)
	}
	want := fmt.Sprintf("GREETING 'hello world'\nQUOTED 'it\\'s \"x\" $HOME'\nEMPTY ''\nFROM_SPEC 'spec'\nPYTHONUNBUFFERED '1'\nWARDEN_RUN_ID '%s'\n", res.RunID)
	if got := readFile(t, res.LogDir, StdoutLog); got != want {
		t.Errorf("stdout.log =\n%s\nwant\n%s", got, want)
	}
	if !maps.Equal(env, before) {
		t.Errorf("Run modified the caller's env: %v, was %v", env, before)
	}
}

func TestDockerRunCredentials(t *testing.T) {
	t.Parallel()
	r, _ := dockerRunner(t, Options{})
	// Writable by the sandbox user, so that only the mount mode decides.
	creds := t.TempDir()
	if err := os.Chmod(creds, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(creds, "token"), []byte("s3cret"), 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `
import os
d = os.environ["WARDEN_CREDENTIALS"]
print(d, open(os.path.join(d, "token")).read())
try:
    with open(os.path.join(d, "written"), "w") as f:
        f.write("x")
    print("write ok")
except OSError as e:
    print("write failed:", e.strerror)
`
	tests := []struct {
		name     string
		writable bool
		want     string
	}{
		{"read-only by default", false, CredentialsPath + " s3cret\nwrite failed: Read-only file system\n"},
		{"read-write when asked", true, CredentialsPath + " s3cret\nwrite ok\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := r.Run(t.Context(), Job{Script: writeScript(t, "creds.py", script), Credentials: creds, CredentialsWritable: tt.writable})
			if err != nil || !res.Success {
				t.Fatalf("Run() = %+v, %v", res, err)
			}
			if got := readFile(t, res.LogDir, StdoutLog); got != tt.want {
				t.Errorf("stdout.log = %q, want %q", got, tt.want)
			}
			_, statErr := os.Stat(filepath.Join(creds, "written"))
			if tt.writable != (statErr == nil) {
				t.Errorf("file written on the host: %v, want %v", statErr == nil, tt.writable)
			}
		})
	}
}

// Three scripts, two at a time: the first two overlap, the third starts
// when one of them ends, and each has its own run directory.
func TestDockerRunAllParallel(t *testing.T) {
	t.Parallel()
	r, p := dockerRunner(t, Options{})
	dir := t.TempDir()
	var jobs []Job
	for i, name := range []string{"one.py", "two.py", "three.py"} {
		body := fmt.Sprintf("import time\ntime.sleep(1.5)\nprint('script %d')\nraise SystemExit(%d)\n", i+1, i)
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(body), 0o644)
		jobs = append(jobs, Job{Script: path, Timeout: time.Minute})
	}
	start := time.Now()
	results := r.RunAll(t.Context(), jobs, 2)
	elapsed := time.Since(start)
	dirs := map[string]bool{}
	for i, res := range results {
		if res.ExitCode != i || res.Success != (i == 0) || res.Error != "" && i == 0 {
			t.Errorf("%s: exit %d, success %v, error %q", filepath.Base(res.Script), res.ExitCode, res.Success, res.Error)
		}
		if got := readFile(t, res.LogDir, StdoutLog); got != fmt.Sprintf("script %d\n", i+1) {
			t.Errorf("%s: stdout.log = %q", res.RunID, got)
		}
		dirs[res.LogDir] = true
	}
	if len(dirs) != 3 {
		t.Errorf("run directories %v, want 3 distinct", slices.Collect(maps.Keys(dirs)))
	}
	// Windows of the runs: at most two at once, and the first two overlap.
	type span struct{ from, to time.Time }
	var spans []span
	for _, res := range results {
		spans = append(spans, span{res.StartedAt, res.StartedAt.Add(time.Duration(res.Duration * float64(time.Second)))})
	}
	if !(spans[0].from.Before(spans[1].to) && spans[1].from.Before(spans[0].to)) {
		t.Errorf("the first two runs did not overlap: %v", spans)
	}
	third := spans[2].from.Add(10 * time.Millisecond)
	if third.Before(spans[0].to) && third.Before(spans[1].to) {
		t.Errorf("the third run started while two others ran: %v", spans)
	}
	t.Logf("3 runs of 1.5 s, 2 at a time: %s", elapsed.Round(time.Millisecond))
	if len(p.List()) != 0 {
		t.Errorf("%d sandboxes left", len(p.List()))
	}
}

func TestDockerRunPythonVersion(t *testing.T) {
	t.Parallel()
	r, _ := dockerRunner(t, Options{})
	script := writeScript(t, "v.py", "print('ran')\n")
	res, err := r.Run(t.Context(), Job{Script: script, PythonVersion: "3.11"})
	if err != nil || !res.Success {
		t.Errorf("Run(python 3.11) = %+v, %v", res, err)
	}
	res, err = r.Run(t.Context(), Job{Script: script, PythonVersion: "3.99"})
	if err == nil || res.Success || !strings.Contains(res.Error, `has Python "3.11", not 3.99`) {
		t.Errorf("Run(python 3.99) = %+v, %v; want a version error", res, err)
	}
	if got := readFile(t, res.LogDir, StdoutLog); got != "" {
		t.Errorf("the script ran despite the wrong version: %q", got)
	}
}

// Files the script writes to its workspace stay with the run record.
func TestDockerRunWorkspaceKept(t *testing.T) {
	t.Parallel()
	r, _ := dockerRunner(t, Options{})
	res, err := r.Run(t.Context(), Job{Script: writeScript(t, "w.py", "open('summary.txt', 'w').write('done')\n")})
	if err != nil || !res.Success {
		t.Fatalf("Run() = %+v, %v", res, err)
	}
	if got := readFile(t, filepath.Join(res.LogDir, WorkspaceDir), "summary.txt"); got != "done" {
		t.Errorf("workspace/summary.txt = %q", got)
	}
}
