package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Rich outputs through the agent running as a host process. The host's
// python3 has neither matplotlib nor pandas: objects here bring their own
// _repr_*_ methods; the conformance suite covers matplotlib and pandas in
// the runtime image.

// reprClasses defines classes with IPython's rich repr methods.
const reprClasses = `
class Rich:
    def __init__(self, tag='r'):
        self.tag = tag
    def __repr__(self):
        return 'Rich(%s)' % self.tag
    def _repr_html_(self):
        return '<b>%s</b>' % self.tag
    def _repr_png_(self):
        return b'\x89PNG\r\n\x1a\n' + self.tag.encode()
    def _repr_svg_(self):
        return '<svg/>'
    def _repr_json_(self):
        return {'tag': self.tag, 'n': [1, 2]}
    def _repr_markdown_(self):
        return '*' + self.tag + '*'
    def _repr_latex_(self):
        return '$x$', {'meta': 1}

class Bundle:
    def _repr_mimebundle_(self, include=None, exclude=None):
        d = {'text/plain': 'bundle', 'text/html': '<i>b</i>', 'application/vnd.custom+json': {'a': 1},
             'image/jpeg': base64.b64encode(b'\xff\xd8jpeg').decode(), 'Bad Type': 'x', 'text/csv': 7}
        return {k: v for k, v in d.items() if not exclude or k not in exclude}
    def _repr_html_(self):
        return '<i>not used: the bundle has text/html</i>'
    def _repr_markdown_(self):
        return 'md'

class Failing:
    def __repr__(self):
        return 'Failing()'
    def _repr_html_(self):
        raise ValueError('no html today')
    def _repr_markdown_(self):
        return '**ok**'

class CatchAll:
    def __getattr__(self, name):
        return lambda *a, **k: '<html>everything</html>'
    def __repr__(self):
        return 'CatchAll()'
import base64
`

// pyEvents runs code and returns the result with what was streamed, in
// order: "out:TEXT" and "err:TEXT" (consecutive chunks of a stream
// joined) and "display:TEXT/PLAIN" or "result:TEXT/PLAIN".
func pyEvents(t *testing.T, s *Session, code string) (sandbox.ExecResult, []string) {
	t.Helper()
	var mu sync.Mutex
	var events []string
	add := func(kind, text string) {
		mu.Lock()
		defer mu.Unlock()
		if n := len(events); n > 0 && (kind == "out" || kind == "err") && strings.HasPrefix(events[n-1], kind+":") {
			events[n-1] += text
			return
		}
		events = append(events, kind+":"+text)
	}
	r, err := s.Exec(t.Context(), sandbox.ExecRequest{Language: sandbox.Python, Code: code,
		OnOutput: func(st sandbox.Stream, p []byte) {
			add(map[sandbox.Stream]string{sandbox.Stdout: "out", sandbox.Stderr: "err"}[st], string(p))
		},
		OnDisplay: func(o sandbox.Output) { add(o.Type, o.Data["text/plain"]) },
	})
	if err != nil {
		t.Fatalf("Exec(%q): %v", code, err)
	}
	if r.ExitCode != 0 || r.Error != nil {
		t.Fatalf("Exec(%q) = exit %d, error %+v, stderr %q", code, r.ExitCode, r.Error, r.Stderr)
	}
	mu.Lock()
	defer mu.Unlock()
	var streamed []string
	for _, e := range events {
		if strings.HasPrefix(e, "display:") || strings.HasPrefix(e, "result:") {
			streamed = append(streamed, e)
		}
	}
	var kept []string
	for _, o := range r.Outputs {
		kept = append(kept, o.Type+":"+o.Data["text/plain"])
	}
	if !reflect.DeepEqual(streamed, kept) {
		t.Errorf("Exec(%q): OnDisplay got %q, Outputs are %q", code, streamed, kept)
	}
	return r, events
}

