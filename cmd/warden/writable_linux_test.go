package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/testutil"
)

// privateDir returns a new directory only root may pass through, as
// /root.
func privateDir(t *testing.T) string {
	d := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// unmountAll unmounts every mount stacked at path.
func unmountAll(path string) {
	for unix.Unmount(path, unix.MNT_DETACH) == nil {
	}
}

// TestCLIWritableDirs: a directory the sandbox is to write is checked
// before anything starts. Under root, one the sandbox's uid 1000 cannot
// write is given it through an idmapped view, and what it creates there
// belongs to the directory's owner; a directory of root's that other users
// can reach, or one on a file system without idmapped mounts, is refused
// with what to change. An unprivileged user's bubblewrap sandbox writes
// as that user.
func TestCLIWritableDirs(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireDocker(t)
	testutil.RequireRoot(t)
	t.Parallel()
	root := testutil.SharedDir(t)
	environ := []string{"SANDBOX__WORKSPACE_ROOT=" + root, "SANDBOX__BWRAP_ROOT=host", "SANDBOX__PROVIDER_FALLBACK=false"}
	views := filepath.Join(root, ".idmap")
	t.Cleanup(func() { unmountAll(views) })
	mkdir := func(parent string, uid int) string {
		dir := filepath.Join(parent, "out")
		if err := os.Mkdir(dir, 0o755); err != nil || os.Chown(dir, uid, uid) != nil {
			t.Fatal(dir)
		}
		return dir
	}
	for _, c := range []struct {
		provider, flag string
	}{{"bubblewrap", "--write-dir"}, {"docker", "--write-dir"}, {"bubblewrap", "--workspace"}, {"docker", "--workspace"}} {
		code := func(dir string) string {
			if c.flag == "--workspace" {
				return "open('made', 'w').write('x')" // the workspace is at /workspace
			}
			return "open('" + dir + "/made', 'w').write('x')"
		}
		for _, w := range []struct {
			name string
			dir  string
			uid  uint32 // the owner of the file made
		}{
			{"root's, in a private directory", mkdir(privateDir(t), 0), 0},
			{"another user's", mkdir(testutil.SharedDir(t), 1234), 1234},
			{"uid 1000's", mkdir(testutil.SharedDir(t), 1000), 1000},
		} {
			rc, _, stderr := wardenCmd(t, "", environ, "exec", "--provider", c.provider, c.flag, w.dir, "--python", code(w.dir))
			st, err := os.Stat(w.dir + "/made")
			if rc != 0 || err != nil || st.Sys().(*syscall.Stat_t).Uid != w.uid {
				t.Errorf("%s %s %s dir = exit %d, stderr %q, %v; want the file made, by uid %d", c.provider, c.flag, w.name, rc, stderr, err, w.uid)
			}
		}

		// Root's, where other users can reach it: refused.
		dir := mkdir(testutil.SharedDir(t), 0)
		rc, stdout, stderr := wardenCmd(t, "", environ, "exec", "--provider", c.provider, c.flag, dir, "--python", code(dir))
		if rc != 1 || stdout != "" || !strings.Contains(stderr, c.flag+" "+dir+": "+c.provider+" sandboxes write as host uid 1000") ||
			!strings.Contains(stderr, "chown 1000:1000 "+dir) || !strings.Contains(stderr, "chmod 700 "+filepath.Dir(dir)) {
			t.Errorf("%s %s root's reachable dir = exit %d, stdout %q, stderr %q; want 1 and what to change", c.provider, c.flag, rc, stdout, stderr)
		}
		if _, err := os.Stat(dir + "/made"); err == nil {
			t.Errorf("%s %s: the sandbox ran", c.provider, c.flag)
		}
	}

	// A file system without idmapped mounts (ramfs; tmpfs has them since
	// Linux 6.3): refused before anything starts.
	fsDir := filepath.Join(testutil.SharedDir(t), "ramfs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("ramfs", fsDir, "ramfs", 0, "mode=755"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(fsDir, unix.MNT_DETACH)
	if err := os.Chown(fsDir, 1234, 1234); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bubblewrap", "docker"} {
		rc, _, stderr := wardenCmd(t, "", environ, "exec", "--provider", p, "--write-dir", fsDir, "--python", "1")
		if rc != 1 || !strings.Contains(stderr, "idmapped mounts are not supported on its file system (ramfs)") ||
			!strings.Contains(stderr, "chown 1000:1000 "+fsDir) {
			t.Errorf("%s --write-dir on ramfs = exit %d, stderr %q; want 1, the reason and what to change", p, rc, stderr)
		}
	}
	if ents, err := os.ReadDir(views); err != nil || len(ents) != 0 {
		t.Errorf("views left behind: %v, %v", ents, err)
	}

	// An unprivileged user running bubblewrap: the sandbox writes as
	// that user.
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv to run warden as another user")
	}
	home := testutil.SharedDir(t)
	bin := filepath.Join(home, "warden")
	if b, err := os.ReadFile(wardenBinary(t)); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal("copying the binary")
	}
	out, root := filepath.Join(home, "out"), filepath.Join(home, "root")
	for _, d := range []string{out, root} {
		if err := os.Mkdir(d, 0o755); err != nil || os.Chown(d, 1001, 1001) != nil {
			t.Fatal(d)
		}
	}
	cmd := exec.CommandContext(t.Context(), setpriv, "--reuid", "1001", "--regid", "1001", "--clear-groups",
		bin, "exec", "--provider", "bubblewrap", "--write-dir", out, "--python", "open('"+out+"/made', 'w').write('x')")
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "SANDBOX__WORKSPACE_ROOT=" + root, "SANDBOX__BWRAP_ROOT=host",
		"SANDBOX__PROVIDER_FALLBACK=false", "LOG__LEVEL=error"}
	b, err := cmd.CombinedOutput()
	st, serr := os.Stat(out + "/made")
	if err != nil || serr != nil || st.Sys().(*syscall.Stat_t).Uid != 1001 {
		t.Errorf("as uid 1001: %v %s, %v; want the file made, by uid 1001", err, b, serr)
	}
}

