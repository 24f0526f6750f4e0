package forkserver

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestTrace starts a few sandboxes with tracing on and logs when each step
// of a start happened, on the host and in the child (CLOCK_MONOTONIC).
func TestTrace(t *testing.T) {
	testutil.RequireBwrap(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t), ForceRlimits: os.Getenv("FS_RL") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	var mu sync.Mutex
	var steps []string
	p.trace = func(s string, m float64) {
		mu.Lock()
		steps = append(steps, fmt.Sprintf("T %s %.6f", s, m))
		mu.Unlock()
	}
	for i := 0; i < 5; i++ {
		steps = nil
		start := time.Now()
		info, err := p.Create(t.Context(), sandbox.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		created := time.Since(start)
		p.step("created")
		r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
		p.step("result")
		t.Logf("create %v first result %v: %q %v", created, time.Since(start), r.Stdout, err)
		b, _ := p.Boxes.Get(info.ID)
		steps = append(steps, b.Box.l.stderr.String())
		if err := p.Destroy(t.Context(), info.ID); err != nil {
			t.Fatal(err)
		}
		t.Logf("lifecycle %v", time.Since(start))
		t.Log(strings.Join(steps, "\n"))
	}
	// One-shot runs.
	for i := 0; i < 5; i++ {
		mu.Lock()
		steps = nil
		mu.Unlock()
		start := time.Now()
		p.step("run")
		r, err := p.Run(t.Context(), sandbox.Spec{}, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
		p.step("result")
		t.Logf("one-shot run %v: %q %q %v", time.Since(start), r.Stdout, r.Stderr, err)
		mu.Lock()
		t.Log(strings.Join(steps, "\n"))
		mu.Unlock()
	}
}
