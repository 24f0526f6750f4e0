package agent

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// collect reads a watch to its end, or fails after d.
func collect(t *testing.T, w *sandbox.ProcessWatch, d time.Duration) (stdout, stderr string, end *sandbox.ProcessInfo) {
	t.Helper()
	defer w.Close()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var out, errb strings.Builder
	for {
		select {
		case e, ok := <-w.Events:
			if !ok {
				return out.String(), errb.String(), end
			}
			switch e.Kind {
			case sandbox.ProcessStdout:
				out.Write(e.Data)
			case sandbox.ProcessStderr:
				errb.Write(e.Data)
			case sandbox.ProcessEnd:
				end = e.Info
			}
		case <-timer.C:
			t.Fatalf("watch not done after %s; stdout so far %q", d, out.String())
		}
	}
}

func TestProcessRuns(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{Env: map[string]string{"FROM_SESSION": "s"}})
	info, w, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{
		Command: `echo "hi $FROM_SESSION $OWN"; echo err >&2; exit 3`, Env: map[string]string{"OWN": "o"}, Tag: "t1", Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	if info.PID <= 0 || !info.Running || info.Tag != "t1" || info.Argv[0] != "/bin/bash" {
		t.Fatalf("started = %+v", info)
	}
	out, errb, end := collect(t, w, 10*time.Second)
	if out != "hi s o\n" || errb != "err\n" || end == nil || end.ExitCode != 3 || end.Running || end.PID != info.PID {
		t.Fatalf("stdout %q stderr %q end %+v", out, errb, end)
	}
	// The ended process is still listed, and its output can be read again.
	list := s.Processes()
	if len(list) != 1 || list[0].PID != info.PID || list[0].Running {
		t.Fatalf("list = %+v", list)
	}
	w, err = s.WatchProcess(info.PID, true)
	if err != nil {
		t.Fatal(err)
	}
	if out, _, end := collect(t, w, 5*time.Second); out != "hi s o\n" || end == nil || end.ExitCode != 3 {
		t.Fatalf("replay = %q, %+v", out, end)
	}
}

