package image

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// bootstrapBase builds the Debian base image: debootstrap a minimal rootfs,
// install the packages with apt-get in a chroot, strip it, and import it as
// o.BaseName. The rootfs lives in a temporary directory that is removed on
// return, after anything still mounted under it has been unmounted.
func bootstrapBase(ctx context.Context, api API, o Options, w io.Writer) (err error) {
	mirror := o.Mirror
	if mirror == "" {
		mirror = HostMirror(os.DirFS("/etc/apt"))
	}
	env := childEnv(o.Env)
	debootstrap, err := findDebootstrap(ctx, env, w)
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp(o.TempDir, "warden-rootfs-")
	if err != nil {
		return fmt.Errorf("creating temporary rootfs directory: %w", err)
	}
	defer func() {
		if rerr := removeTree(dir); rerr != nil {
			err = errors.Join(err, fmt.Errorf("removing temporary rootfs: %w", rerr))
		}
	}()
	// MkdirTemp's 0700 must not become the image's "/"; the rootfs gets its
	// own 0755 directory whatever the umask.
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return fmt.Errorf("creating rootfs directory: %w", err)
	}
	if err := os.Chmod(rootfs, 0o755); err != nil {
		return fmt.Errorf("creating rootfs directory: %w", err)
	}

	phasef(w, "bootstrapping Debian %s base with debootstrap from %s (this takes about 1-3 minutes)...", Suite, mirror)
	if err := run(ctx, w, env, "debootstrap", debootstrap, "--variant=minbase", "--include=python3", Suite, rootfs, mirror); err != nil {
		return err
	}

	phasef(w, "installing Python libraries and tools with apt-get in the chroot...")
	chroot := lookTool("chroot")
	if chroot == "" {
		return errors.New("chroot not found (it is part of coreutils)")
	}
	if err := prepareChroot(rootfs); err != nil {
		return err
	}
	apt := []string{chroot, rootfs, "apt-get", "-q", "-o", "Dpkg::Use-Pty=0"}
	if err := run(ctx, w, env, "apt-get update", slices.Concat(apt, []string{"update"})...); err != nil {
		return err
	}
	install := slices.Concat(apt, []string{"install", "-y", "--no-install-recommends"}, debianPackages())
	if err := run(ctx, w, env, "apt-get install", install...); err != nil {
		return err
	}
	if err := run(ctx, w, env, "apt-get clean", slices.Concat(apt, []string{"clean"})...); err != nil {
		return err
	}

	phasef(w, "removing apt lists, docs, man pages and locales from the rootfs...")
	if err := cleanRootfs(rootfs); err != nil {
		return err
	}

	phasef(w, "importing the rootfs as %s...", o.BaseName)
	return importTar(ctx, api, o.BaseName, baseChanges(), func(tw io.Writer) error {
		return writeRootfsTar(tw, rootfs)
	}, w)
}

// baseChanges are the Dockerfile instructions applied on import: an
// imported tar carries no configuration at all.
func baseChanges() []string {
	return []string{
		"ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"ENV LANG=C.UTF-8",
		`CMD ["python3"]`,
	}
}

// childEnv is the whole environment of debootstrap and apt-get: the host's
// environment is not passed through, only the operator's extra entries.
func childEnv(extra []string) []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root",
		"LC_ALL=C",
		"DEBIAN_FRONTEND=noninteractive",
	}
	return append(env, extra...)
}

// findDebootstrap returns the path of debootstrap, installing it with
// apt-get when it is missing and we are root. Bootstrapping needs root
// anyway (debootstrap and chroot), so that is checked here too.
func findDebootstrap(ctx context.Context, env []string, w io.Writer) (string, error) {
	p := lookTool("debootstrap")
	root := os.Geteuid() == 0
	switch {
	case p != "" && root:
		return p, nil
	case p != "":
		return "", errors.New("bootstrapping the Debian base needs root (debootstrap, chroot): run the build as root, for example with sudo")
	case !root:
		return "", errors.New("debootstrap is not installed: run `sudo apt-get install -y debootstrap`, then run the build as root")
	}
	aptGet := lookTool("apt-get")
	if aptGet == "" {
		return "", errors.New("debootstrap is not installed and there is no apt-get: install debootstrap with the host's package manager")
	}
	phasef(w, "debootstrap is not installed; installing it with apt-get...")
	install := []string{aptGet, "install", "-y", "debootstrap"}
	installErr := run(ctx, w, env, "apt-get install", install...)
	if installErr != nil && ctx.Err() == nil {
		// The package lists may be missing or stale: refresh and retry once.
		installErr = run(ctx, w, env, "apt-get update", aptGet, "update")
		if installErr == nil {
			installErr = run(ctx, w, env, "apt-get install", install...)
		}
	}
	if installErr != nil {
		return "", fmt.Errorf("installing debootstrap (try `apt-get update && apt-get install -y debootstrap`): %w", installErr)
	}
	if p := lookTool("debootstrap"); p != "" {
		return p, nil
	}
	return "", errors.New("debootstrap not found after installing it")
}

