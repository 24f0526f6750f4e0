package hostproc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestMakeDirs(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "root")
	dir := filepath.Join(root, "sb")
	if err := MakeDirs(root, dir); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"home", "tmp"} {
		if st, err := os.Stat(filepath.Join(dir, sub)); err != nil || !st.IsDir() {
			t.Errorf("%s: %v", sub, err)
		}
	}
	if err := MakeDirs(root, dir); err == nil {
		t.Error("MakeDirs of an existing directory succeeded")
	}
}

func TestRemoveAllTakesPermissionsBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	locked := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(locked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(locked, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "a"), 0); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAll(dir); err != nil {
		t.Fatalf("RemoveAll = %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after RemoveAll, Stat = %v", err)
	}
}

func TestKillMarked(t *testing.T) {
	t.Parallel()
	scans := 0
	scan := func() ([]int, error) {
		scans++
		return nil, nil
	}
	if err := KillMarked(t.Context(), "M=1", scan); err != nil || scans != 1 {
		t.Errorf("KillMarked with nothing to kill = %v after %d scans, want nil after 1", err, scans)
	}
	boom := errors.New("boom")
	if err := KillMarked(t.Context(), "M=1", func() ([]int, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("KillMarked with a failing scan = %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// A PID that cannot exist: the kill fails, the scan keeps finding it.
	if err := KillMarked(ctx, "M=1", func() ([]int, error) { return []int{1 << 30}, nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("KillMarked that never finishes = %v, want context.Canceled", err)
	}
}

// TestCreateLeavesNothing checks that a Create whose setup fails removes
// the sandbox's directory.
func TestCreateLeavesNothing(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "sb")
	boom := errors.New("boom")
	_, err := Create(t.Context(), "test", sandbox.NewID(), sandbox.Spec{}.WithDefaults(), root, dir, "agent",
		func(ws string) (*Launcher, error) {
			if ws != filepath.Join(dir, "workspace") {
				t.Errorf("workspace %s, want %s", ws, filepath.Join(dir, "workspace"))
			}
			return nil, boom
		})
	if !errors.Is(err, boom) {
		t.Errorf("Create = %v, want boom", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a failed Create, Stat(dir) = %v, want it gone", err)
	}
}
