package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

// The file routes work on the sandbox's host workspace directly, through
// an os.Root: the kernel-backed checks of os.Root hold even against
// symlinks the sandboxed code creates while a request runs, which a
// lexical check of the path cannot promise.

// workspace marks the sandbox used and opens its host workspace. The
// caller closes the root.
func (s *Server) workspace(r *http.Request) (session.Info, *os.Root, error) {
	info, err := s.mgr.Touch(sandboxID(r))
	if err != nil {
		return info, nil, err
	}
	if info.Workspace == "" {
		return info, nil, fmt.Errorf("sandbox %s has no host workspace (provider %s): %w", info.ID, info.Provider, sandbox.ErrUnsupported)
	}
	root, err := os.OpenRoot(info.Workspace)
	if err != nil {
		return info, nil, fmt.Errorf("opening workspace of sandbox %s: %w", info.ID, err)
	}
	return info, root, nil
}

// relPath turns the path query parameter into a clean path relative to
// the workspace, "." for the workspace itself. Absolute paths are accepted
// only under the workspace's path inside the sandbox (e.g. /workspace/a).
// Paths that leave the workspace lexically are refused here; symlinks
// that lead out are refused by os.Root.
func relPath(info session.Info, p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("path contains a NUL byte: %w", sandbox.ErrInvalid)
	}
	orig := p
	if path.IsAbs(p) {
		ws := info.Spec.WorkspacePath
		switch {
		case ws != "" && p == ws:
			p = "."
		case ws != "" && strings.HasPrefix(p, strings.TrimSuffix(ws, "/")+"/"):
			p = strings.TrimPrefix(p, strings.TrimSuffix(ws, "/")+"/")
		default:
			return "", fmt.Errorf("path %q is outside the workspace %s: %w", orig, ws, sandbox.ErrInvalid)
		}
	}
	p = path.Clean(p)
	if p == ".." || strings.HasPrefix(p, "../") || path.IsAbs(p) {
		return "", fmt.Errorf("path %q leaves the workspace: %w", orig, sandbox.ErrInvalid)
	}
	return p, nil
}

// filePath is relPath for a path that must name a file: not empty and not
// the workspace itself.
func filePath(info session.Info, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("query parameter path is required: %w", sandbox.ErrInvalid)
	}
	rel, err := relPath(info, p)
	if err == nil && rel == "." {
		err = fmt.Errorf("path %q names the workspace itself, not a file: %w", p, sandbox.ErrInvalid)
	}
	return rel, err
}

// fileError classifies an error of an os.Root operation on p.
func fileError(p string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%q: the workspace is full (its size limit, spec.workspace_size, is reached): %w", p, errWorkspaceFull)
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%q: %w", p, sandbox.ErrNotFound)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%q: a parent is not a directory: %w", p, sandbox.ErrConflict)
	case errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%q: a directory is in the way: %w", p, sandbox.ErrConflict)
	case errors.Is(err, syscall.ELOOP):
		return fmt.Errorf("%q: too many levels of symbolic links: %w", p, sandbox.ErrInvalid)
	case errors.Is(err, fs.ErrPermission):
		// Not a policy refusal (403): the file's own permissions forbid it.
		return fmt.Errorf("%q: the file's permissions do not let the service access it: %w", p, sandbox.ErrConflict)
	}
	// os.Root refuses a path that escapes it with an error of its own,
	// where every failure of the system call is an Errno.
	if _, ok := errors.AsType[syscall.Errno](err); !ok {
		_, isPath := errors.AsType[*fs.PathError](err)
		_, isLink := errors.AsType[*os.LinkError](err)
		if isPath || isLink {
			return fmt.Errorf("path %q leaves the workspace: %w", p, sandbox.ErrInvalid)
		}
	}
	return fmt.Errorf("%q: %w", p, err)
}

