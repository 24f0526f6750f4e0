//go:build linux

package bench

import (
	"errors"
	"os"
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
		BwrapNetLifecycle, BwrapNetCreate, DockerProvNetLifecycle, DockerProvNetCreate} {
		if s, ok := rep.Stat(name); !ok || s.N != n || s.Median <= 0 {
			t.Errorf("%s: %+v (present %v)", name, s, ok)
		}
	}
	if len(rep.Comparisons) != 8 {
		t.Errorf("Run gave %d comparisons, want 8", len(rep.Comparisons))
	}
	if len(p.List()) != 0 {
		t.Errorf("%d docker sandboxes outlived Run", len(p.List()))
	}
	checkClean(t, p.Client(), rep.RunID)
	t.Logf("\n%s", rep.Markdown())
}
