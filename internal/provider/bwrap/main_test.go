package bwrap

import (
	"os"
	"testing"
)

// TestMain lets the test binary serve as the sandboxes' shim.
func TestMain(m *testing.M) {
	Init()
	os.Exit(m.Run())
}