func TestHostDisplay(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	py(t, s, reprClasses, 0)

	r, events := pyEvents(t, s, "print('a')\ndisplay(Rich('x'), 42)\nprint('b')\nimport sys\nprint('e', file=sys.stderr)\ndisplay('s')\nprint('c')")
	if want := []string{"out:a\n", "display:Rich(x)", "display:42", "out:b\n", "err:e\n", "display:'s'", "out:c\n"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events = %q, want %q (output and displays in the order the code made them)", events, want)
	}
	if r.ReturnValue != nil || r.OutputsTruncated {
		t.Errorf("display() returned %v, truncated %v", *r.ReturnValue, r.OutputsTruncated)
	}
	// Many alternations: no output may overtake a display.
	_, events = pyEvents(t, s, "for i in range(100):\n    print(i)\n    display(i)\n    display(-i)")
	var alternating []string
	for i := range 100 {
		alternating = append(alternating, fmt.Sprintf("out:%d\n", i), fmt.Sprintf("display:%d", i), fmt.Sprintf("display:%d", -i))
	}
	if !reflect.DeepEqual(events, alternating) {
		t.Errorf("alternating print and display: events %q, want %q", events, alternating)
	}
	png := base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\nx"))
	want := map[string]string{
		"text/plain": "Rich(x)", "text/html": "<b>x</b>", "image/png": png, "image/svg+xml": "<svg/>",
		"application/json": `{"tag": "x", "n": [1, 2]}`, "text/markdown": "*x*", "text/latex": "$x$",
	}
	if len(r.Outputs) != 3 {
		t.Fatalf("Outputs = %+v, want 3", r.Outputs)
	}
	if got := r.Outputs[0]; got.Type != sandbox.OutputDisplay || !reflect.DeepEqual(got.Data, want) {
		t.Errorf("display(Rich('x')) = %+v, want display %v", got, want)
	}
	if got := r.Outputs[1].Data; !reflect.DeepEqual(got, map[string]string{"text/plain": "42"}) {
		t.Errorf("display(42) = %v, want only its repr", got)
	}

	// _repr_mimebundle_ comes first; the other methods fill in what it
	// lacks; what cannot be an output (a malformed type name, a number as
	// text) is left out; include and exclude are honoured.
	r = py(t, s, "display(Bundle())\ndisplay(Bundle(), exclude=['text/html'])\ndisplay(Rich('i'), include={'text/html', 'text/plain'})", 0)
	jpeg := base64.StdEncoding.EncodeToString([]byte("\xff\xd8jpeg"))
	wants := []map[string]string{
		{"text/plain": "bundle", "text/html": "<i>b</i>", "application/vnd.custom+json": `{"a": 1}`, "image/jpeg": jpeg, "text/markdown": "md"},
		{"text/plain": "bundle", "application/vnd.custom+json": `{"a": 1}`, "image/jpeg": jpeg, "text/markdown": "md"},
		{"text/plain": "Rich(i)", "text/html": "<b>i</b>"},
	}
	if len(r.Outputs) != len(wants) {
		t.Fatalf("bundles = %+v, want %d outputs", r.Outputs, len(wants))
	}
	for i, w := range wants {
		if !reflect.DeepEqual(r.Outputs[i].Data, w) {
			t.Errorf("bundle %d = %v, want %v", i, r.Outputs[i].Data, w)
		}
	}

	// raw=True: the objects are bundles already.
	r = py(t, s, "display({'text/plain': 'raw', 'image/png': b'\\x89PNG'}, raw=True)", 0)
	if len(r.Outputs) != 1 || !reflect.DeepEqual(r.Outputs[0].Data, map[string]string{"text/plain": "raw", "image/png": "iVBORw=="}) {
		t.Errorf("raw display = %+v", r.Outputs)
	}

	// display is a builtin: modules of the code can call it too, and from
	// a thread of the execution.
	py(t, s, "open('helper.py', 'w').write('def show(x):\\n    display(x)\\n')", 0)
	r, events = pyEvents(t, s, "import helper, threading\nhelper.show(Rich('m'))\nth = threading.Thread(target=display, args=('t',))\nth.start(); th.join()")
	if want := []string{"display:Rich(m)", "display:'t'"}; !reflect.DeepEqual(events, want) {
		t.Errorf("display from a module and a thread: events %q, want %q", events, want)
	}
	if r := py(t, s, "'display' in globals(), callable(display)", 0); *r.ReturnValue != "(False, True)" {
		t.Errorf("display in globals, callable = %s, want (False, True)", *r.ReturnValue)
	}
}

