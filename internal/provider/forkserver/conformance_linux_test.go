package forkserver

import (
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestConformance(t *testing.T) {
	testutil.RequireBwrap(t)
	for _, double := range []bool{false, true} {
		name := "clone"
		if double {
			name = "double-fork"
		}
		t.Run(name, func(t *testing.T) { conformance(t, double) })
	}
}

func conformance(t *testing.T, double bool) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t), DoubleFork: double})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
