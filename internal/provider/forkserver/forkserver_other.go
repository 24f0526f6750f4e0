//go:build !linux

package forkserver

import (
	"context"
	"fmt"
	"runtime"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Provider is not available outside Linux.
type Provider struct{}

var _ sandbox.Provider = (*Provider)(nil)

var errUnsupported = fmt.Errorf("the fork server runs only on Linux, and this is %s: %w", runtime.GOOS, sandbox.ErrUnsupported)

// New fails with sandbox.ErrUnsupported outside Linux.
func New(ctx context.Context, opts Options) (*Provider, error) { return nil, errUnsupported }

// Check fails with sandbox.ErrUnsupported outside Linux.
func Check(opts Options) error { return errUnsupported }

// RemoveOrphans finds nothing outside Linux.
func RemoveOrphans(ctx context.Context, opts Options) (int, error) { return 0, nil }

// Describe is empty outside Linux.
func (p *Provider) Describe() string { return "" }

func (p *Provider) Name() string                       { return string(sandbox.ProviderForkServer) }
func (p *Provider) Capabilities() sandbox.Capabilities { return sandbox.Capabilities{} }
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	return sandbox.Info{}, errUnsupported
}
func (p *Provider) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return sandbox.ExecResult{}, errUnsupported
}
func (p *Provider) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	return nil, errUnsupported
}
func (p *Provider) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	return nil, errUnsupported
}
func (p *Provider) Destroy(ctx context.Context, id sandbox.ID) error { return errUnsupported }
func (p *Provider) Close(ctx context.Context) error                  { return nil }