// putFile writes the body to a temporary file next to the target and
// renames it into place, so readers never see half an upload and a failed
// one (too large, client gone) leaves nothing behind.
func (s *Server) putFile(w http.ResponseWriter, r *http.Request) (err error) {
	info, root, err := s.workspace(r)
	if err != nil {
		return err
	}
	defer root.Close()
	rel, err := filePath(info, r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	if dir := path.Dir(rel); dir != "." {
		if err := s.mkdirs(root, dir, info); err != nil {
			return err
		}
	}
	if fi, err := root.Lstat(rel); err == nil && fi.IsDir() {
		return fmt.Errorf("%q is a directory: %w", rel, sandbox.ErrConflict)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fileError(rel, err)
	}

	tmp := path.Join(path.Dir(rel), ".warden-upload-"+randomHex(8))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fileError(rel, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = root.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, r.Body)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fmt.Errorf("upload is larger than %d bytes: %w", mbe.Limit, mbe)
		}
		if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
			return fileError(rel, err)
		}
		return fmt.Errorf("receiving %q: %w", rel, err)
	}
	if s.chown && info.WorkspaceUID >= 0 {
		if err := f.Chown(info.WorkspaceUID, info.WorkspaceGID); err != nil {
			return fmt.Errorf("handing %q to the sandbox user: %w", rel, err)
		}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %q: %w", rel, err)
	}
	if err := root.Rename(tmp, rel); err != nil {
		return fileError(rel, err)
	}
	return writeJSON(w, http.StatusCreated, api.Upload{Path: rel, Size: n})
}

// mkdirs creates dir and its missing parents inside root, handing each
// new directory to the sandbox user.
func (s *Server) mkdirs(root *os.Root, dir string, info session.Info) error {
	cur := ""
	for part := range strings.SplitSeq(dir, "/") {
		cur = path.Join(cur, part)
		err := root.Mkdir(cur, 0o755)
		switch {
		case err == nil:
			if s.chown && info.WorkspaceUID >= 0 {
				if err := root.Lchown(cur, info.WorkspaceUID, info.WorkspaceGID); err != nil {
					return fmt.Errorf("handing %q to the sandbox user: %w", cur, err)
				}
			}
		case errors.Is(err, fs.ErrExist):
			fi, err := root.Stat(cur)
			if err != nil {
				return fileError(cur, err)
			}
			if !fi.IsDir() {
				return fmt.Errorf("%q is not a directory: %w", cur, sandbox.ErrConflict)
			}
		default:
			return fileError(cur, err)
		}
	}
	return nil
}

