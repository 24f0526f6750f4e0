package sandboxtest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// testWorkspaceQuota: a private workspace holds at most WorkspaceSize
// bytes: writing past it fails inside the sandbox with ENOSPC (the file
// system says so: df), the sandbox carries on, and Destroy removes it all.
func testWorkspaceQuota(t *testing.T, s *suite) {
	if !s.caps.WorkspaceQuota {
		t.Skipf("provider %s does not bound workspaces", s.p.Name())
	}
	const size = 32 << 20
	b := s.create(t, func(sp *sandbox.Spec) { sp.WorkspaceSize = size })
	r := b.exec(t, sh("dd if=/dev/zero of=big bs=1M count=64"))
	if r.ExitCode == 0 || !strings.Contains(string(r.Stderr), "No space left on device") {
		t.Fatalf("writing 64 MiB into a 32 MiB workspace: exit %d, stderr %q", r.ExitCode, r.Stderr)
	}
	total, err := strconv.Atoi(strings.TrimSpace(b.stdout(t, "df -k --output=size . | tail -1")))
	if err != nil || total > size>>10 {
		t.Fatalf("the workspace's file system has %d KiB (%v), more than %d", total, err, size>>10)
	}
	b.ok(t, sh("rm big"))
	b.wantValue(t, "open('small', 'w').write('ok')", "2")
	if b.info.Workspace != "" {
		ws := b.info.Workspace
		if err := b.p.Destroy(t.Context(), b.info.ID); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		wantNoDir(t, ws, "after Destroy, the bounded workspace")
	}
	// A workspace of the caller's is never bounded.
	dir := hostDir(t)
	b = s.create(t, func(sp *sandbox.Spec) { sp.WorkspaceSize = size; sp.WorkspaceDir = dir })
	b.ok(t, sh("dd if=/dev/zero of=big bs=1M count=40 && rm big"))
}
