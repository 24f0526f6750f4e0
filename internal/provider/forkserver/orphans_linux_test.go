package forkserver

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestRemoveOrphans: what a dead Warden left (its tag names a process
// that no longer runs) goes; this process's, a live process's and
// untagged names stay.
func TestRemoveOrphans(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	p := newProvider(t)
	if !p.cgroups {
		t.Skip("no cgroup v1 here")
	}
	dead := fmt.Sprintf("fsorphan%d@%d-%d", os.Getpid(), os.Getpid(), startTime(os.Getpid())+1) // this pid, another start: gone
	live := fmt.Sprintf("fslive%d@%d-%d", os.Getpid(), 1, startTime(1))                         // init: runs
	mine := tagged(fmt.Sprintf("fsmine%d", os.Getpid()))
	plain := fmt.Sprintf("fsplain%d", os.Getpid())
	var cgs, wss []string
	for _, name := range []string{dead, live, mine, plain} {
		for _, ctl := range controllers {
			d := filepath.Join(p.opts.CgroupRoot, ctl, "warden-fork", name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			cgs = append(cgs, d)
		}
		w := filepath.Join(p.opts.WorkspaceRoot, wsPrefix+name)
		if err := os.MkdirAll(filepath.Join(w, "sub"), 0o700); err != nil {
			t.Fatal(err)
		}
		wss = append(wss, w)
	}
	t.Cleanup(func() {
		for _, d := range cgs {
			_ = os.Remove(d)
		}
		for _, w := range wss {
			_ = os.RemoveAll(w)
		}
	})
	if _, err := p.RemoveOrphans(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(cgs, wss...) {
		_, err := os.Stat(d)
		isDead := filepath.Base(d) == dead || filepath.Base(d) == wsPrefix+dead
		if isDead && !os.IsNotExist(err) {
			t.Errorf("%s was left: %v", d, err)
		}
		if !isDead && err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}
