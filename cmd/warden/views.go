package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/warden-sandbox/warden/internal/idmap"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// views are the idmapped views made for one sandbox, by the directory
// each shows.
type views map[string]*idmap.Mount

// release unmounts the views, once the sandbox that binds them is gone.
func (v views) release() {
	for _, m := range v {
		_ = m.Unmount() // what resists is left to the next sweep
	}
}

// apply makes spec bind each view in place of the directory it shows, at
// the same place in the sandbox.
func (v views) apply(spec *sandbox.Spec) {
	if m, ok := v[spec.WorkspaceDir]; ok {
		spec.WorkspaceDir = m.Path
	}
	for i, mt := range spec.Mounts {
		if m, ok := v[mt.Source]; ok {
			if mt.Target == "" {
				mt.Target = mt.Source
			}
			mt.Source = m.Path
			spec.Mounts[i] = mt
		}
	}
}

// stager is where Warden attaches idmapped views: beside the private
// workspaces, in a directory of root's.
func stager(workspaceRoot string) idmap.Stager {
	return idmap.Stager{Root: filepath.Join(workspaceRoot, ".idmap")}
}

// prepareWritable checks, before anything starts, that the sandboxes of p
// can write each of dirs that is not read-only. When they cannot as they
// are and Warden runs as root, it gives them the directory through an
// idmapped view in which they write as its owner, so that what they
// create is the owner's; where that cannot be done safely or at all, it
// fails saying what to change (docs/adr/0013-writable-mounts.md). A
// directory they could not reach or read as they are gets a view too
// (see hiddenFrom). The caller releases the views after the sandbox is
// destroyed.
func prepareWritable(p sandbox.Provider, workspaceRoot string, dirs []hostDir) (_ views, err error) {
	v := views{}
	defer func() {
		if err != nil {
			v.release()
		}
	}()
	swept := false
	for _, d := range dirs {
		if _, ok := v[d.path]; ok {
			continue
		}
		d, unpin := pin(d)
		m, err := prepareDir(p, workspaceRoot, d, &swept)
		unpin()
		if err != nil {
			return nil, err
		}
		if m != nil {
			m.Source = d.path
			v[d.path] = m
		}
	}
	return v, nil
}

// prepareDir is prepareWritable for one directory: the view made for it,
// if any.
func prepareDir(p sandbox.Provider, workspaceRoot string, d hostDir, swept *bool) (*idmap.Mount, error) {
	var r *writeRefusal
	if !d.ro {
		r = cannotWrite(p, d)
	}
	hidden := r == nil && hiddenFrom(p, d)
	switch {
	case r == nil && !hidden:
		return nil, nil
	case r != nil && (r.st == nil || os.Geteuid() != 0 || !makesViews(p)):
		return nil, r.err
	case r == nil && !makesViews(p):
		return nil, nil
	}
	uid, gid, _ := sandboxWriter(p)
	if r != nil {
		if err := viewable(d, r.st, uid); err != nil {
			return nil, fmt.Errorf("%w\n%v", r.err, err)
		}
	}
	if err := safedir.EnsureRoot(workspaceRoot); err != nil {
		return nil, err
	}
	s := stager(workspaceRoot)
	if !*swept {
		_, _ = s.RemoveOrphans() // views a killed Warden left
		*swept = true
	}
	m, err := s.Mount(d.fs(), uid, gid, d.ro)
	switch {
	case err != nil && r != nil:
		return nil, fmt.Errorf("%w\nWarden could not give the sandbox a view of it in which it writes as the owner: %v; move it to a file system with idmapped mounts (ext4, xfs, btrfs; tmpfs since Linux 6.3)",
			r.err, strings.ReplaceAll(err.Error(), d.fs(), d.path))
	case err != nil:
		return nil, nil // the provider says what it cannot reach
	}
	return m, nil
}

// makesViews reports whether p's sandboxes bind host paths of this
// host, on which views can be made: bubblewrap and Docker (whose daemon
// is taken to be local, as for every bind).
func makesViews(p sandbox.Provider) bool {
	switch p.(type) {
	case *bwrap.Provider, *docker.Provider:
		return true
	}
	return false
}

// hiddenFrom reports whether the sandboxes of a root Warden p, which run
// as another host user, are to get a view of d though they may write it
// as they are: bwrap, running as that user, must pass through every
// directory above d; and a read-only d of another owner is read as its
// owner, files the sandbox's user could not read included, on every
// provider alike. A read-only view is safe for a directory of anyone's,
// root's included: nothing can be made there.
func hiddenFrom(p sandbox.Provider, d hostDir) bool {
	uid, gid, other := sandboxWriter(p)
	if !other || os.Geteuid() != 0 {
		return false
	}
	real, err := d.realPath()
	if err != nil {
		return false // the provider says what is wrong
	}
	fi, err := os.Stat(d.fs())
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	if d.ro && st.Uid != uid {
		return true
	}
	if _, isBwrap := p.(*bwrap.Provider); !isBwrap {
		return false // the Docker daemon, as root, binds what it is given
	}
	for dir := filepath.Dir(real); ; dir = filepath.Dir(dir) {
		fi, err := os.Lstat(dir)
		if err != nil {
			return false
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && !hasACL(dir) && !modeAllows(st, uid, gid, 0o1) {
			return true
		}
		if dir == "/" {
			return false
		}
	}
}

// viewable says why d, which the sandbox's uid cannot write, may not be
// given it through an idmapped view as d's owner, or nil when it may. The
// owner must be able to write d. A
// directory of root's (or of root's group) is given only when no other
// user can reach it: the sandbox could make a set-user-ID root program
// there, which the view runs without the privilege but the host's own
// path to it would not.
func viewable(d hostDir, st *syscall.Stat_t, uid uint32) error {
	switch {
	case st.Mode&0o300 != 0o300:
		return fmt.Errorf("%s: its owner, uid %d, cannot write it either", d.name(), st.Uid)
	case st.Uid != 0 && st.Gid != 0:
		return nil
	}
	if st.Uid == 0 && st.Mode&0o011 == 0 && !hasACL(d.fs()) {
		return nil // the directory itself is closed to others
	}
	real, err := d.realPath()
	if err != nil {
		return err
	}
	for p := filepath.Dir(real); ; p = filepath.Dir(p) {
		if closed(p) {
			return nil
		}
		if p == "/" {
			break
		}
	}
	return fmt.Errorf("Warden gives a sandbox root's write access to a directory only when no other user can reach it: "+
		"a set-user-ID program made there would run as root for them; make a directory above it private (chmod 700 %s), "+
		"or make it writable by the sandbox's uid %d", filepath.Dir(real), uid)
}

// closed reports whether only root may pass through directory p (not a
// symbolic link: the path is canonical).
func closed(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() || hasACL(p) {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0 && st.Mode&0o011 == 0
}
