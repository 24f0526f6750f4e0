package docker_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	testutil.RequireDocker(t)
	sandboxtest.Config{Spec: sandbox.Spec{Image: testutil.Image()}, RuntimeImage: true}.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := docker.New(t.Context(), docker.Options{WorkspaceRoot: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}

// runscSkips are the conformance cases that cannot pass under gVisor,
// with why.
var runscSkips = map[string]string{
	"MemoryLimit": "under gVisor the memory limit holds for the whole sandbox: past it the host's OOM killer ends gVisor's kernel " +
		"(the Sentry, the one host process holding all of the sandbox's memory) and the sandbox with it, so no session survives " +
		"the kill as this case requires (runsc kills no single process inside the sandbox at its limit); " +
		"TestMemoryLimitGVisor checks what happens instead: out of memory reported at once, then the sandbox refuses work",
}

// TestConformanceRunsc runs the whole suite with the sandboxes under
// gVisor: the runtime WARDEN_TEST_RUNSC names, runsc by default. It is
// skipped when the daemon does not have it, unless WARDEN_REQUIRE_RUNSC=1
// (as in scripts/test.sh, which registers runsc).
func TestConformanceRunsc(t *testing.T) {
	t.Parallel() // beside the runc suite: most of either is waiting
	testutil.RequireDocker(t)
	name := os.Getenv("WARDEN_TEST_RUNSC")
	if name == "" {
		name = "runsc"
	}
	p, err := docker.New(t.Context(), docker.Options{WorkspaceRoot: t.TempDir(), Runtime: name, KeepOrphans: true})
	switch {
	case err == nil:
	case errors.Is(err, sandbox.ErrUnavailable) && !testutil.Required("WARDEN_REQUIRE_RUNSC"):
		t.Skipf("no gVisor: %v", err)
	default:
		t.Fatalf("%v (WARDEN_REQUIRE_RUNSC=1 requires it)", err)
	}
	rt := p.Runtime()
	_ = p.Close(context.WithoutCancel(t.Context()))
	if !rt.GVisor {
		t.Fatalf("runtime %s is not gVisor's runsc: %+v", name, rt)
	}
	t.Logf("%s", rt)
	sandboxtest.Config{Spec: sandbox.Spec{Image: testutil.Image()}, RuntimeImage: true, Skip: runscSkips}.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := docker.New(t.Context(), docker.Options{WorkspaceRoot: t.TempDir(), Runtime: name})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
