package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/policy"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

func TestExecute(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got sandbox.ExecRequest
	fake := &sandboxtest.Fake{
		Warning: "Executed in mock mode - no isolation!",
		ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
			mu.Lock()
			got = req
			got.OnOutput = nil
			mu.Unlock()
			rv := "2"
			return sandbox.ExecResult{Stdout: []byte("out"), Stderr: []byte("err"), ReturnValue: &rv, Duration: 1500 * time.Microsecond}, nil
		},
	}
	ts := newServer(t, setup{fake: fake})
	id := ts.create(t, nil)
	tests := []struct {
		name string
		body string
		want sandbox.ExecRequest
	}{
		{"python", `{"language":"python","code":"x + 1"}`, sandbox.ExecRequest{Language: sandbox.Python, Code: "x + 1"}},
		{"python is the default", `{"code":"x"}`, sandbox.ExecRequest{Language: sandbox.Python, Code: "x"}},
		{"timeout in seconds", `{"code":"x","timeout":1.5}`, sandbox.ExecRequest{Language: sandbox.Python, Code: "x", Timeout: 1500 * time.Millisecond}},
		{"shell string", `{"language":"shell","code":"ls -l","workdir":"sub"}`, sandbox.ExecRequest{Language: sandbox.Shell, Code: "ls -l", Workdir: "sub"}},
		{"shell argv", `{"language":"shell","command":["ls","-l"],"timeout":3600}`, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"ls", "-l"}, Timeout: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", tt.body)
			if resp.status != http.StatusOK {
				t.Fatalf("execute %s = %d %s, want 200", tt.body, resp.status, resp.body)
			}
			mu.Lock()
			req := got
			mu.Unlock()
			if !reflect.DeepEqual(req, tt.want) {
				t.Errorf("execute %s reached the provider as %+v, want %+v", tt.body, req, tt.want)
			}
			res := decode[map[string]any](t, resp)
			want := map[string]any{
				"stdout": "out", "stderr": "err", "exit_code": 0.0, "error": nil, "error_traceback": nil,
				"return_value": "2", "timed_out": false, "oom_killed": false, "duration_ms": 1.5, "truncated": false,
				"success": true, "execution_time": 0.0015, "stdout_truncated": false, "stderr_truncated": false, "warning": "Executed in mock mode - no isolation!",
			}
			if !reflect.DeepEqual(res, want) {
				t.Errorf("execute %s = %v, want %v", tt.body, res, want)
			}
		})
	}
}

func TestExecuteInvalid(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	id := ts.create(t, nil)
	tests := []struct {
		name, body string
		want       []string
	}{
		{"unknown field", `{"code":"x","cmd":"y"}`, []string{`"cmd"`}},
		{"unknown language", `{"language":"ruby","code":"x"}`, []string{"ruby"}},
		{"python without code", `{"language":"python"}`, []string{"code"}},
		{"python with command", `{"language":"python","code":"x","command":["ls"]}`, []string{"command"}},
		{"python with workdir", `{"code":"x","workdir":"/tmp"}`, []string{"workdir"}},
		{"shell with both", `{"language":"shell","code":"ls","command":["ls"]}`, []string{"not both"}},
		{"shell with neither", `{"language":"shell"}`, []string{"command"}},
		{"shell with empty argv0", `{"language":"shell","command":[""]}`, []string{"command[0]"}},
		{"timeout zero", `{"code":"x","timeout":0}`, []string{"timeout"}},
		{"timeout negative", `{"code":"x","timeout":-1}`, []string{"timeout"}},
		{"timeout too long", `{"code":"x","timeout":3600.5}`, []string{"timeout"}},
		{"timeout a string", `{"code":"x","timeout":"10"}`, []string{"timeout"}},
		{"command a string", `{"language":"shell","command":"ls"}`, []string{"command", "array"}},
		{"every problem", `{"language":"shell","timeout":0}`, []string{"command", "timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", tt.body)
			e := wantError(t, "execute "+tt.body, resp, http.StatusBadRequest, "invalid")
			for _, w := range tt.want {
				if !strings.Contains(e.Error.Message, w) {
					t.Errorf("execute %s message = %q, want it to mention %q", tt.body, e.Error.Message, w)
				}
			}
		})
	}
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name, data string
}

