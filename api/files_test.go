package api_test

import (
	"encoding/json"
	"testing"

	"github.com/warden-sandbox/warden/api"
)

func TestFileModeJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want api.FileMode
	}{
		{`420`, 0o644}, {`"0644"`, 0o644}, {`"644"`, 0o644}, {`"0o755"`, 0o755}, {`"4755"`, 0o755}, {`null`, 0},
	} {
		var e api.FileEntry
		if err := json.Unmarshal([]byte(`{"name":"f","mode":`+tt.in+`}`), &e); err != nil || e.Mode != tt.want {
			t.Errorf("mode %s = %v, %v; want %v", tt.in, e.Mode, err, tt.want)
		}
	}
	for _, bad := range []string{`{"mode":"rw"}`, `{"mode":"0999"}`, `{"mode":true}`, `{"mod_time":"yesterday"}`} {
		var e api.FileEntry
		if err := json.Unmarshal([]byte(bad), &e); err == nil {
			t.Errorf("Unmarshal(%s) = nil error, want one", bad)
		}
	}
	b, err := json.Marshal(api.FileEntry{Name: "x", Mode: 0o750})
	if err != nil || string(b) != `{"name":"x","type":"","size":0,"mode":"0750","mod_time":"0001-01-01T00:00:00Z"}` {
		t.Errorf("Marshal = %s, %v", b, err)
	}
}

func TestByteSizeJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]api.ByteSize{`"512m"`: "512m", `1048576`: "1048576", `"1048576"`: "1048576", `-5`: "-5"} {
		var b api.ByteSize
		if err := json.Unmarshal([]byte(in), &b); err != nil || b != want {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q", in, b, err, want)
		}
	}
	for _, bad := range []string{`1.5`, `true`, `{}`, `1e9`} {
		var b api.ByteSize
		if err := json.Unmarshal([]byte(bad), &b); err == nil {
			t.Errorf("Unmarshal(%s) = %q, want an error", bad, b)
		}
	}
	for in, want := range map[api.ByteSize]string{"512m": `"512m"`, "1048576": `1048576`} {
		if b, err := json.Marshal(in); err != nil || string(b) != want {
			t.Errorf("Marshal(%q) = %s, %v; want %s", in, b, err, want)
		}
	}
}

func TestFileEntryPathAndLinkTarget(t *testing.T) {
	t.Parallel()
	e := api.FileEntry{Name: "l", Path: "d/l", Type: api.FileTypeSymlink, Mode: 0o777, LinkTarget: "../x"}
	b, err := json.Marshal(e)
	want := `{"name":"l","path":"d/l","type":"symlink","size":0,"mode":"0777","mod_time":"0001-01-01T00:00:00Z","link_target":"../x"}`
	if err != nil || string(b) != want {
		t.Errorf("Marshal = %s, %v; want %s", b, err, want)
	}
	var back api.FileEntry
	if err := json.Unmarshal(b, &back); err != nil || back != e {
		t.Errorf("Unmarshal(%s) = %+v, %v; want %+v", b, back, err, e)
	}
	for v, want := range map[any]string{
		api.MoveRequest{Source: "a", Destination: "b/c"}: `{"source":"a","destination":"b/c"}`,
		api.Removed{Path: "a", Status: "removed"}:        `{"path":"a","status":"removed"}`,
	} {
		if b, err := json.Marshal(v); err != nil || string(b) != want {
			t.Errorf("Marshal(%#v) = %s, %v; want %s", v, b, err, want)
		}
	}
}
