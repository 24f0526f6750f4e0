package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// sandboxPIDs returns the host processes of a sandbox whose tree starts at
// root: root, its descendants, and every other process in the PID
// namespaces they are in (a docker exec's processes descend from the
// container runtime's shim, not from the container's first process). The
// host's own PID namespace is never taken whole.
func sandboxPIDs(root int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	own, _ := os.Readlink("/proc/self/ns/pid")
	parent := map[int]int{}
	ns := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, err := parentPID(pid)
		if err != nil {
			continue // gone meanwhile
		}
		parent[pid] = ppid
		ns[pid], _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	}
	if _, ok := parent[root]; !ok {
		return nil, fmt.Errorf("process %d is gone", root)
	}
	in := map[int]bool{root: true}
	for changed := true; changed; {
		changed = false
		for pid, ppid := range parent {
			if !in[pid] && in[ppid] {
				in[pid], changed = true, true
			}
		}
	}
	spaces := map[string]bool{}
	for pid := range in {
		if n := ns[pid]; n != "" && n != own {
			spaces[n] = true
		}
	}
	for pid, n := range ns {
		if spaces[n] {
			in[pid] = true
		}
	}
	out := make([]int, 0, len(in))
	for pid := range in {
		out = append(out, pid)
	}
	slices.Sort(out)
	return out, nil
}

// treePIDs returns root and its descendants, as the kernel lists each
// thread's children: cheaper than sandboxPIDs, which reads every process.
func treePIDs(root int) []int {
	out := []int{root}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil {
					out = append(out, pid)
				}
			}
		}
	}
	return out
}

// treeCPU returns the CPU time root and its descendants have used.
func treeCPU(root int) time.Duration {
	var total time.Duration
	for _, pid := range treePIDs(root) {
		if d, err := cpuTime(pid); err == nil {
			total += d
		}
	}
	return total
}

// parentPID reads the parent of pid from /proc/<pid>/stat.
func parentPID(pid int) (int, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(f[1])
}

// statFields returns the fields of /proc/<pid>/stat after the command
// name: f[0] is the state, f[1] the parent, f[11] utime and so on (the
// field numbered n in proc(5) is f[n-3]).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// pss returns the proportional set size of pid, in bytes: its resident
// memory with each page shared by n processes counted 1/n.
func pss(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "Pss" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("smaps_rollup of %d: %w", pid, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("smaps_rollup of %d has no Pss line", pid)
}

// cpuTime returns the CPU time pid has used so far: the run time of each
// of its threads (schedstat, in nanoseconds), plus that of the children it
// has reaped (in clock ticks, coarser).
func cpuTime(pid int) (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		total += time.Duration(ns)
	}
	if f, err := statFields(pid); err == nil {
		for _, s := range f[13:15] { // cutime, cstime
			if v, err := strconv.ParseInt(s, 10, 64); err == nil {
				total += time.Duration(v) * time.Second / clockTicks
			}
		}
	}
	return total, nil
}

// clockTicks is USER_HZ, the unit of times in /proc/<pid>/stat: 100 on
// every Linux architecture Warden runs on.
const clockTicks = 100

// command returns the command name of pid (its comm).
func command(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// roles names each process of a sandbox by what it is: the first Python
// interpreter of the tree is the agent, its Python child the worker, and
// the worker's Python child a snapshot; every other process goes by its
// command name (bwrap, bash, ...).
func roles(pids []int) map[int]string {
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	python := func(p int) bool { return strings.HasPrefix(command(p), "python") }
	out := map[int]string{}
	for _, p := range pids {
		c := command(p)
		if !strings.HasPrefix(c, "python") {
			out[p] = c
			continue
		}
		depth := 0
		for q := p; ; depth++ {
			pp, err := parentPID(q)
			if err != nil || !in[pp] || !python(pp) {
				break
			}
			q = pp
		}
		out[p] = [...]string{"agent", "worker", "snapshot"}[min(depth, 2)]
	}
	return out
}
