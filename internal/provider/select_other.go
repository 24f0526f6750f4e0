//go:build !linux

package provider

import (
	"context"
	"fmt"
	"runtime"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func (s *selector) openBubblewrap(ctx context.Context) (sandbox.Provider, string, error) {
	return nil, "", fmt.Errorf("bubblewrap runs only on Linux, and this is %s: %w", runtime.GOOS, sandbox.ErrUnsupported)
}

func (s *selector) probeBubblewrap(ctx context.Context) (bool, string) {
	return false, "bubblewrap runs only on Linux, and this is " + runtime.GOOS
}

func (s *selector) openForkServer(ctx context.Context) (sandbox.Provider, string, error) {
	return nil, "", fmt.Errorf("the fork server runs only on Linux, and this is %s: %w", runtime.GOOS, sandbox.ErrUnsupported)
}

func (s *selector) probeForkServer(ctx context.Context) (bool, string) {
	return false, "the fork server runs only on Linux, and this is " + runtime.GOOS
}
