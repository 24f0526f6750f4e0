package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/image"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// hostDir is a host directory the sandbox will bind, with the flag that
// named it.
type hostDir struct {
	flag, path string
	// ro is set when the sandbox only reads it.
	ro bool
	// at, when set, is the path system calls use instead of path: the
	// directory pinned by a descriptor (see pin), so that what is
	// checked is what is mounted, whatever happens to path meanwhile.
	// real is then its canonical path, when pinned.
	at, real string
}

// fs is the path of d for system calls.
func (d hostDir) fs() string {
	if d.at != "" {
		return d.at
	}
	return d.path
}

// realPath is d's canonical path.
func (d hostDir) realPath() (string, error) {
	if d.real != "" {
		return d.real, nil
	}
	return filepath.EvalSymlinks(d.path)
}

// writableDirs lists the directories of spec the sandbox binds: the
// workspace the user gave, and the mounts (read-only ones with ro set).
func writableDirs(spec sandbox.Spec, workspaceFlag string, mountFlags map[string]string) []hostDir {
	var dirs []hostDir
	if spec.WorkspaceDir != "" {
		dirs = append(dirs, hostDir{flag: workspaceFlag, path: spec.WorkspaceDir})
	}
	for _, m := range spec.Mounts {
		dirs = append(dirs, hostDir{flag: mountFlags[m.Source], path: m.Source, ro: m.ReadOnly})
	}
	return dirs
}

// sandboxWriter says as whom p's sandboxes write to host directories:
// another host user (uid and gid), or, when other is false, the user
// running warden (bubblewrap maps the sandbox's user to it).
func sandboxWriter(p sandbox.Provider) (uid, gid uint32, other bool) {
	switch p := p.(type) {
	case *bwrap.Provider:
		u, ok := p.HostUser()
		return u.UID, u.GID, ok
	default:
		if p.Capabilities().Isolation == sandbox.IsolationContainer {
			// Containers run as the image's user, the same ids on the
			// host (no user-namespace remapping).
			return image.UID, image.GID, true
		}
		return 0, 0, false
	}
}

// writeRefusal says why the sandboxes of a provider cannot write a
// directory as they are, and what to change.
type writeRefusal struct {
	err error
	// st is the directory's status when the sandbox writes as another
	// host user, who lacks the mode bits to write it.
	st *syscall.Stat_t
}

// cannotWrite returns nil when the sandboxes of p can write d, else why
// not. The sandbox never writes as root by its own uid
// (docs/adr/0013-writable-mounts.md).
func cannotWrite(p sandbox.Provider, d hostDir) *writeRefusal {
	uid, gid, other := sandboxWriter(p)
	name := d.name()
	if !other {
		if err := unix.Access(d.fs(), unix.W_OK|unix.X_OK); err != nil {
			return &writeRefusal{err: fmt.Errorf("%s: the sandbox writes as you, and you cannot write this directory (%v)", name, err)}
		}
		return nil
	}
	st, err := os.Stat(d.fs())
	if err != nil {
		return &writeRefusal{err: fmt.Errorf("%s: %w", name, err)}
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || hasACL(d.fs()) {
		return nil // the mode bits do not tell: let the kernel decide
	}
	if modeAllows(sys, uid, gid, 0o3) {
		return nil
	}
	remedy := fmt.Sprintf("make it writable by uid %d (chown %d:%d %s)", uid, uid, gid, d.path)
	if _, isBwrap := p.(*bwrap.Provider); isBwrap {
		remedy += ", or run warden as an unprivileged user who can write it: bubblewrap then runs the sandbox as that user, and files it creates are theirs"
	} else {
		remedy += ", or use --provider bubblewrap as an unprivileged user who can write it: its sandboxes run as that user"
	}
	return &writeRefusal{
		err: fmt.Errorf("%s: %s sandboxes write as host uid %d, which cannot write this directory (owner uid %d, mode %04o); %s",
			name, p.Name(), uid, sys.Uid, st.Mode().Perm(), remedy),
		st: sys,
	}
}

// modeAllows reports whether the mode bits of st give uid and gid the
// permissions want (r=4, w=2, x=1).
func modeAllows(st *syscall.Stat_t, uid, gid uint32, want uint32) bool {
	switch {
	case st.Uid == uid:
		return uint32(st.Mode)>>6&want == want
	case st.Gid == gid:
		return uint32(st.Mode)>>3&want == want
	}
	return uint32(st.Mode)&want == want
}

func (d hostDir) name() string {
	if d.flag != "" {
		return d.flag + " " + d.path
	}
	return d.path
}

// hasACL reports whether path has a POSIX access ACL, which the mode
// bits do not show.
func hasACL(path string) bool {
	_, err := unix.Getxattr(path, "system.posix_acl_access", nil)
	return err == nil
}