func TestHostResultOutput(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	py(t, s, reprClasses, 0)

	// A final expression with a rich repr gives a "result" after the
	// displays; return_value is unchanged.
	r, events := pyEvents(t, s, "display(1)\nprint('p')\nRich('z')")
	if want := []string{"display:1", "out:p\n", "result:Rich(z)"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events = %q, want %q", events, want)
	}
	if r.ReturnValue == nil || *r.ReturnValue != "Rich(z)" {
		t.Errorf("ReturnValue = %v, want Rich(z)", r.ReturnValue)
	}
	if o := r.Outputs[len(r.Outputs)-1]; o.Type != sandbox.OutputResult || o.Data["text/html"] != "<b>z</b>" || len(o.Data) != 7 {
		t.Errorf("result output = %+v, want every form of Rich('z')", o)
	}
	if r := py(t, s, "_.tag", 0); *r.ReturnValue != "'z'" {
		t.Errorf("_ after a rich result = %s", *r.ReturnValue)
	}

	// Plain values, no value, definitions, shell: no outputs.
	for _, code := range []string{"1 + 1", "'s'", "[Rich()]", "None", "x = Rich()", "print('x')", "Rich", "CatchAll()"} {
		r := py(t, s, code, 0)
		if r.Outputs != nil || r.OutputsTruncated {
			t.Errorf("Exec(%q).Outputs = %+v, truncated %v; want none", code, r.Outputs, r.OutputsTruncated)
		}
	}
	if r := sh(t, s, "echo hi", 0); r.Outputs != nil {
		t.Errorf("shell outputs = %+v", r.Outputs)
	}
	// An exception after a display keeps the display.
	r, err := s.Exec(t.Context(), sandbox.ExecRequest{Language: sandbox.Python, Code: "display(Rich('e'))\n1/0"})
	if err != nil || r.Error == nil || len(r.Outputs) != 1 || r.Outputs[0].Data["text/html"] != "<b>e</b>" {
		t.Errorf("display then an exception = %+v, %v", r, err)
	}
}

func TestHostDisplayReprFails(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	py(t, s, reprClasses, 0)
	for _, code := range []string{"display(Failing())", "Failing()"} {
		r := py(t, s, code, 0)
		if r.ExitCode != 0 || r.Error != nil {
			t.Fatalf("Exec(%q) failed: %+v", code, r)
		}
		if len(r.Outputs) != 1 || !reflect.DeepEqual(r.Outputs[0].Data, map[string]string{"text/plain": "Failing()", "text/markdown": "**ok**"}) {
			t.Errorf("Exec(%q).Outputs = %+v, want the markdown and text forms only", code, r.Outputs)
		}
		if !strings.Contains(string(r.Stderr), "_repr_html_() of Failing raised ValueError: no html today") {
			t.Errorf("Exec(%q) stderr = %q, want a word on the failing _repr_html_", code, r.Stderr)
		}
	}
	// Objects answering every attribute, and classes, are shown by repr.
	r := py(t, s, "display(CatchAll(), Rich)", 0)
	if len(r.Outputs) != 2 || len(r.Outputs[0].Data) != 1 || r.Outputs[0].Data["text/plain"] != "CatchAll()" || len(r.Outputs[1].Data) != 1 {
		t.Errorf("display(CatchAll(), Rich) = %+v, want text/plain only", r.Outputs)
	}
	// A repr method that never returns is stopped by the timeout like any
	// code, and the session keeps its variables.
	py(t, s, "kept = 1", 0)
	r = py(t, s, "import time\nclass Slow:\n    def _repr_html_(self):\n        time.sleep(60)\ndisplay(1)\nSlow()", 500*time.Millisecond)
	if !r.TimedOut || len(r.Outputs) != 1 {
		t.Errorf("slow repr = timed out %v, outputs %+v; want a timeout after one output", r.TimedOut, r.Outputs)
	}
	if r := py(t, s, "kept", 0); r.ReturnValue == nil || *r.ReturnValue != "1" {
		t.Errorf("after the slow repr kept = %v, notes %v", r.ReturnValue, r.Notes)
	}
}

