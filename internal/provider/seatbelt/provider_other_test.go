//go:build !darwin

package seatbelt

import (
	"errors"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestNewUnsupported(t *testing.T) {
	t.Parallel()
	p, err := New(t.Context(), Options{Python: "python3"})
	if p != nil {
		t.Errorf("New returned a provider off macOS")
	}
	if !errors.Is(err, sandbox.ErrUnsupported) {
		t.Fatalf("New = %v, want an error matching sandbox.ErrUnsupported", err)
	}
	const want = "Seatbelt provider is not supported on this system. It requires macOS with sandbox-exec."
	if err.Error() != want {
		t.Errorf("New error = %q, want exactly %q", err, want)
	}
}

func TestSupportedOffMacOS(t *testing.T) {
	t.Parallel()
	ok, why := Supported()
	if ok || !strings.Contains(why, "macOS") {
		t.Errorf("Supported() = %v, %q; want false and a reason naming macOS", ok, why)
	}
}

// The stub Provider satisfies sandbox.Provider so that wiring compiles on
// every system; each of its operations fails as New does.
func TestStubProvider(t *testing.T) {
	t.Parallel()
	var p sandbox.Provider = &Provider{}
	ctx := t.Context()
	if p.Name() != "seatbelt" || p.Capabilities().Isolation != Isolation {
		t.Errorf("Name, Capabilities = %q, %+v", p.Name(), p.Capabilities())
	}
	_, err1 := p.Create(ctx, sandbox.Spec{})
	_, err2 := p.Exec(ctx, "sb-1", sandbox.ExecRequest{Language: sandbox.Python})
	_, err3 := p.Env(ctx, "sb-1")
	_, err4 := p.UpdateEnv(ctx, "sb-1", sandbox.EnvUpdate{})
	err5 := p.Destroy(ctx, "sb-1")
	for i, err := range []error{err1, err2, err3, err4, err5} {
		if !errors.Is(err, sandbox.ErrUnsupported) {
			t.Errorf("operation %d = %v, want sandbox.ErrUnsupported", i+1, err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Errorf("Close = %v", err)
	}
}
