package main

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/image"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// hostDir is a host directory the sandbox will write, with the flag that
// named it.
type hostDir struct {
	flag, path string
}

// writableDirs lists the directories of spec the sandbox writes: the
// workspace the user gave, and the read-write mounts.
func writableDirs(spec sandbox.Spec, workspaceFlag string, mountFlags map[string]string) []hostDir {
	var dirs []hostDir
	if spec.WorkspaceDir != "" {
		dirs = append(dirs, hostDir{workspaceFlag, spec.WorkspaceDir})
	}
	for _, m := range spec.Mounts {
		if !m.ReadOnly {
			dirs = append(dirs, hostDir{mountFlags[m.Source], m.Source})
		}
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

// checkWritable fails, before anything starts, when the sandboxes of p
// could not write one of dirs, saying what to change. The sandbox never
// writes as root, and Warden never makes it write as another user than
// the one it runs as (docs/adr/0013-writable-mounts.md).
func checkWritable(p sandbox.Provider, dirs []hostDir) error {
	uid, gid, other := sandboxWriter(p)
	for _, d := range dirs {
		name := d.path
		if d.flag != "" {
			name = d.flag + " " + d.path
		}
		if !other {
			if err := unix.Access(d.path, unix.W_OK|unix.X_OK); err != nil {
				return fmt.Errorf("%s: the sandbox writes as you, and you cannot write this directory (%v)", name, err)
			}
			continue
		}
		st, err := os.Stat(d.path)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok || hasACL(d.path) {
			continue // the mode bits do not tell: let the kernel decide
		}
		perm := st.Mode().Perm()
		var can bool
		switch {
		case sys.Uid == uid:
			can = perm&0o300 == 0o300
		case sys.Gid == gid:
			can = perm&0o030 == 0o030
		default:
			can = perm&0o003 == 0o003
		}
		if can {
			continue
		}
		remedy := fmt.Sprintf("make it writable by uid %d (chown %d:%d %s)", uid, uid, gid, d.path)
		if _, isBwrap := p.(*bwrap.Provider); isBwrap {
			remedy += ", or run warden as an unprivileged user who can write it: bubblewrap then runs the sandbox as that user, and files it creates are theirs"
		} else {
			remedy += ", or use --provider bubblewrap as an unprivileged user who can write it: its sandboxes run as that user"
		}
		return fmt.Errorf("%s: %s sandboxes write as host uid %d, which cannot write this directory (owner uid %d, mode %04o); %s",
			name, p.Name(), uid, sys.Uid, perm, remedy)
	}
	return nil
}

// hasACL reports whether path has a POSIX access ACL, which the mode
// bits do not show.
func hasACL(path string) bool {
	_, err := unix.Getxattr(path, "system.posix_acl_access", nil)
	return err == nil
}
