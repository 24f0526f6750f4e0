package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Frames of a one-shot run (see oneshot in agent.py), besides the
// request (q) and the display (m) frames of a session.
const (
	kindAck       = 'a' // host → runner: a display frame was read
	kindRunResult = 'd' // runner → host: a Python execution's result
	kindRunStatus = 'x' // init → host: a wait status (the shell's, or the signal a Python run ended on); the end
)

// OneShot is the host's side of a one-shot run: the sandbox's init reads
// one request and runs it (Python in itself, a shell command in a child
// whose wait status it reports), writing the output straight into two
// pipes the host reads.
// Unlike a Session, nothing inside the sandbox supervises the run: the
// host enforces the timeout, the output limits and the frames' bounds,
// and kills the sandbox (Kill) when it must end early.
type OneShot struct {
	// Conn is the init's socket: the request goes out on it, display,
	// result and status frames come back.
	Conn io.ReadWriter
	// Stdout and Stderr are the read ends of the runner's stdout and
	// stderr, pipes (os.Pipe's: pollable). They reach end of file once
	// every process of the sandbox has closed them, at the latest when the
	// sandbox is killed.
	Stdout, Stderr *os.File
	// Kill kills every process of the sandbox; it may be called more than
	// once. It must make Conn, Stdout and Stderr reach end of file.
	Kill func()
	// OOMKills, if set, counts the out-of-memory kills in the sandbox's
	// memory cgroup (ok false when it cannot tell).
	OOMKills func() (n int64, ok bool)
	// ExitStatus, if set, waits for the sandbox's init to end and returns
	// its wait status (ok false when it cannot tell). It is asked when the
	// init ended without a result or a status frame.
	ExitStatus func() (status int, ok bool)
	// Workspace is the workspace's path inside the sandbox (shell runs
	// start there, or in req.Workdir taken under it); Env the environment
	// variables of the run; Timeout its default time limit; OutputLimit
	// each output stream's (and the rich outputs') byte limit.
	Workspace   string
	Env         map[string]string
	Timeout     time.Duration
	OutputLimit int
	// Grace bounds how long the run's end (the status frame, the pipes'
	// end of file) is waited for once the runner is done or killed. Zero
	// means 5 s.
	Grace time.Duration
}

