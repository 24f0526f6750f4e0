package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/warden-sandbox/warden/api"
)

// ExecuteOptions are the fields of POST /sandbox/{id}/execute.
type ExecuteOptions struct {
	// Language is api.Python or api.Shell; empty leaves the choice
	// to the server (Python).
	Language api.Language
	// Code is the Python source, or the shell command string run with
	// bash -c. For shell, set exactly one of Code and Command. Code is sent
	// unless Command is set, so empty Python code runs nothing.
	Code string
	// Command is a shell command as an argument vector, run without a shell
	// unless ShellOperators is set.
	Command []string
	// ShellOperators runs Command as TinyAgent's execute_shell did: shell
	// operators given as separate tokens ("|", "&&", ">", ...) act as
	// operators, and every other token is passed as the word it is. See
	// [api.ExecuteRequest.ShellOperators].
	ShellOperators bool
	// Timeout bounds the execution, sent in seconds; zero means the
	// sandbox's default.
	Timeout time.Duration
	// Workdir is the working directory inside the sandbox; empty means the
	// workspace.
	Workdir string
	// OnOutput, if set, makes Execute ask for an event stream
	// (Accept: text/event-stream) and call OnOutput with each chunk of
	// output as it arrives, in order, from the goroutine that called
	// Execute. It must not retain p. Should the server answer with plain
	// JSON instead, OnOutput is called once with all of stdout and once with
	// all of stderr.
	OnOutput func(s api.Stream, p []byte)
	// OnDisplay, if set, is called with each rich output of a Python cell
	// (a figure, a display() call) as it is made, in order with OnOutput's
	// chunks; it also makes Execute ask for an event stream. The result's
	// Outputs holds them all again.
	OnDisplay func(o api.Output)
}

// Execute calls POST /sandbox/{id}/execute and returns the result. A
// non-zero exit code, a Python exception, a timeout or an out-of-memory
// kill are results, not errors.
//
// Cancelling ctx aborts the request and, while output streams, the reading
// of the stream; Execute then returns an error matching ctx.Err(). Whether
// the execution stops too is up to the server. A stream that ends without
// its result event gives an error matching [io.ErrUnexpectedEOF].
func (c *Client) Execute(ctx context.Context, id string, opts ExecuteOptions) (api.ExecResult, error) {
	p, err := sandboxPath(id, "/execute")
	if err != nil {
		return api.ExecResult{}, err
	}
	return c.execute(ctx, p, opts.request(), opts)
}

// request is the wire form of o.
func (o ExecuteOptions) request() api.ExecuteRequest {
	r := api.ExecuteRequest{
		Language:       o.Language,
		Command:        o.Command,
		ShellOperators: o.ShellOperators,
		Timeout:        seconds(o.Timeout),
		Workdir:        o.Workdir,
	}
	if o.Code != "" || len(o.Command) == 0 {
		// Empty Python code is valid: it runs nothing.
		r.Code = &o.Code
	}
	return r
}

// execute posts body to path, a route answering as execute does, and
// reads the result, streamed when opts asks for output as it comes.
func (c *Client) execute(ctx context.Context, path string, body any, opts ExecuteOptions) (api.ExecResult, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return api.ExecResult{}, fmt.Errorf("encoding POST %s request: %w", path, err)
	}
	r := request{method: http.MethodPost, path: path, body: bytes.NewReader(b), contentType: "application/json", accept: "application/json"}
	if opts.OnOutput != nil || opts.OnDisplay != nil {
		r.accept = "text/event-stream"
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return api.ExecResult{}, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		// Close without draining: whatever follows the result may never end.
		defer resp.Body.Close()
		return readResultStream(ctx, resp, opts)
	}
	defer closeBody(resp.Body)
	var res api.ExecResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return api.ExecResult{}, fmt.Errorf("decoding POST %s response: %w", path, err)
	}
	if opts.OnDisplay != nil {
		for _, o := range res.Outputs {
			opts.OnDisplay(o)
		}
	}
	if opts.OnOutput != nil {
		if res.Stdout != "" {
			opts.OnOutput(api.Stdout, []byte(res.Stdout))
		}
		if res.Stderr != "" {
			opts.OnOutput(api.Stderr, []byte(res.Stderr))
		}
	}
	return res, nil
}

// readResultStream reads the events of a streamed execution: "stdout" and
// "stderr" with data {"text":...}, then "result" with the ExecResult.
// Events of other types are ignored, except "error" (data: the error
// envelope), which ends the stream with an *APIError. If the result carries
// no output of a stream (a server may leave out what it already streamed),
// the streamed chunks fill it in.
func readResultStream(ctx context.Context, resp *http.Response, opts ExecuteOptions) (api.ExecResult, error) {
	onOutput := opts.OnOutput
	er := newEventReader(resp.Body, maxEventBytes)
	var streamed [2]bytes.Buffer // stdout, stderr
	for {
		ev, err := er.next()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return api.ExecResult{}, fmt.Errorf("reading execution output: %w", ctx.Err())
		case errors.Is(err, io.EOF):
			return api.ExecResult{}, fmt.Errorf("event stream ended without a result event: %w", io.ErrUnexpectedEOF)
		default:
			return api.ExecResult{}, fmt.Errorf("reading execution output: %w", err)
		}
		switch ev.typ {
		case "stdout", "stderr":
			var chunk api.OutputEvent
			if err := json.Unmarshal(ev.data, &chunk); err != nil {
				return api.ExecResult{}, fmt.Errorf("decoding %s event: %w", ev.typ, err)
			}
			s, i := api.Stdout, 0
			if ev.typ == "stderr" {
				s, i = api.Stderr, 1
			}
			streamed[i].WriteString(chunk.Text)
			if onOutput != nil && chunk.Text != "" {
				onOutput(s, []byte(chunk.Text))
			}
		case "display":
			var o api.Output
			if err := json.Unmarshal(ev.data, &o); err != nil {
				return api.ExecResult{}, fmt.Errorf("decoding display event: %w", err)
			}
			if opts.OnDisplay != nil {
				opts.OnDisplay(o)
			}
		case "result":
			var res api.ExecResult
			if err := json.Unmarshal(ev.data, &res); err != nil {
				return api.ExecResult{}, fmt.Errorf("decoding result event: %w", err)
			}
			if res.Stdout == "" && streamed[0].Len() > 0 {
				res.Stdout = streamed[0].String()
			}
			if res.Stderr == "" && streamed[1].Len() > 0 {
				res.Stderr = streamed[1].String()
			}
			return res, nil
		case "error":
			return api.ExecResult{}, streamError(resp, ev.data)
		}
	}
}

// streamError decodes the data of an error event: the error envelope of
// docs/api.md, or its inner object alone.
func streamError(resp *http.Response, data []byte) *APIError {
	e := &APIError{RequestID: resp.Header.Get("X-Request-ID")}
	var env errorBody
	if json.Unmarshal(data, &env) != nil || !env.fill(e) {
		var inner api.Error
		_ = json.Unmarshal(data, &inner)
		e.Code, e.Message = inner.Code, inner.Message
	}
	e.StatusCode = statusForCode(e.Code)
	if e.Message == "" {
		e.Message = "execution failed"
	}
	return e
}