func (s *Server) getFile(w http.ResponseWriter, r *http.Request) error {
	info, root, err := s.workspace(r)
	if err != nil {
		return err
	}
	defer root.Close()
	rel, err := filePath(info, r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	// O_NONBLOCK: a FIFO planted by the sandboxed code must not hang the
	// request before the check below refuses it.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fileError(rel, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fileError(rel, err)
	}
	switch {
	case fi.IsDir():
		return fmt.Errorf("%q is a directory; list it with /files/list: %w", rel, sandbox.ErrConflict)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%q is not a regular file: %w", rel, sandbox.ErrInvalid)
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// At most the announced size, should the file grow meanwhile.
	if _, err := io.CopyN(w, f, fi.Size()); err != nil && r.Context().Err() == nil {
		s.log.WarnContext(r.Context(), "sending file", "request_id", requestID(r.Context()), "sandbox_id", info.ID, "err", err)
	}
	return nil
}

// maxListDepth is the deepest listing GET /files/list gives.
const maxListDepth = 10

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) error {
	info, root, err := s.workspace(r)
	if err != nil {
		return err
	}
	defer root.Close()
	q := r.URL.Query()
	rel, err := relPath(info, q.Get("path"))
	if err != nil {
		return err
	}
	depth := 1
	if d := q.Get("depth"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > maxListDepth {
			return fmt.Errorf("query parameter depth %q: want an integer from 1 to %d: %w", d, maxListDepth, sandbox.ErrInvalid)
		}
		depth = n
	}
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fileError(rel, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return fileError(rel, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("%q is not a directory: %w", rel, sandbox.ErrConflict)
	}
	entries, err := listDir(root, f, rel, depth, []api.FileEntry{})
	if err != nil {
		return fileError(rel, err)
	}
	return writeJSON(w, http.StatusOK, api.FileList{Path: rel, Entries: entries})
}

// listDir appends the entries of the open directory dir (relative to
// root) to out, sorted by name, each directory followed by its own
// entries down to depth levels. Symlinks are reported, never descended
// into; a subdirectory that cannot be read, or that is replaced while the
// walk runs, is reported without its entries.
func listDir(root *os.Root, f *os.File, dir string, depth int, out []api.FileEntry) ([]api.FileEntry, error) {
	dirents, err := f.ReadDir(-1)
	if err != nil {
		return out, err
	}
	slices.SortFunc(dirents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, d := range dirents {
		fi, err := d.Info() // lstat: a symlink is reported as one
		if err != nil {
			continue // removed meanwhile
		}
		p := path.Join(dir, d.Name())
		out = append(out, fileEntry(root, p, fi))
		if depth > 1 && fi.IsDir() {
			out = listSubdir(root, p, fi, depth-1, out)
		}
	}
	return out, nil
}

// listSubdir is listDir for the subdirectory p whose lstat is fi. It
// lists nothing if p is no longer that directory (a symlink swapped in by
// the sandboxed code is not followed, even inside the workspace).
func listSubdir(root *os.Root, p string, fi fs.FileInfo, depth int, out []api.FileEntry) []api.FileEntry {
	f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_DIRECTORY, 0)
	if err != nil {
		return out
	}
	defer f.Close()
	if now, err := f.Stat(); err != nil || !os.SameFile(fi, now) {
		return out
	}
	out, _ = listDir(root, f, p, depth, out) // unreadable: keep what was read
	return out
}

// fileEntry describes rel, whose lstat is fi.
func fileEntry(root *os.Root, rel string, fi fs.FileInfo) api.FileEntry {
	e := api.FileEntry{Name: path.Base(rel), Path: rel, Type: api.FileTypeOther, Size: fi.Size(),
		Mode: api.FileMode(fi.Mode().Perm()), ModTime: fi.ModTime().UTC()}
	switch m := fi.Mode(); {
	case m.IsRegular():
		e.Type = api.FileTypeFile
	case m.IsDir():
		e.Type = api.FileTypeDir
	case m&fs.ModeSymlink != 0:
		e.Type = api.FileTypeSymlink
		if target, err := root.Readlink(rel); err == nil {
			e.LinkTarget = target
		}
	}
	return e
}

// statFile reports one file, symlinks not followed; no path (or the
// workspace path) reports the workspace itself, named ".".
func (s *Server) statFile(w http.ResponseWriter, r *http.Request) error {
	info, root, err := s.workspace(r)
	if err != nil {
		return err
	}
	defer root.Close()
	rel, err := relPath(info, r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return fileError(rel, err)
	}
	return writeJSON(w, http.StatusOK, fileEntry(root, rel, fi))
}

// makeDir creates a directory and its missing parents. Unlike mkdir -p,
// an existing directory is a conflict, so that clients can tell "created"
// from "already exists".
func (s *Server) makeDir(w http.ResponseWriter, r *http.Request) error {
	info, root, err := s.workspace(r)
	if err != nil {
		return err
	}
	defer root.Close()
	p := r.URL.Query().Get("path")
	if p == "" {
		return fmt.Errorf("query parameter path is required: %w", sandbox.ErrInvalid)
	}
	rel, err := relPath(info, p)
	if err != nil {
		return err
	}
	if rel == "." {
		return fmt.Errorf("directory %q already exists: it is the workspace: %w", p, sandbox.ErrConflict)
	}
	if dir := path.Dir(rel); dir != "." {
		if err := s.mkdirs(root, dir, info); err != nil {
			return err
		}
	}
	if err := root.Mkdir(rel, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return fileError(rel, err)
		}
		if fi, err := root.Lstat(rel); err == nil && fi.IsDir() {
			return fmt.Errorf("directory %q already exists: %w", rel, sandbox.ErrConflict)
		}
		return fmt.Errorf("%q already exists and is not a directory: %w", rel, sandbox.ErrConflict)
	}
	if s.chown && info.WorkspaceUID >= 0 {
		if err := root.Lchown(rel, info.WorkspaceUID, info.WorkspaceGID); err != nil {
			return fmt.Errorf("handing %q to the sandbox user: %w", rel, err)
		}
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		return fileError(rel, err)
	}
	return writeJSON(w, http.StatusCreated, fileEntry(root, rel, fi))
}