// readEvent reads the next event, skipping comments.
func readEvent(t *testing.T, r *bufio.Reader) (sseEvent, error) {
	t.Helper()
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			if ev.name != "" || ev.data != "" {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected event-stream line %q", line)
		}
	}
}

func TestExecuteStream(t *testing.T) {
	t.Parallel()
	proceed := make(chan struct{})
	fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		req.OnOutput(sandbox.Stdout, []byte("hello\n"))
		// The test reads the first event before the execution goes on:
		// output is streamed as it comes, not buffered until the end.
		select {
		case <-proceed:
		case <-ctx.Done():
			return sandbox.ExecResult{}, ctx.Err()
		}
		req.OnOutput(sandbox.Stderr, []byte("oops"))
		req.OnOutput(sandbox.Stdout, []byte{0xc3}) // "é" split across two chunks
		req.OnOutput(sandbox.Stdout, []byte{0xa9, '"', '\n'})
		return sandbox.ExecResult{Stdout: []byte("hello\né\"\n"), Stderr: []byte("oops"), ExitCode: 0}, nil
	}}
	ts := newServer(t, setup{fake: fake})
	id := ts.create(t, nil)

	req := ts.request(t, "POST", "/sandbox/"+string(id)+"/execute", `{"code":"print('hello')"}`, "Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("streamed execute = %d, want 200", resp.StatusCode)
	}
	for h, want := range map[string]string{
		"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("streamed execute %s = %q, want %q", h, got, want)
		}
	}
	if resp.Header.Get("X-Request-ID") == "" {
		t.Errorf("streamed execute has no X-Request-ID")
	}
	r := bufio.NewReader(resp.Body)
	first, err := readEvent(t, r)
	if err != nil {
		t.Fatalf("reading the first event: %v", err)
	}
	if want := (sseEvent{"stdout", `{"text":"hello\n"}`}); first != want {
		t.Errorf("first event = %+v, want %+v", first, want)
	}
	close(proceed)
	var events []sseEvent
	for {
		ev, err := readEvent(t, r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if len(events) != 3 {
		t.Fatalf("events after the first = %+v, want stderr, stdout, result", events)
	}
	want := []sseEvent{{"stderr", `{"text":"oops"}`}, {"stdout", `{"text":"é\"\n"}`}}
	if !reflect.DeepEqual(events[:2], want) {
		t.Errorf("output events = %+v, want %+v", events[:2], want)
	}
	if events[2].name != "result" {
		t.Fatalf("last event = %+v, want the result", events[2])
	}
	var res api.ExecResult
	if err := json.Unmarshal([]byte(events[2].data), &res); err != nil {
		t.Fatalf("result event data %s: %v", events[2].data, err)
	}
	if res.Stdout != "hello\né\"\n" || res.Stderr != "oops" {
		t.Errorf("result = %+v, want the whole output", res)
	}
}

func TestExecuteStreamErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		exec       func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error)
		unknown    bool
		wantStatus int
		wantCode   string
		wantEvents []string
	}{
		{name: "unknown sandbox", unknown: true, wantStatus: 404, wantCode: "not_found"},
		{
			name: "refused before output",
			exec: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
				return sandbox.ExecResult{}, &policy.PolicyError{Rule: "r", Reason: "why"}
			},
			wantStatus: 403, wantCode: "denied",
		},
		{
			name: "failed after output",
			exec: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
				req.OnOutput(sandbox.Stdout, []byte("partial"))
				return sandbox.ExecResult{}, fmt.Errorf("agent died: %w", sandbox.ErrUnavailable)
			},
			wantStatus: 200, wantEvents: []string{"stdout", "error"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, setup{fake: &sandboxtest.Fake{ExecFunc: tt.exec}})
			id := sandbox.ID("sb-0000000000000000")
			if !tt.unknown {
				id = ts.create(t, nil)
			}
			resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"code":"x"}`, "Accept", "application/json, text/event-stream")
			if tt.wantCode != "" {
				wantError(t, "streamed execute", resp, tt.wantStatus, tt.wantCode)
				return
			}
			if resp.status != tt.wantStatus {
				t.Fatalf("streamed execute = %d, want %d", resp.status, tt.wantStatus)
			}
			r := bufio.NewReader(strings.NewReader(string(resp.body)))
			var names []string
			var last sseEvent
			for {
				ev, err := readEvent(t, r)
				if err != nil {
					break
				}
				names = append(names, ev.name)
				last = ev
			}
			if !reflect.DeepEqual(names, tt.wantEvents) {
				t.Errorf("events = %v, want %v", names, tt.wantEvents)
			}
			var e errorJSON
			if err := json.Unmarshal([]byte(last.data), &e); err != nil || e.Error.Code != "unavailable" {
				t.Errorf("error event data = %s, want an unavailable error", last.data)
			}
		})
	}
}

// A client that goes away cancels its execution in the sandbox, streamed
// or not.
func TestExecuteCancelledByClient(t *testing.T) {
	t.Parallel()
	for _, accept := range []string{"application/json", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			t.Parallel()
			started, cancelled := make(chan struct{}), make(chan struct{})
			fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
				if req.OnOutput != nil {
					req.OnOutput(sandbox.Stdout, []byte("working"))
				}
				close(started)
				select {
				case <-ctx.Done():
					close(cancelled)
					return sandbox.ExecResult{TimedOut: true}, ctx.Err()
				case <-time.After(30 * time.Second):
					return sandbox.ExecResult{}, nil
				}
			}}
			ts := newServer(t, setup{fake: fake})
			id := ts.create(t, nil)
			ctx, cancel := context.WithCancel(t.Context())
			req := ts.request(t, "POST", "/sandbox/"+string(id)+"/execute", `{"code":"while True: pass"}`, "Accept", accept).WithContext(ctx)
			done := make(chan struct{})
			go func() {
				defer close(done)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}()
			select {
			case <-started:
			case <-time.After(10 * time.Second):
				t.Fatal("the execution did not start")
			}
			cancel()
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the execution was not cancelled 10s after its client went away")
			}
			<-done
		})
	}
}

// TestTinyTimeout: a positive timeout too small to count in nanoseconds is
// a millisecond, not zero (which would mean the sandbox's default).
func TestTinyTimeout(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	ts := newServer(t, setup{fake: &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		got.Store(int64(req.Timeout))
		return sandbox.ExecResult{}, nil
	}}})
	id := ts.create(t, nil)
	resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"language":"python","code":"1","timeout":1e-12}`)
	if resp.status != 200 || time.Duration(got.Load()) != time.Millisecond {
		t.Fatalf("status %d, timeout %s; want 200 and 1ms", resp.status, time.Duration(got.Load()))
	}
}

