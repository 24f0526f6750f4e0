package idmap

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/owner"
)

// ErrUnsupported says the kernel or the directory's file system cannot
// give an idmapped view.
var ErrUnsupported = errors.New("idmapped mounts are not supported")

// Stager creates idmapped views of directories as mount points under Root,
// a directory of Warden's own (mode 0711, root's). Each view's name holds
// the pid and start time of the process that made it, so that
// RemoveOrphans can tell which are left by a Warden that is gone. Creating
// views needs root (CAP_SYS_ADMIN).
type Stager struct {
	Root string
}

// Mount is an idmapped view of Source attached at Path.
type Mount struct {
	// Path is where the view is attached: the directory to bind into the
	// sandbox in place of Source.
	Path string
	// Source is the directory viewed.
	Source string
	// UID and GID are Source's owner on the host, which the view shows
	// as the sandbox's uid and gid.
	UID, GID uint32
}

// Mount attaches under s.Root a view of dir in which dir's owner (uid and
// gid) appears as sandboxUID and sandboxGID: a process of the sandbox's
// uid writes there as the owner. The view is nosuid and nodev, and
// read-only if readOnly. It fails
// with [ErrUnsupported] when the kernel or dir's file system has no
// idmapped mounts.
func (s Stager) Mount(dir string, sandboxUID, sandboxGID uint32, readOnly bool) (_ *Mount, err error) {
	// Everything below works on this descriptor, so the owner read is the
	// owner of the directory viewed, whatever happens to the path.
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	tree, err := unix.OpenTree(fd, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		if errors.Is(err, unix.ENOSYS) {
			return nil, fmt.Errorf("%s: %w by this kernel (Linux 5.12 or later has them)", dir, ErrUnsupported)
		}
		return nil, fmt.Errorf("%s: cloning the mount: %w", dir, err)
	}
	defer unix.Close(tree)
	ns, err := userns(st.Uid, st.Gid, sandboxUID, sandboxGID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	defer ns.Close()
	attr := unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(ns.Fd()),
	}
	if readOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		switch {
		case errors.Is(err, unix.ENOSYS):
			return nil, fmt.Errorf("%s: %w by this kernel (Linux 5.12 or later has them)", dir, ErrUnsupported)
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.EPERM), errors.Is(err, unix.EOPNOTSUPP):
			return nil, fmt.Errorf("%s: %w on its file system (%s) by this kernel: %v", dir, ErrUnsupported, fsName(fd), err)
		}
		return nil, fmt.Errorf("%s: idmapping the mount: %w", dir, err)
	}
	if err := s.ensureRoot(); err != nil {
		return nil, err
	}
	path, err := s.newDir()
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, path, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return nil, fmt.Errorf("%s: attaching the idmapped view at %s: %w", dir, path, err)
	}
	return &Mount{Path: path, Source: dir, UID: st.Uid, GID: st.Gid}, nil
}

// Unmount detaches the view and removes its mount point. Sandboxes that
// still bind it keep their copy until they end.
func (m *Mount) Unmount() error {
	return unmount(m.Path)
}

func unmount(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveOrphans unmounts and removes the views under s.Root whose maker
// no longer runs, and returns how many it removed.
func (s Stager) RemoveOrphans() (int, error) {
	ents, err := os.ReadDir(s.Root)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range ents {
		pid, start, ok := parseName(e.Name())
		if !ok || owner.StartTime(pid) == start {
			continue
		}
		if err := unmount(filepath.Join(s.Root, e.Name())); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// newDir creates an empty mount point named after this process and a
// random suffix.
func (s Stager) newDir() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	pid := os.Getpid()
	path := filepath.Join(s.Root, fmt.Sprintf("%d-%d-%s", pid, owner.StartTime(pid), hex.EncodeToString(b[:])))
	if err := os.Mkdir(path, 0o700); err != nil {
		return "", fmt.Errorf("creating the idmapped view's mount point: %w", err)
	}
	return path, nil
}

func parseName(name string) (pid int, start uint64, ok bool) {
	f := strings.Split(name, "-")
	if len(f) != 3 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(f[0])
	start, err2 := strconv.ParseUint(f[1], 10, 64)
	return pid, start, err1 == nil && err2 == nil
}

// ensureRoot makes s.Root: root's, mode 0711 (the sandbox's user may pass
// through it to a view it is given, but not list the others), and a
// private mount of its own, so that views attached in it propagate to no
// other mount namespace.
func (s Stager) ensureRoot() error {
	if err := os.MkdirAll(s.Root, 0o711); err != nil {
		return fmt.Errorf("idmapped views' directory: %w", err)
	}
	// Two Wardens starting at once must not both bind it: the second
	// bind would hide the views attached to the first.
	parent, err := os.Open(filepath.Dir(s.Root))
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := unix.Flock(int(parent.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", filepath.Dir(s.Root), err)
	}
	defer unix.Flock(int(parent.Fd()), unix.LOCK_UN)
	fi, err := os.Lstat(s.Root)
	if err != nil {
		return err
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || sys.Uid != 0 || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("idmapped views' directory %s must be a directory of root's, writable by root alone", s.Root)
	}
	if err := os.Chmod(s.Root, 0o711); err != nil {
		return err
	}
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, s.Root, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS, &stx); err != nil {
		return err
	}
	if stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return nil
	}
	if err := unix.Mount(s.Root, s.Root, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("making %s a mount of its own: %w", s.Root, err)
	}
	if err := unix.Mount("", s.Root, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making %s a private mount: %w", s.Root, err)
	}
	return nil
}

// userns returns a user namespace whose map sends hostUID and hostGID
// (inside) to sandboxUID and sandboxGID (outside): in a mount idmapped
// with it, files of hostUID appear as sandboxUID's, and what sandboxUID
// creates is stored as hostUID's. The namespace is held by the returned
// file alone: the process made to create it is stopped before it runs
// any code (ptrace stops it at exec) and killed at once.
func userns(hostUID, hostGID, sandboxUID, sandboxGID uint32) (*os.File, error) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"warden-idmap"}
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: int(hostUID), HostID: int(sandboxUID), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: int(hostGID), HostID: int(sandboxGID), Size: 1}},
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("creating a user namespace for the idmapping: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid))
	if err != nil {
		return nil, fmt.Errorf("opening the idmapping's user namespace: %w", err)
	}
	return f, nil
}

// fsName names the file system fd is on, for error messages.
func fsName(fd int) string {
	var sf unix.Statfs_t
	if err := unix.Fstatfs(fd, &sf); err != nil {
		return "unknown"
	}
	names := map[int64]string{
		unix.TMPFS_MAGIC: "tmpfs", unix.NFS_SUPER_MAGIC: "nfs", unix.EXT4_SUPER_MAGIC: "ext4",
		unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs", unix.OVERLAYFS_SUPER_MAGIC: "overlay",
		unix.RAMFS_MAGIC: "ramfs", unix.FUSE_SUPER_MAGIC: "fuse", unix.CIFS_SUPER_MAGIC: "cifs",
	}
	if n, ok := names[int64(sf.Type)]; ok {
		return n
	}
	return fmt.Sprintf("type %#x", sf.Type)
}
