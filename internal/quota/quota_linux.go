//go:build linux

// Package quota bounds what a sandbox's private workspace can hold, in a
// way the kernel enforces: the workspace directory becomes a file system
// of its own, ext4 in a sparse image file, loop-mounted on it. Writing
// past the size fails inside the sandbox with ENOSPC, and the host's free
// space never drops by more than the size (plus the file system's few
// megabytes of metadata), whichever provider bind-mounts the directory.
//
// It needs root (mount, loop devices) and mkfs.ext4 (e2fsprogs);
// [Supported] says whether this host has them. The image lives beside the
// workspace (DIR + [ImageSuffix]), so a sweep of leftovers finds both.
package quota

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// ImageSuffix is added to a workspace directory's path to name its image.
const ImageSuffix = ".quota.img"

// MinSize is the smallest size that leaves room for files after ext4's
// metadata.
const MinSize = 8 << 20

var (
	supportOnce sync.Once
	supportErr  error
	mkfsPath    string
)

// Supported reports whether quotas can be enforced here: nil, or why not.
func Supported() error {
	supportOnce.Do(func() {
		switch {
		case os.Geteuid() != 0:
			supportErr = errors.New("Warden is not root: it cannot mount a file system per workspace")
			return
		}
		for _, p := range []string{"mkfs.ext4", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
			if path, err := exec.LookPath(p); err == nil {
				mkfsPath = path
				break
			}
		}
		if mkfsPath == "" {
			supportErr = errors.New("mkfs.ext4 is missing (install e2fsprogs)")
			return
		}
		f, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
		if err != nil {
			supportErr = fmt.Errorf("no loop devices: %v", err)
			return
		}
		f.Close()
	})
	return supportErr
}

// Image returns the image file of workspace dir.
func Image(dir string) string { return filepath.Clean(dir) + ImageSuffix }

// Mount makes dir, an existing empty directory, a file system of size
// bytes whose root belongs to uid:gid (mode 0755), held in Image(dir). On
// failure nothing is left behind.
func Mount(ctx context.Context, dir string, size int64, uid, gid int) (err error) {
	if err := Supported(); err != nil {
		return err
	}
	if size < MinSize {
		return fmt.Errorf("workspace size %d is below the minimum of %d bytes", size, MinSize)
	}
	img := Image(dir)
	f, err := os.OpenFile(img, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("creating the workspace's image: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(img)
		}
	}()
	err = f.Truncate(size)
	f.Close()
	if err != nil {
		return fmt.Errorf("sizing the workspace's image: %w", err)
	}
	// No journal (a workspace is scratch space; it never outlives a crash
	// of the host in use), no reserved blocks, lazy inode tables: the
	// image costs well under a megabyte until written.
	cmd := exec.CommandContext(ctx, mkfsPath, "-q", "-F", "-O", "^has_journal", "-m", "0", "-L", "warden",
		"-E", fmt.Sprintf("lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=%d:%d", uid, gid), img)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Start()
	if err == nil {
		// For a sandbox nobody waits for yet (a warm pool's refill), at
		// the lowest CPU priority: it must not slow down running code.
		if sandbox.IsBackground(ctx) {
			_ = unix.Setpriority(unix.PRIO_PROCESS, cmd.Process.Pid, 19)
		}
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("formatting the workspace's image: %v: %s", err, strings.TrimSpace(out.String()))
	}
	dev, err := attach(img)
	if err != nil {
		return err
	}
	mountErr := unix.Mount(dev.Name(), dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOATIME, "")
	// With autoclear, the device detaches once it is unmounted and this
	// descriptor is closed: nothing to undo but the mount.
	dev.Close()
	if mountErr != nil {
		return fmt.Errorf("mounting the workspace's file system: %w", mountErr)
	}
	_ = os.Remove(filepath.Join(dir, "lost+found")) // ext4's; only fsck wants it
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = unix.Unmount(dir, unix.MNT_DETACH)
		return fmt.Errorf("workspace root: %w", err)
	}
	return nil
}

// attach binds img to a free loop device, which detaches by itself when
// its last user is gone. The caller closes the returned device.
func attach(img string) (*os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("loop devices: %w", err)
	}
	defer ctl.Close()
	backing, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer backing.Close()
	for range 16 { // another process may take the free device first
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return nil, fmt.Errorf("finding a free loop device: %w", err)
		}
		dev, err := os.OpenFile("/dev/loop"+strconv.Itoa(n), os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("opening a loop device: %w", err)
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR
		err = unix.IoctlLoopConfigure(int(dev.Fd()), &cfg)
		if err == nil {
			return dev, nil
		}
		dev.Close()
		if !errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("attaching the workspace's image: %w", err)
		}
	}
	return nil, errors.New("attaching the workspace's image: no loop device stayed free")
}

// Unmount undoes Mount: it unmounts dir (detaching lazily if something
// still holds it) and removes the image. Nothing mounted or no image is
// not an error.
func Unmount(dir string) error {
	var errs []error
	if Mounted(dir) {
		if err := unix.Unmount(dir, 0); err != nil {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("unmounting the workspace: %w", err))
			}
		}
	}
	if err := os.Remove(Image(dir)); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Mounted reports whether dir is a mount point (in this process's mount
// namespace).
func Mounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	dir = filepath.Clean(dir)
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && unescape(fields[4]) == dir {
			return true
		}
	}
	return false
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