func TestHostOutputsBounded(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{OutputLimit: 1000})
	// Each output is len("text/plain") + 302 = 312 bytes: three fit in 1000.
	r := py(t, s, "for i in range(5):\n    display('%d' * 300 % i if False else str(i) * 300)\nprint('done')", 0)
	if len(r.Outputs) != 3 || !r.OutputsTruncated {
		t.Fatalf("5 outputs of 312 bytes with a limit of 1000: kept %d, truncated %v", len(r.Outputs), r.OutputsTruncated)
	}
	for i, o := range r.Outputs {
		if want := "'" + strings.Repeat(fmt.Sprint(i), 300) + "'"; o.Data["text/plain"] != want {
			t.Errorf("output %d = %.20q..., want the %dth displayed (a prefix)", i, o.Data["text/plain"], i)
		}
	}
	if string(r.Stdout) != "done\n" || r.StdoutTruncated {
		t.Errorf("stdout = %q, truncated %v: outputs have their own budget", r.Stdout, r.StdoutTruncated)
	}
	// Once one is dropped, later ones are too, even if they would fit.
	r = py(t, s, "display('x' * 2000)\ndisplay(1)", 0)
	if len(r.Outputs) != 0 || !r.OutputsTruncated {
		t.Errorf("an output over the limit, then a small one: %+v, truncated %v; want none kept", r.Outputs, r.OutputsTruncated)
	}
	// The next execution has the whole budget again.
	if r := py(t, s, "display(1)", 0); len(r.Outputs) != 1 || r.OutputsTruncated {
		t.Errorf("next execution = %+v, truncated %v", r.Outputs, r.OutputsTruncated)
	}

	// At most sandbox.MaxOutputs outputs per execution.
	s = newHostSession(t, Options{})
	r = py(t, s, fmt.Sprintf("for i in range(%d):\n    display(i)", sandbox.MaxOutputs+5), 0)
	if len(r.Outputs) != sandbox.MaxOutputs || !r.OutputsTruncated {
		t.Errorf("%d displays: kept %d, truncated %v; want %d", sandbox.MaxOutputs+5, len(r.Outputs), r.OutputsTruncated, sandbox.MaxOutputs)
	}
}

// TestHostForgedOutputs: code that writes output frames of its own on the
// worker's control pipe cannot get malformed outputs past the agent, nor
// break the session.
func TestHostForgedOutputs(t *testing.T) {
	t.Parallel()
	s := newHostSession(t, Options{})
	py(t, s, "x = 42", 0)
	forge := "import os, struct, sys, json\nfd = int(sys.argv[3])\n" +
		"def frame(kind, body):\n    os.write(fd, kind + struct.pack('>I', len(body)) + body)\n"
	cases := []string{
		`frame(b'm', json.dumps({'type': 'display', 'data': {'Text/HTML <script>': 'x'}}).encode())`,
		`frame(b'm', json.dumps({'type': 'bogus', 'data': {'text/plain': 'x'}}).encode())`,
		`frame(b'm', json.dumps({'type': 'display', 'data': {'text/plain': 1}}).encode())`,
		`frame(b'm', json.dumps({'type': 'display', 'data': {'text/plain': 'x' * 5000000}}).encode())`,
	}
	for _, c := range cases {
		if err := s.Checkpoint(t.Context()); err != nil {
			t.Fatal(err)
		}
		r, err := s.Exec(t.Context(), sandbox.ExecRequest{Language: sandbox.Python, Code: forge + c + "\ndisplay(1)", Timeout: 30 * time.Second})
		if err != nil {
			t.Fatalf("Exec(%q): %v", c, err)
		}
		if len(r.Outputs) != 0 || !r.OutputsTruncated {
			t.Errorf("forged %q: outputs %+v, truncated %v; want it and the later display dropped", c, r.Outputs, r.OutputsTruncated)
		}
		if r := py(t, s, "display(2)\nx", 0); r.ReturnValue == nil || *r.ReturnValue != "42" || len(r.Outputs) != 1 {
			t.Fatalf("after forged %q: x = %v, outputs %+v, notes %v", c, r.ReturnValue, r.Outputs, r.Notes)
		}
	}
}

