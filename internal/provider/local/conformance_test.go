package local_test

import (
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
