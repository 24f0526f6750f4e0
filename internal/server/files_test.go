package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/warden-sandbox/warden/api"
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
		{"GET", "/list", "a\x00b", 400, "invalid"},
		{"GET", "/stat", "../outside", 400, "invalid"},
		{"GET", "/stat", "dir/../../outside/secret", 400, "invalid"},
		{"GET", "/stat", "/etc/passwd", 400, "invalid"},
		{"GET", "/stat", "/workspacex", 400, "invalid"},
		{"GET", "/stat", "out/secret", 400, "invalid"}, // through a planted symlink
		{"GET", "/stat", "etc/passwd", 400, "invalid"},
		{"GET", "/stat", "a\x00b", 400, "invalid"},
		{"GET", "/stat", "missing", 404, "not_found"},
		{"GET", "/stat", "dir/inner.txt/x", 409, "conflict"},
		{"POST", "/mkdir", "", 400, "invalid"},
		{"POST", "/mkdir", "../escape", 400, "invalid"},
		{"POST", "/mkdir", "/tmp/escape", 400, "invalid"},
		{"POST", "/mkdir", "out/new", 400, "invalid"},
		{"POST", "/mkdir", "out/new/deeper", 400, "invalid"},
		{"POST", "/mkdir", "etc/new", 400, "invalid"},
		{"POST", "/mkdir", "a\x00b", 400, "invalid"},
		{"POST", "/mkdir", ".", 409, "conflict"},
		{"POST", "/mkdir", "/workspace", 409, "conflict"},
		{"POST", "/mkdir", "dir", 409, "conflict"},
		{"POST", "/mkdir", "dir/inner.txt", 409, "conflict"},
		{"POST", "/mkdir", "out", 409, "conflict"}, // the link itself exists
		{"POST", "/mkdir", "dir/inner.txt/x", 409, "conflict"},
		{"DELETE", "", "", 400, "invalid"},
		{"DELETE", "", ".", 400, "invalid"},
		{"DELETE", "", "/workspace", 400, "invalid"},
		{"DELETE", "", "/workspace/", 400, "invalid"},
		{"DELETE", "", "dir/..", 400, "invalid"},
		{"DELETE", "", "..", 400, "invalid"},
		{"DELETE", "", "../outside", 400, "invalid"},
		{"DELETE", "", "/tmp", 400, "invalid"},
		{"DELETE", "", "out/secret", 400, "invalid"},
		{"DELETE", "", "etc/hostname", 400, "invalid"},
		{"DELETE", "", "a\x00b", 400, "invalid"},
		{"DELETE", "", "missing", 404, "not_found"},
		{"DELETE", "", "dir/inner.txt/x", 409, "conflict"},
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
	if n, _ := os.ReadDir(filepath.Join(ws, "..", "outside")); len(n) != 1 {
		t.Errorf("the directory outside the workspace holds %d entries, want 1 (secret)", len(n))
	}
	if _, err := os.Stat(filepath.Join(ws, "dir", "inner.txt")); err != nil {
		t.Errorf("a refused request removed dir/inner.txt: %v", err)
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

// entryOf is the part of a FileEntry a test can predict.
type entryOf struct {
	Name, Path, Type, Mode, LinkTarget string
	Size                               int64
}

func shortEntry(e api.FileEntry) entryOf {
	var size int64
	if e.Type == api.FileTypeFile {
		size = e.Size // a directory's or link's size depends on the file system
	}
	mode := fmt.Sprintf("%04o", e.Mode)
	if e.Type == api.FileTypeSymlink {
		mode = ""
	}
	return entryOf{e.Name, e.Path, e.Type, mode, e.LinkTarget, size}
}

func TestFilesStat(t *testing.T) {
	t.Parallel()
	ts, id, ws := filesServer(t)
	must(t, os.Chmod(ws, 0o755))
	workspace := entryOf{".", ".", "dir", "0755", "", 0}
	tests := []struct {
		path string
		want entryOf
	}{
		{"", workspace},
		{".", workspace},
		{"/workspace", workspace},
		{"/workspace/", workspace},
		{"dir/..", workspace},
		{"dir", entryOf{"dir", "dir", "dir", "0755", "", 0}},
		{"/workspace/dir/inner.txt", entryOf{"inner.txt", "dir/inner.txt", "file", "0644", "", 5}},
		{"./dir//inner.txt", entryOf{"inner.txt", "dir/inner.txt", "file", "0644", "", 5}},
		{"inlink", entryOf{"inlink", "inlink", "symlink", "", "dir/inner.txt", 0}},
		// Symlinks that lead out are reported, not followed.
		{"out", entryOf{"out", "out", "symlink", "", "../outside", 0}},
		{"etc", entryOf{"etc", "etc", "symlink", "", "/etc", 0}},
		{"hostname", entryOf{"hostname", "hostname", "symlink", "", "/etc/hostname", 0}},
		{"fifo", entryOf{"fifo", "fifo", "other", "0644", "", 0}},
	}
	for _, tt := range tests {
		u := "/sandbox/" + string(id) + "/files/stat"
		if tt.path != "" {
			u = filesURL(id, "/stat", tt.path)
		}
		resp := ts.do(t, "GET", u, nil)
		if resp.status != http.StatusOK {
			t.Errorf("GET files/stat %q = %d %s, want 200", tt.path, resp.status, resp.body)
			continue
		}
		e := decode[api.FileEntry](t, resp)
		if got := shortEntry(e); got != tt.want || e.ModTime.IsZero() {
			t.Errorf("GET files/stat %q = %+v (mod_time %v), want %+v", tt.path, got, e.ModTime, tt.want)
		}
	}
}

func TestFilesMakeDir(t *testing.T) {
	t.Parallel()
	ts, id, ws := filesServer(t)
	for _, tt := range []struct{ path, wantRel string }{
		{"new", "new"},
		{"a/b/c", "a/b/c"},
		{"/workspace/dir/sub", "dir/sub"},
		{"inlink2/../x/./y", "x/y"},
	} {
		resp := ts.do(t, "POST", filesURL(id, "/mkdir", tt.path), nil)
		if resp.status != http.StatusCreated {
			t.Errorf("POST files/mkdir %s = %d %s, want 201", tt.path, resp.status, resp.body)
			continue
		}
		want := entryOf{filepath.Base(tt.wantRel), tt.wantRel, "dir", "0755", "", 0}
		if got := shortEntry(decode[api.FileEntry](t, resp)); got != want {
			t.Errorf("POST files/mkdir %s = %+v, want %+v", tt.path, got, want)
		}
		if fi, err := os.Lstat(filepath.Join(ws, tt.wantRel)); err != nil || !fi.IsDir() {
			t.Errorf("after POST files/mkdir %s: %v, %v; want a directory", tt.path, fi, err)
		}
		// Twice: 409, saying that it exists.
		e := wantError(t, "POST files/mkdir "+tt.path+" again", ts.do(t, "POST", filesURL(id, "/mkdir", tt.path), nil), 409, "conflict")
		if !strings.Contains(e.Error.Message, "already exists") {
			t.Errorf("POST files/mkdir %s again: message %q does not say it already exists", tt.path, e.Error.Message)
		}
	}
	for _, p := range []string{"dir", "dir/inner.txt", "/workspace", "."} {
		e := wantError(t, "POST files/mkdir "+p, ts.do(t, "POST", filesURL(id, "/mkdir", p), nil), 409, "conflict")
		if !strings.Contains(e.Error.Message, "already exists") {
			t.Errorf("POST files/mkdir %s: message %q does not say it already exists", p, e.Error.Message)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(ws, "dir", "inner.txt")); string(b) != "inner" {
		t.Errorf("dir/inner.txt holds %q after mkdir on it, want inner", b)
	}
}

func TestFilesMove(t *testing.T) {
	t.Parallel()
	ts, id, ws := filesServer(t)
	parent := filepath.Dir(ws)
	must(t, os.WriteFile(filepath.Join(ws, "a.txt"), []byte("A"), 0o644))
	must(t, os.WriteFile(filepath.Join(ws, "x.txt"), []byte("X"), 0o644))
	must(t, os.WriteFile(filepath.Join(ws, "y.txt"), []byte("Y"), 0o644))
	must(t, os.MkdirAll(filepath.Join(ws, "tree", "sub"), 0o755))
	must(t, os.WriteFile(filepath.Join(ws, "tree", "sub", "f"), []byte("F"), 0o644))
	moveURL := "/sandbox/" + string(id) + "/files/move"
	move := func(src, dst string) response {
		return ts.do(t, "POST", moveURL, map[string]string{"source": src, "destination": dst})
	}
	ok := []struct {
		src, dst string
		want     entryOf
		gone     string // relative to the workspace
		content  map[string]string
	}{
		{"a.txt", "b.txt", entryOf{"b.txt", "b.txt", "file", "0644", "", 1}, "a.txt", map[string]string{"b.txt": "A"}},
		{"/workspace/b.txt", "new/deep/c.txt", entryOf{"c.txt", "new/deep/c.txt", "file", "0644", "", 1}, "b.txt",
			map[string]string{"new/deep/c.txt": "A"}},
		{"x.txt", "y.txt", entryOf{"y.txt", "y.txt", "file", "0644", "", 1}, "x.txt", map[string]string{"y.txt": "X"}},
		{"tree", "dir/tree2", entryOf{"tree2", "dir/tree2", "dir", "0755", "", 0}, "tree",
			map[string]string{"dir/tree2/sub/f": "F", "dir/inner.txt": "inner"}},
		// A link is moved itself, even one that points outside.
		{"out", "links/out", entryOf{"out", "links/out", "symlink", "", "../outside", 0}, "out",
			map[string]string{"../outside/secret": "outside secret"}},
		{"y.txt", "/workspace/y.txt", entryOf{"y.txt", "y.txt", "file", "0644", "", 1}, "", map[string]string{"y.txt": "X"}},
	}
	for _, tt := range ok {
		resp := move(tt.src, tt.dst)
		if resp.status != http.StatusOK {
			t.Errorf("move %s to %s = %d %s, want 200", tt.src, tt.dst, resp.status, resp.body)
			continue
		}
		if got := shortEntry(decode[api.FileEntry](t, resp)); got != tt.want {
			t.Errorf("move %s to %s = %+v, want %+v", tt.src, tt.dst, got, tt.want)
		}
		if _, err := os.Lstat(filepath.Join(ws, tt.gone)); tt.gone != "" && err == nil {
			t.Errorf("after moving %s to %s, %s is still there", tt.src, tt.dst, tt.gone)
		}
		for p, want := range tt.content {
			if b, err := os.ReadFile(filepath.Join(ws, p)); err != nil || string(b) != want {
				t.Errorf("after moving %s to %s, %s holds %q, %v; want %q", tt.src, tt.dst, p, b, err, want)
			}
		}
	}
	must(t, os.WriteFile(filepath.Join(ws, "f.txt"), []byte("f"), 0o644))
	// links/out now points inside (to ws/outside, missing): plant a new one
	// that leads out.
	must(t, os.Symlink("../outside", filepath.Join(ws, "out")))
	must(t, os.Symlink("links", filepath.Join(ws, "tolinks")))
	refused := []struct {
		body       any
		wantStatus int
		wantCode   string
	}{
		{map[string]string{"source": "missing", "destination": "m2"}, 404, "not_found"},
		{map[string]string{"source": "f.txt", "destination": "dir"}, 409, "conflict"},
		{map[string]string{"source": "f.txt", "destination": "/workspace/dir/"}, 409, "conflict"},
		{map[string]string{"source": "dir", "destination": "dir"}, 409, "conflict"},
		{map[string]string{"source": "dir", "destination": "f.txt"}, 409, "conflict"},
		{map[string]string{"source": "f.txt", "destination": "dir/inner.txt/z"}, 409, "conflict"},
		{map[string]string{"source": "dir", "destination": "dir/sub"}, 400, "invalid"},
		{map[string]string{"source": "dir", "destination": "dir/x/y"}, 400, "invalid"}, // and no dir/x left behind
		{map[string]string{"source": "links", "destination": "links/../links/in"}, 400, "invalid"},
		{map[string]string{"source": "links", "destination": "tolinks/in"}, 400, "invalid"}, // into itself through a link
		{map[string]string{"source": ".", "destination": "w"}, 400, "invalid"},
		{map[string]string{"source": "/workspace", "destination": "w"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "/workspace"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "."}, 400, "invalid"},
		{map[string]string{"source": "../outside/secret", "destination": "stolen"}, 400, "invalid"},
		{map[string]string{"source": "out/secret", "destination": "stolen"}, 400, "invalid"}, // through a planted link
		{map[string]string{"source": "etc/hostname", "destination": "stolen"}, 400, "invalid"},
		{map[string]string{"source": "/etc/hostname", "destination": "stolen"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "../escape.txt"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "/tmp/escape.txt"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "out/escape.txt"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "out/new/escape.txt"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "etc/escape.txt"}, 400, "invalid"},
		{map[string]string{"source": "f\x00.txt", "destination": "g"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "g\x00"}, 400, "invalid"},
		{map[string]string{"source": "", "destination": "g"}, 400, "invalid"},
		{map[string]string{"source": "f.txt"}, 400, "invalid"},
		{map[string]string{"source": "f.txt", "destination": "g", "overwrite": "yes"}, 400, "invalid"},
		{"not json", 400, "invalid"},
		{nil, 400, "invalid"},
	}
	for _, tt := range refused {
		resp := ts.do(t, "POST", moveURL, tt.body)
		wantError(t, fmt.Sprintf("move %v", tt.body), resp, tt.wantStatus, tt.wantCode)
	}
	if b, err := os.ReadFile(filepath.Join(ws, "f.txt")); err != nil || string(b) != "f" {
		t.Errorf("f.txt holds %q, %v after refused moves, want f", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(parent, "outside", "secret")); err != nil || string(b) != "outside secret" {
		t.Errorf("the secret outside holds %q, %v after refused moves", b, err)
	}
	for _, p := range []string{"stolen", "g", "m2", "dir/sub", "dir/x", "../escape.txt", "../outside/escape.txt", "../outside/new"} {
		if _, err := os.Lstat(filepath.Join(ws, p)); err == nil {
			t.Errorf("a refused move created %s", p)
		}
	}
}

func TestFilesRemove(t *testing.T) {
	t.Parallel()
	ts, id, ws := filesServer(t)
	parent := filepath.Dir(ws)
	must(t, os.MkdirAll(filepath.Join(ws, "tree", "a", "b"), 0o755))
	must(t, os.WriteFile(filepath.Join(ws, "tree", "a", "b", "f"), []byte("F"), 0o644))
	// Links inside the removed tree lead out: they go, their targets stay.
	must(t, os.Symlink("../../outside", filepath.Join(ws, "tree", "out")))
	must(t, os.Symlink(filepath.Join(parent, "outside", "secret"), filepath.Join(ws, "tree", "a", "secret")))
	must(t, os.WriteFile(filepath.Join(ws, "f.txt"), []byte("f"), 0o644))
	for _, tt := range []struct{ path, wantRel string }{
		{"f.txt", "f.txt"},
		{"/workspace/tree", "tree"},
		{"out", "out"},       // the link, not ../outside
		{"etc", "etc"},       // the link, not /etc
		{"inlink", "inlink"}, // the link, not dir/inner.txt
		{"./fifo", "fifo"},
	} {
		resp := ts.do(t, "DELETE", filesURL(id, "", tt.path), nil)
		if resp.status != http.StatusOK {
			t.Errorf("DELETE files %s = %d %s, want 200", tt.path, resp.status, resp.body)
			continue
		}
		if got := decode[api.Removed](t, resp); got != (api.Removed{Path: tt.wantRel, Status: "removed"}) {
			t.Errorf("DELETE files %s = %+v, want path %s, status removed", tt.path, got, tt.wantRel)
		}
		if _, err := os.Lstat(filepath.Join(ws, tt.wantRel)); err == nil {
			t.Errorf("after DELETE files %s, %s is still there", tt.path, tt.wantRel)
		}
		wantError(t, "DELETE files "+tt.path+" again", ts.do(t, "DELETE", filesURL(id, "", tt.path), nil), 404, "not_found")
	}
	if b, err := os.ReadFile(filepath.Join(parent, "outside", "secret")); err != nil || string(b) != "outside secret" {
		t.Errorf("the secret outside holds %q, %v after removals", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(ws, "dir", "inner.txt")); err != nil || string(b) != "inner" {
		t.Errorf("dir/inner.txt holds %q, %v after removing a link to it", b, err)
	}
	if _, err := os.Stat("/etc/hostname"); err != nil {
		t.Errorf("/etc/hostname: %v", err)
	}
	resp := ts.do(t, "DELETE", filesURL(id, "", "dir"), nil)
	if resp.status != http.StatusOK {
		t.Fatalf("DELETE files dir = %d %s, want 200", resp.status, resp.body)
	}
	if entries, err := os.ReadDir(ws); err != nil || len(entries) != 1 || entries[0].Name() != "hostname" {
		t.Errorf("the workspace holds %v, %v; want only hostname", entries, err)
	}
}

func TestFilesListDepth(t *testing.T) {
	t.Parallel()
	ts, id, ws := filesServer(t)
	must(t, os.MkdirAll(filepath.Join(ws, "dir", "a", "b"), 0o755))
	must(t, os.WriteFile(filepath.Join(ws, "dir", "a", "b", "c.txt"), []byte("c"), 0o644))
	must(t, os.WriteFile(filepath.Join(ws, "dir", "a.txt"), []byte("aa"), 0o644))
	must(t, os.Symlink("dir", filepath.Join(ws, "dirlink"))) // inside, still not descended into
	list := func(p, depth string) (string, []entryOf) {
		t.Helper()
		u := filesURL(id, "/list", p)
		if depth != "" {
			u += "&depth=" + url.QueryEscape(depth)
		}
		resp := ts.do(t, "GET", u, nil)
		if resp.status != http.StatusOK {
			t.Fatalf("GET files/list %s depth %s = %d %s, want 200", p, depth, resp.status, resp.body)
		}
		got := decode[api.FileList](t, resp)
		var out []entryOf
		for _, e := range got.Entries {
			out = append(out, shortEntry(e))
		}
		return got.Path, out
	}
	var (
		dir      = entryOf{"dir", "dir", "dir", "0755", "", 0}
		dirA     = entryOf{"a", "dir/a", "dir", "0755", "", 0}
		dirAB    = entryOf{"b", "dir/a/b", "dir", "0755", "", 0}
		dirABC   = entryOf{"c.txt", "dir/a/b/c.txt", "file", "0644", "", 1}
		dirAtxt  = entryOf{"a.txt", "dir/a.txt", "file", "0644", "", 2}
		inner    = entryOf{"inner.txt", "dir/inner.txt", "file", "0644", "", 5}
		dirlink  = entryOf{"dirlink", "dirlink", "symlink", "", "dir", 0}
		etc      = entryOf{"etc", "etc", "symlink", "", "/etc", 0}
		fifo     = entryOf{"fifo", "fifo", "other", "0644", "", 0}
		hostname = entryOf{"hostname", "hostname", "symlink", "", "/etc/hostname", 0}
		inlink   = entryOf{"inlink", "inlink", "symlink", "", "dir/inner.txt", 0}
		out      = entryOf{"out", "out", "symlink", "", "../outside", 0}
	)
	tests := []struct {
		path, depth string
		wantPath    string
		want        []entryOf
	}{
		{"", "", ".", []entryOf{dir, dirlink, etc, fifo, hostname, inlink, out}},
		{"", "1", ".", []entryOf{dir, dirlink, etc, fifo, hostname, inlink, out}},
		{"", "2", ".", []entryOf{dir, dirA, dirAtxt, inner, dirlink, etc, fifo, hostname, inlink, out}},
		{"/workspace", "3", ".", []entryOf{dir, dirA, dirAB, dirAtxt, inner, dirlink, etc, fifo, hostname, inlink, out}},
		{"", "10", ".", []entryOf{dir, dirA, dirAB, dirABC, dirAtxt, inner, dirlink, etc, fifo, hostname, inlink, out}},
		{"dir", "1", "dir", []entryOf{dirA, dirAtxt, inner}},
		{"/workspace/dir/a", "2", "dir/a", []entryOf{dirAB, dirABC}},
		{"dirlink", "1", "dirlink", []entryOf{ // the listed directory itself may be a link inside
			{"a", "dirlink/a", "dir", "0755", "", 0}, {"a.txt", "dirlink/a.txt", "file", "0644", "", 2},
			{"inner.txt", "dirlink/inner.txt", "file", "0644", "", 5}}},
	}
	for _, tt := range tests {
		path, got := list(tt.path, tt.depth)
		if path != tt.wantPath || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("GET files/list %q depth %q = %s\n%+v,\nwant %s\n%+v", tt.path, tt.depth, path, got, tt.wantPath, tt.want)
		}
	}
	for _, d := range []string{"0", "-1", "11", "x", "1.5", "1e1", " 1", "99999999999999999999"} {
		resp := ts.do(t, "GET", filesURL(id, "/list", "")+"&depth="+url.QueryEscape(d), nil)
		wantError(t, "GET files/list depth "+d, resp, 400, "invalid")
	}
}

// ownedFake is a Fake whose sandboxes' files belong to uid and gid 4321.
type ownedFake struct{ *sandboxtest.Fake }

func (f ownedFake) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	info, err := f.Fake.Create(ctx, spec)
	info.WorkspaceUID, info.WorkspaceGID = 4321, 4321
	return info, err
}

// As root, the directories mkdir and move create belong to the sandbox
// user; what already existed keeps its owner.
func TestFilesNewDirectoriesOwnedBySandboxUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to hand files to another user")
	}
	ws := t.TempDir()
	must(t, os.WriteFile(filepath.Join(ws, "f.txt"), []byte("f"), 0o644))
	ts := newServer(t, setup{provider: ownedFake{&sandboxtest.Fake{Workspace: ws}}})
	id := ts.create(t, nil)
	if resp := ts.do(t, "POST", filesURL(id, "/mkdir", "a/b"), nil); resp.status != http.StatusCreated {
		t.Fatalf("POST files/mkdir a/b = %d %s", resp.status, resp.body)
	}
	resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/files/move", map[string]string{"source": "f.txt", "destination": "m/n/f.txt"})
	if resp.status != http.StatusOK {
		t.Fatalf("move = %d %s", resp.status, resp.body)
	}
	for p, wantUID := range map[string]uint32{"a": 4321, "a/b": 4321, "m": 4321, "m/n": 4321, "m/n/f.txt": 0} {
		fi, err := os.Lstat(filepath.Join(ws, p))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != wantUID || st.Gid != wantUID {
			t.Errorf("%s belongs to %d:%d, want %d:%d", p, st.Uid, st.Gid, wantUID, wantUID)
		}
	}
}
