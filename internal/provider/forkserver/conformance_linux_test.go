package forkserver

import (
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestConformance(t *testing.T) {
	testutil.RequireBwrap(t)
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"clone", Options{}}, // the native set-up, where it compiles
		{"clone-python", Options{PythonSetup: true}},
		{"double-fork", Options{DoubleFork: true}},
	} {
		t.Run(c.name, func(t *testing.T) { conformance(t, c.opts) })
	}
}

func conformance(t *testing.T, opts Options) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		opts.WorkspaceRoot = testutil.SharedDir(t)
		p, err := New(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
