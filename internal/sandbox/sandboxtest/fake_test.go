package sandboxtest

import (
	"reflect"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestFakeDisplay(t *testing.T) {
	t.Parallel()
	f := &Fake{}
	info, err := f.Create(t.Context(), sandbox.Spec{}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	var streamed []sandbox.Output
	r, err := f.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "display <b>",
		OnDisplay: func(o sandbox.Output) { streamed = append(streamed, o) }})
	want := []sandbox.Output{{Type: sandbox.OutputDisplay, Data: map[string]string{"text/plain": "<b>"}}}
	if err != nil || !reflect.DeepEqual(r.Outputs, want) || !reflect.DeepEqual(streamed, want) {
		t.Errorf("Exec(display <b>) = %+v, streamed %+v, %v; want %+v", r.Outputs, streamed, err, want)
	}
	r, err = f.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "display x"})
	if err != nil || r.Outputs != nil || string(r.Stdout) != "display x" {
		t.Errorf("shell Exec(display x) = %+v, %v; want an echo", r, err)
	}
}
