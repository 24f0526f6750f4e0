package forkserver

import (
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestConformance(t *testing.T) {
	testutil.RequireBwrap(t)
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
