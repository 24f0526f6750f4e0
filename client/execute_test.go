package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// chunk is one call of OnOutput.
type chunk struct {
	S api.Stream
	P string
}

// collect returns an OnOutput that records its calls, and the record.
func collect() (func(api.Stream, []byte), *[]chunk) {
	var got []chunk
	return func(s api.Stream, p []byte) { got = append(got, chunk{s, string(p)}) }, &got
}

// stream answers an execution with the event stream text, written in
// pieces of the given size (0: at once), each flushed as its own write.
func stream(t *testing.T, text string, piece int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Accept"); got != "text/event-stream" {
			t.Errorf("Accept = %q, want text/event-stream", got)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(200)
		if piece == 0 {
			piece = len(text)
		}
		for len(text) > 0 {
			n := min(piece, len(text))
			_, _ = io.WriteString(w, text[:n])
			w.(http.Flusher).Flush()
			text = text[n:]
		}
	}
}

// streamText exercises what a server may legitimately send: comments and
// keep-alives, an event type the client does not know, CRLF line ends, and
// a result spread over several data lines.
const streamText = ": ping\n\n" +
	"event: stdout\ndata: {\"text\":\"hel\"}\n\n" +
	"event: stderr\r\ndata: {\"text\":\"warn\\n\"}\r\n\r\n" +
	": keep-alive\n" +
	"event: progress\ndata: {\"pct\":50}\n\n" +
	"event: stdout\ndata:{\"text\":\"lo\\n\"}\n\n" +
	"event: result\n" +
	"data: {\"stdout\":\"hello\\n\",\"stderr\":\"warn\\n\",\n" +
	"data:  \"exit_code\":3,\"error\":null,\"timed_out\":false,\n" +
	"data: \"oom_killed\":false,\"duration_ms\":7}\n\n" +
	"event: stdout\ndata: {\"text\":\"after the result: ignored\"}\n\n"

func TestExecuteStream(t *testing.T) {
	t.Parallel()
	want := api.ExecResult{Stdout: "hello\n", Stderr: "warn\n", ExitCode: 3, DurationMS: 7}
	wantChunks := []chunk{{api.Stdout, "hel"}, {api.Stderr, "warn\n"}, {api.Stdout, "lo\n"}}
	for _, piece := range []int{0, 1, 2, 3, 7} {
		c, reqs := newClient(t, stream(t, streamText, piece))
		on, got := collect()
		res, err := c.Execute(t.Context(), "sb-1", client.ExecuteOptions{Language: api.Shell, Code: "echo hello", OnOutput: on})
		if err != nil {
			t.Fatalf("Execute() in pieces of %d = %v", piece, err)
		}
		if !reflect.DeepEqual(res, want) {
			t.Errorf("Execute() in pieces of %d = %+v, want %+v", piece, res, want)
		}
		if !reflect.DeepEqual(*got, wantChunks) {
			t.Errorf("OnOutput calls in pieces of %d = %q, want %q", piece, *got, wantChunks)
		}
		if r := <-reqs; r.header.Get("Content-Type") != "application/json" || string(r.body) != `{"language":"shell","code":"echo hello"}` {
			t.Errorf("request = %s %q", r.header.Get("Content-Type"), r.body)
		}
	}
}

// TestExecuteStreamIsIncremental checks that output reaches OnOutput while
// the execution still runs: the server sends the result only after the
// client has seen the first chunk.
func TestExecuteStreamIsIncremental(t *testing.T) {
	t.Parallel()
	seenChunk := make(chan struct{})
	c, _ := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: stdout\ndata: {\"text\":\"first\"}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-seenChunk:
		case <-time.After(10 * time.Second):
			t.Error("the client did not deliver the first chunk while the stream was open")
		}
		_, _ = io.WriteString(w, "event: result\ndata: {\"stdout\":\"first\",\"exit_code\":0}\n\n")
	})
	res, err := c.Execute(t.Context(), "sb-1", client.ExecuteOptions{Language: api.Python, Code: "print('first')",
		OnOutput: func(s api.Stream, p []byte) {
			if string(p) == "first" {
				close(seenChunk)
			}
		}})
	if err != nil || string(res.Stdout) != "first" {
		t.Errorf("Execute() = %+v, %v", res, err)
	}
}

func TestExecuteStreamFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		text  string
		is    error  // the error must match this
		class error  // and this class, if set
		msg   string // and contain this
	}{
		{name: "ends without a result", text: "event: stdout\ndata: {\"text\":\"x\"}\n\n",
			is: io.ErrUnexpectedEOF, msg: "without a result event"},
		{name: "empty stream", text: "", is: io.ErrUnexpectedEOF, msg: "without a result event"},
		{name: "result cut off before its blank line", text: "event: result\ndata: {\"exit_code\":0}\n",
			is: io.ErrUnexpectedEOF, msg: "without a result event"},
		{name: "bad chunk", text: "event: stdout\ndata: not json\n\n", msg: "decoding stdout event"},
		{name: "bad result", text: "event: result\ndata: {\"exit_code\":\"zero\"}\n\n", msg: "decoding result event"},
		{name: "error event", text: "event: error\ndata: {\"error\":{\"code\":\"not_found\",\"message\":\"sandbox sb-1: not found\"}}\n\n",
			class: client.ErrNotFound, msg: "HTTP 404 not_found: sandbox sb-1: not found"},
		{name: "error event, bare object", text: "event: error\ndata: {\"code\":\"unavailable\",\"message\":\"backend gone\"}\n\n",
			class: client.ErrUnavailable, msg: "backend gone"},
		{name: "error event, unknown code", text: "event: error\ndata: {\"error\":{\"code\":\"internal\",\"message\":\"internal error\"}}\n\n",
			msg: "HTTP 500 internal: internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newClient(t, stream(t, tt.text, 0))
			on, _ := collect()
			_, err := c.Execute(t.Context(), "sb-1", client.ExecuteOptions{Language: api.Python, Code: "1", OnOutput: on})
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Execute() = %v, want an error containing %q", err, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Execute() = %v, want it to match %v", err, tt.is)
			}
			if tt.class != nil && !errors.Is(err, tt.class) {
				t.Errorf("Execute() = %v, want it to match %v", err, tt.class)
			}
		})
	}
}

// TestExecuteStreamFillsOutput checks a result that leaves out the output
// already streamed: the chunks fill it in.
func TestExecuteStreamFillsOutput(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, stream(t, "event: stdout\ndata: {\"text\":\"a\"}\n\nevent: stdout\ndata: {\"text\":\"b\"}\n\n"+
		"event: stderr\ndata: {\"text\":\"e\"}\n\nevent: result\ndata: {\"stdout\":\"\",\"exit_code\":0}\n\n", 0))
	res, err := c.Execute(t.Context(), "sb-1", client.ExecuteOptions{Language: api.Python, Code: "1", OnOutput: func(api.Stream, []byte) {}})
	if err != nil || string(res.Stdout) != "ab" || string(res.Stderr) != "e" {
		t.Errorf("Execute() = stdout %q, stderr %q, %v; want ab, e, nil", res.Stdout, res.Stderr, err)
	}
}

// TestExecuteStreamPlainJSONAnswer checks a server that ignores Accept:
// OnOutput still sees the output.
func TestExecuteStreamPlainJSONAnswer(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, reply(200, `{"stdout":"out","stderr":"err","exit_code":0}`))
	on, got := collect()
	res, err := c.Execute(t.Context(), "sb-1", client.ExecuteOptions{Language: api.Python, Code: "1", OnOutput: on})
	if err != nil || string(res.Stdout) != "out" {
		t.Fatalf("Execute() = %+v, %v", res, err)
	}
	if want := []chunk{{api.Stdout, "out"}, {api.Stderr, "err"}}; !reflect.DeepEqual(*got, want) {
		t.Errorf("OnOutput calls = %q, want %q", *got, want)
	}
}

// TestExecuteStreamCancel cancels the context while the stream is open and
// the server is silent: Execute returns at once with context.Canceled, and
// the server sees its request end.
func TestExecuteStreamCancel(t *testing.T) {
	t.Parallel()
	serverDone := make(chan struct{})
	c, _ := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		defer close(serverDone)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: stdout\ndata: {\"text\":\"working\"}\n\n: ping\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
			t.Error("the request was not cancelled")
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	start := time.Now()
	_, err := c.Execute(ctx, "sb-1", client.ExecuteOptions{Language: api.Python, Code: "while True: pass",
		OnOutput: func(s api.Stream, p []byte) { cancel() }})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Execute() = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Execute() returned %v after the cancellation", d)
	}
	<-serverDone
}

// TestExecuteStreamReturnsAtResult checks that Execute returns at the
// result event even if the server keeps the stream open after it.
func TestExecuteStreamReturnsAtResult(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "event: result\ndata: {\"exit_code\":7}\n\n: still here\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	res, err := c.Execute(ctx, "sb-1", client.ExecuteOptions{Language: api.Python, Code: "1", OnOutput: func(api.Stream, []byte) {}})
	if d := time.Since(start); err != nil || res.ExitCode != 7 || d > 2*time.Second {
		t.Errorf("Execute() = %+v, %v after %v; want exit code 7 at once", res, err, d)
	}
}

// TestExecuteStreamDeadline checks that a deadline ends a silent stream.
func TestExecuteStreamDeadline(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Execute(ctx, "sb-1", client.ExecuteOptions{Language: api.Python, Code: "1", OnOutput: func(api.Stream, []byte) {}})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Execute() = %v, want context.DeadlineExceeded", err)
	}
}

// TestExecuteErrorBeforeStream checks that an error status is an APIError
// when a stream was asked for, too.
func TestExecuteErrorBeforeStream(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, reply(403, `{"error":{"code":"denied","message":"refused","rule":"rm-root","reason":"deletes /"}}`))
	_, err := c.Execute(t.Context(), "sb-1", client.ExecuteOptions{Language: api.Shell, Code: "rm -rf /", OnOutput: func(api.Stream, []byte) {}})
	var ae *client.APIError
	if !errors.Is(err, client.ErrDenied) || !errors.As(err, &ae) || ae.Rule != "rm-root" {
		t.Errorf("Execute() = %v, want a denial by rm-root", err)
	}
}
