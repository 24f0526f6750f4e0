//go:build linux

package provider

import (
	"context"
	"fmt"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// openBubblewrap opens the bubblewrap provider, which runs a trial
// sandbox first.
func (s *selector) openBubblewrap(ctx context.Context) (sandbox.Provider, string, error) {
	p, err := bwrap.New(ctx, bwrap.Options{WorkspaceRoot: s.cfg.WorkspaceRoot, Log: s.log})
	if err != nil {
		return nil, "", err
	}
	return p, describeLimits(p.Capabilities()), nil
}

func (s *selector) probeBubblewrap(ctx context.Context) (bool, string) {
	p, err := bwrap.New(ctx, bwrap.Options{WorkspaceRoot: s.cfg.WorkspaceRoot, Log: s.log})
	if err != nil {
		return false, oneLine(err.Error())
	}
	_ = p.Close(context.WithoutCancel(ctx))
	return true, "available, not selected: " + describeLimits(p.Capabilities())
}

// describeLimits says what a namespace provider enforces.
func describeLimits(c sandbox.Capabilities) string {
	limits := "memory, CPU and process limits enforced"
	if !c.MemoryLimit || !c.CPULimit || !c.PidsLimit {
		limits = fmt.Sprintf("limits enforced: memory %v, CPU %v, processes %v", c.MemoryLimit, c.CPULimit, c.PidsLimit)
	}
	return "Linux namespaces with bubblewrap; " + limits
}
