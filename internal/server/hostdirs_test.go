package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

func TestAllowedHostDirs(t *testing.T) {
	t.Parallel()
	allowed, outside := t.TempDir(), t.TempDir()
	inside := filepath.Join(allowed, "project")
	escape := filepath.Join(allowed, "escape")
	if err := os.Mkdir(inside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, escape); err != nil {
		t.Fatal(err)
	}
	ts := newServer(t, setup{provider: capableProvider{&sandboxtest.Fake{}}, allowedDirs: []string{allowed}})
	for _, c := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"workspace inside", map[string]any{"workspace_path": inside}, http.StatusCreated},
		{"read dir is the allowed dir", map[string]any{"additional_read_dirs": []string{allowed}}, http.StatusCreated},
		{"workspace outside", map[string]any{"workspace_path": outside}, http.StatusForbidden},
		{"write dir outside", map[string]any{"additional_write_dirs": []string{outside}}, http.StatusForbidden},
		{"symlink inside pointing out", map[string]any{"workspace_path": escape}, http.StatusForbidden},
		{"prefix is not containment", map[string]any{"additional_read_dirs": []string{allowed + "-other"}}, http.StatusForbidden},
	} {
		resp := ts.do(t, "POST", "/sandbox/create", c.body)
		if resp.status != c.want {
			t.Errorf("%s: POST /sandbox/create = %d %s, want %d", c.name, resp.status, resp.body, c.want)
			continue
		}
		if c.want == http.StatusForbidden {
			if e := wantError(t, c.name, resp, http.StatusForbidden, "denied"); e.Error.Rule != "allowed_host_dirs" || e.Error.Reason == "" {
				t.Errorf("%s: error = %+v, want rule allowed_host_dirs with a reason", c.name, e)
			}
		}
	}
}
