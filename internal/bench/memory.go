package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Idle memory is measured on this many sandboxes (and plain interpreters)
// at once, each left idle for memIdle after its first execution: long
// enough for the agent's idle snapshot of the session.
const (
	memSandboxes = 10
	memIdle      = 300 * time.Millisecond
)

// MemStats summarizes the memory of idle sandboxes, or of the processes
// of a baseline, measured side by side: the proportional set size (PSS)
// of every process of each, which counts a page shared by n processes
// 1/n in each of them, so that the figures of sandboxes sharing pages add
// up to what they cost together.
type MemStats struct {
	// Name identifies the measurement, e.g. [BwrapIdlePSS].
	Name string `json:"name"`
	// Case is the case it was measured in.
	Case string `json:"case"`
	// Description says in a few words what one sample is.
	Description string `json:"description"`
	// N is the number of sandboxes (or baseline processes) measured.
	N int `json:"n"`

	Median int64 `json:"median_bytes"`
	Min    int64 `json:"min_bytes"`
	Max    int64 `json:"max_bytes"`
	// MedianMiB is Median in MiB, for readers of the JSON.
	MedianMiB float64 `json:"median_mib"`
	// Roles splits the median sandbox by process: the agent, its worker
	// and snapshot, bwrap, ... (empty for a baseline of single
	// processes).
	Roles []RoleMem `json:"roles,omitempty"`
	// Samples are the PSS of each sandbox, in bytes.
	Samples []int64 `json:"samples_bytes"`
}

// RoleMem is the median PSS of one kind of process in a sandbox.
type RoleMem struct {
	Role      string  `json:"role"`
	Median    int64   `json:"median_bytes"`
	MedianMiB float64 `json:"median_mib"`
}

func summarizeMem(name, kase string, samples []int64, byRole map[string][]int64) MemStats {
	m := MemStats{Name: name, Case: kase, Description: describe(name), N: len(samples), Samples: slices.Clone(samples)}
	if len(samples) == 0 {
		return m
	}
	m.Median, m.Min, m.Max = medianBytes(samples), slices.Min(samples), slices.Max(samples)
	m.MedianMiB = mib(m.Median)
	for _, r := range roleOrder(byRole) {
		v := byRole[r]
		for len(v) < len(samples) {
			v = append(v, 0) // a sandbox without such a process
		}
		med := medianBytes(v)
		m.Roles = append(m.Roles, RoleMem{Role: r, Median: med, MedianMiB: mib(med)})
	}
	return m
}

