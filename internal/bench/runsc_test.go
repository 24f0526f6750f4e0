package bench

import (
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestRunRunsc measures the runsc case briefly where the daemon has
// gVisor's runsc (required with WARDEN_REQUIRE_RUNSC=1), and checks that
// it is skipped with a note where it has not.
func TestRunRunsc(t *testing.T) {
	p := newProvider(t)
	rep, err := Run(t.Context(), p, Options{Image: testutil.Image(), Cases: []string{CaseRunsc}, Runsc: "warden-no-such-runtime", Log: t.Output()})
	if err != nil || len(rep.Stats) != 0 || len(rep.Notes) == 0 || !strings.HasPrefix(rep.Notes[len(rep.Notes)-1], RunscSkipped) {
		t.Fatalf("Run(runsc) without the runtime = %d stats, notes %q, %v; want it skipped with a note", len(rep.Stats), rep.Notes, err)
	}
	const n = 1 // a sample of each: the case works; the figures come from warden bench
	rep, err = Run(t.Context(), p, Options{Image: testutil.Image(), N: n, Warmup: -1, Cases: []string{CaseRunsc}, Log: t.Output()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Stats) == 0 {
		if testutil.Required("WARDEN_REQUIRE_RUNSC") {
			t.Fatalf("no runsc, and WARDEN_REQUIRE_RUNSC=1 requires it: %q", rep.Notes)
		}
		t.Skipf("no runsc: %q", rep.Notes)
	}
	want := []string{RunscExecPython, RunscExecShell, RuncExecPython, RuncExecShell,
		RunscLifecycle, RunscCreate, RunscFirstExec, RunscDestroy, RuncLifecycle, RuncCreate, RuncFirstExec, RuncDestroy}
	wantCmp := 3
	if _, err := newDockerCLI("", p.Client(), nil); err == nil {
		want = append(want, RunscDockerExecCLI, RunscDockerRunCLI)
		wantCmp = 5
	}
	for _, name := range want {
		if s, ok := rep.Stat(name); !ok || s.N != n || s.Median <= 0 {
			t.Errorf("%s: %+v (present %v)", name, s, ok)
		}
	}
	if len(rep.Comparisons) != wantCmp {
		t.Errorf("Run gave %d comparisons, want %d", len(rep.Comparisons), wantCmp)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "runsc case: runtime runsc (gVisor") {
		t.Errorf("notes %q do not say which runtimes were measured", rep.Notes)
	}
	if len(p.List()) != 0 {
		t.Errorf("%d sandboxes outlived Run", len(p.List()))
	}
	checkClean(t, p.Client(), rep.RunID)
	t.Logf("\n%s", rep.Markdown())
}
