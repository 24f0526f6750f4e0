package server_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// filesServer returns a server whose sandboxes share the workspace ws,
// which holds a symlink to /etc, one to a sibling directory outside ws,
// one inside ws, a FIFO and a file named secret next to ws.
func filesServer(t *testing.T) (ts *testServer, id sandbox.ID, ws string) {
	t.Helper()
	parent := t.TempDir()
	ws = filepath.Join(parent, "ws")
	outside := filepath.Join(parent, "outside")
	for _, d := range []string{ws, outside, filepath.Join(ws, "dir")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(filepath.Join(outside, "secret"), []byte("outside secret"), 0o644))
	must(t, os.WriteFile(filepath.Join(ws, "dir", "inner.txt"), []byte("inner"), 0o644))
	must(t, os.Symlink("/etc", filepath.Join(ws, "etc")))
	must(t, os.Symlink("../outside", filepath.Join(ws, "out")))
	must(t, os.Symlink("/etc/hostname", filepath.Join(ws, "hostname")))
	must(t, os.Symlink("dir/inner.txt", filepath.Join(ws, "inlink")))
	must(t, syscall.Mkfifo(filepath.Join(ws, "fifo"), 0o644))
	ts = newServer(t, setup{fake: &sandboxtest.Fake{Workspace: ws}})
	return ts, ts.create(t, nil), ws
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func filesURL(id sandbox.ID, suffix, p string) string {
	return "/sandbox/" + string(id) + "/files" + suffix + "?path=" + url.QueryEscape(p)
}

func TestFilesUploadDownload(t *testing.T) {
	t.Parallel()
	ts, id, ws := filesServer(t)
	tests := []struct {
		path, wantRel string
		body          string
	}{
		{"a.txt", "a.txt", "hello"},
		{"new/deep/b.bin", "new/deep/b.bin", "\x00\x01binary\xff"},
		{"./dir/../c.txt", "c.txt", ""},
		{"/workspace/d.txt", "d.txt", "absolute under the workspace path"},
		{"a.txt", "a.txt", "overwritten"},
		{"inlink", "inlink", "replaces the link, not its target"},
	}
	for _, tt := range tests {
		resp := ts.do(t, "PUT", filesURL(id, "", tt.path), tt.body)
		if resp.status != http.StatusCreated {
			t.Fatalf("PUT %s = %d %s, want 201", tt.path, resp.status, resp.body)
		}
		got := decode[map[string]any](t, resp)
		if got["path"] != tt.wantRel || got["size"] != float64(len(tt.body)) {
			t.Errorf("PUT %s = %s, want path %s and size %d", tt.path, resp.body, tt.wantRel, len(tt.body))
		}
		if b, err := os.ReadFile(filepath.Join(ws, tt.wantRel)); err != nil || string(b) != tt.body {
			t.Errorf("after PUT %s the host file holds %q, %v; want %q", tt.path, b, err, tt.body)
		}
		resp = ts.do(t, "GET", filesURL(id, "", tt.path), nil)
		if resp.status != http.StatusOK || string(resp.body) != tt.body {
			t.Errorf("GET %s = %d %q, want 200 %q", tt.path, resp.status, resp.body, tt.body)
		}
		if ct := resp.header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Errorf("GET %s Content-Type = %q, want application/octet-stream", tt.path, ct)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "dir", "inner.txt")); string(b) != "inner" {
		t.Errorf("uploading over a symlink changed its target to %q", b)
	}
	if entries, _ := os.ReadDir(ws); len(entries) == 0 {
		t.Fatal("workspace is empty")
	} else {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".warden-upload-") {
				t.Errorf("a temporary upload file is left: %s", e.Name())
			}
		}
	}
	// A symlink inside the workspace to a file inside it is followed.
	must(t, os.Symlink("a.txt", filepath.Join(ws, "alias")))
	if resp := ts.do(t, "GET", filesURL(id, "", "alias"), nil); string(resp.body) != "overwritten" {
		t.Errorf("GET alias = %d %q, want the content of a.txt", resp.status, resp.body)
	}
}

