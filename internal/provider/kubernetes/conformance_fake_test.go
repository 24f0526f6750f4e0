package kubernetes

import (
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// TestConformanceFake runs the conformance cases that do not depend on
// the container against the fake cluster, whose agents run on this host:
// the provider's part of the contract (IDs, errors, sessions, Close),
// checked on every `go test` (not Independent: the fake pods share the
// host directory that stands for their workspace). TestClusterConformance
// runs the whole suite on a real cluster.
func TestConformanceFake(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	sandboxtest.Config{
		Spec: sandbox.Spec{WorkspacePath: t.TempDir()},
		Only: []string{
			"PythonState", "PythonOutput", "PythonErrors", "Shell", "Env", "EnvDuringExec",
			"TimeoutPython", "TimeoutShell", "TimeoutDefault", "Cancel", "OutputLimit", "Streaming",
			"DestroyDuringExec", "UnknownAndInvalidIDs", "Close", "Info", "InvalidSpec", "InvalidRequest",
			"ResultShape", "Serialised", "Processes",
		},
	}.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := newProvider(t.Context(), c.cs, c.exec, Options{KeepOrphans: true})
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}
