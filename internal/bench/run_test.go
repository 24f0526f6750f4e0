package bench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/testutil"
)

// checkClean fails t if a container of the run survived it.
func checkClean(t *testing.T, cli *client.Client, runID string) {
	t.Helper()
	list, err := cli.ContainerList(t.Context(), client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelRun+"="+runID),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) > 0 {
		t.Errorf("%d containers of run %s outlived it", len(list.Items), runID)
	}
}

func TestRun(t *testing.T) {
	p := newProvider(t)
	const n = 5
	rep, err := Run(t.Context(), p, Options{Image: testutil.Image(), N: n, Warmup: 1, Log: t.Output()})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{WardenExecPython, WardenExecShell, DockerExecSDK, WardenLifecycle, WardenCreate, WardenFirstExec, WardenDestroy, DockerRunSDK,
		DockerRunFloor, WardenExecLibrary, WardenExecHTTP}
	wantCmp := 6
	if len(rep.Notes) == 0 { // the docker CLI is there
		want = append(want, DockerExecCLI, DockerExecTrueCLI, DockerRunCLI)
		wantCmp = 8
	}
	if len(rep.Stats) != len(want) {
		t.Errorf("Run gave %d stats, want %d", len(rep.Stats), len(want))
	}
	for _, name := range want {
		s, ok := rep.Stat(name)
		if !ok {
			t.Errorf("Run gave no stats for %s", name)
			continue
		}
		if s.N != n || len(s.Samples) != n {
			t.Errorf("%s: n = %d with %d samples, want %d", name, s.N, len(s.Samples), n)
		}
		for _, d := range s.Samples {
			if d <= 0 {
				t.Errorf("%s: sample %v, want > 0", name, d)
			}
		}
		if !(s.Min > 0 && s.Min <= s.P10 && s.P10 <= s.Median && s.Median <= s.P90 && s.P90 <= s.Max) {
			t.Errorf("%s: min %v p10 %v median %v p90 %v max %v out of order", name, s.Min, s.P10, s.Median, s.P90, s.Max)
		}
	}
	if len(rep.Comparisons) != wantCmp {
		t.Errorf("Run gave %d comparisons, want %d", len(rep.Comparisons), wantCmp)
	}
	for _, c := range rep.Comparisons {
		if c.Ratio <= 0 {
			t.Errorf("comparison %s/%s: ratio %v, want > 0", c.Baseline, c.Warden, c.Ratio)
		}
	}
	if rep.Machine.DockerEngine == "" || rep.Machine.CPUs == 0 {
		t.Errorf("machine info incomplete: %+v", rep.Machine)
	}
	if len(p.List()) != 0 {
		t.Errorf("%d sandboxes outlived Run", len(p.List()))
	}
	checkClean(t, p.Client(), rep.RunID)
	t.Logf("\n%s", rep.Markdown())
}

func TestRunWithoutCLI(t *testing.T) {
	p := newProvider(t)
	rep, err := Run(t.Context(), p, Options{Image: testutil.Image(), N: 3, Warmup: -1, Cases: []string{CaseExec}, DockerCLI: "/nonexistent/docker"})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "CLI baselines were skipped") {
		t.Errorf("notes = %q, want one saying the CLI baselines were skipped", rep.Notes)
	}
	if _, ok := rep.Stat(DockerExecCLI); ok {
		t.Errorf("Run measured %s without a CLI", DockerExecCLI)
	}
	if s, ok := rep.Stat(DockerExecSDK); !ok || s.N != 3 {
		t.Errorf("SDK baseline: %+v, want 3 samples", s)
	}
	if len(rep.Comparisons) != 1 || rep.Comparisons[0].Baseline != DockerExecSDK {
		t.Errorf("comparisons = %+v, want the SDK one only", rep.Comparisons)
	}
	checkClean(t, p.Client(), rep.RunID)
}

func TestRunCancelled(t *testing.T) {
	p := newProvider(t)
	ctx, cancel := context.WithCancel(t.Context())
	var log strings.Builder
	done := make(chan struct{})
	var rep Report
	var err error
	go func() {
		defer close(done)
		rep, err = Run(ctx, p, Options{Image: testutil.Image(), N: 1000, Warmup: -1, Cases: []string{CaseLifecycle}, Log: &log})
	}()
	time.Sleep(3 * time.Second) // inside the lifecycle rounds
	cancel()
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
	if len(p.List()) != 0 {
		t.Errorf("%d sandboxes outlived the cancelled Run", len(p.List()))
	}
	checkClean(t, p.Client(), rep.RunID)
}
