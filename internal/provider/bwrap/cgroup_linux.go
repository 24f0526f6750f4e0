package bwrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// limiter is a sandbox's cgroup, v1 or v2.
type limiter interface {
	// add moves pid into the group.
	add(pid int) error
	// drain kills what is in the group until it is empty, or ctx ends.
	drain(ctx context.Context) error
	// remove kills what is left and removes the group, waiting for its
	// processes to be gone, until ctx ends. What it cannot remove is left
	// to the next sweep (see RemoveOrphans), which finds it by its name.
	remove(ctx context.Context) error
	// oomCounter is the host file or directory to bind read-only into the
	// sandbox, and where, so the agent can read the group's OOM kill count.
	oomCounter() (src, dst string)
	// setLow gives the group the lowest CPU weight there is (low) or the
	// default one: while CPUs are short, a group of low weight gets CPU
	// time only as far as groups of the default weight leave some.
	setLow(low bool) error
}

// controllers are the cgroup v1 hierarchies a sandbox gets a group in.
var controllers = []string{"memory", "pids", "cpu"}

// cgroupV1 reports whether the v1 controllers Warden needs are mounted.
func cgroupV1(root string) bool {
	for _, c := range controllers {
		if _, err := os.Stat(filepath.Join(root, c, "cgroup.procs")); err != nil {
			return false
		}
	}
	return true
}

// cgroup is one sandbox's group in each controller: warden/<name>.
type cgroup struct {
	root, name string
}

func (c *cgroup) dir(controller string) string {
	return filepath.Join(c.root, controller, "warden", c.name)
}

// newCgroup creates the sandbox's group, named name, in each controller
// and sets its limits.
func newCgroup(ctx context.Context, root, name string, spec sandbox.Spec) (*cgroup, error) {
	c := &cgroup{root: root, name: name}
	for _, ctl := range controllers {
		if err := os.MkdirAll(c.dir(ctl), 0o755); err != nil {
			_ = c.remove(ctx)
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
			_ = c.remove(ctx)
			return nil, fmt.Errorf("setting %s: %w", filepath.Base(w[0]), err)
		}
	}
	// No swap on top of the memory limit, where the kernel accounts swap.
	_ = os.WriteFile(filepath.Join(c.dir("memory"), "memory.memsw.limit_in_bytes"), []byte(mem), 0o644)
	return c, nil
}

// add moves pid into every group.
func (c *cgroup) add(pid int) error {
	for _, ctl := range controllers {
		if err := os.WriteFile(filepath.Join(c.dir(ctl), "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("joining %s cgroup: %w", ctl, err)
		}
	}
	return nil
}

func (c *cgroup) setLow(low bool) error {
	shares := "1024"
	if low {
		shares = "2"
	}
	return os.WriteFile(filepath.Join(c.dir("cpu"), "cpu.shares"), []byte(shares), 0o644)
}

func (c *cgroup) oomCounter() (src, dst string) {
	return c.dir("memory"), "/sys/fs/cgroup/memory"
}

// killAll kills whatever is left in the groups.
func (c *cgroup) killAll() {
	for _, ctl := range controllers {
		pids, _ := groupProcs(c.dir(ctl))
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func (c *cgroup) drain(ctx context.Context) error {
	return drainGroups(ctx, c.dir("memory"), c.dir("pids"), c.dir("cpu"))
}

func (c *cgroup) remove(ctx context.Context) error {
	c.killAll()
	var errs []error
	for _, ctl := range controllers {
		errs = append(errs, removeGroup(ctx, c.dir(ctl)))
	}
	return errors.Join(errs...)
}
