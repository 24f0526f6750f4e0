package forkserver

import (
	"os"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
)

// TestMain lets the test binary serve as the bubblewrap provider's shim,
// for the benchmark that compares the two providers.
func TestMain(m *testing.M) {
	bwrap.Init()
	os.Exit(m.Run())
}
