package bwrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// buildWardenInit builds cmd/warden-init into dir.
func buildWardenInit(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, InitName)
	cmd := exec.Command("go", "build", "-o", bin, "../../../cmd/warden-init")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building warden-init: %v\n%s", err, out)
	}
	return bin
}

// TestUsableInit: an init is used only when it is an executable that
// answers with this package's protocol.
func TestUsableInit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := buildWardenInit(t, dir)
	if got := usableInit(t.Context(), bin); got != bin {
		t.Errorf("usableInit(warden-init) = %q, want it used", got)
	}
	script := func(name, body string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, p := range []string{
		filepath.Join(dir, "missing"),
		script("other-protocol", "echo warden-bwrap-init 999", 0o755),
		script("fails", "echo "+protocolLine+"; exit 1", 0o755),
		script("not-executable", "echo "+protocolLine, 0o644),
		dir,
	} {
		if got := usableInit(t.Context(), p); got != "" {
			t.Errorf("usableInit(%s) = %q, want it refused", filepath.Base(p), got)
		}
	}
	out, err := exec.Command(bin).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), "not run by hand") {
		t.Errorf("warden-init run by hand: exit %d, %q", code, out)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestWardenInitEnforces: with the small warden-init as its shim, a
// sandbox gets the same Landlock rules as with this program as the shim
// (reading the shim's own file is what only Landlock refuses: its mode
// lets everyone read it).
func TestWardenInitEnforces(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	bin := buildWardenInit(t, t.TempDir())
	p, id := newBoxWith(t, Options{WorkspaceRoot: testutil.SharedDir(t), Init: bin}, sandbox.Spec{})
	if got := p.Enforcement().Init; got == "" || filepath.Base(got) != InitName && !strings.Contains(got, shimName) {
		t.Errorf("Enforcement().Init = %q, want warden-init or its reachable copy", got)
	}
	if p.Enforcement().LandlockABI == 0 {
		t.Skip("no Landlock on this kernel")
	}
	code := pyTryIt + `print("read shim", tryit(lambda: open("/.warden/init", "rb").read(4)))
print("write workspace", tryit(lambda: open("/workspace/x", "w").write("x")))
`
	r := run(t, p, id, sandbox.Python, code, 0)
	if want := "read shim PermissionError\nwrite workspace ok\n"; string(r.Stdout) != want {
		t.Errorf("under warden-init:\n%s\nstderr %q, want\n%s", r.Stdout, r.Stderr, want)
	}
}
