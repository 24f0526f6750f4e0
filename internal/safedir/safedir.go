// Package safedir makes sure a directory Warden keeps its sandboxes'
// files in belongs to Warden alone.
//
// The default workspace root, $TMPDIR/warden, sits in a directory every
// user may write to. Another user who created it first, or who may write
// to it, could swap a workspace for a symbolic link (and have Docker mount
// a host directory of their choosing into a sandbox) or plant the files a
// sandbox runs. Ensure refuses such a directory instead of using it.
package safedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrUnsafe is wrapped by every refusal of Ensure.
var ErrUnsafe = errors.New("unsafe directory")

// Ensure creates dir with perm (and its parents) if it is missing, then
// checks that nobody but this process's effective user and root can change
// what is in it: dir is a directory, not a symbolic link, owned by the
// effective user and writable by no one else; every directory above it is
// owned by root or the effective user and, if others may write to it, has
// the sticky bit (as /tmp does), so they cannot rename what is in it.
func Ensure(dir string, perm os.FileMode) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, perm); err != nil {
		return err
	}
	return Check(abs)
}

// Check is Ensure without creating dir.
func Check(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	euid := uint32(os.Geteuid())
	st, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	if st.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s is a symbolic link: %w", abs, ErrUnsafe)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory: %w", abs, ErrUnsafe)
	}
	if uid := owner(st); uid != euid {
		return fmt.Errorf("%s belongs to uid %d, not to uid %d that runs Warden: another user could change what sandboxes use there: %w", abs, uid, euid, ErrUnsafe)
	}
	if st.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("%s is writable by other users (mode %04o): %w", abs, st.Mode().Perm(), ErrUnsafe)
	}
	// The way there: every directory and link on it, unresolved, so that
	// a link such as macOS's /tmp is accepted only where nobody but root
	// or this user could have made or could replace it.
	_, err = checkPath(filepath.Dir(abs), euid, 0)
	return err
}

// maxLinks bounds the symbolic links followed on one path, as the
// kernel's own limit does.
const maxLinks = 40

// checkPath checks every directory and symbolic link on the way to the
// absolute path p, component by component as the kernel resolves it, and
// returns p with its links resolved. A link must belong to root or euid
// (the directory holding it, already checked, decides who may replace
// it); a directory must too, and if others may write to it it must have
// the sticky bit, so they cannot rename what is in it.
func checkPath(p string, euid uint32, links int) (string, error) {
	resolved := "/"
	if err := checkDir(resolved, p, euid); err != nil {
		return "", err
	}
	for _, name := range strings.Split(p, "/") {
		switch name {
		case "", ".":
			continue
		case "..":
			// resolved has no links in it, so its parent is lexical.
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, name)
		st, err := os.Lstat(next)
		if err != nil {
			return "", err
		}
		if st.Mode()&os.ModeSymlink == 0 {
			if err := checkDir(next, p, euid); err != nil {
				return "", err
			}
			resolved = next
			continue
		}
		if uid := owner(st); uid != 0 && uid != euid {
			return "", fmt.Errorf("%s, a symbolic link on the way to %s, belongs to uid %d: %w", next, p, uid, ErrUnsafe)
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many symbolic links: %w", p, ErrUnsafe)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = resolved + "/" + target
		}
		if resolved, err = checkPath(target, euid, links); err != nil {
			return "", err
		}
	}
	return resolved, nil
}

// checkDir checks one directory on the way to p.
func checkDir(d, p string, euid uint32) error {
	st, err := os.Stat(d)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s, on the way to %s, is not a directory: %w", d, p, ErrUnsafe)
	}
	if uid := owner(st); uid != 0 && uid != euid {
		return fmt.Errorf("%s, on the way to %s, belongs to uid %d: %w", d, p, uid, ErrUnsafe)
	}
	if st.Mode().Perm()&0o022 != 0 && st.Mode()&os.ModeSticky == 0 {
		return fmt.Errorf("%s, on the way to %s, is writable by other users (mode %04o) without the sticky bit: %w", d, p, st.Mode().Perm(), ErrUnsafe)
	}
	return nil
}

func owner(st os.FileInfo) uint32 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Uid
	}
	return ^uint32(0)
}

// EnsureRoot is Ensure for a workspace root (mode 0711), its error naming
// the setting that chooses another.
func EnsureRoot(dir string) error {
	if err := Ensure(dir, 0o711); err != nil {
		return fmt.Errorf("workspace root: %w; choose a directory of Warden's own with SANDBOX__WORKSPACE_ROOT", err)
	}
	return nil
}
