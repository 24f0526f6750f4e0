package sandboxtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/wire"
)

// Rich outputs of Python executions (ExecResult.Outputs): display(), the
// final expression's rich form, matplotlib figures and pandas tables.

// pngSignature starts every PNG file.
var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// timeline records, in arrival order, what OnOutput and OnDisplay are
// given: "out:TEXT" and "err:TEXT" (consecutive chunks of one stream
// joined) and "display:TEXT/PLAIN" or "result:TEXT/PLAIN".
type timeline struct {
	mu     sync.Mutex
	events []string
}

func (tl *timeline) add(kind, text string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if n := len(tl.events); n > 0 && (kind == "out" || kind == "err") && strings.HasPrefix(tl.events[n-1], kind+":") {
		tl.events[n-1] += text
		return
	}
	tl.events = append(tl.events, kind+":"+text)
}

// watched returns req reporting to a new timeline.
func watched(req sandbox.ExecRequest) (sandbox.ExecRequest, *timeline) {
	tl := &timeline{}
	req.OnOutput = func(s sandbox.Stream, p []byte) {
		kind := "out"
		if s == sandbox.Stderr {
			kind = "err"
		}
		tl.add(kind, string(p))
	}
	req.OnDisplay = func(o sandbox.Output) { tl.add(o.Type, o.Data["text/plain"]) }
	return req, tl
}

// wantEvents checks what was streamed, and that OnDisplay was given
// exactly the outputs of the result.
func wantEvents(t *testing.T, code string, r sandbox.ExecResult, tl *timeline, want []string) {
	t.Helper()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if !reflect.DeepEqual(tl.events, want) {
		t.Errorf("Exec(python %q) streamed %q, want %q", code, tl.events, want)
	}
	var kept []string
	for _, o := range r.Outputs {
		kept = append(kept, o.Type+":"+o.Data["text/plain"])
	}
	var streamed []string
	for _, e := range tl.events {
		if strings.HasPrefix(e, sandbox.OutputDisplay+":") || strings.HasPrefix(e, sandbox.OutputResult+":") {
			streamed = append(streamed, e)
		}
	}
	if !reflect.DeepEqual(kept, streamed) {
		t.Errorf("Exec(python %q): Outputs %q, but OnDisplay got %q", code, kept, streamed)
	}
}

// wantNoOutputs checks that code gives no rich output.
func (b *handle) wantNoOutputs(t *testing.T, code string) {
	t.Helper()
	if r := b.ok(t, py(code)); r.Outputs != nil || r.OutputsTruncated {
		t.Errorf("Exec(python %q).Outputs = %+v, truncated %v; want none", code, r.Outputs, r.OutputsTruncated)
	}
}

// decodePNG returns the bytes of an output's image/png.
func decodePNG(t *testing.T, o sandbox.Output) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(o.Data["image/png"])
	if err != nil || !bytes.HasPrefix(b, pngSignature) {
		t.Errorf("output %s %q: image/png is not a base64 PNG (%d bytes decoded, %v)", o.Type, o.Data["text/plain"], len(b), err)
	}
	return b
}

