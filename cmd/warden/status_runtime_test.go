package main

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestStatusRuntime starts `warden serve` on Docker with each OCI runtime
// the daemon has (runc always, gVisor's runsc when registered) and checks
// that /sandbox/status names it, and that a sandbox made there runs code.
func TestStatusRuntime(t *testing.T) {
	testutil.RequireDocker(t)
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	out, err := exec.Command("docker", "info", "--format", "{{json .Runtimes}}").Output()
	if err != nil {
		t.Fatalf("docker info: %v", err)
	}
	runtimes := []string{"runc"}
	if strings.Contains(string(out), `"runsc"`) {
		runtimes = append(runtimes, "runsc")
	} else if testutil.Required("WARDEN_REQUIRE_RUNSC") {
		t.Fatalf("the daemon has no runsc runtime (%s), and WARDEN_REQUIRE_RUNSC=1 requires it", out)
	}
	bin := buildWarden(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := startServer(t, bin, t.TempDir(), "SANDBOX__PROVIDER=docker", "SANDBOX__DOCKER_RUNTIME="+rt,
				"SANDBOX__WARM_POOL_SIZE=0", "SANDBOX__IMAGE="+testutil.Image(), "SANDBOX__WORKSPACE_SIZE=0")
			ctx := t.Context()
			r := s.do(ctx, http.MethodGet, "/sandbox/status", "")
			var st api.Status
			if r.err != nil || r.status != http.StatusOK || json.Unmarshal(r.body, &st) != nil {
				t.Fatalf("status = %d %s, %v", r.status, r.body, r.err)
			}
			if st.Provider == nil || st.Provider.Name != "docker" || st.Provider.Runtime != rt {
				t.Fatalf("status provider = %s, want docker on runtime %s", r.body, rt)
			}
			id := s.create(ctx)
			if r := s.shell(ctx, id, "echo ok"); r.status != http.StatusOK || !strings.Contains(string(r.body), `"stdout":"ok\n"`) {
				t.Errorf("execute = %d %s", r.status, r.body)
			}
			if r := s.do(ctx, http.MethodDelete, "/sandbox/"+id, ""); r.status != http.StatusOK {
				t.Errorf("delete = %d %s", r.status, r.body)
			}
			s.stop()
		})
	}
}
