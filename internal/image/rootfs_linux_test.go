package image

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// mkTree creates files (content after "=") and directories (trailing "/")
// under root.
func mkTree(t *testing.T, root string, entries ...string) {
	t.Helper()
	for _, e := range entries {
		name, content, isFile := strings.Cut(e, "=")
		p := filepath.Join(root, name)
		if !isFile {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestWriteRootfsTar(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mkTree(t, root, "usr/bin/python3=elf", "etc/hostname=localhost\n", "tmp/", "dev/null=x", "dev/pts/", "proc/1/status=x", "sys/")
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(root, "usr/bin/python3"), filepath.Join(root, "usr/bin/python3.11")); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if err := writeRootfsTar(&buf, root); err != nil {
		t.Fatalf("writeRootfsTar() = %v", err)
	}
	got := map[string]*tar.Header{}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[hdr.Name] = hdr
		names = append(names, hdr.Name)
	}
	want := []string{"bin", "dev/", "etc/", "etc/hostname", "proc/", "sys/", "tmp/", "usr/", "usr/bin/", "usr/bin/python3", "usr/bin/python3.11"}
	slices.Sort(names)
	if !slices.Equal(names, want) {
		t.Fatalf("tar entries = %q, want %q (no root entry, no dev/proc/sys contents)", names, want)
	}
	if h := got["bin"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "usr/bin" {
		t.Errorf("bin = type %c -> %q, want symlink -> usr/bin", h.Typeflag, h.Linkname)
	}
	if h := got["usr/bin/python3.11"]; h.Typeflag != tar.TypeLink || h.Linkname != "usr/bin/python3" {
		t.Errorf("usr/bin/python3.11 = type %c -> %q, want hard link to usr/bin/python3", h.Typeflag, h.Linkname)
	}
	if h := got["tmp/"]; h.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp/ mode = %o, want 1777", h.Mode)
	}
	if h := got["etc/hostname"]; h.Uname != "" || h.Gname != "" || h.Uid != os.Getuid() {
		t.Errorf("etc/hostname owner = %d %q/%q, want numeric %d only", h.Uid, h.Uname, h.Gname, os.Getuid())
	}
}

// Symbolic links inside the rootfs must never redirect writes to the host.
func TestChrootWritesStayInsideRootfs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	outside := filepath.Join(dir, "host-file")
	mkTree(t, root, "etc/dpkg/dpkg.cfg.d/", "etc/apt/apt.conf.d/", "usr/share/doc/python3/copyright=GPL", "usr/share/doc/python3/README=read me",
		"usr/share/man/man1/ls.1=x", "usr/share/locale/locale.alias=x", "usr/share/locale/de/x.mo=x",
		"var/lib/apt/lists/partial/", "var/lib/apt/lists/deb.debian.org_Packages=x", "var/log/dpkg.log=x", "var/log/apt/history.log=x")
	if err := os.WriteFile(outside, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"etc/resolv.conf", "etc/hostname"} {
		if err := os.Symlink(outside, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	// A directory link leaving the rootfs: cleaning must not follow it.
	if err := os.Symlink(dir, filepath.Join(root, "usr/share/info")); err != nil {
		t.Fatal(err)
	}

	if err := prepareChroot(root); err != nil {
		t.Fatalf("prepareChroot() = %v", err)
	}
	if err := cleanRootfs(root); err != nil {
		t.Fatalf("cleanRootfs() = %v", err)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "host" {
		t.Fatalf("host file = %q, %v; want it untouched", b, err)
	}
	for _, p := range []string{"usr/share/doc/python3/copyright", "usr/share/locale/locale.alias", "var/lib/apt/lists/partial", "etc/dpkg/dpkg.cfg.d/90warden-nodoc"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Errorf("%s was removed: %v", p, err)
		}
	}
	for _, p := range []string{"usr/share/doc/python3/README", "usr/share/man/man1", "usr/share/locale/de", "var/lib/apt/lists/deb.debian.org_Packages", "var/log/dpkg.log", "var/log/apt/history.log"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s was kept", p)
		}
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc/resolv.conf")); err != nil || len(b) != 0 {
		t.Errorf("etc/resolv.conf = %q, %v; want an empty regular file", b, err)
	}
}

func TestParseMountinfo(t *testing.T) {
	t.Parallel()
	const info = `22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
60 22 0:5 / /tmp/warden-rootfs-1/rootfs/proc rw - proc proc rw
61 22 0:6 / /tmp/warden-rootfs-1/rootfs/sys rw - sysfs sysfs rw
62 60 0:7 / /tmp/warden-rootfs-1/rootfs/proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw
63 22 0:8 / /tmp/warden-rootfs-10/rootfs/proc rw - proc proc rw
64 22 0:9 / /tmp/warden\040rootfs/x rw - tmpfs tmpfs rw
`
	got, err := parseMountinfo(strings.NewReader(info), "/tmp/warden-rootfs-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/tmp/warden-rootfs-1/rootfs/proc/sys/fs/binfmt_misc",
		"/tmp/warden-rootfs-1/rootfs/sys",
		"/tmp/warden-rootfs-1/rootfs/proc",
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseMountinfo() = %q, want %q", got, want)
	}
	got, _ = parseMountinfo(strings.NewReader(info), "/tmp/warden rootfs")
	if !slices.Equal(got, []string{"/tmp/warden rootfs/x"}) {
		t.Errorf("parseMountinfo(escaped) = %q", got)
	}
}

func TestRemoveTree(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "warden-rootfs-x")
	mkTree(t, dir, "rootfs/usr/bin/sh=x")
	if err := removeTree(dir); err != nil {
		t.Fatalf("removeTree() = %v", err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", dir, err)
	}
	if err := removeTree(dir); err != nil {
		t.Errorf("removeTree(missing) = %v, want nil", err)
	}
}

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	const out = "first line that scrolls away\nE: Unable to locate package\n\nE: second\n"
	tests := []struct {
		max  int
		n    int
		want string
	}{
		{max: 1024, n: 2, want: "E: Unable to locate package | E: second"},
		{max: 1024, n: 5, want: "first line that scrolls away | E: Unable to locate package | E: second"},
		{max: 45, n: 5, want: "E: Unable to locate package | E: second"}, // partial first line dropped
		{max: 5, n: 2, want: ""},
	}
	for _, tt := range tests {
		tb := &tailBuffer{max: tt.max}
		for _, chunk := range strings.SplitAfter(out, "e") {
			io.WriteString(tb, chunk)
		}
		if got := tb.lastLines(tt.n); got != tt.want {
			t.Errorf("tailBuffer{max: %d}.lastLines(%d) = %q, want %q", tt.max, tt.n, got, tt.want)
		}
	}
}

// A mount left behind by a killed debootstrap must be detached, not emptied:
// the files seen through it belong to the host.
func TestRemoveTreeDetachesMounts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to bind-mount")
	}
	base := t.TempDir()
	host := filepath.Join(base, "host")
	dir := filepath.Join(base, "warden-rootfs-x")
	mkTree(t, base, "host/precious=keep me", "warden-rootfs-x/rootfs/proc/")
	target := filepath.Join(dir, "rootfs/proc")
	if err := syscall.Mount(host, target, "", syscall.MS_BIND, ""); err != nil {
		t.Skipf("bind mount not permitted here: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(target, syscall.MNT_DETACH) })

	if err := removeTree(dir); err != nil {
		t.Fatalf("removeTree() = %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(host, "precious")); err != nil || string(b) != "keep me" {
		t.Fatalf("file behind the mount = %q, %v; want it untouched", b, err)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", dir, err)
	}
}
