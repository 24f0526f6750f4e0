package bwrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestRemoveOrphans plants what sandboxes leave (a process carrying the
// markers, cgroups with a process in them, a workspace, shim copies) for
// a Warden process that is gone, one that runs (pid 1 stands in for it),
// and this process, and checks that a sweep removes exactly the first and
// this process's unclaimed ones.
func TestRemoveOrphans(t *testing.T) {
	testutil.RequireRoot(t)
	if !cgroupV1("/sys/fs/cgroup") {
		t.Skip("needs the cgroup v1 memory, pids and cpu hierarchies")
	}
	// Not parallel: the start-up sweeps of this package's other tests
	// would remove what it plants.
	host, _ := os.Hostname()
	dead := host + "/999999999/1" // beyond any pid_max
	live := fmt.Sprintf("%s/1/%d", host, owner.StartTime(1))
	root := testutil.SharedDir(t)
	type planted struct {
		owner, id string
		proc      *exec.Cmd
		done      chan struct{}
		paths     []string
	}
	plant := func(ownerID string, id sandbox.ID) *planted {
		t.Helper()
		tg := owner.TagOf(ownerID)
		pl := &planted{owner: ownerID, id: string(id), done: make(chan struct{})}
		// A process as bwrap would be, in the sandbox's cgroups.
		pl.proc = exec.Command("sleep", "300")
		pl.proc.Env = []string{OwnerEnv + "=" + ownerID, SandboxEnv + "=" + string(id)}
		if err := pl.proc.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = pl.proc.Wait(); close(pl.done) }()
		t.Cleanup(func() { _ = pl.proc.Process.Kill(); <-pl.done })
		// Another process's sweep (a test binary running beside this one)
		// may remove a dead owner's remains while they are planted.
		fatal := t.Fatal
		if ownerID == dead {
			fatal = t.Log
		}
		cg, err := newCgroup(t.Context(), "/sys/fs/cgroup", string(id)+tagSep+tg, sandbox.Spec{}.WithDefaults())
		if err != nil {
			fatal(err)
		}
		t.Cleanup(func() { _ = cg.remove(context.Background()) })
		// A second process only in the cgroups, as the sandbox's own are.
		inner := exec.Command("sleep", "300")
		if err := inner.Start(); err != nil {
			t.Fatal(err)
		}
		innerDone := make(chan struct{})
		go func() { _ = inner.Wait(); close(innerDone) }()
		t.Cleanup(func() { _ = inner.Process.Kill(); <-innerDone })
		if err := cg.add(inner.Process.Pid); err != nil {
			fatal(err)
		}
		for _, c := range controllers {
			pl.paths = append(pl.paths, cg.dir(c))
		}
		ws := filepath.Join(root, wsPrefix+string(id)+tagSep+tg)
		if err := os.MkdirAll(filepath.Join(ws, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(root, shimDir), 0o711); err != nil {
			t.Fatal(err)
		}
		shim := filepath.Join(root, shimDir, shimName+"0123"+tagSep+tg)
		if err := os.WriteFile(shim, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
		pl.paths = append(pl.paths, ws, shim)
		return pl
	}
	gone := plant(dead, sandbox.NewID())
	running := plant(live, sandbox.NewID())
	claimed := sandbox.NewID()
	claim(claimed)
	defer release(claimed)
	mine := plant(self, claimed)
	left := plant(self, sandbox.NewID()) // destroyed, but not entirely removed
	// Another host's, and names that are not Warden's: never touched.
	other := filepath.Join(root, wsPrefix+"sb-1@1-1-elsewhere.example")
	odd := filepath.Join(root, wsPrefix+"sb-2@garbage")
	legacy := filepath.Join(root, wsPrefix+"sb-3-12345")
	for _, d := range []string{other, odd, legacy} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}

	// Other sweeps (of test binaries beside this one) may have removed
	// some of it already: the count is not checked, what is left is.
	if _, err := RemoveOrphans(t.Context(), Options{WorkspaceRoot: root}); err != nil {
		t.Fatal(err)
	}
	// The shim copy of this process is its own to keep while it runs.
	left.paths = left.paths[:len(left.paths)-1]
	for _, pl := range []*planted{gone, left} {
		select {
		case <-pl.done:
		case <-time.After(10 * time.Second):
			t.Errorf("the process of %s (owner %s) survived the sweep", pl.id, pl.owner)
		}
		for _, p := range pl.paths {
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s survived the sweep: %v", p, err)
			}
		}
	}
	for _, pl := range []*planted{running, mine} {
		select {
		case <-pl.done:
			t.Errorf("the sweep killed the process of %s (owner %s)", pl.id, pl.owner)
		default:
		}
		for _, p := range pl.paths {
			if _, err := os.Stat(p); err != nil {
				t.Errorf("the sweep removed %s: %v", p, err)
			}
		}
		procs, _ := os.ReadFile(filepath.Join(pl.paths[1], "cgroup.procs"))
		if len(procs) == 0 {
			t.Errorf("the sweep emptied the cgroup of %s", pl.id)
		}
	}
	for _, d := range []string{other, odd, legacy} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the sweep removed %s: %v", d, err)
		}
	}
}

// TestTwoProviders: sandboxes of two providers of one process survive
// each other's start-up sweep and Close.
func TestTwoProviders(t *testing.T) {
	t.Parallel()
	root := testutil.SharedDir(t)
	p1, id1 := newBoxWith(t, Options{WorkspaceRoot: root}, sandbox.Spec{})
	p2, err := New(t.Context(), Options{WorkspaceRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	info2, err := p2.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.RemoveOrphans(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := run(t, p2, info2.ID, sandbox.Shell, "echo ok", 0); string(r.Stdout) != "ok\n" {
		t.Errorf("the second provider's sandbox after a sweep: %q %q", r.Stdout, r.Stderr)
	}
	if err := p2.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := run(t, p1, id1, sandbox.Shell, "echo ok", 0); string(r.Stdout) != "ok\n" {
		t.Errorf("the first provider's sandbox after the second closed: %q %q", r.Stdout, r.Stderr)
	}
	if _, err := os.Stat(info2.Workspace); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the closed provider's workspace: %v", err)
	}
}

// TestDestroyLeavesNothing: Destroy waits for every process of the
// sandbox, however many, to be gone, then removes its cgroups (which the
// kernel allows only once they are empty).
func TestDestroyLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	p, id := newBox(t, sandbox.Spec{})
	b, err := p.Boxes.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := b.Box.l.cg.(*cgroup)
	if !ok {
		t.Skipf("no cgroup v1 here: %s", p.Enforcement().Note)
	}
	run(t, p, id, sandbox.Shell, "for i in $(seq 50); do setsid sleep 300 >/dev/null 2>&1 < /dev/null & done; echo ok", 0)
	if procs, _ := groupProcs(c.dir("pids")); len(procs) < 50 {
		t.Fatalf("%d processes in the group, want 50 and more", len(procs))
	}
	if err := p.Destroy(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	for _, ctl := range controllers {
		if _, err := os.Stat(c.dir(ctl)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s cgroup after Destroy: %v", ctl, err)
		}
	}
	if _, err := os.Stat(b.Info.Workspace); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("workspace after Destroy: %v", err)
	}
}
