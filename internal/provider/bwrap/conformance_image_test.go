//go:build linux

package bwrap_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestConformanceImageRoot runs the conformance cases that need the
// runtime image's Python packages on bubblewrap sandboxes with the image's
// root filesystem, as SANDBOX__BWRAP_ROOT=auto gives them when Docker has
// the image. TestConformance runs on the host's /usr, which lacks them.
func TestConformanceImageRoot(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireDocker(t)
	testutil.RequireRoot(t) // extracting an image keeps its owners
	out, err := exec.CommandContext(t.Context(), "docker", "create", testutil.Image(), "true").Output()
	if err != nil {
		if testutil.Required("WARDEN_REQUIRE_BWRAP") && testutil.Required("WARDEN_REQUIRE_DOCKER") {
			t.Fatalf("docker create %s: %v", testutil.Image(), err)
		}
		t.Skipf("docker create %s: %v", testutil.Image(), err)
	}
	ctr := strings.TrimSpace(string(out))
	defer exec.Command("docker", "rm", "-f", ctr).Run()
	root := t.TempDir()
	export := exec.CommandContext(t.Context(), "sh", "-c", "docker export \"$1\" | tar -x -C \"$2\" --exclude=dev/*", "sh", ctr, root)
	if out, err := export.CombinedOutput(); err != nil {
		t.Fatalf("exporting %s: %v %s", testutil.Image(), err, out)
	}
	sandboxtest.Config{RuntimeImage: true, Only: []string{"RichOutputsLibraries"}}.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := bwrap.New(t.Context(), bwrap.Options{WorkspaceRoot: testutil.SharedDir(t), RootFS: root})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
