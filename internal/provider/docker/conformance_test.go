package docker_test

import (
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestConformance(t *testing.T) {
	testutil.RequireDocker(t)
	sandboxtest.Config{Spec: sandbox.Spec{Image: testutil.Image()}, RuntimeImage: true}.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := docker.New(t.Context(), docker.Options{WorkspaceRoot: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
