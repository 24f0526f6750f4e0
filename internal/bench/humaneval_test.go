package bench

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// TestHumanEvalPrograms: the embedded dataset holds the 164 problems, and
// each program is whole: the first ten pass under the host's python3, and
// a broken solution fails.
func TestHumanEvalPrograms(t *testing.T) {
	probs, err := humanEvalPrograms()
	if err != nil {
		t.Fatal(err)
	}
	if len(probs) != 164 {
		t.Fatalf("%d problems, want 164", len(probs))
	}
	seen := map[string]bool{}
	for _, p := range probs {
		if p.TaskID == "" || p.EntryPoint == "" || p.Solution == "" || !strings.Contains(p.Test, "def check") || seen[p.TaskID] {
			t.Fatalf("problem %+v is incomplete or repeated", p.TaskID)
		}
		seen[p.TaskID] = true
	}
	f, err := newFloor()
	if err != nil {
		t.Skip(err)
	}
	run := func(prog string) error {
		cmd := exec.CommandContext(t.Context(), f.python, "-c", prog)
		cmd.Env = f.env()
		return cmd.Run()
	}
	for _, p := range probs[:10] {
		if err := run(p.program()); err != nil {
			t.Errorf("%s: %v", p.TaskID, err)
		}
	}
	broken := probs[0]
	broken.Solution = "    return None\n"
	if err := run(broken.program()); err == nil {
		t.Errorf("%s with a wrong solution passed its tests", broken.TaskID)
	}
}

// TestRunAllStopsAtTheFirstFailure: runAll names the failing problem and
// starts no new one after it.
func TestRunAllStopsAtTheFirstFailure(t *testing.T) {
	probs, err := humanEvalPrograms()
	if err != nil {
		t.Fatal(err)
	}
	var ran atomic.Int64
	boom := errors.New("boom")
	err = runAll(t.Context(), probs, func(ctx context.Context, p humanEvalProblem) error {
		ran.Add(1)
		switch p.TaskID {
		case "HumanEval/0", "HumanEval/1", "HumanEval/2":
			return nil
		case "HumanEval/3":
			return boom
		}
		// Programs after the failure last until it is reported (the other
		// client may take one before): none starts after it.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("the failure did not stop this program")
		}
	})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "HumanEval/3") {
		t.Fatalf("runAll = %v, want boom naming HumanEval/3", err)
	}
	if n := ran.Load(); n > 3+1+humanEvalClients {
		t.Errorf("%d programs ran; the failure at the fourth should stop the rest", n)
	}
	if err := runAll(t.Context(), probs, func(context.Context, humanEvalProblem) error { return nil }); err != nil {
		t.Errorf("runAll with no failure = %v", err)
	}
}

func TestIdleRounds(t *testing.T) {
	if n, w := (Options{}).rounds(CaseIdle); n != DefaultIdle || w != 0 {
		t.Errorf("rounds(idle) = %d, %d; want %d, 0", n, w, DefaultIdle)
	}
	if n, _ := (Options{Idle: 7}).rounds(CaseIdle); n != 7 {
		t.Errorf("rounds(idle) with Idle 7 = %d", n)
	}
	if err := (Options{Idle: -1, Cases: []string{CaseIdle}}).validate(); err == nil {
		t.Error("validate accepted Idle -1 and no bubblewrap provider")
	}
}

// oneShotFake is a provider with a one-shot path that counts its runs.
type oneShotFake struct {
	*sandboxtest.Fake
	runs atomic.Int64
}

func (f *oneShotFake) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	f.runs.Add(1)
	return sandbox.ExecResult{Stdout: []byte("ran")}, nil
}

// TestServiceOneShot: a run through the bench's service takes the
// provider's one-shot path, not the pool's sandboxes (the wrapper that
// keeps the pool from closing the provider must not hide it).
func TestServiceOneShot(t *testing.T) {
	f := &oneShotFake{Fake: &sandboxtest.Fake{}}
	svc, err := newService(t.Context(), f, sandbox.Spec{}.WithDefaults(), poolSize)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.close(context.Background())
	res, err := svc.c.Run(t.Context(), client.RunOptions{ExecuteOptions: client.ExecuteOptions{Language: api.Python, Code: "1"}})
	if err != nil || res.Stdout != "ran" || f.runs.Load() != 1 {
		t.Errorf("Run = %q, %v; one-shot runs %d, want the provider's path", res.Stdout, err, f.runs.Load())
	}
}
