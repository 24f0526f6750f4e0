package docker

import (
	"context"
	"testing"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestCompiledAgent: sandboxes run the agent from the bytecode the image's
// interpreter compiled once, kept on the host, sent on each agent's stdin:
// after a restart too, and a sandbox's code cannot change what a later
// agent of another sandbox runs.
func TestCompiledAgent(t *testing.T) {
	t.Parallel()
	p, id := create(t, sandbox.Spec{})
	b, err := p.Boxes.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Session.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !h.Compiled {
		t.Errorf("hello %+v, want an agent run from bytecode", h)
	}
	p.mu.Lock()
	code := p.code[p.imageIDs[testutil.Image()]]
	p.mu.Unlock()
	if agent.CheckCompiled(code) != nil {
		t.Fatalf("the provider holds no compiled agent for %s", testutil.Image())
	}
	// Killed, the agent comes back from the same bytecode.
	run(t, p, id, sandbox.Python, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", 0)
	if r := run(t, p, id, sandbox.Python, "6 * 7", 0); r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Fatalf("6 * 7 after the agent's death = %+v", r)
	}
	if h, err := b.Session.Start(t.Context()); err != nil || !h.Compiled {
		t.Errorf("hello after the restart %+v, %v; want bytecode", h, err)
	}
}

// TestAgentFromSource: when the agent could not be compiled for an image,
// its sandboxes run it from the source, and work.
func TestAgentFromSource(t *testing.T) {
	t.Parallel()
	p, err := New(t.Context(), Options{WorkspaceRoot: t.TempDir(), KeepOrphans: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.WithoutCancel(t.Context()))
	img, err := p.cli.ImageInspect(t.Context(), testutil.Image())
	if err != nil {
		t.Fatal(err)
	}
	p.code[img.ID] = nil // as after a failed compilation
	info, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Destroy(context.WithoutCancel(t.Context()), info.ID)
	b, _ := p.Boxes.Get(info.ID)
	if h, err := b.Session.Start(t.Context()); err != nil || h.Compiled {
		t.Errorf("hello %+v, %v; want an agent compiled from its source", h, err)
	}
	if r := run(t, p, info.ID, sandbox.Python, "6 * 7", 0); r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Errorf("6 * 7 = %+v", r)
	}
}
