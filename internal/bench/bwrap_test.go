//go:build linux

package bench

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestMain lets the test binary serve as the bubblewrap sandboxes' shim.
func TestMain(m *testing.M) {
	bwrap.Init()
	os.Exit(m.Run())
}

func TestRunBwrap(t *testing.T) {
	if _, err := Run(t.Context(), nil, Options{Cases: []string{CaseBwrap}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Run(bwrap) without a bubblewrap provider = %v, want ErrInvalid", err)
	}
	testutil.RequireBwrap(t)
	testutil.RequireSlirp4netns(t)
	p := newProvider(t)
	bp, err := bwrap.New(t.Context(), bwrap.Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer bp.Close(t.Context())
	const n = 3
	rep, err := Run(t.Context(), p, Options{Image: testutil.Image(), N: n, Warmup: -1, Cases: []string{CaseBwrap}, Bwrap: bp, Log: t.Output()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, name := range []string{BwrapExecPython, BwrapExecShell, DockerProvExecPython, DockerProvExecShell,
		BwrapLifecycle, BwrapCreate, BwrapFirstExec, BwrapDestroy,
		DockerProvLifecycle, DockerProvCreate, DockerProvFirstExec, DockerProvDestroy,
		BwrapNetLifecycle, BwrapNetCreate, DockerProvNetLifecycle, DockerProvNetCreate,
		BwrapLifecycleCPU, BareBwrapPython, BareBwrapCPU, HostPython, HostPythonCPU, HostBashTrue} {
		if s, ok := rep.Stat(name); !ok || s.N != n || s.Median <= 0 {
			t.Errorf("%s: %+v (present %v)", name, s, ok)
		}
	}
	if len(rep.Comparisons) != 12 {
		t.Errorf("Run gave %d comparisons, want 12", len(rep.Comparisons))
	}
	mem := map[string]MemStats{}
	for _, m := range rep.Memory {
		mem[m.Name] = m
	}
	for _, name := range []string{BwrapIdlePSS, DockerProvIdlePSS, HostPythonIdlePSS} {
		if m := mem[name]; m.N != n || m.Min <= 0 {
			t.Errorf("%s: %+v", name, m)
		}
	}
	for _, name := range []string{BwrapIdlePSS, DockerProvIdlePSS} {
		var roles []string
		for _, r := range mem[name].Roles {
			roles = append(roles, r.Role)
		}
		if len(roles) < 3 || roles[0] != "agent" || roles[1] != "worker" || roles[2] != "snapshot" {
			t.Errorf("%s: processes %q, want the agent, its worker and snapshot first", name, roles)
		}
	}
	if len(p.List()) != 0 {
		t.Errorf("%d docker sandboxes outlived Run", len(p.List()))
	}
	checkClean(t, p.Client(), rep.RunID)
	t.Logf("\n%s", rep.Markdown())
}

// TestRunIdle: the idle case keeps its sandboxes at once, measures each,
// checks each answers afterwards, and removes them all.
func TestRunIdle(t *testing.T) {
	testutil.RequireBwrap(t)
	p := newProvider(t)
	root := testutil.SharedDir(t)
	bp, err := bwrap.New(t.Context(), bwrap.Options{WorkspaceRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	defer bp.Close(t.Context())
	const k = 4
	rep, err := Run(t.Context(), p, Options{Image: testutil.Image(), Cases: []string{CaseIdle}, Idle: k, Bwrap: bp, Log: t.Output()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Memory) != 1 || rep.Memory[0].Name != IdleBwrapPSS || rep.Memory[0].N != k || rep.Memory[0].Min <= 0 {
		t.Fatalf("memory = %+v, want %d sandboxes of %s", rep.Memory, k, IdleBwrapPSS)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") { // the provider's own (.rootfs, .init)
			t.Errorf("workspace root holds %s after Run", e.Name())
		}
	}
}
