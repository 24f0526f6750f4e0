package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// The API with the real Docker provider behind it: state persists between
// executions, uploaded files are visible to the code, and a deleted
// sandbox is gone.
func TestDockerEndToEnd(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	p, err := docker.New(ctx, docker.Options{WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatalf("docker.New() = %v", err)
	}
	t.Cleanup(func() { _ = p.Close(context.WithoutCancel(ctx)) })
	ts := newServer(t, setup{provider: p, defaults: sandbox.Spec{Image: testutil.Image()}.WithDefaults()})

	id := ts.create(t, `{"memory_limit":"256m","timeout":60}`)
	execute := func(code string) map[string]any {
		t.Helper()
		resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", map[string]any{"language": "python", "code": code, "timeout": 30})
		if resp.status != http.StatusOK {
			t.Fatalf("execute %q = %d %s, want 200", code, resp.status, resp.body)
		}
		return decode[map[string]any](t, resp)
	}
	if res := execute("x = 1"); res["exit_code"] != 0.0 || res["error"] != nil {
		t.Fatalf("execute x = 1 = %v, want success", res)
	}
	if res := execute("x + 1"); res["return_value"] != "2" {
		t.Errorf("execute x + 1 = %v, want return_value 2", res)
	}

	resp := ts.do(t, "PUT", "/sandbox/"+string(id)+"/files?path=data/in.txt", "from the host")
	if resp.status != http.StatusCreated {
		t.Fatalf("PUT files data/in.txt = %d %s, want 201", resp.status, resp.body)
	}
	res := execute("open('/workspace/data/in.txt').read()")
	if res["return_value"] != "'from the host'" {
		t.Errorf("reading the upload in Python = %v, want 'from the host'", res)
	}
	// The sandbox user can change what the API uploaded, and write into
	// the directories it created.
	for _, code := range []string{"open('/workspace/data/in.txt', 'a').write('!')", "open('/workspace/data/new.txt', 'w').write('x')"} {
		if res := execute(code); res["error"] != nil {
			t.Errorf("execute %q = %v, want success", code, res)
		}
	}
	resp = ts.do(t, "GET", "/sandbox/"+string(id)+"/files/list?path=data", nil)
	if resp.status != http.StatusOK || !strings.Contains(string(resp.body), `"name":"new.txt"`) {
		t.Errorf("GET files/list data = %d %s, want new.txt listed", resp.status, resp.body)
	}
	resp = ts.do(t, "GET", "/sandbox/"+string(id)+"/files?path=data/in.txt", nil)
	if string(resp.body) != "from the host!" {
		t.Errorf("GET files data/in.txt = %d %q, want %q", resp.status, resp.body, "from the host!")
	}

	resp = ts.do(t, "DELETE", "/sandbox/"+string(id), nil)
	if resp.status != http.StatusOK {
		t.Fatalf("DELETE /sandbox/%s = %d %s, want 200", id, resp.status, resp.body)
	}
	wantError(t, "GET after delete", ts.do(t, "GET", "/sandbox/"+string(id), nil), http.StatusNotFound, "not_found")
	wantError(t, "execute after delete", ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"code":"1"}`), http.StatusNotFound, "not_found")
}
