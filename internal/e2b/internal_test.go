package e2b

import (
	"encoding/json"
	"errors"
	"regexp"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/filesystempb"
)

func TestIDMapping(t *testing.T) {
	t.Parallel()
	sdk := regexp.MustCompile(`^[a-z0-9]+$`) // what E2B's SDKs and proxy accept
	for _, w := range []string{"sb-0123456789abcdef", "sb-ffffffffffffffff"} {
		e := e2bID(w)
		if !sdk.MatchString(e) || wardenID(e) != w {
			t.Errorf("e2bID(%q) = %q, back %q", w, e, wardenID(e))
		}
	}
	for _, bad := range []string{"", "sb-0123", "sb-0123456789ABCDEF", "xx-0123456789abcdef", "sb-0123456789abcdef0"} {
		if e := e2bID(bad); e != "" {
			t.Errorf("e2bID(%q) = %q, want none", bad, e)
		}
	}
	for _, bad := range []string{"", "sb0123", "sb-0123456789abcdef", "SB0123456789abcdef", "ab0123456789abcdef", "sb0123456789abcdeg"} {
		if w := wardenID(bad); w != "" {
			t.Errorf("wardenID(%q) = %q, want none", bad, w)
		}
	}
}

func TestWardenPath(t *testing.T) {
	t.Parallel()
	b := &box{workspace: "/tmp/ws/workspace"}
	for in, want := range map[string]string{
		"": "", "~": "", "/home/user": "", "/home/user/": "", "a.txt": "a.txt", "./a/../b": "b", "~/x/y": "x/y",
		"/home/user/d/e.txt": "d/e.txt", "/tmp/ws/workspace/f": "f", "/tmp/ws/workspace": "",
	} {
		if got, err := b.wardenPath(in); err != nil || got != want {
			t.Errorf("wardenPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/etc/passwd", "..", "../user2/x", "/home/user2", "/home", "/tmp/ws", "a\x00b"} {
		if got, err := b.wardenPath(bad); err == nil {
			t.Errorf("wardenPath(%q) = %q, want an error", bad, got)
		}
	}
	if _, err := b.wardenPath("/etc"); !errors.Is(err, errPathOutside) {
		t.Errorf("wardenPath(/etc) = %v, want errPathOutside", err)
	}
	for rel, want := range map[string]string{"": "/home/user", ".": "/home/user", "a/b": "/home/user/a/b"} {
		if got := e2bPath(rel); got != want {
			t.Errorf("e2bPath(%q) = %q, want %q", rel, got, want)
		}
	}
}

func TestResultLine(t *testing.T) {
	t.Parallel()
	got, _ := json.Marshal(resultLine(map[string]string{
		"text/plain": "'quoted'", "text/html": "<p>", "image/png": "iVBO", "image/jpeg": "/9j/", "image/svg+xml": "<svg/>",
		"text/markdown": "*m*", "text/latex": "$x$", "application/json": `{"a":1}`, "application/pdf": "JVBE",
		"application/javascript": "1", "application/x-custom": "c",
	}, true))
	want := `{"extra":{"application/x-custom":"c"},"html":"\u003cp\u003e","is_main_result":true,"javascript":"1","jpeg":"/9j/",` +
		`"json":{"a":1},"latex":"$x$","markdown":"*m*","pdf":"JVBE","png":"iVBO","svg":"\u003csvg/\u003e","text":"quoted","type":"result"}`
	if string(got) != want {
		t.Errorf("resultLine =\n%s\nwant\n%s", got, want)
	}
	got, _ = json.Marshal(resultLine(map[string]string{"text/plain": "'", "application/json": "not json"}, false))
	if string(got) != `{"extra":{"application/json":"not json"},"is_main_result":false,"text":"'","type":"result"}` {
		t.Errorf("resultLine of odd input = %s", got)
	}
}

func TestEntryInfo(t *testing.T) {
	t.Parallel()
	mt := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := entryInfo(api.FileEntry{Name: "l", Path: "d/l", Type: api.FileTypeSymlink, Mode: 0o777, ModTime: mt, LinkTarget: "../x"})
	if e.GetPath() != "/home/user/d/l" || e.GetType() != filesystempb.FileType_FILE_TYPE_SYMLINK || e.GetSymlinkTarget() != "/home/user/x" ||
		e.GetPermissions() != "Lrwxrwxrwx" || !e.GetModifiedTime().AsTime().Equal(mt) {
		t.Errorf("symlink = %v", e)
	}
	e = entryInfo(api.FileEntry{Name: ".", Path: ".", Type: api.FileTypeDir, Mode: 0o755})
	if e.GetPath() != "/home/user" || e.GetName() != "user" || e.GetPermissions() != "drwxr-xr-x" || e.SymlinkTarget != nil {
		t.Errorf("home = %v", e)
	}
	if e := entryInfo(api.FileEntry{Name: "p", Path: "p", Type: api.FileTypeOther}); e.GetType() != filesystempb.FileType_FILE_TYPE_UNSPECIFIED {
		t.Errorf("fifo = %v", e)
	}
}
