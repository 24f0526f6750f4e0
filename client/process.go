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
	"net/url"
	"strconv"
	"time"

	"github.com/warden-sandbox/warden/api"
)

// ProcessOptions describe a background process: a command that runs beside
// the sandbox's Python session, while executions and other processes run.
type ProcessOptions struct {
	// Command is an argv, run without a shell; or Code, a command line run
	// with bash -c. Set exactly one.
	Command []string
	Code    string
	// Env is added to the sandbox's environment variables for this
	// process.
	Env map[string]string
	// Workdir is the working directory, relative to the workspace; empty
	// means the workspace.
	Workdir string
	// Stdin keeps standard input open for SendInput.
	Stdin bool
	// Tag is a label of the caller's, reported back.
	Tag string
	// Timeout kills the process after that long; zero means no limit.
	Timeout time.Duration
	// OnEvent, if set, makes StartProcess follow the process: it is called
	// with every event, in order, from the goroutine that called
	// StartProcess ("start", then "stdout" and "stderr" output, then
	// "end"), and StartProcess returns when the process ends, with the
	// process as it ended. Cancelling ctx stops following; the process
	// runs on (kill it with Kill).
	OnEvent func(api.ProcessEvent)
}

// StartProcess calls POST /sandbox/{id}/processes. Without opts.OnEvent it
// returns as soon as the process runs; with it, when the process ends
// (see ProcessOptions.OnEvent). A program or working directory that does
// not exist gives an error matching [ErrInvalid]; too many processes,
// [ErrLimit]; a backend without background processes, [ErrInvalid].
func (c *Client) StartProcess(ctx context.Context, id string, opts ProcessOptions) (api.Process, error) {
	p, err := sandboxPath(id, "/processes")
	if err != nil {
		return api.Process{}, err
	}
	body := api.ProcessStart{Command: opts.Command, Code: opts.Code, EnvironmentVariables: opts.Env,
		Workdir: opts.Workdir, Stdin: opts.Stdin, Tag: opts.Tag, Timeout: seconds(opts.Timeout)}
	b, err := json.Marshal(body)
	if err != nil {
		return api.Process{}, fmt.Errorf("encoding process request: %w", err)
	}
	r := request{method: http.MethodPost, path: p, body: bytes.NewReader(b), contentType: "application/json", accept: "application/json"}
	if opts.OnEvent != nil {
		r.accept = "text/event-stream"
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return api.Process{}, err
	}
	if opts.OnEvent == nil {
		defer closeBody(resp.Body)
		var proc api.Process
		if err := json.NewDecoder(resp.Body).Decode(&proc); err != nil {
			return api.Process{}, fmt.Errorf("decoding process: %w", err)
		}
		return proc, nil
	}
	defer resp.Body.Close()
	return readProcessStream(ctx, resp, opts.OnEvent)
}

// WatchProcess calls GET /sandbox/{id}/processes/{pid}/events and calls
// onEvent with the process's events from now on ("start" with the process
// as it is, output, "end") until it ends, then returns the process as it
// ended. Cancelling ctx stops watching, not the process.
func (c *Client) WatchProcess(ctx context.Context, id string, pid int, onEvent func(api.ProcessEvent)) (api.Process, error) {
	return c.watch(ctx, id, pid, "now", onEvent)
}

// WatchProcessFromStart is WatchProcess with the process's output since
// its start first, as far as the server keeps it (the last 256 KiB or so).
func (c *Client) WatchProcessFromStart(ctx context.Context, id string, pid int, onEvent func(api.ProcessEvent)) (api.Process, error) {
	return c.watch(ctx, id, pid, "start", onEvent)
}

func (c *Client) watch(ctx context.Context, id string, pid int, from string, onEvent func(api.ProcessEvent)) (api.Process, error) {
	p, err := processPath(id, pid, "/events")
	if err != nil {
		return api.Process{}, err
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: p, query: url.Values{"from": {from}}, accept: "text/event-stream"})
	if err != nil {
		return api.Process{}, err
	}
	defer resp.Body.Close()
	if onEvent == nil {
		onEvent = func(api.ProcessEvent) {}
	}
	return readProcessStream(ctx, resp, onEvent)
}

