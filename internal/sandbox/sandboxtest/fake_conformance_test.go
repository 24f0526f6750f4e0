package sandboxtest

import (
	"slices"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// TestFakeConformance runs the conformance suite against the Fake, so
// that the layers tested with it see the contract real providers keep.
// The Fake answers executions with a function instead of running code:
// the cases that run Python or shell are skipped, the others must pass.
func TestFakeConformance(t *testing.T) {
	t.Parallel()
	bookkeeping := []string{"UnknownAndInvalidIDs", "InvalidSpec"}
	skip := map[string]string{}
	for _, name := range Cases() {
		if !slices.Contains(bookkeeping, name) {
			skip[name] = "runs code, which the Fake does not"
		}
	}
	Config{Skip: skip}.Run(t, func(t *testing.T) sandbox.Provider {
		return &Fake{Warning: "fake: nothing is isolated"}
	})
}
