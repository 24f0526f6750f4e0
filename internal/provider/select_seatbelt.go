package provider

import (
	"context"
	"fmt"
	"runtime"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// TODO(seatbelt): replace with the seatbelt package once it lands.
func (s *selector) openSeatbelt(ctx context.Context) (sandbox.Provider, string, error) {
	return nil, "", fmt.Errorf("sandbox-exec is macOS only, and this is %s: %w", runtime.GOOS, sandbox.ErrUnsupported)
}

func (s *selector) probeSeatbelt(ctx context.Context) (bool, string) {
	return false, "sandbox-exec is macOS only, and this is " + runtime.GOOS
}
