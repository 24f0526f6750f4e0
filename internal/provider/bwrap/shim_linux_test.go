package bwrap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestShimCopy: the copy of the shim made for the sandbox's user is reused
// only when Warden's user made it, since it runs in every sandbox, and
// only from a workspace root no other user controls.
func TestShimCopy(t *testing.T) {
	t.Parallel()
	testutil.RequireRoot(t) // the copy is for another user
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil { // uid 1000 cannot reach it
		t.Fatal(err)
	}
	shim := filepath.Join(private, "warden")
	want := []byte("#!/bin/sh\necho the real shim\n")
	if err := os.WriteFile(shim, want, 0o755); err != nil {
		t.Fatal(err)
	}
	root := testutil.SharedDir(t)
	got, err := reachableShim(shim, root, DefaultRunAs)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(got) != filepath.Join(root, ".init") || !reachable(got, DefaultRunAs) {
		t.Fatalf("copy %s: not in .init, or not reachable by uid 1000", got)
	}
	if again, err := reachableShim(shim, root, DefaultRunAs); err != nil || again != got {
		t.Fatalf("second call = %s, %v, want the same copy", again, err)
	}

	// Someone else's file under the copy's name is replaced, not run.
	if err := os.WriteFile(got, []byte("#!/bin/sh\necho planted\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(got, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if again, err := reachableShim(shim, root, DefaultRunAs); err != nil || again != got {
		t.Fatalf("with a planted copy = %s, %v", again, err)
	}
	if b, _ := os.ReadFile(got); !bytes.Equal(b, want) {
		t.Errorf("the planted copy was reused: %q", b)
	}

	// A workspace root another user made is refused.
	theirs := filepath.Join(testutil.SharedDir(t), "warden")
	if err := os.Mkdir(theirs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(theirs, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := reachableShim(shim, theirs, DefaultRunAs); !errors.Is(err, safedir.ErrUnsafe) {
		t.Errorf("shim copy under another user's root: %v, want ErrUnsafe", err)
	}
	testutil.RequireBwrap(t)
	if _, err := New(t.Context(), Options{WorkspaceRoot: theirs}); !errors.Is(err, safedir.ErrUnsafe) {
		t.Errorf("New with another user's workspace root: %v, want ErrUnsafe", err)
	}
}
