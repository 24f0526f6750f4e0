//go:build linux

package bwrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestCgroupV2 runs the cgroup v2 code against a directory standing in
// for a delegated cgroupfs subtree. It checks the files written, not the
// kernel's enforcement: this machine has no v2 hierarchy with controllers,
// so the v2 path is untested on a real v2 host.
func TestCgroupV2(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if cgroupV2(root) {
		t.Fatal("cgroupV2 of an empty directory = true")
	}
	write("cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
	write("cgroup.subtree_control", "")
	if !cgroupV2(root) {
		t.Fatal("cgroupV2 with memory, pids and cpu = false")
	}
	parent := filepath.Join(root, "warden")
	spec := sandbox.Spec{MemoryLimit: 256 << 20, PidsLimit: 64, CPULimit: 1.5}.WithDefaults()
	c, err := newCgroup2(t.Context(), parent, "sb1", spec)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"cgroup.subtree_control":        "+memory +pids +cpu",
		"warden/cgroup.subtree_control": "+memory +pids +cpu",
		"warden/sb1/memory.max":         "268435456",
		"warden/sb1/memory.swap.max":    "0",
		"warden/sb1/pids.max":           "64",
		"warden/sb1/cpu.max":            "150000 100000",
	}
	for name, w := range want {
		if got := read(name); got != w {
			t.Errorf("%s = %q, want %q", name, got, w)
		}
	}
	if src, dst := c.oomCounter(); src != filepath.Join(parent, "sb1", "memory.events") || dst != "/sys/fs/cgroup/memory.events" {
		t.Errorf("oomCounter = %s, %s", src, dst)
	}

	// add writes the pid; remove kills what the group lists.
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- sleep.Wait() }()
	if err := c.add(sleep.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if got := read("warden/sb1/cgroup.procs"); got != strconv.Itoa(sleep.Process.Pid) {
		t.Errorf("cgroup.procs = %q", got)
	}
	c.killAll()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("sleep after killAll: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("killAll did not kill the group's process")
	}
	// The stand-in's files keep the directory from going, as the real
	// cgroupfs's would not; empty it first.
	_ = os.WriteFile(filepath.Join(c.dir, "cgroup.procs"), nil, 0o644)

	// A second group reuses the enabled parent.
	if _, err := newCgroup2(t.Context(), parent, "sb2", spec); err != nil {
		t.Fatal(err)
	}

	// A provider given a delegated parent selects cgroup v2 without root.
	if p, err := New(t.Context(), Options{CgroupParent: parent, WorkspaceRoot: testutil.SharedDir(t)}); err == nil {
		if p.Enforcement().Limits != LimitsCgroupV2 || !p.Capabilities().CPULimit {
			t.Errorf("provider with CgroupParent: %+v %+v", p.Enforcement(), p.Capabilities())
		}
	}
}
