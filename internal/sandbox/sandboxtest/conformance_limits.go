package sandboxtest

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Timeouts, cancellation and output bounds.

// wantTimedOut checks a result stopped by a timeout of d that took took
// to come back.
func wantTimedOut(t *testing.T, what string, r sandbox.ExecResult, took, d time.Duration) {
	t.Helper()
	if !r.TimedOut || r.ExitCode != sandbox.TimeoutExitCode {
		t.Errorf("%s: timed out %v, exit %d; want true, %d", what, r.TimedOut, r.ExitCode, sandbox.TimeoutExitCode)
	}
	if took < d-50*time.Millisecond {
		t.Errorf("%s: returned after %s, before its timeout of %s", what, took, d)
	}
	if took > d+slack {
		t.Errorf("%s: returned after %s, more than %s past its timeout of %s", what, took, slack, d)
	}
}

func testTimeoutPython(t *testing.T, s *suite) {
	b := s.create(t, nil)
	b.ok(t, py("x = 'before'"))
	r, took := b.timed(t, withTimeout(py("print('started', flush=True)\nwhile True:\n    pass"), shortTimeout))
	wantTimedOut(t, "python loop", r, took, shortTimeout)
	if r.Error == nil || !strings.Contains(strings.ToLower(r.ErrorTraceback()), "timed out") {
		t.Errorf("python timeout: error %+v, want one saying it timed out", r.Error)
	}
	if string(r.Stdout) != "started\n" {
		t.Errorf("python timeout: stdout %q, want the output so far %q", r.Stdout, "started\n")
	}
	b.wantValue(t, "x", "'before'")
	b.wantValue(t, "sum(range(10))", "45")
}

// testTimeoutPythonUninterruptible: code that swallows the interrupt is
// killed; the session comes back with the variables it had before.
func testTimeoutPythonUninterruptible(t *testing.T, s *suite) {
	b := s.create(t, nil)
	b.ok(t, py("x = 'kept'"))
	time.Sleep(idleForSnapshot)
	code := "import time\nlost = 1\nwhile True:\n    try:\n        time.sleep(10)\n    except KeyboardInterrupt:\n        pass"
	r, took := b.timed(t, withTimeout(py(code), shortTimeout))
	wantTimedOut(t, "python ignoring the interrupt", r, took, shortTimeout)
	b.wantValue(t, "x", "'kept'")
	b.wantStdout(t, "echo alive", "alive\n")
}

func testTimeoutShell(t *testing.T, s *suite) {
	b := s.create(t, nil)
	r, took := b.timed(t, withTimeout(sh("echo started; sleep 30; echo never"), shortTimeout))
	wantTimedOut(t, "shell sleep", r, took, shortTimeout)
	if string(r.Stdout) != "started\n" {
		t.Errorf("shell timeout: stdout %q, want the output so far %q", r.Stdout, "started\n")
	}
	// An argv times out the same way.
	r, took = b.timed(t, withTimeout(sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"sleep", "30"}}, shortTimeout))
	wantTimedOut(t, "argv sleep", r, took, shortTimeout)
	b.wantStdout(t, "echo ok", "ok\n")
}

// testTimeoutKillsBackgroundChild: what a timed-out shell command
// started goes with it, even when it ignores the polite signals.
func testTimeoutKillsBackgroundChild(t *testing.T, s *suite) {
	b := s.create(t, nil)
	ticks := filepath.Join(b.info.Workspace, "ticks")
	r, took := b.timed(t, withTimeout(sh("(trap '' INT TERM HUP; while :; do echo tick >> ticks; sleep 0.05; done) & sleep 30"), shortTimeout))
	wantTimedOut(t, "shell with a background child", r, took, shortTimeout)
	if fileSize(t, ticks) <= 0 {
		t.Fatalf("%s is empty: the background child never ran", ticks)
	}
	wantStill(t, ticks, "after the timeout")
	b.wantStdout(t, "echo ok", "ok\n")
}

