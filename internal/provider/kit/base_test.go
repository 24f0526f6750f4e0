package kit

import (
	"context"
	"errors"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestBaseDestroy(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	var b Base[int]
	var tornDown []int
	b.Teardown = func(ctx context.Context, sb *Sandbox[int]) error {
		if !sb.Gone() {
			t.Error("Teardown of a sandbox that is not Gone")
		}
		tornDown = append(tornDown, sb.Box)
		if sb.Box == 2 {
			return Retry(boom)
		}
		return nil
	}
	one := &Sandbox[int]{Info: sandbox.Info{ID: sandbox.NewID()}, Box: 1}
	two := &Sandbox[int]{Info: sandbox.Info{ID: sandbox.NewID()}, Box: 2}
	b.Boxes.Add(one)
	b.Boxes.Add(two)

	if err := b.Destroy(t.Context(), one.Info.ID); err != nil {
		t.Errorf("Destroy = %v", err)
	}
	if err := b.Destroy(t.Context(), one.Info.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("second Destroy = %v, want ErrNotFound", err)
	}
	if err := b.Destroy(t.Context(), "../x"); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Destroy(../x) = %v, want ErrInvalid", err)
	}
	err := b.Destroy(t.Context(), two.Info.ID)
	var r *retryError
	if !errors.Is(err, boom) || errors.As(err, &r) {
		t.Errorf("Destroy with a Retry teardown = %v, want boom, unwrapped", err)
	}
	if sb, err := b.Boxes.Get(two.Info.ID); err != nil || sb.Gone() {
		t.Errorf("after a Retry teardown, Get = %v, %v; want it registered and not Gone", sb, err)
	}
	if len(tornDown) != 2 {
		t.Errorf("torn down %v, want [1 2]", tornDown)
	}
}

func TestBaseReservedEnv(t *testing.T) {
	t.Parallel()
	b := Base[int]{ReservedEnv: []string{"MARK"}, ProviderName: "test"}
	id := sandbox.NewID()
	if _, err := b.UpdateEnv(t.Context(), id, sandbox.EnvUpdate{Set: map[string]string{"MARK": "x"}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("UpdateEnv(MARK) = %v, want ErrInvalid before the lookup", err)
	}
	if _, err := b.UpdateEnv(t.Context(), id, sandbox.EnvUpdate{Set: map[string]string{"OTHER": "x"}}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("UpdateEnv(OTHER) of an unknown sandbox = %v, want ErrNotFound", err)
	}
	if _, _, err := b.Processes().StartProcess(t.Context(), id, sandbox.ProcessSpec{Env: map[string]string{"MARK": "x"}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("StartProcess(MARK) = %v, want ErrInvalid", err)
	}
	if err := b.CheckEnv(map[string]string{"MARK": "x"}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("CheckEnv(MARK) = %v, want ErrInvalid", err)
	}
	if r, err := (&Base[int]{Warning: "none"}).Exec(t.Context(), id, sandbox.ExecRequest{}); !errors.Is(err, sandbox.ErrNotFound) || r.Warning != "none" {
		t.Errorf("Exec of an unknown sandbox = %+v, %v; want the warning and ErrNotFound", r, err)
	}
}