// Run sends req and collects the run's result, as Session.Exec would give
// it for req in a new sandbox. It kills the sandbox before it returns when
// the run did not end on its own (timeout, ctx, a protocol violation);
// the caller removes the sandbox afterwards in any case.
func (o *OneShot) Run(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if err := CheckRequest(req); err != nil {
		return sandbox.ExecResult{}, err
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = o.Timeout
	}
	grace := o.Grace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	env := o.Env
	if env == nil {
		env = map[string]string{}
	}
	payload, err := json.Marshal(newRequest(req, timeout, env, o.OutputLimit, o.Workspace))
	if err != nil {
		return sandbox.ExecResult{}, fmt.Errorf("encoding request: %w", err)
	}
	if err := ctx.Err(); err != nil {
		o.Kill()
		return sandbox.ExecResult{}, fmt.Errorf("execution cancelled: %w", err)
	}
	// Readers: two pipes and the frames, each in a goroutine of its own;
	// this one makes the callbacks, in order.
	ready := make(chan struct{}, 1)
	var pipes [2]*outPipe
	for i, s := range []struct {
		f  *os.File
		st sandbox.Stream
	}{{o.Stdout, sandbox.Stdout}, {o.Stderr, sandbox.Stderr}} {
		p, err := newOutPipe(s.f, s.st)
		if err != nil {
			o.Kill()
			return sandbox.ExecResult{}, fmt.Errorf("reading the run's %s: %w", s.st, err)
		}
		pipes[i] = p
	}
	oom0, oomOK := o.oomKills()
	start := time.Now()
	if err := writeFrame(o.Conn, kindRequest, payload); err != nil {
		o.Kill()
		return sandbox.ExecResult{}, fmt.Errorf("sending the run to the sandbox: %w", err)
	}

	quit := make(chan struct{})
	defer close(quit)
	for _, p := range pipes {
		go p.run(ready, quit)
	}
	type framed struct {
		f   frame
		err error
	}
	frames := make(chan framed, 4)
	go func() {
		for {
			f, err := readRunFrame(o.Conn)
			select {
			case frames <- framed{f, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()

	limit := o.OutputLimit
	out := &capBuffer{limit: limit}
	errb := &capBuffer{limit: limit}
	outs := &outputList{limit: limit, python: req.Language == sandbox.Python}
	var (
		result            *wireResult
		status            *int   // the runner's wait status, once known
		ended             bool   // the status frame came, or the sandbox is gone
		why               string // a protocol violation, the sandbox's death
		timedOut, ctxDone bool
		ctxErr            error
		open              = 2 // pipes not yet at end of file
	)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var endWait <-chan time.Time // after the end: how long the pipes may take
	done := ctx.Done()
	use := func(p *outPipe, get func() ([]byte, bool)) {
		b, eof := get()
		buf := out
		if p.stream == sandbox.Stderr {
			buf = errb
		}
		if kept := buf.write(b); len(kept) > 0 && req.OnOutput != nil {
			req.OnOutput(p.stream, kept)
		}
		if eof && !p.ended {
			p.ended = true
			open--
		}
	}
	kill := func() {
		o.Kill()
		if endWait == nil {
			endWait = time.After(grace)
		}
	}
	for !ended || open > 0 {
		select {
		case <-ready:
			for _, p := range pipes {
				use(p, p.take)
			}
		case fr := <-frames:
			if fr.err != nil {
				if !ended && why == "" {
					switch {
					case errors.Is(fr.err, errProtocol):
						why = "the sandbox broke the protocol (" + fr.err.Error() + ")"
					case result != nil:
						// The result, then the runner's end: done.
					default:
						// The init ended without a result or a status:
						// os._exit, a crash, a kill. How, its pidfd says.
						if st, ok := o.exitStatus(); ok {
							status = &st
						} else {
							why = "the sandbox's init died during the execution (killed, or out of memory)"
						}
					}
				}
				ended = true
				kill()
				continue
			}
			switch fr.f.kind {
			case kindDisplay:
				// What the code printed before the display comes first.
				for _, p := range pipes {
					use(p, p.drain)
				}
				if d, ok := outs.add(fr.f.payload); ok && req.OnDisplay != nil {
					req.OnDisplay(d)
				}
				_ = writeFrame(o.Conn, kindAck, nil)
			case kindRunResult:
				var wr wireResult
				if result != nil || json.Unmarshal(fr.f.payload, &wr) != nil {
					why = "the code wrote garbage into the run's control channel"
					ended = true
					kill()
					continue
				}
				result = &wr
			case kindRunStatus:
				var st struct {
					Status *int `json:"status"`
				}
				if json.Unmarshal(fr.f.payload, &st) != nil {
					why = "the sandbox's init sent an undecodable status"
					kill()
				}
				status = st.Status
				ended = true
				if endWait == nil {
					endWait = time.After(grace)
				}
			}
		case <-deadline.C:
			if !ended {
				timedOut = true
				ended = true
			}
			kill()
		case <-done:
			done = nil
			if !ended {
				ctxDone = true
				ended = true
				ctxErr = fmt.Errorf("execution cancelled: %w", ctx.Err())
			}
			kill()
		case <-endWait:
			// The pipes stay open past the end: something of the sandbox
			// still holds them. Kill it; if they still do not end, give up
			// on them (the caller removes the sandbox).
			o.Kill()
			open = 0
		}
	}
	if !timedOut && !ctxDone && status == nil && why == "" && result == nil {
		why = "the sandbox's init ended without a status"
	}
	feed := func(msg string) {
		if kept := errb.write([]byte(msg + "\n")); len(kept) > 0 && req.OnOutput != nil {
			req.OnOutput(sandbox.Stderr, kept)
		}
	}
	r := o.result(req, result, status, why, timedOut, ctxDone, timeout, oom0, oomOK, errb, feed)
	r = finish(outs, r, out, errb, start)
	return r, ctxErr
}

// result turns how the run ended into its result, as the agent's
// run_python and run_shell make theirs.
func (o *OneShot) result(req sandbox.ExecRequest, wr *wireResult, status *int, why string, timedOut, cancelled bool,
	timeout time.Duration, oom0 int64, oomOK bool, errb *capBuffer, feed func(string)) sandbox.ExecResult {
	var r sandbox.ExecResult
	ws := syscall.WaitStatus(0)
	if status != nil {
		ws = syscall.WaitStatus(*status)
	}
	if req.Language == sandbox.Shell {
		return o.shellResult(status, why, timedOut, cancelled, timeout, oom0, oomOK, func(msg string) {
			if len(errb.buf) > 0 {
				msg = "\n" + msg
			}
			feed(msg)
		})
	}
	switch {
	case timedOut:
		msg := fmt.Sprintf("Execution timed out after %s seconds", fmtSeconds(timeout))
		r = sandbox.ExecResult{ExitCode: sandbox.TimeoutExitCode, TimedOut: true,
			Error: &sandbox.ExecError{Name: "TimeoutError", Value: msg, Traceback: msg + "\n"}}
		feed(msg)
	case cancelled:
		msg := "Execution cancelled"
		r = sandbox.ExecResult{ExitCode: sandbox.TimeoutExitCode,
			Error: &sandbox.ExecError{Name: "Cancelled", Value: msg, Traceback: msg + "\n"}}
	case why != "" && wr == nil:
		if n, ok := o.oomKills(); ok && oomOK && n > oom0 {
			return oomResult(feed)
		}
		r = sandbox.ExecResult{ExitCode: 137, Error: &sandbox.ExecError{Name: "SandboxError", Value: why, Traceback: why + "\n"}}
	case wr != nil && req.Language == sandbox.Python:
		r = wr.toResult()
		// Only what a Python result may say: the rest is the host's.
		r.TimedOut, r.OOMKilled, r.Duration, r.Notes = false, false, 0, nil
		r.StdoutTruncated, r.StderrTruncated = false, false
	case status != nil && ws.Signaled():
		if n, ok := o.oomKills(); ok && oomOK && n > oom0 {
			return oomResult(feed)
		}
		r.ExitCode = 128 + int(ws.Signal())
		if req.Language == sandbox.Python {
			r.Notes = append(r.Notes, fmt.Sprintf("the interpreter was killed by signal %d", ws.Signal()))
		}
	case status != nil:
		r.ExitCode = ws.ExitStatus()
		if req.Language == sandbox.Python {
			// Only os._exit or a crash end a Python run without a result.
			r.Notes = append(r.Notes, fmt.Sprintf("the interpreter exited with code %d", r.ExitCode))
		}
	}
	return r
}

// shellResult is a shell run's result, as the agent's run_shell makes
// it: no error but the exit code, and a line on stderr for a timeout.
func (o *OneShot) shellResult(status *int, why string, timedOut, cancelled bool, timeout time.Duration, oom0 int64, oomOK bool, feed func(string)) sandbox.ExecResult {
	var r sandbox.ExecResult
	ws := syscall.WaitStatus(0)
	if status != nil {
		ws = syscall.WaitStatus(*status)
	}
	switch {
	case timedOut || cancelled:
		r.ExitCode, r.TimedOut = sandbox.TimeoutExitCode, timedOut
		msg := "Command cancelled"
		if timedOut {
			msg = fmt.Sprintf("Command timed out after %s seconds", fmtSeconds(timeout))
		}
		feed(msg)
		return r
	case status == nil:
		r.ExitCode = 137
		if why != "" {
			r.Error = &sandbox.ExecError{Name: "SandboxError", Value: why, Traceback: why + "\n"}
		}
	case ws.Signaled():
		r.ExitCode = 128 + int(ws.Signal())
	default:
		r.ExitCode = ws.ExitStatus()
	}
	if n, ok := o.oomKills(); r.ExitCode == 137 && ok && oomOK && n > oom0 {
		r.OOMKilled, r.Error = true, nil
	}
	return r
}

func oomResult(feed func(string)) sandbox.ExecResult {
	msg := "Execution killed: out of memory (memory limit reached)"
	feed(msg)
	return sandbox.ExecResult{ExitCode: 137, OOMKilled: true,
		Error: &sandbox.ExecError{Name: "MemoryError", Value: msg, Traceback: msg + "\n"}}
}

func (o *OneShot) exitStatus() (int, bool) {
	if o.ExitStatus == nil {
		return 0, false
	}
	return o.ExitStatus()
}

func (o *OneShot) oomKills() (int64, bool) {
	if o.OOMKills == nil {
		return 0, false
	}
	return o.OOMKills()
}

// readRunFrame reads one frame of a one-shot run, refusing unknown kinds
// and oversized payloads before allocating them.
func readRunFrame(r io.Reader) (frame, error) {
	return readFrameOf(r, func(kind byte) uint32 {
		switch kind {
		case kindDisplay:
			return maxDisplayFrame
		case kindRunResult:
			return maxControlFrame
		case kindRunStatus:
			return 4 << 10
		}
		return 0
	})
}
