//go:build linux

package quota_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/quota"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// oneShot is a provider with a one-shot path; during a run it calls
// during with the spec it was given.
type oneShot struct {
	*sandboxtest.Fake
	during func(spec sandbox.Spec)
	runs   int
}

func (o *oneShot) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	o.runs++
	o.during(spec)
	return sandbox.ExecResult{Stdout: []byte("one-shot")}, nil
}

// quotaDirs lists the bounded workspaces under root.
func quotaDirs(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "quota-") {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	return dirs
}

// TestRun: a run that asks for a bounded workspace runs in one, mounted
// for the time of the run and gone after it, on the one-shot path of the
// wrapped provider or with create, exec and destroy; other runs pass
// through without one.
func TestRun(t *testing.T) {
	supported(t)
	t.Parallel()
	root := t.TempDir()
	py := sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}
	bounded := sandbox.Spec{WorkspaceSize: quota.MinSize}.WithDefaults()

	var seen sandbox.Spec
	var mounted bool
	inner := &oneShot{Fake: &sandboxtest.Fake{}, during: func(spec sandbox.Spec) {
		seen, mounted = spec, quota.Mounted(spec.WorkspaceDir)
	}}
	p := quota.Wrap(inner, root, 0, 0, nil)
	res, err := sandbox.Run(t.Context(), p, bounded, py)
	if err != nil || string(res.Stdout) != "one-shot" || inner.runs != 1 || inner.Created != 0 {
		t.Fatalf("Run = %q, %v (runs %d, created %d); want the inner one-shot path", res.Stdout, err, inner.runs, inner.Created)
	}
	if filepath.Dir(seen.WorkspaceDir) != root || !strings.HasPrefix(filepath.Base(seen.WorkspaceDir), "quota-") {
		t.Errorf("the run's WorkspaceDir = %q, want a bounded workspace under %s", seen.WorkspaceDir, root)
	}
	if !mounted {
		t.Errorf("the run's workspace %s was not a mounted file system during the run", seen.WorkspaceDir)
	}
	if left, err := os.ReadDir(root); err != nil || len(left) != 0 {
		t.Errorf("after the run the root holds %v (%v), want nothing", left, err)
	}

	// Unbounded specs and the caller's own directory pass through as they are.
	own := t.TempDir()
	for _, spec := range []sandbox.Spec{sandbox.Spec{}.WithDefaults(), {WorkspaceSize: quota.MinSize, WorkspaceDir: own}} {
		if _, err := sandbox.Run(t.Context(), p, spec, py); err != nil {
			t.Fatal(err)
		}
		if seen.WorkspaceDir != spec.WorkspaceDir {
			t.Errorf("spec with WorkspaceDir %q ran with %q, want it unchanged", spec.WorkspaceDir, seen.WorkspaceDir)
		}
	}

	// Without a one-shot path: create, exec, destroy, in a bounded workspace.
	f := &sandboxtest.Fake{}
	var during []string
	f.ExecFunc = func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		during, mounted = quotaDirs(t, root), false
		if len(during) == 1 {
			mounted = quota.Mounted(during[0])
		}
		return sandbox.ExecResult{Stdout: []byte("ran")}, nil
	}
	p = quota.Wrap(f, root, 0, 0, nil)
	if res, err := sandbox.Run(t.Context(), p, bounded, py); err != nil || string(res.Stdout) != "ran" {
		t.Fatalf("Run = %q, %v", res.Stdout, err)
	}
	if len(during) != 1 || !mounted {
		t.Errorf("during the run the root held bounded workspaces %v, want one mounted", during)
	}
	if left, err := os.ReadDir(root); err != nil || len(left) != 0 || f.Live() != 0 {
		t.Errorf("after the run the root holds %v (%v), %d sandboxes live; want nothing", left, err, f.Live())
	}

	// A failed run removes its workspace too; a bad request makes none.
	f.CreateErr = sandbox.ErrUnavailable
	if _, err := sandbox.Run(t.Context(), p, bounded, py); err == nil {
		t.Error("Run with a failing Create succeeded")
	}
	if _, err := sandbox.Run(t.Context(), p, bounded, sandbox.ExecRequest{Language: "perl"}); err == nil {
		t.Error("Run of a bad request succeeded")
	}
	if left, err := os.ReadDir(root); err != nil || len(left) != 0 {
		t.Errorf("after failed runs the root holds %v (%v), want nothing", left, err)
	}
}
