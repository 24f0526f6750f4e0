package provider

import (
	"context"

	"github.com/warden-sandbox/warden/internal/provider/seatbelt"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// openSeatbelt opens the macOS Seatbelt provider; off macOS it fails with
// TinyAgent's message.
func (s *selector) openSeatbelt(ctx context.Context) (sandbox.Provider, string, error) {
	p, err := seatbelt.New(ctx, seatbelt.Options{WorkspaceRoot: s.cfg.WorkspaceRoot, Log: s.log})
	if err != nil {
		return nil, "", err
	}
	return p, "macOS sandbox-exec profile (no memory, CPU or process limits)", nil
}

func (s *selector) probeSeatbelt(ctx context.Context) (bool, string) {
	ok, why := seatbelt.Supported()
	if !ok {
		return false, why
	}
	return true, "available, not selected: " + why
}