// TestCLIPrivateDirs: root's directories below one only root may pass
// through, as under /root: bubblewrap's uid 1000 cannot reach them, yet
// --read-dir (files only root may read included), --write-dir and warden
// run's workspace under ./logs work on both providers, through views.
func TestCLIPrivateDirs(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireDocker(t)
	testutil.RequireRoot(t)
	t.Parallel()
	root := testutil.SharedDir(t)
	views := filepath.Join(root, ".idmap")
	t.Cleanup(func() { unmountAll(views) })
	environ := []string{"SANDBOX__WORKSPACE_ROOT=" + root, "SANDBOX__BWRAP_ROOT=host", "SANDBOX__PROVIDER_FALLBACK=false"}
	for _, p := range []string{"bubblewrap", "docker"} {
		home := filepath.Join(privateDir(t), "home")
		for _, d := range []string{"data", "out"} {
			if err := os.MkdirAll(filepath.Join(home, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(home, "data", "secret.csv"), []byte("1,2\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, "task.py"), []byte("print('ran')\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code := "print(open('" + home + "/data/secret.csv').read().strip()); _ = open('" + home + "/out/r', 'w').write('x')"
		rc, stdout, stderr := wardenCmd(t, home, environ, "exec", "--provider", p, "--read-dir", "./data", "--write-dir", "./out", "--python", code)
		st, err := os.Stat(filepath.Join(home, "out", "r"))
		if rc != 0 || stdout != "1,2\n" || err != nil || st.Sys().(*syscall.Stat_t).Uid != 0 {
			t.Errorf("%s exec in a private dir = exit %d, stdout %q, stderr %q, %v; want 1,2 and out/r made, root's", p, rc, stdout, stderr, err)
		}
		rc, _, stderr = wardenCmd(t, home, environ, "exec", "--provider", p, "--read-dir", "./data", "--shell", "touch "+home+"/data/x")
		if rc == 0 {
			t.Errorf("%s: the sandbox wrote a --read-dir: %s", p, stderr)
		}
		rc, stdout, stderr = wardenCmd(t, home, environ, "run", "--provider", p, "task.py")
		if rc != 0 || stdout != "ran\n" {
			t.Errorf("%s run in a private dir = exit %d, stdout %q, stderr %q", p, rc, stdout, stderr)
		}
	}
	if ents, err := os.ReadDir(views); err != nil || len(ents) != 0 {
		t.Errorf("views left behind: %v, %v", ents, err)
	}
}

// TestCLIViewsAfterKill: the views of a Warden killed with SIGKILL are
// removed by warden prune, and only those.
func TestCLIViewsAfterKill(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireRoot(t)
	t.Parallel()
	root := testutil.SharedDir(t)
	views := filepath.Join(root, ".idmap")
	t.Cleanup(func() { unmountAll(views) })
	out := filepath.Join(privateDir(t), "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), wardenBinary(t), "exec", "--provider", "bubblewrap", "--write-dir", out,
		"--python", "open('"+out+"/started', 'w').close(); import time; time.sleep(120)")
	cmd.Env = append(os.Environ(), "SANDBOX__WORKSPACE_ROOT="+root, "SANDBOX__BWRAP_ROOT=host", "SANDBOX__PROVIDER_FALLBACK=false")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := os.Stat(filepath.Join(out, "started")); err == nil {
			break
		}
		if i == 600 {
			t.Fatal("the sandbox did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if ents, _ := os.ReadDir(views); len(ents) != 1 {
		t.Fatalf("views after the kill: %v, want the killed Warden's one", ents)
	}
	rc, stdout, stderr := wardenCmd(t, "", []string{"SANDBOX__WORKSPACE_ROOT=" + root}, "prune")
	if rc != 0 || !strings.Contains(stdout, "removed 1 orphaned idmapped views") {
		t.Errorf("warden prune = exit %d, stdout %q, stderr %q; want the view removed", rc, stdout, stderr)
	}
	if ents, _ := os.ReadDir(views); len(ents) != 0 {
		t.Errorf("views after prune: %v", ents)
	}
}

// TestViewable: when a directory the sandbox's uid cannot write may be
// given it as its owner.
func TestViewable(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	shared, private := testutil.SharedDir(t), privateDir(t)
	cases := []struct {
		name     string
		parent   string
		uid, gid int
		mode     os.FileMode
		ok       bool
	}{
		{"another user's", shared, 1234, 1234, 0o755, true},
		{"root's, reachable", shared, 0, 0, 0o755, false},
		{"root's group, reachable", shared, 1234, 0, 0o755, false},
		{"root's, itself closed", shared, 0, 0, 0o700, true},
		{"root's, below a closed directory", private, 0, 0, 0o755, true},
		{"not writable by its owner", shared, 1234, 1234, 0o555, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(c.parent, strconv.Itoa(i))
			if err := os.Mkdir(dir, 0o700); err != nil || os.Chown(dir, c.uid, c.gid) != nil || os.Chmod(dir, c.mode) != nil {
				t.Fatal(dir)
			}
			d, unpin := pin(hostDir{flag: "--write-dir", path: dir})
			defer unpin()
			fi, err := os.Stat(d.fs())
			if err != nil {
				t.Fatal(err)
			}
			err = viewable(d, fi.Sys().(*syscall.Stat_t), 1000)
			if (err == nil) != c.ok {
				t.Errorf("viewable(%s, %d:%d %04o) = %v, want ok %v", dir, c.uid, c.gid, c.mode, err, c.ok)
			}
		})
	}
}
