package wire_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/wire"
)

func TestResultJSON(t *testing.T) {
	t.Parallel()
	rv := "42"
	r := sandbox.ExecResult{Stdout: []byte("out"), ExitCode: 1, ReturnValue: &rv, Duration: 1500 * time.Microsecond,
		Error: &sandbox.ExecError{Name: "ValueError", Value: "x", Traceback: "Traceback...\nValueError: x\n", Line: 3}, StderrTruncated: true}
	b, err := json.Marshal(wire.ExecResult(r))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"stdout":"out"`, `"exit_code":1`, `"error_traceback":"Traceback...\nValueError: x\n"`, `"duration_ms":1.5`, `"truncated":true`, `"return_value":"42"`, `"line":3`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("json = %s, missing %s", b, want)
		}
	}
	var back api.ExecResult
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Stdout != "out" || back.Duration() != r.Duration || *back.ReturnValue != "42" || back.Error.Line != 3 ||
		!back.StderrTruncated || back.Success || back.ExecutionTime != 0.0015 {
		t.Errorf("round trip = %+v", back)
	}
}

func TestResultJSONOutputs(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(wire.ExecResult(sandbox.ExecResult{}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "outputs") {
		t.Errorf("json of a result without outputs = %s, want no outputs fields", b)
	}
	r := sandbox.ExecResult{OutputsTruncated: true, Outputs: []sandbox.Output{
		{Type: sandbox.OutputDisplay, Data: map[string]string{"text/plain": "<Figure>", "image/png": "iVBORw=="}},
		{Type: sandbox.OutputResult, Data: map[string]string{"text/plain": "df", "text/html": "<table></table>"}},
	}}
	b, err = json.Marshal(wire.ExecResult(r))
	if err != nil {
		t.Fatal(err)
	}
	want := `"outputs":[{"type":"display","data":{"image/png":"iVBORw==","text/plain":"\u003cFigure\u003e"}},` +
		`{"type":"result","data":{"text/html":"\u003ctable\u003e\u003c/table\u003e","text/plain":"df"}}],"outputs_truncated":true`
	if !strings.Contains(string(b), want) {
		t.Errorf("json = %s, want it to contain %s", b, want)
	}
	var back api.ExecResult
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Outputs) != 2 || !reflect.DeepEqual(back.Outputs[1].Data, r.Outputs[1].Data) || back.Outputs[0].Type != "display" || !back.OutputsTruncated {
		t.Errorf("round trip = %+v, want %+v", back, r)
	}
}
