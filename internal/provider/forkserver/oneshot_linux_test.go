package forkserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// TestRun: one-shot runs give what Exec gives in a new sandbox, within
// the same limits, and leave nothing behind.
func TestRun(t *testing.T) {
	setups(t, func(t *testing.T, p *Provider) {
		ctx := t.Context()
		spec := sandbox.Spec{Env: map[string]string{"GREETING": "hello"}}.WithDefaults()
		run := func(t *testing.T, spec sandbox.Spec, req sandbox.ExecRequest) sandbox.ExecResult {
			t.Helper()
			res, err := p.Run(ctx, spec, req)
			if err != nil {
				t.Fatalf("Run(%q) = %v", req.Code, err)
			}
			return res
		}
		py := func(code string) sandbox.ExecRequest {
			return sandbox.ExecRequest{Language: sandbox.Python, Code: code}
		}
		sh := func(code string) sandbox.ExecRequest {
			return sandbox.ExecRequest{Language: sandbox.Shell, Code: code}
		}

		t.Run("python", func(t *testing.T) {
			r := run(t, spec, py("import os, sys\nprint(os.environ['GREETING'], os.getcwd())\nprint('err', file=sys.stderr)\n6 * 7"))
			if string(r.Stdout) != "hello /workspace\n" || string(r.Stderr) != "err\n" || r.ExitCode != 0 || r.Error != nil {
				t.Errorf("got %+v stdout %q stderr %q", r, r.Stdout, r.Stderr)
			}
			if r.ReturnValue == nil || *r.ReturnValue != "42" {
				t.Errorf("return value %v, want 42", r.ReturnValue)
			}
			if len(r.Outputs) != 0 {
				t.Errorf("outputs %+v, want none for a plain value", r.Outputs)
			}
			if r.Duration <= 0 {
				t.Errorf("duration %v", r.Duration)
			}
		})
		t.Run("unicode", func(t *testing.T) {
			r := run(t, spec, py("import sys\nprint('h\\u00e9llo \\u2603')\nprint('\\udcff', file=sys.stderr)"))
			if string(r.Stdout) != "h\u00e9llo \u2603\n" || string(r.Stderr) != "\\udcff\n" || r.ExitCode != 0 {
				t.Errorf("got %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
			}
		})
		t.Run("exception", func(t *testing.T) {
			r := run(t, spec, py("x = 1\nraise ValueError('bad')"))
			if r.ExitCode != 1 || r.Error == nil || r.Error.Name != "ValueError" || r.Error.Value != "bad" || r.Error.Line != 2 ||
				!strings.Contains(string(r.Stderr), "ValueError: bad") {
				t.Errorf("got %+v stderr %q", r.Error, r.Stderr)
			}
		})
		t.Run("syntax error", func(t *testing.T) {
			r := run(t, spec, py("def ("))
			if r.ExitCode != 1 || r.Error == nil || r.Error.Name != "SyntaxError" {
				t.Errorf("got %d %+v", r.ExitCode, r.Error)
			}
		})
		t.Run("exits", func(t *testing.T) {
			if r := run(t, spec, py("import sys\nsys.exit(3)")); r.ExitCode != 3 || r.Error != nil {
				t.Errorf("sys.exit(3): %d %+v", r.ExitCode, r.Error)
			}
			if r := run(t, spec, py("import os\nprint('bye', flush=True)\nos._exit(5)")); r.ExitCode != 5 || string(r.Stdout) != "bye\n" ||
				len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "exited with code 5") {
				t.Errorf("os._exit(5): %d %q %q", r.ExitCode, r.Stdout, r.Notes)
			}
			// A Python run is its sandbox's init: signals that end a process
			// end it through handlers (the kernel spares an init the others
			// from inside its namespace); SIGKILL from the code itself does
			// nothing, which no handler can change.
			if r := run(t, spec, py("import os, signal\nprint('a', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\nprint('b')")); r.ExitCode != 143 ||
				string(r.Stdout) != "a\n" || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "killed by signal 15") {
				t.Errorf("SIGTERM: %d %q %q", r.ExitCode, r.Stdout, r.Notes)
			}
			if r := run(t, spec, py("import signal, time\nsignal.alarm(1)\ntime.sleep(10)")); r.ExitCode != 142 {
				t.Errorf("SIGALRM: %d %q", r.ExitCode, r.Notes)
			}
			if r := run(t, spec, py("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\nprint(os.getpid())")); r.ExitCode != 0 || string(r.Stdout) != "1\n" {
				t.Errorf("SIGKILL from itself: %d %q", r.ExitCode, r.Stdout)
			}
			if r := run(t, spec, py("import ctypes\nctypes.string_at(0)")); r.ExitCode != 139 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "killed by signal 11") {
				t.Errorf("segfault: %d %q", r.ExitCode, r.Notes)
			}
			// Its children are its own: their statuses are not taken.
			if r := run(t, spec, py("import subprocess\nprint(subprocess.run(['sh', '-c', 'exit 7']).returncode)")); string(r.Stdout) != "7\n" {
				t.Errorf("a child's status: %q %q", r.Stdout, r.Stderr)
			}
		})
		t.Run("display", func(t *testing.T) {
			// Streamed in the order the code made them: what was printed
			// before a display (flushed or not) comes before it.
			var events []string
			req := py("import sys\nclass H:\n    def _repr_html_(self): return '<i>h</i>'\n" +
				"print('a')\nprint('w', file=sys.stderr)\ndisplay({'text/html': '<b>x</b>'}, raw=True)\nprint('b')\ndisplay('y')\nH()")
			req.OnOutput = func(s sandbox.Stream, p []byte) { events = append(events, string(s)+":"+string(p)) }
			req.OnDisplay = func(o sandbox.Output) { events = append(events, "display") }
			r := run(t, spec, req)
			if string(r.Stdout) != "a\nb\n" || string(r.Stderr) != "w\n" || len(r.Outputs) != 3 || r.Outputs[0].Data["text/html"] != "<b>x</b>" ||
				r.Outputs[2].Type != sandbox.OutputResult || r.Outputs[2].Data["text/html"] != "<i>h</i>" {
				t.Errorf("got %q %+v (stderr %q)", r.Stdout, r.Outputs, r.Stderr)
			}
			if got := strings.Join(events, " "); got != "stdout:a\n stderr:w\n display stdout:b\n display display" &&
				got != "stderr:w\n stdout:a\n display stdout:b\n display display" {
				t.Errorf("streamed %q", events)
			}
		})
		t.Run("shell", func(t *testing.T) {
			r := run(t, spec, sh("echo $GREETING; pwd; id -u; echo oops >&2; exit 4"))
			if string(r.Stdout) != "hello\n/workspace\n1000\n" || string(r.Stderr) != "oops\n" || r.ExitCode != 4 || r.Error != nil || len(r.Outputs) != 0 {
				t.Errorf("got %d %q %q %+v", r.ExitCode, r.Stdout, r.Stderr, r.Error)
			}
			r = run(t, spec, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"printf", "%s|", "a b", "c"}, Workdir: "/tmp"})
			if string(r.Stdout) != "a b|c|" || r.ExitCode != 0 {
				t.Errorf("argv: %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
			}
			if r := run(t, spec, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"no-such-program"}}); r.ExitCode != 127 ||
				!strings.Contains(string(r.Stderr), "no-such-program") {
				t.Errorf("missing program: %d %q", r.ExitCode, r.Stderr)
			}
			if r := run(t, spec, sandbox.ExecRequest{Language: sandbox.Shell, Code: "pwd", Workdir: "nowhere"}); r.ExitCode != 1 ||
				!strings.Contains(string(r.Stderr), "working directory /workspace/nowhere does not exist") {
				t.Errorf("missing workdir: %d %q", r.ExitCode, r.Stderr)
			}
			if r := run(t, spec, sh("yes | head -c 3")); string(r.Stdout) != "y\ny" || r.ExitCode != 0 {
				t.Errorf("SIGPIPE: %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
			}
			if r := run(t, spec, sh("kill -TERM $$")); r.ExitCode != 128+15 {
				t.Errorf("killed shell: %d", r.ExitCode)
			}
		})
		t.Run("timeout", func(t *testing.T) {
			start := time.Now()
			r := run(t, spec, sandbox.ExecRequest{Language: sandbox.Python, Code: "import time\nprint('started')\ntime.sleep(60)", Timeout: time.Second})
			if !r.TimedOut || r.ExitCode != sandbox.TimeoutExitCode || string(r.Stdout) != "started\n" || r.Error == nil || r.Error.Name != "TimeoutError" ||
				!strings.Contains(string(r.Stderr), "timed out after 1 seconds") {
				t.Errorf("got %+v %q %q", r, r.Stdout, r.Stderr)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("a 1 s timeout took %v", d)
			}
			// A background process that keeps the output open ends with the run.
			r = run(t, spec, sandbox.ExecRequest{Language: sandbox.Shell, Code: "sleep 300 & echo bg", Timeout: 20 * time.Second})
			if r.TimedOut || r.ExitCode != 0 || string(r.Stdout) != "bg\n" {
				t.Errorf("background: %+v %q", r, r.Stdout)
			}
		})
		t.Run("cancel", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			r, err := p.Run(ctx, spec, py("import time\ntime.sleep(60)"))
			if !errors.Is(err, context.DeadlineExceeded) || r.TimedOut || r.Error == nil || r.Error.Name != "Cancelled" {
				t.Errorf("cancelled: %v %+v", err, r)
			}
		})
		t.Run("output limit", func(t *testing.T) {
			small := spec
			small.OutputLimit = 1000
			r := run(t, small, py("import sys\nsys.stdout.write('x' * 5_000_000)\nsys.stderr.write('y' * 10)\nprint()\n'done'"))
			if len(r.Stdout) != 1000 || !r.StdoutTruncated || string(r.Stderr) != strings.Repeat("y", 10) || r.StderrTruncated || r.ReturnValue == nil {
				t.Errorf("got %d bytes, truncated %v; stderr %q %v; return %v", len(r.Stdout), r.StdoutTruncated, r.Stderr, r.StderrTruncated, r.ReturnValue)
			}
		})
		t.Run("memory limit", func(t *testing.T) {
			small := spec
			small.MemoryLimit = 64 << 20
			r := run(t, small, py("x = bytearray(512 << 20)\nx[::4096] = b'1' * len(x[::4096])"))
			if !r.OOMKilled || r.ExitCode != 137 || r.Error == nil || r.Error.Name != "MemoryError" {
				t.Errorf("got %+v %q", r, r.Stderr)
			}
		})
		t.Run("isolation", func(t *testing.T) {
			r := run(t, spec, sh("grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\\t' ' '; awk -F: 'NR>2{gsub(/ /, \"\", $1); print $1}' /proc/net/dev; hostname; id -u; ls /proc | grep -c '^[0-9]'"))
			want := "CapEff: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\nlo\nsandbox\n1000\n"
			if !strings.HasPrefix(string(r.Stdout), want) {
				t.Errorf("got %q, want it to start with %q", r.Stdout, want)
			}
			// The init, the shell and its commands: no process of the host's or another sandbox's.
			if f := strings.Fields(string(r.Stdout)); len(f) == 0 || f[len(f)-1] > "5" || len(f[len(f)-1]) != 1 {
				t.Errorf("processes seen: %q", r.Stdout)
			}
			if r := run(t, spec, sh("touch /usr/x")); r.ExitCode == 0 {
				t.Error("the image root is writable")
			}
		})
		t.Run("network", func(t *testing.T) {
			net := spec
			net.Network = true
			r := run(t, net, sh("awk -F: 'NR>2{gsub(/ /, \"\", $1); print $1}' /proc/net/dev | sort; cat /etc/resolv.conf"))
			if string(r.Stdout) != "lo\ntap0\nnameserver 10.0.2.3\n" || r.ExitCode != 0 {
				t.Errorf("a networked run: %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
			}
		})
		t.Run("nothing left", func(t *testing.T) {
			// A run writes a file in its workspace and /tmp: the next one sees neither.
			run(t, spec, sh("echo 1 > /workspace/f; echo 1 > /tmp/f; sleep 300 &"))
			if r := run(t, spec, sh("ls /workspace /tmp")); strings.Contains(string(r.Stdout), "f") {
				t.Errorf("a run sees the last one's files: %q", r.Stdout)
			}
			ents, _ := os.ReadDir(p.opts.WorkspaceRoot)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), wsPrefix) {
					t.Errorf("workspace left: %s", e.Name())
				}
			}
			if m, _ := filepath.Glob(filepath.Join(p.opts.CgroupRoot, "*", "warden-fork", "*@"+ownTag())); len(m) > 0 {
				t.Errorf("cgroups left: %v", m)
			}
		})
		t.Run("bad requests", func(t *testing.T) {
			if _, err := p.Run(ctx, spec, sandbox.ExecRequest{Language: sandbox.Python, Code: "1", Workdir: "/tmp"}); !errors.Is(err, sandbox.ErrInvalid) {
				t.Errorf("Python with a workdir: %v", err)
			}
			bad := spec
			bad.WorkspaceDir = "/no/such/dir"
			if _, err := p.Run(ctx, bad, py("1")); !errors.Is(err, sandbox.ErrInvalid) {
				t.Errorf("missing workspace dir: %v", err)
			}
		})
	})
}

func TestKernelAtLeast(t *testing.T) {
	for _, c := range []struct {
		rel  string
		want bool
	}{{"6.18.44-fc-v1294", true}, {"6.15.0", true}, {"6.14.9-arch1", false}, {"5.19.0", false}, {"7.0", true}, {"", false}, {"x", false}} {
		if got := kernelAtLeast(c.rel, 6, 15); got != c.want {
			t.Errorf("kernelAtLeast(%q, 6, 15) = %v, want %v", c.rel, got, c.want)
		}
	}
}
