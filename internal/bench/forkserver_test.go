//go:build linux

package bench

import (
	"errors"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/provider/forkserver"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestRunForkServer(t *testing.T) {
	if _, err := Run(t.Context(), nil, Options{Cases: []string{CaseForkServer}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Run(forkserver) without the providers = %v, want ErrInvalid", err)
	}
	testutil.RequireBwrap(t)
	p := newProvider(t)
	bp, err := bwrap.New(t.Context(), bwrap.Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer bp.Close(t.Context())
	fp, err := forkserver.New(t.Context(), forkserver.Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close(t.Context())
	const n = 3
	rep, err := Run(t.Context(), p, Options{Image: testutil.Image(), N: n, Warmup: -1, Cases: []string{CaseForkServer}, Bwrap: bp, ForkServer: fp, Log: t.Output()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, name := range []string{ForkLifecycle, ForkCreate, ForkFirstExec, ForkDestroy, ForkLifecycleCPU, ForkRun, ForkRunFirst,
		BwrapLifecycle, BwrapLifecycleCPU, BareBwrapPython, BareBwrapCPU, HostPython, HostPythonCPU} {
		if s, ok := rep.Stat(name); !ok || s.N != n || s.Median <= 0 {
			t.Errorf("%s: %+v (present %v)", name, s, ok)
		}
	}
	// The fork server's pairings, and the bubblewrap case's own that the
	// same operations make (against bare bwrap and host python3).
	if want := len(forkServerPairings()) + 3; len(rep.Comparisons) != want {
		t.Errorf("Run gave %d comparisons, want %d", len(rep.Comparisons), want)
	}
	mem := map[string]MemStats{}
	for _, m := range rep.Memory {
		mem[m.Name] = m
	}
	for _, name := range []string{ForkIdlePSS, BwrapIdlePSS} {
		if m := mem[name]; m.N != n || m.Min <= 0 {
			t.Errorf("%s: %+v", name, m)
		}
	}
	t.Logf("\n%s", rep.Markdown())
}

// TestRunHumanEvalForkServer: the humaneval case runs on the fork server
// alone when asked, every program passing, beside the host's pass; asked
// for without a fork server provider, Run refuses.
func TestRunHumanEvalForkServer(t *testing.T) {
	if _, err := Run(t.Context(), nil, Options{Cases: []string{CaseHumanEval}, HumanEval: []string{HumanEvalOnForkServer}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Run(humaneval on forkserver) without the provider = %v, want ErrInvalid", err)
	}
	if _, err := Run(t.Context(), nil, Options{Cases: []string{CaseHumanEval}, HumanEval: []string{"gvisor"}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Run(humaneval on gvisor) = %v, want ErrInvalid", err)
	}
	testutil.RequireBwrap(t)
	testutil.RequireRoot(t)
	p := newProvider(t)
	fp, err := forkserver.New(t.Context(), forkserver.Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close(t.Context())
	rep, err := Run(t.Context(), p, Options{Image: testutil.Image(), N: 1, Warmup: -1, Cases: []string{CaseHumanEval},
		HumanEval: []string{HumanEvalOnForkServer, HumanEvalOnForkServerRun}, ForkServer: fp, Log: t.Output()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, name := range []string{HumanEvalFork, HumanEvalForkRun, HumanEvalForkOneShot, HumanEvalForkOneShotRun, HumanEvalHost} {
		if s, ok := rep.Stat(name); !ok || s.N != 1 || s.Median <= 0 {
			t.Errorf("%s: %+v (present %v)", name, s, ok)
		}
	}
	for _, name := range []string{HumanEvalBwrap, HumanEvalDocker} {
		if _, ok := rep.Stat(name); ok {
			t.Errorf("%s measured, though not asked for", name)
		}
	}
	t.Logf("\n%s", rep.Markdown())
}
