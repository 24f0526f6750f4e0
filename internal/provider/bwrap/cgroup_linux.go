package bwrap

import (
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

// limiter is a sandbox's cgroup, v1 or v2.
type limiter interface {
	// add moves pid into the group.
	add(pid int) error
	// killAll kills whatever is left in the group.
	killAll()
	// remove kills what is left and removes the group.
	remove()
	// oomCounter is the host file or directory to bind read-only into the
	// sandbox, and where, so the agent can read the group's OOM kill count.
	oomCounter() (src, dst string)
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

// cgroup is one sandbox's group in each controller: warden/<id>.
type cgroup struct {
	root, name string
}

func (c *cgroup) dir(controller string) string {
	return filepath.Join(c.root, controller, "warden", c.name)
}

func newCgroup(root, id string, spec sandbox.Spec) (*cgroup, error) {
	c := &cgroup{root: root, name: id}
	for _, ctl := range controllers {
		if err := os.MkdirAll(c.dir(ctl), 0o755); err != nil {
			c.remove()
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
			c.remove()
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

func (c *cgroup) oomCounter() (src, dst string) {
	return c.dir("memory"), "/sys/fs/cgroup/memory"
}

// addChildren moves the children bwrap has forked so far (its namespace
// init) into the group, waiting for the first. They wait on --block-fd,
// so nothing ran yet; what they fork later inherits the group.
func addChildren(c limiter, pid int) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if kids := children(pid); len(kids) > 0 {
			return addTree(c, kids)
		}
		if time.Now().After(deadline) {
			return errors.New("bwrap forked no sandbox process")
		}
		time.Sleep(time.Millisecond)
	}
}

// addTree adds pids and their descendants as they are now.
func addTree(c limiter, pids []int) error {
	for _, k := range pids {
		if err := c.add(k); err != nil {
			return err
		}
		if err := addTree(c, children(k)); err != nil {
			return err
		}
	}
	return nil
}

func children(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// killAll kills whatever is left in the groups.
func (c *cgroup) killAll() {
	for range 10 {
		b, err := os.ReadFile(filepath.Join(c.dir("pids"), "cgroup.procs"))
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(n, syscall.SIGKILL)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (c *cgroup) remove() {
	c.killAll()
	for _, ctl := range controllers {
		for range 50 {
			if err := os.Remove(c.dir(ctl)); err == nil || os.IsNotExist(err) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
