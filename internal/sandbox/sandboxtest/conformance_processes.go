package sandboxtest

import (
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// runner returns the provider's process runner, or skips: background
// processes are an optional ability (sandbox.ProcessHost).
func (s *suite) runner(t *testing.T) sandbox.ProcessRunner {
	t.Helper()
	r := sandbox.ProcessesOf(s.p)
	if r == nil {
		t.Skipf("provider %s runs no background processes", s.p.Name())
	}
	return r
}

// drain reads a watch to its end within d.
func drain(t *testing.T, w *sandbox.ProcessWatch, d time.Duration) (out, errOut string, end *sandbox.ProcessInfo) {
	t.Helper()
	defer w.Close()
	timer := time.NewTimer(d)
	defer timer.Stop()
	var o, e strings.Builder
	for {
		select {
		case ev, ok := <-w.Events:
			if !ok {
				return o.String(), e.String(), end
			}
			switch ev.Kind {
			case sandbox.ProcessStdout:
				o.Write(ev.Data)
			case sandbox.ProcessStderr:
				e.Write(ev.Data)
			case sandbox.ProcessEnd:
				end = ev.Info
			}
		case <-timer.C:
			t.Fatalf("process still running after %s; output so far %q", d, o.String())
		}
	}
}

// testProcesses: a background process runs beside the Python session
// (its output arrives while a cell runs), in the workspace, with the
// sandbox's environment and its own, takes input, and ends with its exit
// code; one that is signalled ends with the signal.
func testProcesses(t *testing.T, s *suite) {
	r := s.runner(t)
	b := s.create(t, func(sp *sandbox.Spec) { sp.Env = map[string]string{"FROM_SANDBOX": "sb"} })
	b.ok(t, py("x = 1"))

	info, w, err := r.StartProcess(t.Context(), b.info.ID, sandbox.ProcessSpec{
		Command: `echo "$FROM_SANDBOX $OWN $(pwd)"; for i in 1 2 3 4 5 6; do echo tick; sleep 0.25; done; echo bye >&2; exit 7`,
		Env:     map[string]string{"OWN": "own"}, Watch: true,
	})
	if err != nil {
		t.Fatalf("StartProcess: %v", err)
	}
	if info.PID <= 0 || !info.Running {
		t.Fatalf("started = %+v", info)
	}
	// A cell runs meanwhile, and the session is not blocked by the process.
	start := time.Now()
	if v := b.value(t, "import time\ntime.sleep(0.5)\nx + 1"); v != "2" {
		t.Fatalf("cell beside the process = %s", v)
	}
	if d := time.Since(start); d > 1500*time.Millisecond+slack {
		t.Fatalf("the cell took %s beside a process", d)
	}
	out, errOut, end := drain(t, w, 20*time.Second)
	if want := "sb own " + b.info.Spec.WorkspacePath + "\n" + strings.Repeat("tick\n", 6); out != want || errOut != "bye\n" {
		t.Fatalf("process output %q / %q, want %q / bye", out, errOut, want)
	}
	if end == nil || end.ExitCode != 7 || end.Running || end.PID != info.PID {
		t.Fatalf("end = %+v", end)
	}

	// stdin
	info, w, err = r.StartProcess(t.Context(), b.info.ID, sandbox.ProcessSpec{Argv: []string{"cat"}, Stdin: true, Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SendInput(t.Context(), b.info.ID, info.PID, []byte("to cat")); err != nil {
		t.Fatal(err)
	}
	if err := r.CloseInput(t.Context(), b.info.ID, info.PID); err != nil {
		t.Fatal(err)
	}
	if out, _, end := drain(t, w, 20*time.Second); out != "to cat" || end == nil || end.ExitCode != 0 {
		t.Fatalf("cat = %q, %+v", out, end)
	}

	// signal, list
	info, _, err = r.StartProcess(t.Context(), b.info.ID, sandbox.ProcessSpec{Command: "sleep 300", Tag: "sleeper"})
	if err != nil {
		t.Fatal(err)
	}
	list, err := r.Processes(t.Context(), b.info.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range list {
		found = found || p.PID == info.PID && p.Running && p.Tag == "sleeper"
	}
	if !found {
		t.Fatalf("Processes = %+v, want the sleeper running", list)
	}
	w, err = r.WatchProcess(t.Context(), b.info.ID, info.PID, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SignalProcess(t.Context(), b.info.ID, info.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, _, end := drain(t, w, 20*time.Second); end == nil || end.Signal != int(syscall.SIGTERM) {
		t.Fatalf("after SIGTERM: %+v", end)
	}

	// errors
	if _, _, err := r.StartProcess(t.Context(), b.info.ID, sandbox.ProcessSpec{Command: "true", Workdir: "no/such/dir"}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("missing workdir = %v, want invalid", err)
	}
	if _, _, err := r.StartProcess(t.Context(), "sb-0000000000000000", sandbox.ProcessSpec{Command: "true"}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("unknown sandbox = %v, want not found", err)
	}
	if err := r.SendInput(t.Context(), b.info.ID, 999999, []byte("x")); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("unknown pid = %v, want not found", err)
	}
}

// testDestroyEndsProcesses: destroying a sandbox ends its background
// processes (they stop writing) and their watches.
func testDestroyEndsProcesses(t *testing.T, s *suite) {
	r := s.runner(t)
	dir := hostDir(t)
	b := s.create(t, func(sp *sandbox.Spec) { sp.WorkspaceDir = dir })
	_, w, err := r.StartProcess(t.Context(), b.info.ID, sandbox.ProcessSpec{
		Command: "trap '' TERM HUP INT; while :; do echo t >> ticks; sleep 0.05; done", Watch: true})
	if err != nil {
		t.Fatal(err)
	}
	ticks := filepath.Join(dir, "ticks")
	waitGrowing(t, ticks)
	if err := b.p.Destroy(t.Context(), b.info.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	wantStill(t, ticks, "after Destroy")
	if _, _, end := drain(t, w, 30*time.Second); end == nil || end.Running {
		t.Fatalf("the watch of a destroyed sandbox's process ended with %+v", end)
	}
}