// TestExecuteCompat covers the forms clients of the systems Warden
// replaces send: the Agent Platform's query parameters, and TinyAgent's
// argv with shell operators as separate tokens.
func TestExecuteCompat(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got sandbox.ExecRequest
	fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		mu.Lock()
		got = req
		got.OnOutput = nil
		mu.Unlock()
		return sandbox.ExecResult{Stdout: []byte("ok\n"), Duration: 250 * time.Millisecond}, nil
	}}
	ts := newServer(t, setup{fake: fake})
	id := string(ts.create(t, nil))
	for _, tt := range []struct {
		name  string
		query string
		body  any
		want  sandbox.ExecRequest
	}{
		{"query form", "?code=print(%22hi%22)&language=python", nil, sandbox.ExecRequest{Language: sandbox.Python, Code: `print("hi")`}},
		{"query form, python by default", "?code=x%2B1&timeout=2.5", nil, sandbox.ExecRequest{Language: sandbox.Python, Code: "x+1", Timeout: 2500 * time.Millisecond}},
		{"query form, argv", "?language=shell&command=ls&command=-l", nil, sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"ls", "-l"}}},
		{"shell operators", "", `{"language":"shell","command":["echo","hello world","|","wc","-w"],"shell_operators":true}`,
			sandbox.ExecRequest{Language: sandbox.Shell, Code: "echo 'hello world' | wc -w"}},
		{"shell operators, none there", "", `{"language":"shell","command":["echo","a|b"],"shell_operators":true}`,
			sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"echo", "a|b"}}},
		{"no shell operators: the argv as it is", "", `{"language":"shell","command":["echo","hello world","|","wc","-w"]}`,
			sandbox.ExecRequest{Language: sandbox.Shell, Argv: []string{"echo", "hello world", "|", "wc", "-w"}}},
	} {
		resp := ts.do(t, "POST", "/sandbox/"+id+"/execute"+tt.query, tt.body)
		if resp.status != http.StatusOK {
			t.Fatalf("%s: %d %s", tt.name, resp.status, resp.body)
		}
		mu.Lock()
		req := got
		mu.Unlock()
		if !reflect.DeepEqual(req, tt.want) {
			t.Errorf("%s reached the provider as %+v, want %+v", tt.name, req, tt.want)
		}
		res := decode[map[string]any](t, resp)
		if res["success"] != true || res["execution_time"] != 0.25 || res["exit_code"] != 0.0 {
			t.Errorf("%s: result %v, want success and execution_time", tt.name, res)
		}
	}

	for _, tt := range []struct {
		name, query string
		body        any
		want        string
	}{
		{"query and body", "?code=x", `{"code":"y"}`, "both"},
		{"unknown query parameter", "?code=x&lang=python", nil, `"lang"`},
		{"repeated code", "?code=x&code=y", nil, "2 times"},
		{"bad timeout", "?code=x&timeout=soon", nil, "timeout"},
		{"no body, no query", "", nil, "JSON body"},
		{"shell operators with python", "", `{"code":"x","shell_operators":true}`, "shell_operators"},
		{"shell operators with a command line", "", `{"language":"shell","code":"ls | wc","shell_operators":true}`, "shell_operators"},
	} {
		resp := ts.do(t, "POST", "/sandbox/"+id+"/execute"+tt.query, tt.body)
		e := wantError(t, tt.name, resp, http.StatusBadRequest, "invalid")
		if !strings.Contains(e.Error.Message, tt.want) {
			t.Errorf("%s: message %q, want it to mention %q", tt.name, e.Error.Message, tt.want)
		}
	}
}