// TestProcessBesideSession: a background process runs while executions
// run, and its output arrives while they do.
func TestProcessBesideSession(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	py(t, s, "x = 1", 0)
	info, w, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{
		Command: "for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.2; done", Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// A cell that takes a second runs meanwhile; ticks arrive during it.
	got := make(chan string, 1)
	go func() {
		var b strings.Builder
		for e := range w.Events {
			b.Write(e.Data)
			if strings.Contains(b.String(), "tick 3") {
				got <- b.String()
				return
			}
		}
		got <- b.String()
	}()
	start := time.Now()
	r := py(t, s, "import time\ntime.sleep(1.5)\nx + 1", 0)
	if *r.ReturnValue != "2" {
		t.Fatalf("cell = %+v", r)
	}
	select {
	case out := <-got:
		if !strings.Contains(out, "tick 3") {
			t.Fatalf("ticks = %q", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no ticks")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("too slow")
	}
	if l := s.Processes(); len(l) != 1 || !l[0].Running {
		t.Fatalf("list while running = %+v", l)
	}
	if err := s.SignalProcess(t.Context(), info.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	w2, err := s.WatchProcess(info.PID, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, end := collect(t, w2, 10*time.Second); end == nil || end.Signal != 9 || end.ExitCode != 137 {
		t.Fatalf("killed = %+v", end)
	}
	if err := s.SignalProcess(t.Context(), info.PID, syscall.SIGKILL); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("signal after the end = %v, want conflict", err)
	}
}

func TestProcessStdin(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	info, w, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{Argv: []string{"cat"}, Stdin: true, Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendInput(info.PID, []byte("abc\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.SendInput(info.PID, []byte("def")); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseInput(info.PID); err != nil {
		t.Fatal(err)
	}
	if err := s.SendInput(info.PID, []byte("late")); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("input after close = %v, want conflict", err)
	}
	if out, _, end := collect(t, w, 10*time.Second); out != "abc\ndef" || end == nil || end.ExitCode != 0 {
		t.Fatalf("cat = %q, %+v", out, end)
	}
	// Without Stdin, input is refused; stdin is /dev/null.
	info, w, err = s.StartProcess(t.Context(), sandbox.ProcessSpec{Command: "sleep 5; cat", Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := s.SendInput(info.PID, []byte("x")); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("input without stdin = %v, want conflict", err)
	}
	_ = s.SignalProcess(t.Context(), info.PID, syscall.SIGTERM)
}

func TestProcessTimeoutAndErrors(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	start := time.Now()
	_, w, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{Command: "echo before; sleep 30", Timeout: 300 * time.Millisecond, Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, end := collect(t, w, 10*time.Second); out != "before\n" || end == nil || !end.TimedOut || end.Signal != 9 {
		t.Fatalf("timeout = %q, %+v", out, end)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the timeout took %s", d)
	}
	for _, tt := range []struct {
		spec sandbox.ProcessSpec
		want error
	}{
		{sandbox.ProcessSpec{}, sandbox.ErrInvalid},
		{sandbox.ProcessSpec{Command: "true", Argv: []string{"true"}}, sandbox.ErrInvalid},
		{sandbox.ProcessSpec{Argv: []string{"/no/such/program"}}, sandbox.ErrInvalid},
		{sandbox.ProcessSpec{Command: "true", Workdir: "no/such/dir"}, sandbox.ErrInvalid},
		{sandbox.ProcessSpec{Command: "true", Env: map[string]string{"BAD NAME": "x"}}, sandbox.ErrInvalid},
	} {
		if _, _, err := s.StartProcess(t.Context(), tt.spec); !errors.Is(err, tt.want) {
			t.Errorf("StartProcess(%+v) = %v, want %v", tt.spec, err, tt.want)
		}
	}
	if _, err := s.WatchProcess(999999, false); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("unknown pid = %v", err)
	}
	if err := s.SignalProcess(t.Context(), 999999, syscall.SIGKILL); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("signal of an unknown pid = %v", err)
	}
	// The session is unharmed.
	if r := py(t, s, "6 * 7", 0); *r.ReturnValue != "42" {
		t.Fatalf("after the errors: %+v", r)
	}
}

// TestProcessLimitAndLag: a sandbox runs at most MaxProcesses at once, and
// a watcher that does not read falls out instead of holding the agent.
func TestProcessLimitAndLag(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	var pids []int
	for range MaxProcesses {
		info, _, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{Argv: []string{"sleep", "60"}})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, info.PID)
	}
	if _, _, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{Argv: []string{"true"}}); !errors.Is(err, sandbox.ErrLimit) {
		t.Fatalf("one more = %v, want limit", err)
	}
	for _, pid := range pids {
		if err := s.SignalProcess(t.Context(), pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for running(s) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := running(s); n > 0 {
		t.Fatalf("%d still running after SIGKILL", n)
	}

	_, w, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{Command: "head -c 200000000 /dev/zero", Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Not reading: the watch closes once it is too far behind, while the
	// session stays responsive.
	if r := py(t, s, "1 + 1", 0); *r.ReturnValue != "2" {
		t.Fatalf("cell during the flood = %+v", r)
	}
	deadline = time.Now().Add(30 * time.Second)
	for !w.Lagged() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !w.Lagged() {
		t.Fatal("a watcher that never reads did not fall out")
	}
}

func running(s *Session) int {
	n := 0
	for _, p := range s.Processes() {
		if p.Running {
			n++
		}
	}
	return n
}

// TestProcessAgentLost: processes of an agent that dies end, with the
// reason; new ones start on the new agent.
func TestProcessAgentLost(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	_, w, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{Command: "sleep 60", Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	hello, err := s.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(hello.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, _, end := collect(t, w, 10*time.Second); end == nil || end.Error == "" || end.Running {
		t.Fatalf("end after the agent died = %+v", end)
	}
	// The next execution restarts the agent; processes work again.
	py(t, s, "1", 0)
	_, w, err = s.StartProcess(context.Background(), sandbox.ProcessSpec{Command: "echo again", Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	if out, _, _ := collect(t, w, 10*time.Second); out != "again\n" {
		t.Fatalf("after the restart: %q", out)
	}
}

// TestProcessOutputAfterExitKept: as TestHostOutputAfterExitKept, for a
// background process.
func TestProcessOutputAfterExitKept(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{}, "WARDEN_AGENT_TEST_PAUSE_AFTER_EXIT=0.2")
	for i := range 3 {
		_, w, err := s.StartProcess(t.Context(), sandbox.ProcessSpec{Command: "head -c 3000000 /dev/zero | tr '\\0' x", Watch: true})
		if err != nil {
			t.Fatal(err)
		}
		out, _, end := collect(t, w, 30*time.Second)
		if len(out) != 3000000 || end == nil || end.ExitCode != 0 {
			t.Fatalf("round %d: %d bytes, end %+v", i, len(out), end)
		}
	}
}
