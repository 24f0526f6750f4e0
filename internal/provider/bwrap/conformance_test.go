//go:build linux

package bwrap_test

import (
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestConformance(t *testing.T) {
	testutil.RequireBwrap(t)
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := bwrap.New(t.Context(), bwrap.Options{WorkspaceRoot: testutil.SharedDir(t)})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