// testTimeoutDefault: a request without a timeout gets the spec's.
func testTimeoutDefault(t *testing.T, s *suite) {
	b := s.create(t, func(sp *sandbox.Spec) { sp.Timeout = shortTimeout })
	r, took := b.timed(t, sh("sleep 30"))
	wantTimedOut(t, "shell with the spec's timeout", r, took, shortTimeout)
	r, took = b.timed(t, py("import time\ntime.sleep(30)"))
	wantTimedOut(t, "python with the spec's timeout", r, took, shortTimeout)
	// A request's own timeout overrides the spec's, upwards too.
	r = b.exec(t, withTimeout(sh("sleep 1.5; echo done"), 5*time.Second))
	if r.TimedOut || string(r.Stdout) != "done\n" {
		t.Errorf("request timeout 5s over a spec timeout of 1s: timed out %v, stdout %q", r.TimedOut, r.Stdout)
	}
}

// testCancel: cancelling ctx stops an execution like a timeout; Exec
// returns at once with an error wrapping ctx's, and the sandbox stays
// usable.
func testCancel(t *testing.T, s *suite) {
	b := s.create(t, nil)
	b.ok(t, py("x = 'before'"))
	for _, req := range []sandbox.ExecRequest{sh("sleep 30"), py("while True:\n    pass")} {
		ctx, cancel := context.WithCancel(t.Context())
		after := 500 * time.Millisecond
		timer := time.AfterFunc(after, cancel)
		start := time.Now()
		r, err := b.p.Exec(ctx, b.info.ID, req)
		took := time.Since(start)
		timer.Stop()
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled %s: err = %v, want context.Canceled", req.Language, err)
		}
		if took > after+slack {
			t.Errorf("cancelled %s: returned after %s", req.Language, took)
		}
		if r.TimedOut {
			t.Errorf("cancelled %s: TimedOut is set, but no timeout stopped it", req.Language)
		}
	}
	// A ctx cancelled before the call: nothing runs for long. (Tried a
	// few times: whether the execution starts at all may be left to
	// chance, and both ways must work.)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for range 4 {
		start := time.Now()
		if _, err := b.p.Exec(ctx, b.info.ID, sh("sleep 30")); !errors.Is(err, context.Canceled) {
			t.Errorf("Exec with a cancelled ctx: err = %v, want context.Canceled", err)
		}
		if took := time.Since(start); took > slack {
			t.Errorf("Exec with a cancelled ctx took %s", took)
			break
		}
	}
	b.wantValue(t, "x", "'before'")
	b.wantStdout(t, "echo ok", "ok\n")
}

func testOutputLimit(t *testing.T, s *suite) {
	const limit = 1000
	b := s.create(t, func(sp *sandbox.Spec) { sp.OutputLimit = limit })

	c := &collector{}
	req := py("print('a' * 5000)")
	req.OnOutput = c.on
	r := b.exec(t, req)
	if string(r.Stdout) != strings.Repeat("a", limit) || !r.StdoutTruncated || r.StderrTruncated || !r.Truncated() {
		t.Errorf("python stdout over the limit: %d bytes, truncated %v/%v; want the first %d and stdout truncated",
			len(r.Stdout), r.StdoutTruncated, r.StderrTruncated, limit)
	}
	// Chunks beyond the limit are not delivered.
	if got := c.joined(sandbox.Stdout); got != string(r.Stdout) {
		t.Errorf("OnOutput delivered %d bytes of stdout, want the %d kept", len(got), len(r.Stdout))
	}

	r = b.exec(t, py("import sys\nsys.stderr.write('b' * 5000)\nprint('small')"))
	if string(r.Stderr) != strings.Repeat("b", limit) || !r.StderrTruncated || r.StdoutTruncated || string(r.Stdout) != "small\n" {
		t.Errorf("python stderr over the limit: %d bytes stderr, stdout %q, truncated %v/%v", len(r.Stderr), r.Stdout, r.StdoutTruncated, r.StderrTruncated)
	}

	// Exactly the limit is not truncation.
	r = b.exec(t, py("import sys\n_ = sys.stdout.write('c' * 1000)"))
	if len(r.Stdout) != limit || r.Truncated() {
		t.Errorf("exactly %d bytes: got %d, truncated %v", limit, len(r.Stdout), r.Truncated())
	}

	c = &collector{}
	req = sh("head -c 5000 /dev/zero | tr '\\0' s; head -c 3000 /dev/zero | tr '\\0' e >&2")
	req.OnOutput = c.on
	r = b.exec(t, req)
	if string(r.Stdout) != strings.Repeat("s", limit) || string(r.Stderr) != strings.Repeat("e", limit) || !r.StdoutTruncated || !r.StderrTruncated {
		t.Errorf("shell over the limit on both streams: %d/%d bytes, truncated %v/%v", len(r.Stdout), len(r.Stderr), r.StdoutTruncated, r.StderrTruncated)
	}
	if c.joined(sandbox.Stdout) != string(r.Stdout) || c.joined(sandbox.Stderr) != string(r.Stderr) {
		t.Errorf("OnOutput delivered %d/%d bytes, want the %d/%d kept", len(c.joined(sandbox.Stdout)), len(c.joined(sandbox.Stderr)), len(r.Stdout), len(r.Stderr))
	}

	// The limit is per execution, and the session survives.
	r = b.ok(t, py("print('d' * 900)\nlen('x' * 10)"))
	if len(r.Stdout) != 901 || r.Truncated() || r.ReturnValue == nil || *r.ReturnValue != "10" {
		t.Errorf("after truncation: %d bytes, truncated %v, value %v", len(r.Stdout), r.Truncated(), r.ReturnValue)
	}
}

