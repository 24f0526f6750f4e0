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
	// The directories above: resolved, since a link such as macOS's /tmp
	// is only dangerous if it is one an untrusted user may change, and
	// such a link lives in a directory this loop checks.
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return err
	}
	for d := parent; ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return err
		}
		if uid := owner(st); uid != 0 && uid != euid {
			return fmt.Errorf("%s, above %s, belongs to uid %d: %w", d, abs, uid, ErrUnsafe)
		}
		if st.Mode().Perm()&0o022 != 0 && st.Mode()&os.ModeSticky == 0 {
			return fmt.Errorf("%s, above %s, is writable by other users (mode %04o) without the sticky bit: %w", d, abs, st.Mode().Perm(), ErrUnsafe)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
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