// roleOrder lists the agent's processes first, then the others by name.
func roleOrder(byRole map[string][]int64) []string {
	var out, rest []string
	for _, r := range []string{"agent", "worker", "snapshot"} {
		if _, ok := byRole[r]; ok {
			out = append(out, r)
		}
	}
	for r := range byRole {
		if !slices.Contains(out, r) {
			rest = append(rest, r)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

func medianBytes(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// memProbe measures the idle memory of one provider's sandboxes.
type memProbe struct {
	name string
	kase string // the case measuring; "" is CaseBwrap
	p    sandbox.Provider
	spec sandbox.Spec
	root rootFunc
	// check, if set, runs on the sandboxes after their PSS was read and
	// before they are destroyed.
	check func(context.Context, []sandbox.Info) error
	log   io.Writer // progress while starting many; nil: none
}

// measure creates k sandboxes, runs `x = 1` in each, leaves them idle,
// then reads the PSS of all their processes and destroys them.
func (m memProbe) measure(ctx context.Context, k int) (_ MemStats, err error) {
	var ids []sandbox.Info
	defer func() {
		for _, info := range ids {
			if derr := m.p.Destroy(context.WithoutCancel(ctx), info.ID); derr != nil {
				err = errors.Join(err, fmt.Errorf("destroying sandbox: %w", derr))
			}
		}
	}()
	for i := range k {
		if m.log != nil && k >= 50 && (i+1)%50 == 0 {
			fmt.Fprintf(m.log, "%s: %d of %d sandboxes started\n", m.name, i+1, k)
		}
		info, err := m.p.Create(ctx, m.spec)
		if err != nil {
			return MemStats{}, fmt.Errorf("creating sandbox: %w", err)
		}
		ids = append(ids, info)
		res, err := m.p.Exec(ctx, info.ID, pyReq())
		if err != nil {
			return MemStats{}, err
		}
		if err := checkResult(res); err != nil {
			return MemStats{}, err
		}
	}
	if err := sleep(ctx, memIdle); err != nil {
		return MemStats{}, err
	}
	var samples []int64
	byRole := map[string][]int64{}
	for i, info := range ids {
		root, err := m.root(ctx, info)
		if err != nil {
			return MemStats{}, err
		}
		pids, err := sandboxPIDs(root)
		if err != nil {
			return MemStats{}, err
		}
		names := roles(pids)
		var total int64
		sums := map[string]int64{}
		for _, pid := range pids {
			v, err := pss(pid)
			if err != nil {
				continue // ended meanwhile
			}
			total += v
			sums[names[pid]] += v
		}
		samples = append(samples, total)
		for r, v := range sums {
			for len(byRole[r]) < i {
				byRole[r] = append(byRole[r], 0)
			}
			byRole[r] = append(byRole[r], v)
		}
	}
	kase := m.kase
	if kase == "" {
		kase = CaseBwrap
	}
	if m.check != nil {
		if err := m.check(ctx, ids); err != nil {
			return MemStats{}, err
		}
	}
	return summarizeMem(m.name, kase, samples, byRole), nil
}

// idlePython starts k plain interpreters waiting on their input, leaves
// them idle like the sandboxes, and reads their PSS.
func (f floor) idlePython(ctx context.Context, k int) (MemStats, error) {
	var cmds []*exec.Cmd
	var stdins []io.Closer
	defer func() {
		for _, c := range stdins {
			c.Close()
		}
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()
	for range k {
		//nolint:gosec // G204: the host's own interpreter, with a fixed program
		cmd := exec.CommandContext(ctx, f.python, "-c", "import sys; sys.stdin.buffer.read()")
		cmd.Env = f.env()
		in, err := cmd.StdinPipe()
		if err != nil {
			return MemStats{}, err
		}
		stdins = append(stdins, in)
		if err := cmd.Start(); err != nil {
			return MemStats{}, err
		}
		cmds = append(cmds, cmd)
	}
	if err := sleep(ctx, memIdle); err != nil {
		return MemStats{}, err
	}
	var samples []int64
	for _, c := range cmds {
		v, err := pss(c.Process.Pid)
		if err != nil {
			return MemStats{}, err
		}
		samples = append(samples, v)
	}
	return summarizeMem(HostPythonIdlePSS, CaseBwrap, samples, nil), nil
}

// floor runs the baselines of a fresh sandbox: the same interpreter the
// sandboxes run, in a bare bwrap sandbox and on the host.
type floor struct {
	bwrap, python string
}

// newFloor finds bwrap and the interpreter of the sandboxes (the host's
// /usr, which the bubblewrap provider mounts by default).
func newFloor() (floor, error) {
	bw, err := exec.LookPath("bwrap")
	if err != nil {
		return floor{}, err
	}
	for _, py := range []string{"/usr/local/bin/python3", "/usr/bin/python3"} {
		if st, err := os.Stat(py); err == nil && st.Mode().IsRegular() {
			return floor{bwrap: bw, python: py}, nil
		}
	}
	return floor{}, errors.New("no python3 in /usr/local/bin or /usr/bin")
}

func (f floor) env() []string {
	return []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/tmp"}
}

// floorProgram prints 1 and waits for its input to end, so that its CPU
// time can be read before it exits: bwrap does not wait for the
// processes of its sandbox, whose times are then lost to their parent.
const floorProgram = "import sys; print(1, flush=True); sys.stdin.read()"

// bwrapOp is the floor of a fresh sandbox: bare bwrap with every namespace
// new and the host's /usr, running print(1), and no more (no seccomp,
// Landlock, cgroup or agent).
func (f floor) bwrapOp() op {
	args := []string{"--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
		"--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
		"--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
		"--", f.python, "-c", floorProgram}
	return f.run(BareBwrapPython, BareBwrapCPU, f.bwrap, args...)
}

// bashOp is the floor of a shell execution: bash -c true started on the
// host (as os/exec starts it) and waited for.
func (f floor) bashOp() op {
	return op{name: HostBashTrue, fn: func(ctx context.Context) ([]time.Duration, error) {
		cmd := exec.CommandContext(ctx, "/bin/bash", "-c", shellCommand)
		cmd.Env = f.env()
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("bash -c true: %w", err)
		}
		return nil, nil
	}}
}

// pythonOp is plain python3 -c 'print(1)' on the host.
func (f floor) pythonOp() op {
	return f.run(HostPython, HostPythonCPU, f.python, "-c", floorProgram)
}

// run is an op that runs a command that prints 1 then waits for the end
// of its input, with the CPU time (this process's and the command's, up
// to the 1) as a part.
func (f floor) run(name, cpu, path string, args ...string) op {
	return op{name: name, parts: []string{cpu}, fn: func(ctx context.Context) (_ []time.Duration, err error) {
		cpu0 := selfCPU()
		cmd := exec.CommandContext(ctx, path, args...)
		cmd.Env = f.env()
		setProcessGroup(cmd)
		cmd.WaitDelay = 5 * time.Second
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		defer func() {
			in.Close()
			if werr := cmd.Wait(); werr != nil && err == nil {
				err = fmt.Errorf("%s: %w", path, werr)
			}
		}()
		var got [2]byte
		if _, err := io.ReadFull(out, got[:]); err != nil || string(got[:]) != "1\n" {
			return nil, fmt.Errorf("%s printed %q (%v), want 1", path, got, err)
		}
		c := selfCPU()
		inside := treeCPU(cmd.Process.Pid)
		probing := selfCPU() - c
		return []time.Duration{inside + selfCPU() - cpu0 - probing}, nil
	}}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
