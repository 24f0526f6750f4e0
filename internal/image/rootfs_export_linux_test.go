package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestUntar(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		h.ModTime = time.Unix(1_700_000_000, 0)
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add(&tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "usr/bin/su", Typeflag: tar.TypeReg, Mode: 0o4755}, "setuid binary")
	add(&tar.Header{Name: "usr/bin/tool", Typeflag: tar.TypeReg, Mode: 0o755}, "tool")
	add(&tar.Header{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"}, "")
	add(&tar.Header{Name: "usr/bin/tool2", Typeflag: tar.TypeLink, Linkname: "usr/bin/tool"}, "")
	add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, "")
	add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, "")
	add(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644}, "outside")
	add(&tar.Header{Name: "usr/bin/link-out", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}, "")
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	parent := t.TempDir()
	dir := filepath.Join(parent, "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := untar(&buf, dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "usr/bin/su"))
	if err != nil || st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || st.Mode().Perm() != 0o755 {
		t.Errorf("su: %v, %v; want 0755 without set-ID bits", st.Mode(), err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "bin/tool2")); err != nil || string(b) != "tool" {
		t.Errorf("symlink and hard link: %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("tmp: %v, %v; want sticky", st.Mode(), err)
	}
	for _, name := range []string{"dev/null", "usr/bin/link-out"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s was extracted", name)
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "escape")); err == nil {
		t.Error("an entry escaped the directory")
	}
}

// TestExportRootFS extracts the runtime image once and reuses it.
func TestExportRootFS(t *testing.T) {
	testutil.RequireDocker(t)
	testutil.RequireRoot(t)
	t.Parallel()
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cache := t.TempDir()
	dir, err := ExportRootFS(t.Context(), cli, testutil.Image(), cache, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/python3")); err != nil {
		t.Fatalf("no python3 in the extracted root: %v", err)
	}
	start := time.Now()
	again, err := ExportRootFS(t.Context(), cli, testutil.Image(), cache, nil)
	if err != nil || again != dir {
		t.Fatalf("second export = %q, %v; want the cached %q", again, err, dir)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the cached export took %s", d)
	}
	if _, err := ExportRootFS(t.Context(), cli, "warden-no-such-image:latest", cache, nil); err == nil {
		t.Error("exporting a missing image succeeded")
	}
}
