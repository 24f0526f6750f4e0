//go:build !darwin

package seatbelt

import (
	"context"
	"runtime"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Supported reports whether the provider can run on this system, and if
// not why. Off macOS it never can.
func Supported() (bool, string) {
	return false, "requires macOS with sandbox-exec; this system is " + runtime.GOOS
}

// New fails off macOS with an error matching [sandbox.ErrUnsupported],
// whose text is exactly [UnsupportedMessage].
func New(ctx context.Context, opts Options) (*Provider, error) {
	return nil, &unsupportedError{}
}

// Provider exists off macOS only so that code naming it compiles
// everywhere; [New] never returns one, and every method fails with
// [sandbox.ErrUnsupported].
type Provider struct{}

func errUnsupported() error { return &unsupportedError{} }

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return string(sandbox.ProviderSeatbelt) }

// Capabilities implements sandbox.Provider: nothing, off macOS.
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Isolation: Isolation}
}

// Create implements sandbox.Provider.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	return sandbox.Info{}, errUnsupported()
}

// Exec implements sandbox.Provider.
func (p *Provider) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return sandbox.ExecResult{}, errUnsupported()
}

// UpdateEnv implements sandbox.Provider.
func (p *Provider) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	return nil, errUnsupported()
}

// Env implements sandbox.Provider.
func (p *Provider) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	return nil, errUnsupported()
}

// Destroy implements sandbox.Provider.
func (p *Provider) Destroy(ctx context.Context, id sandbox.ID) error { return errUnsupported() }

// Close implements sandbox.Provider: there is nothing to close.
func (p *Provider) Close(ctx context.Context) error { return nil }