// testRichOutputs needs nothing but Python: objects bring their own
// _repr_*_ methods, as IPython's display protocol has them.
func testRichOutputs(t *testing.T, s *suite) {
	if _, ok := s.p.(*Fake); ok {
		t.Skip("the Fake runs no Python: its only rich output is the one its code \"display TEXT\" asks for")
	}
	b := s.create(t, nil)
	b.ok(t, py("class R:\n    def __repr__(self):\n        return 'R()'\n    def _repr_html_(self):\n        return '<p>r</p>'\n"+
		"    def _repr_png_(self):\n        return b'\\x89PNG\\r\\n\\x1a\\nrest'\n"+
		"class Broken:\n    def __repr__(self):\n        return 'Broken()'\n    def _repr_html_(self):\n        raise RuntimeError('no')\n"+
		"    def _repr_markdown_(self):\n        return '*b*'"))
	for _, code := range []string{"x = 1", "1 + 1", "'text'", "[R()]", "print('p')", "None"} {
		b.wantNoOutputs(t, code)
	}

	const code = "print('a')\ndisplay(R(), 7)\nprint('b')\nR()"
	req, tl := watched(py(code))
	r := b.ok(t, req)
	wantEvents(t, code, r, tl, []string{"out:a\n", "display:R()", "display:7", "out:b\n", "result:R()"})
	if len(r.Outputs) != 3 {
		t.Fatalf("Exec(python %q).Outputs = %+v, want 3", code, r.Outputs)
	}
	for _, i := range []int{0, 2} {
		if o := r.Outputs[i]; o.Data["text/html"] != "<p>r</p>" || len(o.Data) != 3 {
			t.Errorf("output %d = %+v, want text/plain, text/html and image/png", i, o)
		}
		decodePNG(t, r.Outputs[i])
	}
	if r.ReturnValue == nil || *r.ReturnValue != "R()" {
		t.Errorf("ReturnValue = %v, want R() as without rich outputs", r.ReturnValue)
	}
	data, err := json.Marshal(wire.ExecResult(r))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"outputs":[{"type":"display","data":{`) {
		t.Errorf("json = %s, want the outputs", data)
	}

	// A failing _repr_html_ leaves that form out and fails nothing.
	r = b.ok(t, py("display(Broken())"))
	if len(r.Outputs) != 1 || !reflect.DeepEqual(r.Outputs[0].Data, map[string]string{"text/plain": "Broken()", "text/markdown": "*b*"}) {
		t.Errorf("display(Broken()) = %+v, want its text and markdown forms", r.Outputs)
	}
	if r := b.exec(t, sh("echo shell")); r.Outputs != nil {
		t.Errorf("shell Outputs = %+v", r.Outputs)
	}
}

// testRichOutputsLibraries: matplotlib figures and pandas tables, as in a
// Jupyter notebook. The runtime image has both; other sandboxes (the host's
// Python) may not, and the case is skipped there unless
// Config.RuntimeImage says they must be there.
func testRichOutputsLibraries(t *testing.T, s *suite) {
	if _, ok := s.p.(*Fake); ok {
		t.Skip("the Fake runs no Python")
	}
	b := s.create(t, nil)
	if missing := b.value(t, "try:\n    import matplotlib, pandas\n    missing = ''\nexcept ImportError as e:\n    missing = str(e)\nmissing"); missing != "''" {
		if s.cfg.RuntimeImage {
			t.Fatalf("the runtime image's Python lacks matplotlib or pandas: %s", missing)
		}
		t.Skipf("the sandbox's Python lacks matplotlib or pandas (%s); the runtime image has them", missing)
	}

	// plt.show() shows the figure then and there, and closes it.
	code := "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\nprint('shown')"
	req, tl := watched(py(code))
	r := b.ok(t, req)
	if len(r.Outputs) != 1 {
		t.Fatalf("Exec(python %q).Outputs = %+v, want one figure", code, r.Outputs)
	}
	fig := r.Outputs[0]
	wantEvents(t, code, r, tl, []string{"display:" + fig.Data["text/plain"], "out:shown\n"})
	if fig.Type != sandbox.OutputDisplay || !strings.HasPrefix(fig.Data["text/plain"], "<Figure size") {
		t.Errorf("plt.show() output = %s %q, want a display of a Figure", fig.Type, fig.Data["text/plain"])
	}
	decodePNG(t, fig)
	b.wantValue(t, "len(plt.get_fignums())", "0")

	// A figure left open is shown when the cell ends, after its output.
	code = "fig, ax = plt.subplots()\nax.bar(['a', 'b'], [3, 1])\nprint('drawn')"
	req, tl = watched(py(code))
	r = b.ok(t, req)
	if len(r.Outputs) != 1 {
		t.Fatalf("Exec(python %q).Outputs = %+v, want the open figure", code, r.Outputs)
	}
	wantEvents(t, code, r, tl, []string{"out:drawn\n", "display:" + r.Outputs[0].Data["text/plain"]})
	decodePNG(t, r.Outputs[0])
	b.wantNoOutputs(t, "y = 2")
	b.wantNoOutputs(t, "import numpy as np\nnp.arange(3)")

	// pandas: display() and a final DataFrame give its HTML table.
	b.ok(t, py("import pandas as pd\ndf = pd.DataFrame({'name': ['ada', 'bob'], 'n': [1, 2]})"))
	r = b.ok(t, py("display(df)"))
	if len(r.Outputs) != 1 || r.Outputs[0].Type != sandbox.OutputDisplay || !strings.Contains(r.Outputs[0].Data["text/html"], "<table") ||
		!strings.Contains(r.Outputs[0].Data["text/plain"], "ada") {
		t.Errorf("display(df) = %+v, want a display with an HTML table and the text form", r.Outputs)
	}
	r = b.ok(t, py("df"))
	if len(r.Outputs) != 1 || r.Outputs[0].Type != sandbox.OutputResult || !strings.Contains(r.Outputs[0].Data["text/html"], "<table") {
		t.Errorf("df as the final expression: Outputs = %+v, want a result with an HTML table", r.Outputs)
	}
	if r.ReturnValue == nil || !strings.Contains(*r.ReturnValue, "bob") {
		t.Errorf("df as the final expression: ReturnValue = %v, want its repr", r.ReturnValue)
	}
	// A figure as the final expression is the result, shown once.
	r = b.ok(t, py("fig, ax = plt.subplots()\nax.plot([1, 0])\nfig"))
	if len(r.Outputs) != 1 || r.Outputs[0].Type != sandbox.OutputResult {
		t.Fatalf("a figure as the final expression: Outputs = %+v, want one result", r.Outputs)
	}
	decodePNG(t, r.Outputs[0])
}
