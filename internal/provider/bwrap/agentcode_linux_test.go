package bwrap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestCompiledAgent: sandboxes run the agent from the bytecode the
// provider compiled once, which they may read but not change.
func TestCompiledAgent(t *testing.T) {
	t.Parallel()
	p, id := newBox(t, sandbox.Spec{})
	if p.agentFile == "" {
		t.Fatal("the provider did not compile the agent")
	}
	if st, err := os.Stat(p.agentFile); err != nil || st.Mode().Perm() != 0o644 || filepath.Dir(p.agentFile) != filepath.Join(p.opts.WorkspaceRoot, ".init") {
		t.Errorf("compiled agent %s: %v, %v", p.agentFile, st, err)
	}
	b, err := p.Boxes.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	h, err := b.Session.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !h.Compiled || !h.Subreaper {
		t.Errorf("hello %+v, want an agent run from bytecode that is a subreaper", h)
	}
	r := run(t, p, id, sandbox.Shell, "head -c 4 "+agentPath+" | wc -c; echo x >> "+agentPath+" || echo refused; echo $WARDEN_SUBREAPER", 0)
	if got := strings.Fields(string(r.Stdout)); len(got) != 2 || got[0] != "4" || got[1] != "refused" {
		t.Errorf("reading and writing %s: %q %q, want it readable, not writable, and no WARDEN_SUBREAPER", agentPath, r.Stdout, r.Stderr)
	}
	r = run(t, p, id, sandbox.Python, "import os\nos.environ.get('WARDEN_SUBREAPER')", 0)
	if r.ReturnValue != nil {
		t.Errorf("the worker sees WARDEN_SUBREAPER=%s", *r.ReturnValue)
	}
	// Another provider on the same root reuses the file.
	p2, err := New(t.Context(), Options{WorkspaceRoot: p.opts.WorkspaceRoot})
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close(t.Context())
	if p2.agentFile != p.agentFile {
		t.Errorf("a second provider compiled %s, want %s reused", p2.agentFile, p.agentFile)
	}
}

// TestCompiledAgentGone: sandboxes still start, from the agent's source,
// when the compiled file has disappeared.
func TestCompiledAgentGone(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(t.Context())
	if err := os.Remove(p.agentFile); err != nil {
		t.Fatal(err)
	}
	info, err := p.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Boxes.Get(info.ID)
	if h, err := b.Session.Start(t.Context()); err != nil || h.Compiled {
		t.Errorf("hello %+v, %v; want an agent compiled from source", h, err)
	}
	if r := run(t, p, info.ID, sandbox.Python, "6 * 7", 0); r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Errorf("6 * 7 = %+v", r)
	}
}
