package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/wire"
)

// execRequestOf checks the request, reporting every problem at once.
func execRequestOf(e api.ExecuteRequest) (sandbox.ExecRequest, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, sandbox.ErrInvalid)...))
	}
	req := sandbox.ExecRequest{Language: sandbox.Language(e.Language), Argv: e.Command, Workdir: e.Workdir}
	if req.Language == "" {
		req.Language = sandbox.Python
	}
	if e.Code != nil {
		req.Code = *e.Code
	}
	switch req.Language {
	case sandbox.Python:
		if e.Code == nil {
			bad("python execution needs code")
		}
		if e.Command != nil {
			bad("python execution takes code, not command")
		}
		if e.ShellOperators {
			bad("shell_operators applies to a shell command")
		}
		if e.Workdir != "" {
			bad("workdir applies to shell executions; in Python use os.chdir")
		}
	case sandbox.Shell:
		hasCode, hasCommand := req.Code != "", len(e.Command) > 0
		switch {
		case hasCode && hasCommand:
			bad("shell execution takes either code or command, not both")
		case !hasCode && !hasCommand:
			bad("shell execution needs code (a command string) or command (an argv)")
		case hasCommand && e.Command[0] == "":
			bad("command[0] is empty")
		case hasCommand && e.ShellOperators:
			if line, ok := shellLine(e.Command); ok {
				req.Code, req.Argv = line, nil
			}
		case e.ShellOperators:
			bad("shell_operators applies to command, an argv; code is already a shell command line")
		}
	default:
		bad("language %q is not python or shell", req.Language)
	}
	if e.Timeout != nil {
		t := *e.Timeout
		if math.IsNaN(t) || !(t > 0 && t <= maxTimeoutSeconds) {
			bad("timeout %g s is outside (0, %d]", t, maxTimeoutSeconds)
		} else {
			req.Timeout = seconds(t)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return req, err
	}
	return req, req.Validate()
}

func (s *Server) execute(w http.ResponseWriter, r *http.Request) error {
	body, err := parseExecute(r)
	if err != nil {
		return err
	}
	req, err := execRequestOf(body)
	if err != nil {
		return err
	}
	// Executions of one sandbox are serialised by the provider
	// (sandbox.Provider's contract, checked by this package's tests).
	s.extendWriteDeadline(w, req)
	id := sandboxID(r)
	if wantsEventStream(r) {
		return s.executeStream(w, r, req, func(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
			return s.mgr.Exec(ctx, id, req)
		})
	}
	// The request's context cancels the execution when the client goes.
	res, err := s.mgr.Exec(r.Context(), id, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wire.ExecResult(res))
}

// parseExecute reads an execute request from the JSON body or, as the
// Agent Platform's API took it, from the query string (code, language,
// timeout, workdir; command as repeated parameters); not from both.
func parseExecute(r *http.Request) (api.ExecuteRequest, error) {
	var req api.ExecuteRequest
	found, err := decodeJSON(r, &req, true)
	if err != nil {
		return req, err
	}
	switch {
	case len(r.URL.RawQuery) == 0 && !found:
		return req, fmt.Errorf("execute needs a JSON body (or query parameters) with code: %w", sandbox.ErrInvalid)
	case len(r.URL.RawQuery) == 0:
		return req, nil
	case found:
		return req, fmt.Errorf("the execution is given both as query parameters and as a JSON body; use one: %w", sandbox.ErrInvalid)
	}
	return parseExecuteQuery(r.URL.Query())
}

func parseExecuteQuery(q url.Values) (api.ExecuteRequest, error) {
	var req api.ExecuteRequest
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, sandbox.ErrInvalid)...))
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		vals := q[name]
		if name == "command" {
			req.Command = vals
			continue
		}
		if len(vals) != 1 {
			bad("query parameter %s is given %d times", name, len(vals))
			continue
		}
		v := vals[0]
		switch name {
		case "code":
			req.Code = &v
		case "language":
			req.Language = api.Language(v)
		case "workdir":
			req.Workdir = v
		case "timeout":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				bad("query parameter timeout=%q is not a number", v)
				continue
			}
			req.Timeout = &f
		case "shell_operators":
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad("query parameter shell_operators=%q is not a boolean", v)
				continue
			}
			req.ShellOperators = b
		default:
			bad("unknown query parameter %q", name)
		}
	}
	return req, errors.Join(errs...)
}