func TestFilesRefused(t *testing.T) {
	t.Parallel()
	ts, id, ws := filesServer(t)
	tests := []struct {
		method, suffix, path string
		wantStatus           int
		wantCode             string
	}{
		{"GET", "", "", 400, "invalid"},
		{"GET", "", ".", 400, "invalid"},
		{"GET", "", "/workspace", 400, "invalid"},
		{"GET", "", "../outside/secret", 400, "invalid"},
		{"GET", "", "dir/../../outside/secret", 400, "invalid"},
		{"GET", "", "/etc/passwd", 400, "invalid"},
		{"GET", "", "etc/passwd", 400, "invalid"}, // symlink to /etc
		{"GET", "", "hostname", 400, "invalid"},   // symlink to a host file
		{"GET", "", "out/secret", 400, "invalid"}, // relative symlink out
		{"GET", "", "fifo", 400, "invalid"},       // would block a reader
		{"GET", "", "missing.txt", 404, "not_found"},
		{"GET", "", "dir", 409, "conflict"},
		{"GET", "", "dir/inner.txt/x", 409, "conflict"},
		{"PUT", "", "", 400, "invalid"},
		{"PUT", "", "../escape.txt", 400, "invalid"},
		{"PUT", "", "/tmp/escape.txt", 400, "invalid"},
		{"PUT", "", "etc/evil.conf", 400, "invalid"},
		{"PUT", "", "out/new.txt", 400, "invalid"},
		{"PUT", "", "etc/sub/new.txt", 400, "invalid"},
		{"PUT", "", "dir", 409, "conflict"},
		{"PUT", "", "dir/inner.txt/x", 409, "conflict"},
		{"GET", "/list", "etc", 400, "invalid"},
		{"GET", "/list", "..", 400, "invalid"},
		{"GET", "/list", "out", 400, "invalid"},
		{"GET", "/list", "missing", 404, "not_found"},
		{"GET", "/list", "dir/inner.txt", 409, "conflict"},
	}
	for _, tt := range tests {
		resp := ts.do(t, tt.method, filesURL(id, tt.suffix, tt.path), "x")
		wantError(t, tt.method+" files"+tt.suffix+" "+tt.path, resp, tt.wantStatus, tt.wantCode)
		if strings.Contains(string(resp.body), "outside secret") || strings.Contains(string(resp.body), "root:") {
			t.Errorf("%s files%s %s leaked a host file: %s", tt.method, tt.suffix, tt.path, resp.body)
		}
	}
	for _, p := range []string{"/etc/evil.conf", "/tmp/escape.txt", filepath.Join(ws, "..", "escape.txt"), filepath.Join(ws, "..", "outside", "new.txt")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a refused upload created %s", p)
		}
	}
	if n, _ := os.ReadDir(filepath.Join(ws, "..")); len(n) != 2 {
		t.Errorf("the workspace's parent holds %d entries, want 2 (ws, outside)", len(n))
	}
}

func TestFilesList(t *testing.T) {
	t.Parallel()
	ts, id, _ := filesServer(t)
	type entry struct {
		Name, Type string
		Size       int64
		Mode       string
	}
	list := func(p string) (string, []entry) {
		t.Helper()
		resp := ts.do(t, "GET", filesURL(id, "/list", p), nil)
		if resp.status != http.StatusOK {
			t.Fatalf("GET files/list %s = %d %s, want 200", p, resp.status, resp.body)
		}
		got := decode[struct {
			Path    string `json:"path"`
			Entries []struct {
				Name    string `json:"name"`
				Type    string `json:"type"`
				Size    int64  `json:"size"`
				Mode    string `json:"mode"`
				ModTime string `json:"mod_time"`
			} `json:"entries"`
		}](t, resp)
		var out []entry
		for _, e := range got.Entries {
			if e.ModTime == "" {
				t.Errorf("entry %s has no mod_time", e.Name)
			}
			switch e.Type {
			case "symlink":
				e.Size, e.Mode = 0, ""
			case "dir":
				e.Size = 0 // depends on the file system
			}
			out = append(out, entry{e.Name, e.Type, e.Size, e.Mode})
		}
		return got.Path, out
	}
	path, got := list("")
	want := []entry{
		{"dir", "dir", 0, "0755"}, {"etc", "symlink", 0, ""}, {"fifo", "other", 0, "0644"},
		{"hostname", "symlink", 0, ""}, {"inlink", "symlink", 0, ""}, {"out", "symlink", 0, ""},
	}
	if path != "." || !reflect.DeepEqual(got, want) {
		t.Errorf("GET files/list = %s %+v, want . %+v", path, got, want)
	}
	path, got = list("/workspace/dir")
	if want := []entry{{"inner.txt", "file", 5, "0644"}}; path != "dir" || !reflect.DeepEqual(got, want) {
		t.Errorf("GET files/list dir = %s %+v, want dir %+v", path, got, want)
	}
}

func TestFilesWithoutWorkspace(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{}) // the Fake reports no host workspace
	id := ts.create(t, nil)
	wantError(t, "GET files/list", ts.do(t, "GET", filesURL(id, "/list", ""), nil), http.StatusBadRequest, "invalid")
}