// TestExecuteStreamDisplay: a rich output made during an execution is a
// "display" event, between the output printed before and after it, and
// the result carries it again; the Go client hands it to OnDisplay.
func TestExecuteStreamDisplay(t *testing.T) {
	t.Parallel()
	out := sandbox.Output{Type: sandbox.OutputDisplay, Data: map[string]string{"text/plain": "df", "text/html": "<table></table>"}}
	fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		req.OnOutput(sandbox.Stdout, []byte("before\n"))
		req.OnDisplay(out)
		req.OnOutput(sandbox.Stdout, []byte("after\n"))
		return sandbox.ExecResult{Stdout: []byte("before\nafter\n"), Outputs: []sandbox.Output{out}}, nil
	}}
	ts := newServer(t, setup{fake: fake})
	id := ts.create(t, nil)
	var order []string
	res, err := ts.client(t).Execute(t.Context(), string(id), client.ExecuteOptions{Code: "x",
		OnOutput:  func(s api.Stream, p []byte) { order = append(order, string(p)) },
		OnDisplay: func(o api.Output) { order = append(order, o.Type+":"+o.Data["text/html"]) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"before\n", "display:<table></table>", "after\n"}; !reflect.DeepEqual(order, want) {
		t.Errorf("streamed %q, want %q", order, want)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Data["text/plain"] != "df" {
		t.Errorf("result outputs = %+v", res.Outputs)
	}
}
