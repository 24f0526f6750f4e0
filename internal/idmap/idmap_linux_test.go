package idmap

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/testutil"
)

// as runs a shell command as uid and gid 1000, as the sandbox's user.
func as(t *testing.T, script string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// stager returns a Stager whose root is unmounted when t ends.
func stager(t *testing.T, root string) Stager {
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	return Stager{Root: root}
}

func owned(t *testing.T, path string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

func TestMountWritesAsOwner(t *testing.T) {
	testutil.RequireRoot(t)
	base := testutil.SharedDir(t) // the test's uid 1000 must reach the view
	cases := []struct {
		name     string
		uid, gid int
	}{
		{"root", 0, 0},
		{"another user", 1234, 1235},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(base, strings.ReplaceAll(c.name, " ", "_"))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, c.uid, c.gid); err != nil {
				t.Fatal(err)
			}
			s := stager(t, filepath.Join(base, ".idmap-"+strings.ReplaceAll(c.name, " ", "_")))
			m, err := s.Mount(dir, 1000, 1000, false)
			if err != nil {
				t.Fatalf("Mount(%s) = %v", dir, err)
			}
			defer func() {
				if err := m.Unmount(); err != nil {
					t.Error(err)
				}
				if _, err := os.Stat(m.Path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after Unmount, %s: %v, want it gone", m.Path, err)
				}
			}()
			if m.UID != uint32(c.uid) || m.GID != uint32(c.gid) {
				t.Errorf("Mount owner = %d:%d, want %d:%d", m.UID, m.GID, c.uid, c.gid)
			}
			if out, err := as(t, "echo hi > "+m.Path+"/f && mkdir "+m.Path+"/d && stat -c %u:%g "+m.Path+"/f"); err != nil {
				t.Fatalf("writing through the view as uid 1000: %v: %s", err, out)
			} else if strings.TrimSpace(out) != "1000:1000" {
				t.Errorf("through the view, the file is %s's, want 1000:1000", out)
			}
			for _, p := range []string{"f", "d"} {
				if u, g := owned(t, filepath.Join(dir, p)); u != uint32(c.uid) || g != uint32(c.gid) {
					t.Errorf("on the host, %s belongs to %d:%d, want %d:%d", p, u, g, c.uid, c.gid)
				}
			}
			// The view is nosuid: a set-user-ID bit gives nothing there.
			var sf unix.Statfs_t
			if err := unix.Statfs(m.Path, &sf); err != nil {
				t.Fatal(err)
			}
			if sf.Flags&unix.ST_NOSUID == 0 || sf.Flags&unix.ST_NODEV == 0 {
				t.Errorf("view flags %#x, want nosuid and nodev", sf.Flags)
			}
			// The host's uid 1000 is not the owner outside the view.
			if out, err := as(t, "echo no > "+dir+"/g"); err == nil {
				t.Errorf("uid 1000 wrote %s outside the view: %s", dir, out)
			}
		})
	}
}

// A symbolic link in the directory is resolved where it is followed: in
// the view it cannot lead to a place the user of the view could not write
// anyway.
func TestMountSymlinkDoesNotEscape(t *testing.T) {
	testutil.RequireRoot(t)
	base := testutil.SharedDir(t)
	dir := filepath.Join(base, "dir")
	secret := filepath.Join(base, "secret")
	for _, d := range []string{dir, secret} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(secret, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../secret", filepath.Join(dir, "rel")); err != nil {
		t.Fatal(err)
	}
	s := stager(t, filepath.Join(base, ".idmap"))
	m, err := s.Mount(dir, 1000, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount()
	for _, l := range []string{"link", "rel"} {
		if out, err := as(t, "echo x > "+m.Path+"/"+l+"/f"); err == nil {
			t.Errorf("uid 1000 wrote through %s in the view into a root-owned directory outside it: %s", l, out)
		}
	}
	if _, err := os.Stat(filepath.Join(secret, "f")); err == nil {
		t.Errorf("a file appeared in %s", secret)
	}
}

func TestMountUnsupportedFS(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	mnt := filepath.Join(base, "ramfs")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	// ramfs has no idmapped mounts (tmpfs has since Linux 6.3).
	if err := unix.Mount("ramfs", mnt, "ramfs", 0, ""); err != nil {
		t.Skipf("mounting a ramfs: %v", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	s := stager(t, filepath.Join(base, ".idmap"))
	m, err := s.Mount(mnt, 1000, 1000, false)
	if err == nil {
		m.Unmount()
		t.Fatalf("Mount(ramfs) succeeded, want %v", ErrUnsupported)
	}
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "ramfs") {
		t.Errorf("Mount(ramfs) = %v, want %v naming ramfs", err, ErrUnsupported)
	}
}

func TestRemoveOrphans(t *testing.T) {
	testutil.RequireRoot(t)
	base := t.TempDir()
	dir := filepath.Join(base, "dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := stager(t, filepath.Join(base, ".idmap"))
	mine, err := s.Mount(dir, 1000, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	defer mine.Unmount()
	// A view left by a process that is gone: pid 1 did not start at tick 1.
	dead, err := s.Mount(dir, 1000, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	orphan := filepath.Join(s.Root, "1-1-0123456789abcdef")
	if err := os.Mkdir(orphan, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.MoveMount(unix.AT_FDCWD, dead.Path, unix.AT_FDCWD, orphan, 0); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(dead.Path)
	n, err := s.RemoveOrphans()
	if n != 1 || err != nil {
		t.Errorf("RemoveOrphans() = %d, %v, want 1, nil", n, err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphan %s: %v, want it gone", orphan, err)
	}
	if _, err := os.Stat(mine.Path); err != nil {
		t.Errorf("this process's view was removed: %v", err)
	}
}

// A mount below the directory is not part of the view: the sandbox writes
// one file system, the directory's own.
func TestMountLeavesSubmountsOut(t *testing.T) {
	testutil.RequireRoot(t)
	base := testutil.SharedDir(t)
	dir := filepath.Join(base, "dir")
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "mode=755"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(sub, unix.MNT_DETACH)
	if err := os.WriteFile(filepath.Join(sub, "mounted"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := stager(t, filepath.Join(base, ".idmap"))
	m, err := s.Mount(dir, 1000, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Unmount()
	if _, err := os.Stat(filepath.Join(m.Path, "sub", "mounted")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the view shows the tmpfs mounted below the directory: %v", err)
	}
	if out, err := as(t, "touch "+m.Path+"/sub/f"); err != nil {
		t.Fatalf("writing the directory's own sub: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(sub, "f")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a write through the view reached the tmpfs below the directory: %v", err)
	}
}

// Views made at once, into a staging directory not yet made, all show
// their directory: the staging directory is bound once.
func TestMountConcurrent(t *testing.T) {
	testutil.RequireRoot(t)
	base := testutil.SharedDir(t)
	s := stager(t, filepath.Join(base, ".idmap"))
	const n = 4
	errs := make(chan error, n)
	ms := make(chan *Mount, n)
	for i := range n {
		dir := filepath.Join(base, strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "name"), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		go func() {
			m, err := s.Mount(dir, 1000, 1000, false)
			errs <- err
			ms <- m
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		m := <-ms
		defer m.Unmount()
		b, err := os.ReadFile(filepath.Join(m.Path, "name"))
		if err != nil || string(b) != filepath.Base(m.Source) {
			t.Errorf("view of %s shows %q, %v", m.Source, b, err)
		}
	}
}
