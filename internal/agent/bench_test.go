package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// BenchmarkHostRoundTrip measures one trivial Python statement through the
// agent running as a host process: the protocol's own cost, no isolation.
func BenchmarkHostRoundTrip(b *testing.B) {
	benchExec(b, sandbox.ExecRequest{Language: sandbox.Python, Code: "x = 1"})
}

// BenchmarkHostShell measures the shell command `true` through the agent
// running as a host process.
func BenchmarkHostShell(b *testing.B) {
	benchExec(b, sandbox.ExecRequest{Language: sandbox.Shell, Code: "true"})
}

func benchExec(b *testing.B, req sandbox.ExecRequest) {
	dir := b.TempDir()
	s := NewSession(&hostLauncher{python: "/usr/bin/python3", dir: dir}, Options{Workspace: dir})
	defer s.Close()
	if _, err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if r, err := s.Exec(b.Context(), req); err != nil || r.ExitCode != 0 {
			b.Fatal(r, err)
		}
	}
}

// BenchmarkHostStart measures what a fresh sandbox pays inside, without
// the isolation: an agent started as a host process, up to its hello (its
// worker ready), and its first execution of print(1). cpu-ms/op is the CPU
// time of the agent and its worker and snapshot, read just before they
// are killed.
func BenchmarkHostStart(b *testing.B) {
	benchStart(b, nil)
}

// BenchmarkHostStartCompiled is BenchmarkHostStart with the agent run from
// bytecode compiled beforehand (LoaderCommand), as the bubblewrap
// provider runs it.
func BenchmarkHostStartCompiled(b *testing.B) {
	code, err := hostCompile(b.Context(), []byte(Source))
	if err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "agent")
	if err := os.WriteFile(file, code, 0o644); err != nil {
		b.Fatal(err)
	}
	benchStart(b, LoaderCommand(file)[1:])
}

func benchStart(b *testing.B, args []string) {
	dir := b.TempDir()
	var cpu time.Duration
	for b.Loop() {
		l := &hostLauncher{python: "/usr/bin/python3", dir: dir, args: args}
		s := NewSession(l, Options{})
		if _, err := s.Start(b.Context()); err != nil {
			b.Fatal(err)
		}
		r, err := s.Exec(b.Context(), sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
		if err != nil || string(r.Stdout) != "1\n" {
			b.Fatal(r, err)
		}
		l.mu.Lock()
		pid := l.cmd.Process.Pid
		l.mu.Unlock()
		cpu += treeCPU(pid)
		s.Close()
	}
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

// treeCPU returns the CPU time that pid and its descendants have used
// (schedstat of each thread), 0 where /proc cannot tell.
func treeCPU(pid int) time.Duration {
	var total time.Duration
	pids := []int{pid}
	for i := 0; i < len(pids); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pids[i]))
		for _, t := range tasks {
			if b, err := os.ReadFile(t + "/schedstat"); err == nil {
				if f := strings.Fields(string(b)); len(f) > 0 {
					ns, _ := strconv.ParseInt(f[0], 10, 64)
					total += time.Duration(ns)
				}
			}
			if b, err := os.ReadFile(t + "/children"); err == nil {
				for _, c := range strings.Fields(string(b)) {
					if n, err := strconv.Atoi(c); err == nil {
						pids = append(pids, n)
					}
				}
			}
		}
	}
	return total
}
