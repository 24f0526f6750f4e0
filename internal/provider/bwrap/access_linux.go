package bwrap

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/warden-sandbox/warden/internal/safedir"
)

// reachableShim returns shim if u can read and run it where it is, or a
// copy of it under root/.init that u can (a test binary in a private
// build directory, or a warden binary in a home directory, is not). The
// copy is named after its SHA-256 and this process's tag,
// init-<hash>@<tag>, so the sweep of a later Warden removes it once this
// process is gone. A copy of the same file another process made is
// shared as a hard link when this user made it: it runs inside every
// sandbox, so a file someone else put there must never be taken for it.
func reachableShim(shim, root string, u RunAs) (string, error) {
	if reachable(shim, u) {
		return shim, nil
	}
	in, err := os.Open(shim)
	if err != nil {
		return "", err
	}
	defer in.Close()
	h := sha256.New()
	if _, err := io.Copy(h, in); err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".init")
	if err := safedir.Ensure(dir, 0o711); err != nil {
		return "", err
	}
	// Searchable, not listable: u needs to reach the copy, not to see
	// the names of the workspaces beside it.
	for _, d := range []string{root, dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			return "", err
		}
	}
	base := shimName + hex.EncodeToString(h.Sum(nil))[:32]
	dst := filepath.Join(dir, tagged(base))
	if ownCopy(dst) {
		return dst, nil
	}
	// Another owner's copy, as a second name of the same file: removing
	// either name later leaves the other one whole.
	others, _ := filepath.Glob(filepath.Join(dir, base+tagSep+"*"))
	for _, o := range others {
		if ownCopy(o) && os.Link(o, dst) == nil && ownCopy(dst) {
			return dst, nil
		}
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, tagged(shimTemp+"*"))
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", err
	}
	if !reachable(dst, u) {
		return "", fmt.Errorf("%s is not reachable by uid %d: check the permissions of its directories", dst, u.UID)
	}
	return dst, nil
}

// ownCopy reports whether path is a regular file of this process's user
// that no one else may write to.
func ownCopy(path string) bool {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o022 != 0 {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Uid == uint32(os.Geteuid())
}

// reachableDir reports whether u may traverse dir and every directory
// above it.
func reachableDir(dir string, u RunAs) bool {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for d := abs; ; d = filepath.Dir(d) {
		if !canAccess(d, u, 0o1) {
			return false
		}
		if d == "/" {
			return true
		}
	}
}

// canAccess reports whether u has the permission bits want (r=4, w=2,
// x=1) on path, by its mode alone (no ACLs, and u's supplementary groups
// are not consulted).
func canAccess(p string, u RunAs, want os.FileMode) bool {
	st, err := os.Stat(p)
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	m := st.Mode().Perm()
	switch {
	case sys.Uid == u.UID:
		return m&(want<<6) == want<<6
	case sys.Gid == u.GID:
		return m&(want<<3) == want<<3
	}
	return m&want == want
}

// reachable reports whether u may run path: execute permission on every
// directory above it, read and execute on the file.
func reachable(path string, u RunAs) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	return canAccess(abs, u, 0o5) && reachableDir(filepath.Dir(abs), u)
}

// regularFile reports whether path is a regular file (following links).
func regularFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}