// lookTool finds a program in PATH or in the system directories, which the
// PATH of a non-login root shell may lack. It returns "" if there is none.
func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// run runs a command in its own process group with exactly env, streaming
// its output to w. Cancelling ctx sends SIGTERM to the whole group, so that
// debootstrap's exit trap still unmounts /proc and /sys in the target, then
// SIGKILL to whatever is left. A failure's error ends with the last lines of
// output, which also helps when w discards them.
//
// what names the step in errors ("apt-get install").
func run(ctx context.Context, w io.Writer, env []string, what string, argv ...string) error {
	tail := &tailBuffer{max: 2048}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = "/"
	out := io.MultiWriter(w, tail)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil && cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("running %s: %w", what, ctx.Err())
		}
		if last := tail.lastLines(3); last != "" {
			return fmt.Errorf("running %s: %s: %w", what, last, err)
		}
		return fmt.Errorf("running %s: %w", what, err)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
	cut bool // the start of buf is the middle of a line
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.cut = t.buf[over-1] != '\n'
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// lastLines returns up to n last non-empty whole lines, joined by " | ".
func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	buf := t.buf
	if t.cut {
		if _, rest, ok := bytes.Cut(buf, []byte("\n")); ok {
			buf = rest
		} else {
			buf = nil
		}
	}
	var lines []string
	for _, l := range strings.Split(string(bytes.TrimSpace(buf)), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// prepareChroot gives apt-get in the chroot name resolution and tells dpkg
// to skip documentation. All writes go through os.Root, so symbolic links in
// the rootfs cannot redirect them onto the host.
func prepareChroot(rootfs string) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return fmt.Errorf("preparing chroot: %w", err)
	}
	defer root.Close()
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("preparing chroot: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{"etc/resolv.conf", resolv},
		{"etc/dpkg/dpkg.cfg.d/90warden-nodoc", []byte(dpkgNoDoc)},
		{"etc/apt/apt.conf.d/90warden", []byte(aptConf)},
	}
	for _, f := range files {
		if err := root.Remove(f.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("preparing chroot: %w", err)
		}
		if err := root.WriteFile(f.name, f.data, 0o644); err != nil {
			return fmt.Errorf("preparing chroot: %w", err)
		}
	}
	return nil
}

// dpkgNoDoc keeps documentation out of the image, except the copyright
// files.
const dpkgNoDoc = `# Written by warden: keep documentation out of the image.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
`

// aptConf makes apt skip recommends and translation files.
const aptConf = `// Written by warden.
APT::Install-Recommends "false";
Acquire::Languages "none";
`

// cleanRootfs removes what the image does not need: package lists and
// caches, documentation (except copyright files), man and info pages,
// translations, logs, and the host's resolv.conf and hostname that
// debootstrap copied in (Docker provides both at run time).
func cleanRootfs(rootfs string) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return fmt.Errorf("cleaning rootfs: %w", err)
	}
	defer root.Close()
	keepNone := func(string) bool { return false }
	steps := []struct {
		dir  string
		keep func(string) bool
	}{
		{"var/lib/apt/lists", func(n string) bool { return n == "partial" }},
		{"var/lib/apt/lists/partial", keepNone},
		{"var/cache/apt", func(n string) bool { return n == "archives" }},
		{"var/cache/apt/archives", func(n string) bool { return n == "partial" }},
		{"var/cache/debconf", func(n string) bool { return !strings.HasSuffix(n, "-old") }},
		{"var/log/apt", keepNone},
		{"var/log", func(n string) bool { return !strings.HasSuffix(n, ".log") }},
		{"usr/share/man", keepNone},
		{"usr/share/info", keepNone},
		{"usr/share/locale", func(n string) bool { return n == "locale.alias" }},
	}
	for _, s := range steps {
		if err := removeChildren(root, s.dir, s.keep); err != nil {
			return fmt.Errorf("cleaning rootfs: %w", err)
		}
	}
	docs, err := readDirNames(root, "usr/share/doc")
	if err != nil {
		return fmt.Errorf("cleaning rootfs: %w", err)
	}
	for _, d := range docs {
		dir := path.Join("usr/share/doc", d)
		if fi, err := root.Lstat(dir); err != nil || !fi.IsDir() {
			continue
		}
		if err := removeChildren(root, dir, func(n string) bool { return n == "copyright" }); err != nil {
			return fmt.Errorf("cleaning rootfs: %w", err)
		}
	}
	for name, data := range map[string]string{"etc/resolv.conf": "", "etc/hostname": "localhost\n"} {
		if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cleaning rootfs: %w", err)
		}
		if err := root.WriteFile(name, []byte(data), 0o644); err != nil {
			return fmt.Errorf("cleaning rootfs: %w", err)
		}
	}
	return nil
}

// removeChildren removes the entries of dir that keep rejects. A missing
// dir, or one that is a symbolic link, is left alone.
func removeChildren(root *os.Root, dir string, keep func(name string) bool) error {
	if fi, err := root.Lstat(dir); errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.IsDir()) {
		return nil
	}
	names, err := readDirNames(root, dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		if keep(n) {
			continue
		}
		if err := root.RemoveAll(path.Join(dir, n)); err != nil {
			return err
		}
	}
	return nil
}

func readDirNames(root *os.Root, dir string) ([]string, error) {
	f, err := root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
