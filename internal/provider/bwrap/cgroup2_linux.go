package bwrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// cgroup v2 (the unified hierarchy). Untested on a real v2 host: the
// machine this was written on runs cgroup v1, so the tests exercise this
// code against a directory standing in for cgroupfs.

// v2Controllers must all be available to limit a sandbox.
var v2Controllers = []string{"memory", "pids", "cpu"}

// cgroupV2 reports whether dir is in a unified hierarchy offering the
// controllers Warden needs.
func cgroupV2(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return false
	}
	have := strings.Fields(string(b))
	for _, c := range v2Controllers {
		if !slices.Contains(have, c) {
			return false
		}
	}
	return true
}

// cgroup2 is one sandbox's group: <parent>/<name>.
type cgroup2 struct {
	dir string
}

// newCgroup2 creates the sandbox's group under parent and sets its limits.
// Parent is created if missing, and the controllers are enabled for its
// children (and for parent itself in its own parent, which must allow it:
// the root, or a directory delegated to Warden).
func newCgroup2(ctx context.Context, parent, name string, spec sandbox.Spec) (*cgroup2, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup parent: %w", err)
	}
	enable := "+" + strings.Join(v2Controllers, " +")
	if up := filepath.Dir(parent); cgroupV2(up) {
		// Best effort: a delegated parent already has them.
		_ = enableControllers(up, enable)
	}
	if err := enableControllers(parent, enable); err != nil {
		return nil, err
	}
	c := &cgroup2{dir: filepath.Join(parent, name)}
	if err := os.Mkdir(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup: %w", err)
	}
	period := 100000
	writes := [][2]string{
		{"memory.max", strconv.FormatInt(spec.MemoryLimit, 10)},
		{"pids.max", strconv.FormatInt(spec.PidsLimit, 10)},
		{"cpu.max", fmt.Sprintf("%d %d", int64(spec.CPULimit*float64(period)), period)},
	}
	for _, w := range writes {
		if err := writeFile(filepath.Join(c.dir, w[0]), w[1]); err != nil {
			_ = c.remove(ctx)
			return nil, fmt.Errorf("setting %s: %w", w[0], err)
		}
	}
	// No swap on top of the memory limit, where the kernel accounts swap
	// (the file is missing without swap accounting).
	_ = writeFile(filepath.Join(c.dir, "memory.swap.max"), "0")
	return c, nil
}

func enableControllers(dir, enable string) error {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	on := strings.Fields(string(b))
	missing := false
	for _, c := range v2Controllers {
		missing = missing || !slices.Contains(on, c)
	}
	if !missing {
		return nil
	}
	if err := writeFile(filepath.Join(dir, "cgroup.subtree_control"), enable); err != nil {
		return fmt.Errorf("enabling cgroup controllers in %s: %w", dir, err)
	}
	return nil
}

// writeFile writes to an existing cgroup file, or creates it: real
// cgroupfs has every interface file already, the test stand-in does not.
func writeFile(name, data string) error {
	return os.WriteFile(name, []byte(data), 0o644)
}

func (c *cgroup2) setLow(low bool) error {
	weight := "100"
	if low {
		weight = "1"
	}
	return writeFile(filepath.Join(c.dir, "cpu.weight"), weight)
}

func (c *cgroup2) add(pid int) error {
	if err := writeFile(filepath.Join(c.dir, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
		return fmt.Errorf("joining cgroup: %w", err)
	}
	return nil
}

func (c *cgroup2) oomCounter() (src, dst string) {
	return filepath.Join(c.dir, "memory.events"), "/sys/fs/cgroup/memory.events"
}

// killAll uses cgroup.kill (kernel 5.14+) where there is one, and kills
// the listed processes otherwise.
func (c *cgroup2) killAll() {
	if _, err := os.Stat(filepath.Join(c.dir, "cgroup.kill")); err == nil {
		_ = writeFile(filepath.Join(c.dir, "cgroup.kill"), "1")
	}
	pids, _ := groupProcs(c.dir)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (c *cgroup2) drain(ctx context.Context) error { return drainGroups(ctx, c.dir) }

func (c *cgroup2) remove(ctx context.Context) error { return removeGroup(ctx, c.dir) }