// testOutputFlood: far more output than the limit, finite or endless,
// neither hangs nor breaks the session.
func testOutputFlood(t *testing.T, s *suite) {
	const limit = 4096
	b := s.create(t, func(sp *sandbox.Spec) { sp.OutputLimit = limit })
	floods := []sandbox.ExecRequest{
		sh("head -c 50000000 /dev/zero | tr '\\0' x; echo done >&2"),
		py("import sys\nchunk = 'y' * 1000000\nfor _ in range(50):\n    sys.stdout.write(chunk)\nprint('done', file=sys.stderr)"),
	}
	for _, req := range floods {
		r, took := b.timed(t, withTimeout(req, 60*time.Second))
		if r.ExitCode != 0 || len(r.Stdout) != limit || !r.StdoutTruncated || string(r.Stderr) != "done\n" {
			t.Errorf("%s flood of 50 MB: exit %d, %d bytes, truncated %v, stderr %q", req.Language, r.ExitCode, len(r.Stdout), r.StdoutTruncated, r.Stderr)
		}
		// Exit 0 says it finished within its 60 s; how fast is warden
		// bench's business (a loaded machine under gVisor took 15 s).
		t.Logf("%s flood of 50 MB took %s", req.Language, took)
	}
	// Long enough for the command to start on a loaded machine (under
	// gVisor a shell there took over a second to print anything).
	const endlessFor = 3 * time.Second
	endless := []sandbox.ExecRequest{sh("yes"), py("while True:\n    print('z' * 1000)")}
	for _, req := range endless {
		r, took := b.timed(t, withTimeout(req, endlessFor))
		wantTimedOut(t, string(req.Language)+" endless output", r, took, endlessFor)
		if len(r.Stdout) != limit || !r.StdoutTruncated {
			t.Errorf("%s endless output: %d bytes, truncated %v", req.Language, len(r.Stdout), r.StdoutTruncated)
		}
	}
	b.wantValue(t, "1 + 1", "2")
	b.wantStdout(t, "echo ok", "ok\n")
}

// testStreaming: OnOutput gets output while the execution runs, each
// chunk on its stream.
func testStreaming(t *testing.T, s *suite) {
	b := s.create(t, nil)
	for _, req := range []sandbox.ExecRequest{
		sh("echo first; sleep 1; echo second; echo err >&2"),
		py("import sys, time\nprint('first')\ntime.sleep(1)\nprint('second')\nprint('err', file=sys.stderr)"),
	} {
		c := &collector{}
		req.OnOutput = c.on
		r := b.exec(t, req)
		end := time.Now()
		if string(r.Stdout) != "first\nsecond\n" || string(r.Stderr) != "err\n" {
			t.Errorf("%s: stdout %q, stderr %q", req.Language, r.Stdout, r.Stderr)
		}
		if c.joined(sandbox.Stdout) != string(r.Stdout) || c.joined(sandbox.Stderr) != string(r.Stderr) {
			t.Errorf("%s: OnOutput delivered stdout %q, stderr %q; want the result's", req.Language, c.joined(sandbox.Stdout), c.joined(sandbox.Stderr))
		}
		at, ok := c.firstWith(sandbox.Stdout, "first")
		if !ok {
			t.Errorf("%s: OnOutput never delivered %q", req.Language, "first")
		} else if end.Sub(at) < 700*time.Millisecond {
			t.Errorf("%s: %q was delivered %s before Exec returned, want about a second: output is not streamed", req.Language, "first", end.Sub(at))
		}
	}
}