// moveFile renames a file, directory or symlink (the link itself) inside
// the workspace, creating the destination's missing parents as E2B's envd
// does. A file at the destination is replaced, as rename(2) does; a
// directory there is a conflict.
func (s *Server) moveFile(w http.ResponseWriter, r *http.Request) error {
	info, root, err := s.workspace(r)
	if err != nil {
		return err
	}
	defer root.Close()
	var req api.MoveRequest
	if _, err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	src, err := bodyPath(info, "source", req.Source)
	if err != nil {
		return err
	}
	dst, err := bodyPath(info, "destination", req.Destination)
	if err != nil {
		return err
	}
	sfi, err := root.Lstat(src)
	if err != nil {
		return fileError(src, err)
	}
	if strings.HasPrefix(dst, src+"/") {
		return fmt.Errorf("cannot move %q into itself (%q): %w", src, dst, sandbox.ErrInvalid)
	}
	if dir := path.Dir(dst); dir != "." {
		if err := s.mkdirs(root, dir, info); err != nil {
			return err
		}
	}
	switch dfi, err := root.Lstat(dst); {
	case err == nil && dfi.IsDir():
		return fmt.Errorf("destination %q is an existing directory: %w", dst, sandbox.ErrConflict)
	case err == nil && sfi.IsDir():
		return fmt.Errorf("destination %q exists and is not a directory: %w", dst, sandbox.ErrConflict)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fileError(dst, err)
	}
	if err := root.Rename(src, dst); err != nil {
		if errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("cannot move %q into itself (%q): %w", src, dst, sandbox.ErrInvalid)
		}
		return fmt.Errorf("moving %q to %q: %w", src, dst, fileError(src, err))
	}
	fi, err := root.Lstat(dst)
	if err != nil {
		return fileError(dst, err)
	}
	return writeJSON(w, http.StatusOK, fileEntry(root, dst, fi))
}

// bodyPath is filePath for a path given in the body's field.
func bodyPath(info session.Info, field, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("field %s is required: %w", field, sandbox.ErrInvalid)
	}
	rel, err := relPath(info, p)
	if err == nil && rel == "." {
		err = fmt.Errorf("%s %q names the workspace itself: %w", field, p, sandbox.ErrInvalid)
	}
	return rel, err
}

// removeFile removes a file, a symlink (not its target) or a directory
// with its contents. os.Root.RemoveAll never follows a symlink, so nothing
// outside the workspace can be reached.
func (s *Server) removeFile(w http.ResponseWriter, r *http.Request) error {
	info, root, err := s.workspace(r)
	if err != nil {
		return err
	}
	defer root.Close()
	rel, err := filePath(info, r.URL.Query().Get("path"))
	if err != nil {
		return err
	}
	// RemoveAll succeeds on a missing path: look first, for the 404.
	if _, err := root.Lstat(rel); err != nil {
		return fileError(rel, err)
	}
	if err := root.RemoveAll(rel); err != nil {
		return fileError(rel, err)
	}
	return writeJSON(w, http.StatusOK, api.Removed{Path: rel, Status: "removed"})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails on Linux
	return hex.EncodeToString(b)
}
