package forkserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// controllers are the cgroup v1 hierarchies a sandbox gets a group in.
var controllers = []string{"memory", "pids", "cpu"}

// cgroupV1 reports whether the v1 controllers are mounted under root.
func cgroupV1(root string) bool {
	for _, c := range controllers {
		if _, err := os.Stat(filepath.Join(root, c, "cgroup.procs")); err != nil {
			return false
		}
	}
	return true
}

// cgroup is one sandbox's group in each controller: warden-fork/<name>.
type cgroup struct{ root, name string }

func (c *cgroup) dir(ctl string) string { return filepath.Join(c.root, ctl, "warden-fork", c.name) }

func newCgroup(root, name string, spec sandbox.Spec) (*cgroup, error) {
	c := &cgroup{root: root, name: name}
	for _, ctl := range controllers {
		if err := os.MkdirAll(c.dir(ctl), 0o755); err != nil {
			_ = c.remove(context.Background())
			return nil, fmt.Errorf("creating cgroup: %w", err)
		}
	}
	mem := strconv.FormatInt(spec.MemoryLimit, 10)
	writes := [][2]string{
		{filepath.Join(c.dir("memory"), "memory.limit_in_bytes"), mem},
		{filepath.Join(c.dir("pids"), "pids.max"), strconv.FormatInt(spec.PidsLimit, 10)},
		{filepath.Join(c.dir("cpu"), "cpu.cfs_period_us"), "100000"},
		{filepath.Join(c.dir("cpu"), "cpu.cfs_quota_us"), strconv.FormatInt(int64(spec.CPULimit*100000), 10)},
	}
	for _, w := range writes {
		if err := os.WriteFile(w[0], []byte(w[1]), 0o644); err != nil {
			_ = c.remove(context.Background())
			return nil, fmt.Errorf("setting %s: %w", filepath.Base(w[0]), err)
		}
	}
	_ = os.WriteFile(filepath.Join(c.dir("memory"), "memory.memsw.limit_in_bytes"), []byte(mem), 0o644)
	return c, nil
}

func (c *cgroup) add(pid int) error {
	for _, ctl := range controllers {
		if err := os.WriteFile(filepath.Join(c.dir(ctl), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("joining %s cgroup: %w", ctl, err)
		}
	}
	return nil
}

func procs(dir string) []int {
	f, err := os.Open(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []int
	s := bufio.NewScanner(f)
	for s.Scan() {
		if n, err := strconv.Atoi(strings.TrimSpace(s.Text())); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// drain kills what is in the groups until they are empty, or ctx ends.
func (c *cgroup) drain(ctx context.Context) error {
	pause := 100 * time.Microsecond
	for {
		empty := true
		for _, ctl := range controllers {
			for _, pid := range procs(c.dir(ctl)) {
				empty = false
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cgroup %s not empty: %w", c.name, ctx.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// remove kills what is left and removes the groups.
func (c *cgroup) remove(ctx context.Context) error {
	err := c.drain(ctx)
	var errs []error
	for _, ctl := range controllers {
		d := c.dir(ctl)
		pause := 100 * time.Microsecond
		for {
			rerr := os.Remove(d)
			if rerr == nil || errors.Is(rerr, os.ErrNotExist) {
				break
			}
			if ctx.Err() != nil {
				errs = append(errs, rerr)
				break
			}
			time.Sleep(pause)
			pause = min(2*pause, 20*time.Millisecond)
		}
	}
	return errors.Join(append(errs, err)...)
}

// oomKills is the count of out-of-memory kills in the sandbox's memory
// cgroup (memory.oom_control's oom_kill, Linux 4.13).
func (c *cgroup) oomKills() (int64, bool) {
	b, err := os.ReadFile(filepath.Join(c.dir("memory"), "memory.oom_control"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
