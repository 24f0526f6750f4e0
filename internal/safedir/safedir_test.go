package safedir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestEnsure(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	if err := Check(base); err != nil {
		t.Fatalf("a fresh temporary directory: %v", err)
	}
	// Created when missing, with its parents.
	fresh := filepath.Join(base, "a", "warden")
	if err := Ensure(fresh, 0o711); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(fresh); err != nil || st.Mode().Perm() != 0o711 {
		t.Fatalf("Ensure made %v, %v", st, err)
	}

	refuse := func(name, dir string) {
		t.Helper()
		if err := Ensure(dir, 0o711); !errors.Is(err, ErrUnsafe) {
			t.Errorf("%s: Ensure(%s) = %v, want ErrUnsafe", name, dir, err)
		}
	}
	open := filepath.Join(base, "open")
	mustMkdir(t, open, 0o777)
	refuse("writable by all", open)
	group := filepath.Join(base, "group")
	mustMkdir(t, group, 0o770)
	refuse("writable by the group", group)
	refuse("below a directory all may write to", filepath.Join(open, "warden"))
	sticky := filepath.Join(base, "sticky")
	mustMkdir(t, sticky, os.ModeSticky|0o777)
	if err := Ensure(filepath.Join(sticky, "warden"), 0o711); err != nil {
		t.Errorf("below a sticky directory like /tmp: %v", err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(fresh, link); err != nil {
		t.Fatal(err)
	}
	refuse("a symbolic link", link)
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Check(file); !errors.Is(err, ErrUnsafe) {
		t.Errorf("a file: Check = %v, want ErrUnsafe", err)
	}

	// Links on the way are followed as the kernel follows them, and what
	// they lead to is checked too.
	if err := os.Symlink("a/../a", filepath.Join(base, "rel")); err != nil {
		t.Fatal(err)
	}
	if err := Ensure(filepath.Join(base, "rel", "via-link"), 0o711); err != nil {
		t.Errorf("below this user's relative link to a safe directory: %v", err)
	}
	if err := os.Symlink(open, filepath.Join(base, "to-open")); err != nil {
		t.Fatal(err)
	}
	refuse("below a link to a directory all may write to", filepath.Join(base, "to-open", "warden"))
	if err := os.Symlink("loop", filepath.Join(base, "loop")); err != nil {
		t.Fatal(err)
	}
	if err := Check(filepath.Join(base, "loop", "warden")); err == nil {
		t.Error("below a link to itself: Check = nil")
	}

	if os.Geteuid() == 0 {
		// Made first by another user, as anyone may in /tmp.
		theirs := filepath.Join(sticky, "theirs")
		mustMkdir(t, theirs, 0o755)
		if err := os.Chown(theirs, 1000, 1000); err != nil {
			t.Fatal(err)
		}
		refuse("another user's", theirs)
		refuse("below another user's", filepath.Join(theirs, "warden"))

		// A link another user made in a sticky directory: they may point
		// it elsewhere between the check and the use, even at a directory
		// that passes every check.
		theirLink := filepath.Join(sticky, "their-link")
		if err := os.Symlink(fresh, theirLink); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(theirLink, 1000, 1000); err != nil {
			t.Fatal(err)
		}
		refuse("below another user's link to a safe directory", filepath.Join(theirLink, "warden"))
		// A link of this user's there is fine.
		ownLink := filepath.Join(sticky, "own-link")
		if err := os.Symlink(fresh, ownLink); err != nil {
			t.Fatal(err)
		}
		if err := Ensure(filepath.Join(ownLink, "warden"), 0o711); err != nil {
			t.Errorf("below this user's link in a sticky directory: %v", err)
		}
	}
}

func mustMkdir(t *testing.T, dir string, perm os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}
