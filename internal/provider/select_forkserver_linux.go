//go:build linux

package provider

import (
	"context"

	"github.com/warden-sandbox/warden/internal/provider/forkserver"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// openForkServer opens the fork server provider (ADR 0017), which starts
// its server: on the root filesystem SANDBOX__BWRAP_ROOT gives bubblewrap,
// so both providers run the same system.
func (s *selector) openForkServer(ctx context.Context) (sandbox.Provider, string, error) {
	if err := forkserver.Check(forkserver.Options{WorkspaceRoot: s.cfg.WorkspaceRoot}); err != nil {
		return nil, "", err
	}
	root, rootDesc, err := s.bwrapRoot(ctx)
	if err != nil {
		return nil, "", err
	}
	p, err := forkserver.New(ctx, forkserver.Options{WorkspaceRoot: s.cfg.WorkspaceRoot, RootFS: root, Log: s.log})
	if err != nil {
		return nil, "", err
	}
	return p, "experimental: " + p.Describe() + "; root: " + rootDesc, nil
}

// probeForkServer checks the fork server's prerequisites without
// starting a server.
func (s *selector) probeForkServer(ctx context.Context) (bool, string) {
	if err := forkserver.Check(forkserver.Options{WorkspaceRoot: s.cfg.WorkspaceRoot}); err != nil {
		return false, oneLine(err.Error())
	}
	return true, "available, not selected (experimental; chosen by name only): its kernel calls and bubblewrap are here"
}
