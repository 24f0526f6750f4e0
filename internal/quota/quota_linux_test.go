//go:build linux

package quota

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestMountBoundsTheWorkspace(t *testing.T) {
	testutil.RequireRoot(t)
	if err := Supported(); err != nil {
		t.Skipf("quotas not supported here: %v", err)
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ws")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	const size = 16 << 20
	if err := Mount(t.Context(), dir, size, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Unmount(dir) })
	if !Mounted(dir) {
		t.Fatal("not mounted")
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 1000 || sys.Gid != 1000 || st.Mode().Perm() != 0o755 {
		t.Fatalf("root %v uid %d gid %d, want 0755 1000:1000", st.Mode(), sys.Uid, sys.Gid)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a fresh workspace holds %v", entries)
	}
	// Writing past the size fails with ENOSPC, and the image on the host
	// never holds more than the size.
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(f, io.LimitReader(zeros{}, 2*size))
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) || n >= size {
		t.Fatalf("wrote %d bytes of %d, err %v; want ENOSPC before %d", n, 2*size, err, size)
	}
	var img syscall.Stat_t
	if err := syscall.Stat(Image(dir), &img); err != nil {
		t.Fatal(err)
	}
	if used := img.Blocks * 512; used > size {
		t.Fatalf("the image uses %d bytes on the host, more than %d", used, size)
	}

	if err := Unmount(dir); err != nil {
		t.Fatal(err)
	}
	if Mounted(dir) {
		t.Fatal("still mounted")
	}
	if _, err := os.Stat(Image(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("image after Unmount: %v", err)
	}
	if err := Unmount(dir); err != nil {
		t.Fatalf("second Unmount: %v", err)
	}
}

// TestUnmountWhileBusy: a workspace something still holds open is
// detached, not left mounted.
func TestUnmountWhileBusy(t *testing.T) {
	testutil.RequireRoot(t)
	if err := Supported(); err != nil {
		t.Skipf("quotas not supported here: %v", err)
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "ws")
	_ = os.Mkdir(dir, 0o700)
	if err := Mount(t.Context(), dir, MinSize, 0, 0); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Unmount(dir); err != nil {
		t.Fatal(err)
	}
	if Mounted(dir) {
		t.Fatal("a busy workspace stayed mounted")
	}
}

func TestMountRefuses(t *testing.T) {
	testutil.RequireRoot(t)
	if err := Supported(); err != nil {
		t.Skipf("quotas not supported here: %v", err)
	}
	t.Parallel()
	dir := t.TempDir()
	if err := Mount(t.Context(), dir, 1<<20, 0, 0); err == nil || !strings.Contains(err.Error(), "minimum") {
		t.Fatalf("a 1 MiB quota = %v", err)
	}
	if _, err := os.Stat(Image(dir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a refused Mount left its image")
	}
}

func TestUnescape(t *testing.T) {
	t.Parallel()
	if got := unescape(`/tmp/a\040b\134c`); got != `/tmp/a b\c` {
		t.Fatalf("unescape = %q", got)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
