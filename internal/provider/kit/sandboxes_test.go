package kit

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestSandboxes(t *testing.T) {
	t.Parallel()
	var s Sandboxes[int]
	a := &Sandbox[int]{Info: sandbox.Info{ID: sandbox.NewID(), Spec: sandbox.Spec{Env: map[string]string{"K": "v"}}}, Box: 1}
	b := &Sandbox[int]{Info: sandbox.Info{ID: sandbox.NewID()}, Box: 2}
	s.Add(a)
	s.Add(b)
	if got, err := s.Get(a.Info.ID); err != nil || got.Box != 1 {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if _, err := s.Get("not an id"); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Get(malformed) = %v, want ErrInvalid", err)
	}
	if _, err := s.Get(sandbox.NewID()); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("Get(unknown) = %v, want ErrNotFound", err)
	}
	info, err := s.Info(a.Info.ID)
	if err != nil {
		t.Fatal(err)
	}
	info.Spec.Env["K"] = "changed"
	if a.Info.Spec.Env["K"] != "v" {
		t.Error("Info shares the sandbox's environment map")
	}
	if n := len(s.List()); n != 2 {
		t.Errorf("List has %d, want 2", n)
	}
	if _, err := s.Remove(a.Info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(a.Info.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("second Remove = %v, want ErrNotFound", err)
	}
	var destroyed []sandbox.ID
	boom := errors.New("boom")
	s.Add(a)
	err = s.DestroyAll(t.Context(), func(ctx context.Context, id sandbox.ID) error {
		if id == a.Info.ID {
			return boom
		}
		destroyed = append(destroyed, id)
		return nil
	})
	if !errors.Is(err, boom) || !slices.Equal(destroyed, []sandbox.ID{b.Info.ID}) {
		t.Errorf("DestroyAll = %v, destroyed %v", err, destroyed)
	}
	if err := s.DestroyAll(t.Context(), func(context.Context, sandbox.ID) error { return sandbox.ErrNotFound }); err != nil {
		t.Errorf("DestroyAll with sandboxes gone meanwhile = %v, want nil", err)
	}
}