// scriptedLauncher starts a fake agent, written in Go, that answers every
// request with the frames reply returns: the host's side of the protocol
// against an agent that does what no honest agent does.
type scriptedLauncher struct {
	reply func(req request) []frame
}

type scriptedProc struct {
	io.Reader
	io.Writer
	close func()
}

func (p *scriptedProc) Close() error { p.close(); return nil }

func (l *scriptedLauncher) Start(ctx context.Context) (Process, error) {
	hostR, agentW := io.Pipe()
	agentR, hostW := io.Pipe()
	go func() {
		defer agentW.Close()
		if writeFrame(agentW, kindHello, []byte(`{"proto":1}`)) != nil {
			return
		}
		for {
			var hdr [headerSize]byte
			if _, err := io.ReadFull(agentR, hdr[:]); err != nil {
				return
			}
			p := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
			if _, err := io.ReadFull(agentR, p); err != nil {
				return
			}
			if hdr[0] != kindRequest {
				continue
			}
			var req request
			if err := json.Unmarshal(p, &req); err != nil {
				return
			}
			for _, f := range l.reply(req) {
				if writeFrame(agentW, f.kind, f.payload) != nil {
					return
				}
			}
		}
	}()
	return &scriptedProc{Reader: hostR, Writer: hostW, close: sync.OnceFunc(func() {
		hostR.Close()
		hostW.Close()
	})}, nil
}

func (l *scriptedLauncher) Reset(ctx context.Context) error { return nil }

// TestHostValidatesOutputs: the host checks every output an agent sends
// (the agent is untrusted) and keeps the session when one is malformed.
func TestHostValidatesOutputs(t *testing.T) {
	t.Parallel()
	good := `{"type":"display","data":{"text/plain":"ok","image/png":"iVBORw=="}}`
	cases := []struct {
		name    string
		payload string
		note    string // what the note on the malformed output says
	}{
		{"not json", `{"type":`, "unexpected end"},
		{"data not strings", `{"type":"display","data":{"text/plain":7}}`, "cannot unmarshal"},
		{"unknown type", `{"type":"stream","data":{"text/plain":"x"}}`, `"stream"`},
		{"no data", `{"type":"display","data":{}}`, "0 MIME types"},
		{"uppercase MIME type", `{"type":"display","data":{"Text/Plain":"x"}}`, "malformed"},
		{"MIME type with a space", `{"type":"display","data":{"text/plain; charset=utf-8":"x"}}`, "malformed"},
		{"MIME type without a subtype", `{"type":"display","data":{"text":"x"}}`, "malformed"},
		{"long MIME type", `{"type":"display","data":{"text/` + strings.Repeat("a", 130) + `":"x"}}`, "malformed"},
		{"PNG not base64", `{"type":"display","data":{"image/png":"\u0089PNG"}}`, "not base64"},
		{"PNG base64 with a line break", `{"type":"display","data":{"image/png":"iVBO\nRw=="}}`, "not base64"},
		{"too many MIME types", manyTypes(sandbox.MaxOutputTypes + 1), "33 MIME types"},
		{"two results", `{"type":"result","data":{"text/plain":"1"}}` + "\x00" + `{"type":"result","data":{"text/plain":"2"}}`, "second result"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := &scriptedLauncher{reply: func(req request) []frame {
				fs := []frame{{kindStdout, []byte("a")}, {kindDisplay, []byte(good)}}
				for _, p := range strings.Split(c.payload, "\x00") {
					fs = append(fs, frame{kindDisplay, []byte(p)})
				}
				fs = append(fs, frame{kindDisplay, []byte(good)}, frame{kindResult, []byte(`{"exit_code":0}`)})
				return fs
			}}
			s := NewSession(l, Options{})
			defer s.Close()
			var streamed int
			r, err := s.Exec(t.Context(), sandbox.ExecRequest{Language: sandbox.Python, Code: "x", OnDisplay: func(sandbox.Output) { streamed++ }})
			if err != nil {
				t.Fatal(err)
			}
			want := []sandbox.Output{{Type: "display", Data: map[string]string{"text/plain": "ok", "image/png": "iVBORw=="}}}
			if c.name == "two results" {
				want = append(want, sandbox.Output{Type: "result", Data: map[string]string{"text/plain": "1"}})
			}
			if !reflect.DeepEqual(r.Outputs, want) || !r.OutputsTruncated || streamed != len(want) {
				t.Errorf("Outputs = %+v, truncated %v, streamed %d; want %+v, truncated", r.Outputs, r.OutputsTruncated, streamed, want)
			}
			if len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "malformed") || !strings.Contains(r.Notes[0], c.note) {
				t.Errorf("Notes = %q, want one on the malformed output mentioning %q", r.Notes, c.note)
			}
			if string(r.Stdout) != "a" || r.ExitCode != 0 {
				t.Errorf("result = %+v", r)
			}
		})
	}
}