// extendWriteDeadline lets the answer outlive the server's WriteTimeout,
// which is sized for ordinary requests, by as long as the execution may
// run, plus a margin for its result; but not indefinitely, so a client
// that stops reading cannot hold the handler forever.
func (s *Server) extendWriteDeadline(w http.ResponseWriter, req sandbox.ExecRequest) {
	timeout := req.Timeout
	if timeout == 0 {
		timeout = maxTimeoutSeconds * time.Second
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + time.Minute)) // unsupported: nothing to extend
}

// wantsEventStream reports whether the client accepts text/event-stream.
func wantsEventStream(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err == nil && mt == "text/event-stream" {
				return true
			}
		}
	}
	return false
}

// executeStream runs an execution with exec (in a sandbox, or a one-shot
// run) and streams its output as server-sent events: "stdout" and
// "stderr" events with {"text": ...} as output arrives, "display" events
// with each rich output (an api.Output), then one "result" event with the
// ExecResult. The response begins with the first event, so an execution
// refused before any output (unknown sandbox, policy, limits) still gets
// its status and JSON error; an error after that is sent as an "error"
// event with the error body.
func (s *Server) executeStream(w http.ResponseWriter, r *http.Request, req sandbox.ExecRequest,
	exec func(context.Context, sandbox.ExecRequest) (sandbox.ExecResult, error)) error {
	st := &eventStream{w: w, rc: http.NewResponseController(w)}
	req.OnOutput = st.output
	req.OnDisplay = st.display

	// Comments keep proxies and clients from timing out a silent run.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.keepalive)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				st.comment("keepalive")
			}
		}
	})
	res, err := exec(r.Context(), req)
	close(stop)
	wg.Wait()

	st.mu.Lock()
	defer st.mu.Unlock()
	st.flushTails()
	if err != nil {
		if !st.started {
			st.closed = true
			return err
		}
		if r.Context().Err() != nil { // nobody to tell
			if rec, ok := w.(*recorder); ok {
				rec.clientGone = true
			}
		} else {
			_, body := s.bodyFor(r, err)
			st.event("error", api.ErrorResponse{Error: body})
		}
	} else {
		st.event("result", wire.ExecResult(res))
	}
	st.closed = true // output reported late must not touch a finished response
	return nil
}

// eventStream writes server-sent events. Its methods are safe for
// concurrent use: output arrives from the provider's goroutine, keepalive
// comments from a ticker.
type eventStream struct {
	w  http.ResponseWriter
	rc *http.ResponseController

	mu      sync.Mutex
	started bool
	closed  bool
	// tails hold the incomplete UTF-8 sequence that ended the last chunk
	// of each stream, so no character is split across two events.
	tails map[sandbox.Stream][]byte
}

func (e *eventStream) output(stream sandbox.Stream, p []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	if e.tails == nil {
		e.tails = map[sandbox.Stream][]byte{}
	}
	buf := append(e.tails[stream], p...)
	cut := completeUTF8(buf)
	e.tails[stream] = append([]byte(nil), buf[cut:]...)
	if cut > 0 {
		e.event(string(stream), api.OutputEvent{Text: string(buf[:cut])})
	}
}

// display sends a rich output as a "display" event, after the output
// printed before it.
func (e *eventStream) display(o sandbox.Output) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.flushTails()
	e.event("display", wire.Output(o))
}

// flushTails sends what is left of split characters (as U+FFFD).
// e.mu is held.
func (e *eventStream) flushTails() {
	for _, stream := range []sandbox.Stream{sandbox.Stdout, sandbox.Stderr} {
		if t := e.tails[stream]; len(t) > 0 && !e.closed {
			e.event(string(stream), api.OutputEvent{Text: string(t)})
		}
	}
	e.tails = nil
}

func (e *eventStream) comment(text string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.begin()
	_, _ = fmt.Fprintf(e.w, ": %s\n\n", text)
	_ = e.rc.Flush()
}

// event writes one event and flushes it. e.mu is held. Write errors mean
// the client went away; its request context then cancels the execution.
func (e *eventStream) event(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
		name = "error"
	}
	e.begin()
	_, _ = fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", name, data)
	_ = e.rc.Flush()
}

// begin sends the response header once. e.mu is held.
func (e *eventStream) begin() {
	if e.started {
		return
	}
	e.started = true
	h := e.w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	e.w.WriteHeader(http.StatusOK)
}

// completeUTF8 returns the length of p without an incomplete UTF-8
// sequence at its end.
func completeUTF8(p []byte) int {
	// A sequence is at most utf8.UTFMax bytes: look at the last few for
	// the start of the final one.
	for i := len(p) - 1; i >= 0 && i >= len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return len(p)
			}
			return i
		}
	}
	return len(p)
}
