package forkserver

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestBenchLifecycle compares, in shuffled interleaved rounds of one run,
// a fresh sandbox of this provider (create → first result of print(1),
// then destroy) with the bubblewrap provider's and with the bare-bwrap
// and host floors (python3 -c 'print(1)'). It measures and reports; it
// asserts no timing. Run it with WARDEN_FORK_BENCH=N (rounds):
//
//	WARDEN_FORK_BENCH=30 go test -run TestBenchLifecycle -v ./internal/provider/forkserver/
func TestBenchLifecycle(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WARDEN_FORK_BENCH"))
	if n <= 0 {
		t.Skip("set WARDEN_FORK_BENCH=N to run N rounds")
	}
	testutil.RequireBwrap(t)
	ctx := t.Context()
	// CPU time: this process and everything it starts (both providers'
	// sandboxes, the fork server, the floors' processes) are accounted in
	// a cpuacct group of the benchmark's own; neither provider moves its
	// sandboxes out of it (they use the memory, pids and cpu hierarchies).
	cpu := cpuAccount(t)
	fs, err := New(ctx, Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close(context.Background())
	bw, err := bwrap.New(ctx, bwrap.Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer bw.Close(context.Background())
	spec := sandbox.Spec{}.WithDefaults()

	samples := map[string][]time.Duration{}
	lifecycle := func(name string, p sandbox.Provider) func() error {
		return func() error {
			c0 := cpu()
			start := time.Now()
			info, err := p.Create(ctx, spec)
			if err != nil {
				return err
			}
			created := time.Since(start)
			r, err := p.Exec(ctx, info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
			first := time.Since(start)
			if err == nil && string(r.Stdout) != "1\n" {
				err = fmt.Errorf("print(1) printed %q (%q)", r.Stdout, r.Stderr)
			}
			if derr := p.Destroy(ctx, info.ID); err == nil {
				err = derr
			}
			total := time.Since(start)
			if c := cpu() - c0; c > 0 {
				samples[name+" CPU of create+result+destroy"] = append(samples[name+" CPU of create+result+destroy"], c)
			}
			samples[name+" create"] = append(samples[name+" create"], created)
			samples[name+" create→first result"] = append(samples[name+" create→first result"], first)
			samples[name+" create+result+destroy"] = append(samples[name+" create+result+destroy"], total)
			return err
		}
	}
	python := "/usr/bin/python3"
	bwrapPath, _ := exec.LookPath("bwrap")
	floor := func(name, path string, args ...string) func() error {
		return func() error {
			c0 := cpu()
			start := time.Now()
			cmd := exec.CommandContext(ctx, path, args...)
			cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp"}
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			out, err := cmd.StdoutPipe()
			if err != nil {
				return err
			}
			if err := cmd.Start(); err != nil {
				return err
			}
			var got [2]byte
			_, rerr := io.ReadFull(out, got[:])
			d := time.Since(start)
			werr := cmd.Wait()
			if rerr != nil || string(got[:]) != "1\n" {
				return fmt.Errorf("%s printed %q: %v %v", name, got, rerr, werr)
			}
			samples[name] = append(samples[name], d)
			if c := cpu() - c0; c > 0 {
				samples["CPU of "+name] = append(samples["CPU of "+name], c)
			}
			return werr
		}
	}
	oneshot := func() error {
		c0 := cpu()
		start := time.Now()
		r, err := fs.Run(ctx, spec, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
		if err == nil && string(r.Stdout) != "1\n" {
			err = fmt.Errorf("print(1) printed %q (%q)", r.Stdout, r.Stderr)
		}
		samples["forkserver one-shot Run"] = append(samples["forkserver one-shot Run"], time.Since(start))
		if c := cpu() - c0; c > 0 {
			samples["forkserver one-shot Run CPU"] = append(samples["forkserver one-shot Run CPU"], c)
		}
		return err
	}
	ops := map[string]func() error{
		"oneshot":     oneshot,
		"forkserver":  lifecycle("forkserver", fs),
		"bubblewrap":  lifecycle("bubblewrap", bw),
		"bare bwrap":  floor("bare bwrap python3 print(1)", bwrapPath, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--", python, "-c", "print(1)"),
		"host python": floor("host python3 print(1)", python, "-c", "print(1)"),
	}
	names := []string{"oneshot", "forkserver", "bubblewrap", "bare bwrap", "host python"}
	load0, _ := os.ReadFile("/proc/loadavg")
	warmup := 3
	for round := 0; round < n+warmup; round++ {
		if round == warmup {
			clear(samples)
		}
		order := slices.Clone(names)
		rand.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, name := range order {
			if err := ops[name](); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	load1, _ := os.ReadFile("/proc/loadavg")
	var keys []string
	for k := range samples {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	floorMed := median(samples["bare bwrap python3 print(1)"])
	floorCPU := median(samples["CPU of bare bwrap python3 print(1)"])
	var b strings.Builder
	fmt.Fprintf(&b, "%d rounds (+%d warm-up), shuffled; load average before %q after %q; %d CPUs\n", n, warmup, strings.TrimSpace(string(load0)), strings.TrimSpace(string(load1)), numCPU())
	fmt.Fprintf(&b, "%-48s %9s %9s %9s %7s\n", "operation", "median", "p25", "p75", "×floor")
	for _, k := range keys {
		s := samples[k]
		// Times against bare bwrap's time, CPU against its CPU.
		f := floorMed
		if strings.Contains(k, "CPU") {
			f = floorCPU
		}
		fmt.Fprintf(&b, "%-48s %9s %9s %9s %7.2f\n", k, ms(median(s)), ms(pct(s, 25)), ms(pct(s, 75)), float64(median(s))/float64(f))
	}
	t.Log("\n" + b.String())
}

// cpuAccount moves this process into a cpuacct group of its own (cgroup
// v1, as root) and returns a reader of the group's CPU time, or one that
// reads 0 where that cannot be done.
func cpuAccount(t *testing.T) func() time.Duration {
	root := "/sys/fs/cgroup/cpuacct"
	if _, err := os.Stat(root + "/cpuacct.usage"); err != nil || os.Geteuid() != 0 {
		t.Log("no CPU times: no cgroup v1 cpuacct hierarchy, or not root")
		return func() time.Duration { return 0 }
	}
	dir := fmt.Sprintf("%s/warden-bench-%d", root, os.Getpid())
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/cgroup.procs", []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.WriteFile(root+"/cgroup.procs", []byte(strconv.Itoa(os.Getpid())), 0o644)
		for i := 0; i < 100 && os.Remove(dir) != nil; i++ {
			time.Sleep(50 * time.Millisecond)
		}
	})
	return func() time.Duration {
		b, _ := os.ReadFile(dir + "/cpuacct.usage")
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return time.Duration(n)
	}
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }

func median(s []time.Duration) time.Duration { return pct(s, 50) }

func pct(s []time.Duration, p int) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	return c[(len(c)-1)*p/100]
}