func manyTypes(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"display","data":{`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"text/x-%d":"v"`, i)
	}
	b.WriteString("}}")
	return b.String()
}

// TestHostBoundsOutputs: the host enforces the output limit, the count
// and the frame size itself, whatever the agent says.
func TestHostBoundsOutputs(t *testing.T) {
	t.Parallel()
	out := func(text string) frame {
		p, _ := json.Marshal(wireOutput{Type: "display", Data: map[string]string{"text/plain": text}})
		return frame{kindDisplay, p}
	}
	var reply func(req request) []frame
	l := &scriptedLauncher{reply: func(req request) []frame { return reply(req) }}
	s := NewSession(l, Options{OutputLimit: 100})
	defer s.Close()
	exec := func(lang sandbox.Language) sandbox.ExecResult {
		t.Helper()
		r, err := s.Exec(t.Context(), sandbox.ExecRequest{Language: lang, Code: "x"})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	done := frame{kindResult, []byte(`{"exit_code":0}`)}

	// Over the limit of 100 bytes (10 + 40 each): two kept.
	reply = func(request) []frame {
		return []frame{out(strings.Repeat("a", 40)), out(strings.Repeat("b", 40)), out(strings.Repeat("c", 40)), out("d"), done}
	}
	if r := exec(sandbox.Python); len(r.Outputs) != 2 || !r.OutputsTruncated || r.Notes != nil {
		t.Errorf("over the limit: %d outputs, truncated %v, notes %q; want 2, truncated, no note", len(r.Outputs), r.OutputsTruncated, r.Notes)
	}
	// The agent's own count of dropped outputs.
	reply = func(request) []frame {
		return []frame{out("a"), {kindResult, []byte(`{"exit_code":0,"outputs_dropped":3}`)}}
	}
	if r := exec(sandbox.Python); len(r.Outputs) != 1 || !r.OutputsTruncated {
		t.Errorf("outputs_dropped from the agent: %d outputs, truncated %v", len(r.Outputs), r.OutputsTruncated)
	}
	// Shell executions have no rich outputs.
	reply = func(request) []frame { return []frame{out("a"), done} }
	if r := exec(sandbox.Shell); len(r.Outputs) != 0 || !r.OutputsTruncated || len(r.Notes) != 1 {
		t.Errorf("an output in a shell execution: %+v, truncated %v, notes %q", r.Outputs, r.OutputsTruncated, r.Notes)
	}
	// An output frame over maxDisplayFrame breaks the protocol: the agent
	// is dropped and the result says so.
	reply = func(request) []frame {
		return []frame{{kindDisplay, bytes.Repeat([]byte{' '}, maxDisplayFrame+1)}, done}
	}
	if r := exec(sandbox.Python); r.ExitCode != 137 || r.Error == nil || !strings.Contains(r.Error.Value, "exceeds") {
		t.Errorf("oversized output frame: %+v", r)
	}
	reply = func(request) []frame { return []frame{out("back"), done} }
	if r := exec(sandbox.Python); len(r.Outputs) != 1 || len(r.Notes) != 1 || !strings.Contains(r.Notes[0], "restarted") {
		t.Errorf("after the oversized frame: %+v, notes %q", r.Outputs, r.Notes)
	}
}
