package forkserver

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func schedNS(pid int) time.Duration {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(n)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCPUProbe prints, per start, the CPU time of the host, the server
// and the sandbox's processes (WARDEN_FORK_PROBE=1; it asserts nothing).
func TestCPUProbe(t *testing.T) {
	if os.Getenv("WARDEN_FORK_PROBE") == "" {
		t.Skip()
	}
	testutil.RequireBwrap(t)
	cpu := cpuAccount(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	zpid := zygotePID(t, p.z)
	for i := 0; i < 8; i++ {
		c0, h0, z0 := cpu(), selfCPU(), schedNS(zpid)
		info, err := p.Create(t.Context(), sandbox.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		c1, h1, z1 := cpu(), selfCPU(), schedNS(zpid)
		_, _ = p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
		c2, h2 := cpu(), selfCPU()
		init, _ := p.HostPID(info.ID)
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
		var box time.Duration
		var names []string
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l == ns {
				box += schedNS(pid)
				names = append(names, fmt.Sprintf("%d:%.1f", pid, float64(schedNS(pid))/1e6))
			}
		}
		_ = p.Destroy(t.Context(), info.ID)
		c3, h3 := cpu(), selfCPU()
		t.Logf("create: total %.1f host %.1f zygote %.1f | exec: total %.1f host %.1f | destroy: total %.1f host %.1f | live sandbox procs %.1f %v",
			ms2(c1-c0), ms2(h1-h0), ms2(z1-z0), ms2(c2-c1), ms2(h2-h1), ms2(c3-c2), ms2(h3-h2), ms2(box), names)
	}
}

func ms2(d time.Duration) float64 { return float64(d) / 1e6 }

// TestFaultsProbe prints the server's size and, per sandbox, each
// process's minor faults and CPU time (WARDEN_FORK_PROBE=1).
func TestFaultsProbe(t *testing.T) {
	p := probeProvider(t)
	zpid := zygotePID(t, p.z)
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", zpid))
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "RssAnon") {
			t.Log("zygote", l)
		}
	}
	for i := 0; i < 3; i++ {
		info, _ := p.Create(t.Context(), sandbox.Spec{})
		init, _ := p.HostPID(info.ID)
		pre := faults(init)
		_, _ = p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
		time.Sleep(100 * time.Millisecond)
		out := []string{fmt.Sprintf("agent after create %s", pre)}
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", init))
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l == ns {
				out = append(out, fmt.Sprintf("pid %d %s cpu %.1fms", pid, faults(pid), ms2(schedNS(pid))))
			}
		}
		t.Log(strings.Join(out, "; "))
		_ = p.Destroy(t.Context(), info.ID)
	}
}

func faults(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	return "minflt " + f[7]
}

// TestBwrapFaultsProbe prints the same for the bubblewrap provider's
// processes (WARDEN_FORK_PROBE=1).
func TestBwrapFaultsProbe(t *testing.T) {
	if os.Getenv("WARDEN_FORK_PROBE") == "" {
		t.Skip()
	}
	p, err := bwrap.New(t.Context(), bwrap.Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	for i := 0; i < 3; i++ {
		info, _ := p.Create(t.Context(), sandbox.Spec{})
		_, _ = p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
		time.Sleep(100 * time.Millisecond)
		bw, _ := p.HostPID(info.ID)
		var out []string
		for _, pid := range append([]int{bw}, childrenOf(bw, 6)...) {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			out = append(out, fmt.Sprintf("pid %d %s %s cpu %.1fms", pid, strings.TrimSpace(string(comm)), faults(pid), ms2(schedNS(pid))))
		}
		t.Log(strings.Join(out, "; "))
		_ = p.Destroy(t.Context(), info.ID)
	}
}

func TestSmapsProbe(t *testing.T) {
	p := probeProvider(t)
	zpid := zygotePID(t, p.z)
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", zpid))
	var cur string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 5 && strings.Contains(f[0], "-") {
			cur = l
		}
		if len(f) == 3 && f[0] == "Anonymous:" && f[1] != "0" {
			t.Logf("%6s kB anon  %s", f[1], cur)
		}
	}
}

// TestLoopProbe creates, uses and destroys N sandboxes one after the
// other (WARDEN_FORK_PROBE=1, N): a load to time or profile from outside.
func TestLoopProbe(t *testing.T) {
	p := probeProvider(t)
	n, _ := strconv.Atoi(os.Getenv("N"))
	for range max(n, 1) {
		info, err := p.Create(t.Context(), sandbox.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"}); err != nil || string(r.Stdout) != "1\n" {
			t.Fatalf("print(1) = %q, %v", r.Stdout, err)
		}
		if err := p.Destroy(t.Context(), info.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// probeProvider is a fork server provider for a probe, which runs only
// with WARDEN_FORK_PROBE=1.
func probeProvider(t *testing.T) *Provider {
	t.Helper()
	if os.Getenv("WARDEN_FORK_PROBE") == "" {
		t.Skip("a probe: WARDEN_FORK_PROBE=1 runs it")
	}
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}
