package agent

import (
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// BenchmarkHostRoundTrip measures one trivial Python statement through the
// agent running as a host process: the protocol's own cost, no isolation.
func BenchmarkHostRoundTrip(b *testing.B) {
	s := NewSession(&hostLauncher{python: "/usr/bin/python3", dir: b.TempDir()}, Options{})
	defer s.Close()
	if _, err := s.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	req := sandbox.ExecRequest{Language: sandbox.Python, Code: "x = 1"}
	for b.Loop() {
		if _, err := s.Exec(b.Context(), req); err != nil {
			b.Fatal(err)
		}
	}
}