// readProcessStream reads a process's event stream to its "end" event.
func readProcessStream(ctx context.Context, resp *http.Response, onEvent func(api.ProcessEvent)) (api.Process, error) {
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return api.Process{}, fmt.Errorf("the server answered %q, not an event stream", resp.Header.Get("Content-Type"))
	}
	er := newEventReader(resp.Body, maxEventBytes)
	for {
		ev, err := er.next()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return api.Process{}, fmt.Errorf("reading process events: %w", ctx.Err())
		case errors.Is(err, io.EOF):
			return api.Process{}, fmt.Errorf("event stream ended before the process did: %w", io.ErrUnexpectedEOF)
		default:
			return api.Process{}, fmt.Errorf("reading process events: %w", err)
		}
		switch ev.typ {
		case api.ProcessStarted, api.ProcessStdout, api.ProcessStderr, api.ProcessEnded:
			var pe api.ProcessEvent
			if err := json.Unmarshal(ev.data, &pe); err != nil {
				return api.Process{}, fmt.Errorf("decoding %s event: %w", ev.typ, err)
			}
			pe.Type = ev.typ
			onEvent(pe)
			if ev.typ == api.ProcessEnded {
				if pe.Process == nil {
					return api.Process{}, errors.New("end event without the process")
				}
				return *pe.Process, nil
			}
		case "error":
			return api.Process{}, streamError(resp, ev.data)
		}
	}
}

// Processes calls GET /sandbox/{id}/processes: the running processes and
// those that ended recently, oldest first.
func (c *Client) Processes(ctx context.Context, id string) ([]api.Process, error) {
	p, err := sandboxPath(id, "/processes")
	if err != nil {
		return nil, err
	}
	var out api.ProcessList
	if err := c.doJSON(ctx, http.MethodGet, p, nil, nil, &out); err != nil {
		return nil, err
	}
	if out.Processes == nil {
		out.Processes = []api.Process{}
	}
	return out.Processes, nil
}

// Process calls GET /sandbox/{id}/processes/{pid}.
func (c *Client) Process(ctx context.Context, id string, pid int) (api.Process, error) {
	p, err := processPath(id, pid, "")
	if err != nil {
		return api.Process{}, err
	}
	var out api.Process
	err = c.doJSON(ctx, http.MethodGet, p, nil, nil, &out)
	return out, err
}

// SendInput calls POST /sandbox/{id}/processes/{pid}/stdin: data is
// written to the process's standard input. A process started without
// Stdin, or whose stdin was closed, gives an error matching [ErrConflict].
func (c *Client) SendInput(ctx context.Context, id string, pid int, data []byte) error {
	p, err := processPath(id, pid, "/stdin")
	if err != nil {
		return err
	}
	resp, err := c.send(ctx, request{method: http.MethodPost, path: p, body: bytes.NewReader(data), contentType: "application/octet-stream"})
	if err != nil {
		return err
	}
	closeBody(resp.Body)
	return nil
}

// CloseInput calls DELETE /sandbox/{id}/processes/{pid}/stdin: the
// process's stdin is closed once what was sent is written.
func (c *Client) CloseInput(ctx context.Context, id string, pid int) error {
	p, err := processPath(id, pid, "/stdin")
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, p, nil, nil, nil)
}

// Signal calls POST /sandbox/{id}/processes/{pid}/signal with a signal's
// name ("SIGTERM", "SIGKILL", "SIGINT", ...), sent to the process's group.
// A process that has ended gives an error matching [ErrConflict].
func (c *Client) Signal(ctx context.Context, id string, pid int, sig string) error {
	p, err := processPath(id, pid, "/signal")
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodPost, p, nil, api.SignalRequest{Signal: sig}, nil)
}

// Kill calls DELETE /sandbox/{id}/processes/{pid}: SIGKILL to the
// process's group.
func (c *Client) Kill(ctx context.Context, id string, pid int) error {
	p, err := processPath(id, pid, "")
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, p, nil, nil, nil)
}

func processPath(id string, pid int, suffix string) (string, error) {
	if pid <= 0 {
		return "", fmt.Errorf("process id %d: %w", pid, ErrInvalid)
	}
	return sandboxPath(id, "/processes/"+strconv.Itoa(pid)+suffix)
}
