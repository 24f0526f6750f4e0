//go:build linux

package quota_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-sandbox/warden/internal/image"
	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/quota"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// The conformance cases about workspaces, on the real providers with
// their private workspaces bounded.
var cases = []string{"WorkspaceQuota", "Destroy", "DestroyKillsProcesses", "FilesShared", "WorkspaceDirKept", "Info", "Close", "Processes"}

func supported(t *testing.T) {
	t.Helper()
	testutil.RequireRoot(t)
	if err := quota.Supported(); err != nil {
		t.Skipf("quotas not supported here: %v", err)
	}
}

func TestConformanceBwrap(t *testing.T) {
	testutil.RequireBwrap(t)
	supported(t)
	sandboxtest.Config{Only: cases}.Run(t, func(t *testing.T) sandbox.Provider {
		root := testutil.SharedDir(t)
		p, err := bwrap.New(t.Context(), bwrap.Options{WorkspaceRoot: root})
		if err != nil {
			t.Fatal(err)
		}
		return quota.Wrap(p, root, image.UID, image.GID, nil)
	})
}

func TestConformanceDocker(t *testing.T) {
	testutil.RequireDocker(t)
	supported(t)
	sandboxtest.Config{Spec: sandbox.Spec{Image: testutil.Image()}, Only: cases}.Run(t, func(t *testing.T) sandbox.Provider {
		root := t.TempDir()
		p, err := docker.New(t.Context(), docker.Options{WorkspaceRoot: root})
		if err != nil {
			t.Fatal(err)
		}
		return quota.Wrap(p, root, image.UID, image.GID, nil)
	})
}

// TestConformanceRunsc: the same on Docker under gVisor, whose file proxy
// (the Gofer) must pass the bounded file system's ENOSPC through. Skipped
// when the daemon has no runsc, unless WARDEN_REQUIRE_RUNSC=1.
func TestConformanceRunsc(t *testing.T) {
	testutil.RequireDocker(t)
	supported(t)
	probe, err := docker.New(t.Context(), docker.Options{WorkspaceRoot: t.TempDir(), Runtime: "runsc", KeepOrphans: true})
	switch {
	case err == nil:
		_ = probe.Close(context.WithoutCancel(t.Context()))
	case errors.Is(err, sandbox.ErrUnavailable) && !testutil.Required("WARDEN_REQUIRE_RUNSC"):
		t.Skipf("no gVisor: %v", err)
	default:
		t.Fatalf("%v (WARDEN_REQUIRE_RUNSC=1 requires it)", err)
	}
	sandboxtest.Config{Spec: sandbox.Spec{Image: testutil.Image()}, Only: cases}.Run(t, func(t *testing.T) sandbox.Provider {
		root := t.TempDir()
		p, err := docker.New(t.Context(), docker.Options{WorkspaceRoot: root, Runtime: "runsc"})
		if err != nil {
			t.Fatal(err)
		}
		return quota.Wrap(p, root, image.UID, image.GID, nil)
	})
}

// TestSweep: a bounded workspace whose owner is gone is unmounted and
// removed at the next Wrap; one of a live owner stays.
func TestSweep(t *testing.T) {
	supported(t)
	t.Parallel()
	root := t.TempDir()
	mk := func(name, ownerID string) string {
		dir := filepath.Join(root, name)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := quota.Mount(t.Context(), dir, quota.MinSize, 0, 0); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = quota.Unmount(dir) })
		if err := os.WriteFile(dir+".owner", []byte(ownerID), 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	host, _ := os.Hostname()
	dead := mk("quota-dead", host+"/999999999/1")
	live := mk("quota-live", owner.ID())
	n, err := quota.Sweep(root)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if quota.Mounted(dead) || exists(dead) || exists(quota.Image(dead)) || exists(dead+".owner") {
		t.Fatal("the dead owner's workspace is still there")
	}
	if !quota.Mounted(live) || !exists(quota.Image(live)) {
		t.Fatal("the live owner's workspace was removed")
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestMain lets the test binary serve as the bubblewrap sandboxes' shim.
func TestMain(m *testing.M) {
	bwrap.Init()
	os.Exit(m.Run())
}
