package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/session"
)

// workspace_mount_path moves the workspace inside the sandbox (the E2B
// surface asks for /home/user); a path the configuration would refuse as
// SANDBOX__VOLUME_MOUNT_PATH is refused here too.
func TestCreateWorkspaceMountPath(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{provider: capableProvider{&sandboxtest.Fake{}}})
	for _, req := range []struct{ query, body string }{
		{body: `{"workspace_mount_path":"/home/user"}`},
		{query: "?workspace_mount_path=/home/user"},
	} {
		resp := ts.do(t, "POST", "/sandbox/create"+req.query, req.body)
		if resp.status != http.StatusCreated {
			t.Fatalf("POST /sandbox/create%s %s = %d %s, want 201", req.query, req.body, resp.status, resp.body)
		}
		info := decode[session.Info](t, resp)
		if info.Spec.WorkspacePath != "/home/user" || !strings.Contains(string(resp.body), `"workspace_path":"/home/user"`) {
			t.Errorf("POST /sandbox/create%s %s: spec.workspace_path = %q, want /home/user", req.query, req.body, info.Spec.WorkspacePath)
		}
	}
	resp := ts.do(t, "POST", "/sandbox/create", nil)
	if info := decode[session.Info](t, resp); info.Spec.WorkspacePath != sandbox.DefaultWorkspacePath {
		t.Errorf("without workspace_mount_path: spec.workspace_path = %q, want %q", info.Spec.WorkspacePath, sandbox.DefaultWorkspacePath)
	}
	for _, bad := range []string{"home/user", "/home/user/", "/home/../etc", "/usr/local/w", "/tmp", "/home", ""} {
		body := `{"workspace_mount_path":"` + bad + `"}`
		resp := ts.do(t, "POST", "/sandbox/create", body)
		e := wantError(t, "POST /sandbox/create "+body, resp, http.StatusBadRequest, "invalid")
		if !strings.Contains(e.Error.Message, "workspace_mount_path") {
			t.Errorf("POST /sandbox/create %s message = %q, want it to name workspace_mount_path", body, e.Error.Message)
		}
	}
}
