//go:build linux

package provider

import (
	"context"
	"fmt"
	"strings"

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
	return p, describeBwrap(p), nil
}

func (s *selector) probeBubblewrap(ctx context.Context) (bool, string) {
	p, err := bwrap.New(ctx, bwrap.Options{WorkspaceRoot: s.cfg.WorkspaceRoot, Log: s.log})
	if err != nil {
		return false, oneLine(err.Error())
	}
	_ = p.Close(context.WithoutCancel(ctx))
	return true, "available, not selected: " + describeBwrap(p)
}

// describeBwrap says what the bubblewrap provider enforces here.
func describeBwrap(p *bwrap.Provider) string {
	e := p.Enforcement()
	parts := []string{"Linux namespaces with bubblewrap"}
	if e.Seccomp {
		parts = append(parts, "seccomp")
	}
	if e.LandlockABI > 0 {
		parts = append(parts, fmt.Sprintf("Landlock ABI %d", e.LandlockABI))
	}
	parts = append(parts, "limits: "+string(e.Limits))
	s := strings.Join(parts, ", ")
	if e.Note != "" {
		s += " (" + e.Note + ")"
	}
	return s
}
