package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Process is the standard input and output of one running agent, as a
// provider started it. Reads return the agent's stdout (frames only: the
// provider separates the agent's stderr). Close ends the connection and,
// where the provider can, the process; it unblocks pending Reads and Writes.
type Process interface {
	io.Reader
	io.Writer
	Close() error
}

// Launcher starts agents inside one sandbox. Implementations are provided
// by each provider.
type Launcher interface {
	// Start starts a new agent process in the sandbox.
	Start(ctx context.Context) (Process, error)
	// Reset kills every process in the sandbox that an agent or sandboxed
	// code started, leaving the sandbox itself running. The session calls
	// it when the agent died or stopped answering, before starting anew.
	Reset(ctx context.Context) error
}

// Options configure a Session.
type Options struct {
	// Workspace is the workspace path inside the sandbox; relative shell
	// working directories are resolved under it.
	Workspace string
	// Timeout is the default execution timeout.
	Timeout time.Duration
	// OutputLimit caps each output stream of one execution, in bytes.
	OutputLimit int
	// Env is the initial set of environment variables.
	Env map[string]string
	// StartTimeout bounds the start of an agent up to its hello. Default 60s.
	StartTimeout time.Duration
	// Grace is how long past an execution's timeout the host waits for the
	// agent's answer before declaring it unresponsive. Default 15s.
	Grace time.Duration
}

// Hello is what an agent reports when it starts.
type Hello struct {
	Proto       int    `json:"proto"`
	PID         int    `json:"pid"`
	Python      string `json:"python"`
	Subreaper   bool   `json:"subreaper"`
	OOMCounter  bool   `json:"oom_counter"`
	Worker      int    `json:"worker"`
	WorkerError string `json:"worker_error"`
	// Compiled reports that the agent ran from bytecode a provider had
	// compiled for it (see [LoaderCommand]), not from its source.
	Compiled bool `json:"compiled"`
}

// Session is the host side of one sandbox's agent: it serialises
// executions, keeps the sandbox's environment variables, bounds output, and
// restarts the agent when it dies. It is safe for concurrent use;
// executions run one at a time in arrival order of the lock.
type Session struct {
	launcher Launcher
	opts     Options

	sem   chan struct{} // held by the running execution
	envMu sync.Mutex
	env   map[string]string

	// Guarded by sem.
	conn  *conn
	notes []string

	cur    atomic.Pointer[conn] // for Close, which does not take sem
	closed atomic.Bool

	procs procTable // background processes
}

// ErrClosed is returned by a Session after Close.
var ErrClosed = fmt.Errorf("sandbox is closed: %w", sandbox.ErrNotFound)

// NewSession returns a session that starts agents with l. No agent is
// started until Start or the first Exec.
func NewSession(l Launcher, opts Options) *Session {
	if opts.StartTimeout == 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.Grace == 0 {
		opts.Grace = 15 * time.Second
	}
	if opts.Timeout == 0 {
		opts.Timeout = sandbox.DefaultTimeout
	}
	if opts.OutputLimit == 0 {
		opts.OutputLimit = sandbox.DefaultOutputLimit
	}
	if opts.Workspace == "" {
		opts.Workspace = sandbox.DefaultWorkspacePath
	}
	return &Session{
		launcher: l,
		opts:     opts,
		sem:      make(chan struct{}, 1),
		env:      maps.Clone(opts.Env),
	}
}

// Start starts the agent now, so the first execution does not pay for it.
func (s *Session) Start(ctx context.Context) (Hello, error) {
	if err := s.lock(ctx); err != nil {
		return Hello{}, err
	}
	defer s.unlock()
	if s.conn == nil {
		if err := s.start(ctx); err != nil {
			return Hello{}, err
		}
	}
	return s.conn.hello, nil
}

func (s *Session) lock(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.closed.Load() {
		<-s.sem
		return ErrClosed
	}
	return nil
}

func (s *Session) unlock() { <-s.sem }

// Env returns a copy of the session's environment variables.
func (s *Session) Env() map[string]string {
	s.envMu.Lock()
	defer s.envMu.Unlock()
	if s.env == nil {
		return map[string]string{}
	}
	return maps.Clone(s.env)
}

// UpdateEnv applies u and returns a copy of the new set. Later executions
// see the change; a running one does not.
func (s *Session) UpdateEnv(u sandbox.EnvUpdate) (map[string]string, error) {
	var errs []error
	for k := range u.Set {
		if err := sandbox.ValidateEnvName(k); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.envMu.Lock()
	defer s.envMu.Unlock()
	if u.Replace || s.env == nil {
		s.env = map[string]string{}
	}
	for _, k := range u.Unset {
		delete(s.env, k)
	}
	maps.Copy(s.env, u.Set)
	return maps.Clone(s.env), nil
}

// Close stops the agent. A running execution returns ErrClosed.
func (s *Session) Close() error {
	s.closed.Store(true)
	if c := s.cur.Load(); c != nil {
		c.close()
	}
	return nil
}

// Checkpoint snapshots the Python session now, so a later execution that
// has to be killed restores the variables as they are at this point. The
// agent also snapshots by itself whenever the session has been idle for a
// few milliseconds, so callers rarely need this.
func (s *Session) Checkpoint(ctx context.Context) error {
	_, err := s.exec(ctx, sandbox.ExecRequest{Language: sandbox.Python}, true)
	return err
}

// request is the wire form of an execution request.
type request struct {
	Op       string            `json:"op"`
	Code     string            `json:"code,omitempty"`
	Command  string            `json:"command,omitempty"`
	Argv     []string          `json:"argv,omitempty"`
	Cwd      string            `json:"cwd,omitempty"`
	Timeout  float64           `json:"timeout"`
	Env      map[string]string `json:"env"`
	Limit    int               `json:"limit"` // per stream, and for rich outputs
	Snapshot bool              `json:"snapshot"`
	Checkpt  bool              `json:"checkpoint,omitempty"`
}

// newRequest is req's wire form, with its timeout, the environment, the
// output limit, and a shell command's working directory resolved under
// the workspace.
func newRequest(req sandbox.ExecRequest, timeout time.Duration, env map[string]string, limit int, workspace string) request {
	w := request{Op: string(req.Language), Timeout: timeout.Seconds(), Env: env, Limit: limit}
	switch {
	case req.Language == sandbox.Python:
		w.Code = req.Code
	case len(req.Argv) > 0:
		w.Argv = req.Argv
	default:
		w.Command = req.Code
	}
	if req.Language == sandbox.Shell {
		w.Cwd = resolveWorkdir(workspace, req.Workdir)
	}
	return w
}

// wireResult is the agent's answer. Every field is validated or bounded
// before it reaches an ExecResult.
type wireResult struct {
	ExitCode       int                `json:"exit_code"`
	Error          *sandbox.ExecError `json:"error"`
	ReturnValue    *string            `json:"return_value"`
	TimedOut       bool               `json:"timed_out"`
	Cancelled      bool               `json:"cancelled"`
	OOMKilled      bool               `json:"oom_killed"`
	DurationMS     float64            `json:"duration_ms"`
	StdoutDropped  int64              `json:"stdout_dropped"`
	StderrDropped  int64              `json:"stderr_dropped"`
	OutputsDropped int64              `json:"outputs_dropped"`
	Notes          []string           `json:"notes"`
	AgentError     string             `json:"agent_error"`
}

// Exec runs one execution. Cancelling ctx cancels the execution inside the
// sandbox; Exec then returns the partial result and an error wrapping
// ctx.Err().
func (s *Session) Exec(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return s.exec(ctx, req, false)
}

// CheckRequest refuses (ErrInvalid) what no agent can run: an invalid
// request, or a working directory for Python, whose session keeps one.
func CheckRequest(req sandbox.ExecRequest) error {
	if err := req.Validate(); err != nil {
		return err
	}
	if req.Language == sandbox.Python && req.Workdir != "" {
		return fmt.Errorf("workdir applies to shell executions; in Python use os.chdir: %w", sandbox.ErrInvalid)
	}
	return nil
}

func (s *Session) exec(ctx context.Context, req sandbox.ExecRequest, checkpoint bool) (sandbox.ExecResult, error) {
	if err := CheckRequest(req); err != nil {
		return sandbox.ExecResult{}, err
	}
	timeout := req.Timeout
	if timeout == 0 {
		timeout = s.opts.Timeout
	}
	if err := s.lock(ctx); err != nil {
		return sandbox.ExecResult{}, err
	}
	defer s.unlock()
	// An execution whose ctx ended while it waited for the lock (or
	// before) does not start.
	if err := ctx.Err(); err != nil {
		return sandbox.ExecResult{}, fmt.Errorf("execution cancelled: %w", err)
	}

	w := newRequest(req, timeout, s.Env(), s.opts.OutputLimit, s.opts.Workspace)
	w.Snapshot, w.Checkpt = true, checkpoint
	payload, err := json.Marshal(w)
	if err != nil {
		return sandbox.ExecResult{}, fmt.Errorf("encoding request: %w", err)
	}

	notes := s.takeNotes()
	// An agent that died while idle is restarted here; a request that
	// could not be written never ran, so it is safe to retry once.
	for attempt := 0; ; attempt++ {
		if s.conn == nil {
			if err := s.start(ctx); err != nil {
				return sandbox.ExecResult{}, err
			}
			notes = append(notes, s.takeNotes()...)
		}
		if err := s.conn.write(kindRequest, payload); err != nil {
			if attempt == 0 && !s.closed.Load() {
				s.lostAgent(ctx, "the sandbox agent had stopped; it was restarted")
				notes = append(notes, s.takeNotes()...)
				continue
			}
			return sandbox.ExecResult{}, fmt.Errorf("sending request to sandbox agent: %w", err)
		}
		break
	}
	res, err := s.await(ctx, req, timeout)
	res.Notes = append(notes, res.Notes...)
	return res, err
}

func (s *Session) await(ctx context.Context, req sandbox.ExecRequest, timeout time.Duration) (sandbox.ExecResult, error) {
	c := s.conn
	limit := s.opts.OutputLimit
	out := &capBuffer{limit: limit}
	errb := &capBuffer{limit: limit}
	outs := &outputList{limit: limit, python: req.Language == sandbox.Python}
	start := time.Now()
	backstop := time.NewTimer(timeout + s.opts.Grace)
	defer backstop.Stop()
	done := ctx.Done()
	var ctxErr error

	for {
		select {
		case f := <-c.frames:
			if f.err != nil {
				if s.closed.Load() {
					return sandbox.ExecResult{}, ErrClosed
				}
				why := "the sandbox agent died during the execution (killed, or out of memory)"
				if errors.Is(f.err, errProtocol) {
					why = "the sandbox agent broke the protocol (" + f.err.Error() + ")"
				}
				s.lostAgent(ctx, why)
				return finish(outs, sandbox.ExecResult{ExitCode: 137, Error: &sandbox.ExecError{Name: "SandboxError", Value: why, Traceback: why + "\n"}}, out, errb, start), ctxErr
			}
			switch f.kind {
			case kindStdout:
				if kept := out.write(f.payload); len(kept) > 0 && req.OnOutput != nil {
					req.OnOutput(sandbox.Stdout, kept)
				}
			case kindStderr:
				if kept := errb.write(f.payload); len(kept) > 0 && req.OnOutput != nil {
					req.OnOutput(sandbox.Stderr, kept)
				}
			case kindDisplay:
				if o, ok := outs.add(f.payload); ok && req.OnDisplay != nil {
					req.OnDisplay(o)
				}
			case kindResult:
				var wr wireResult
				if err := json.Unmarshal(f.payload, &wr); err != nil {
					s.lostAgent(ctx, "the sandbox agent sent an undecodable result")
					return sandbox.ExecResult{}, fmt.Errorf("%w: decoding result: %v", errProtocol, err)
				}
				if wr.AgentError != "" {
					return sandbox.ExecResult{}, fmt.Errorf("sandbox agent failed: %s", bound(wr.AgentError, 4096))
				}
				return finish(outs, wr.toResult(), out, errb, start), ctxErr
			default:
				s.lostAgent(ctx, "the sandbox agent sent an unexpected frame")
				return sandbox.ExecResult{}, fmt.Errorf("%w: unexpected %q frame", errProtocol, f.kind)
			}
		case <-c.quit:
			// Closed under us (Close or Destroy): there is no answer to wait for.
			return finish(outs, sandbox.ExecResult{ExitCode: 137}, out, errb, start), ErrClosed
		case <-done:
			ctxErr = fmt.Errorf("execution cancelled: %w", ctx.Err())
			done = nil
			_ = c.write(kindCancel, nil)
			backstop.Reset(s.opts.Grace)
		case <-backstop.C:
			why := fmt.Sprintf("the sandbox stopped answering %s after the execution's timeout; its processes were killed", s.opts.Grace)
			s.lostAgent(ctx, why)
			msg := fmt.Sprintf("Execution timed out after %s seconds", fmtSeconds(timeout))
			r := sandbox.ExecResult{ExitCode: sandbox.TimeoutExitCode, TimedOut: ctxErr == nil,
				Error: &sandbox.ExecError{Name: "TimeoutError", Value: msg, Traceback: msg + "\n"}}
			return finish(outs, r, out, errb, start), ctxErr
		}
	}
}

// finish bounds and completes a result.
func finish(outs *outputList, r sandbox.ExecResult, out, errb *capBuffer, start time.Time) sandbox.ExecResult {
	r.Stdout, r.Stderr = out.buf, errb.buf
	if r.Stdout == nil {
		r.Stdout = []byte{}
	}
	if r.Stderr == nil {
		r.Stderr = []byte{}
	}
	r.StdoutTruncated = r.StdoutTruncated || out.dropped
	r.StderrTruncated = r.StderrTruncated || errb.dropped
	r.Outputs = outs.list
	r.OutputsTruncated = r.OutputsTruncated || outs.dropped
	if outs.bad != "" {
		r.Notes = append(r.Notes, "a rich output the sandbox sent was malformed; it and any after it were dropped: "+outs.bad)
	}
	if r.Duration <= 0 {
		r.Duration = time.Since(start)
	}
	return r
}

func (wr wireResult) toResult() sandbox.ExecResult {
	r := sandbox.ExecResult{
		ExitCode:         wr.ExitCode,
		TimedOut:         wr.TimedOut,
		OOMKilled:        wr.OOMKilled,
		StdoutTruncated:  wr.StdoutDropped > 0,
		StderrTruncated:  wr.StderrDropped > 0,
		OutputsTruncated: wr.OutputsDropped > 0,
		Duration:         time.Duration(wr.DurationMS * float64(time.Millisecond)),
	}
	if r.ExitCode < 0 || r.ExitCode > 255 {
		r.ExitCode = 255
	}
	if wr.Error != nil {
		e := *wr.Error
		e.Name = bound(e.Name, 256)
		e.Value = bound(e.Value, 64<<10)
		e.Traceback = bound(e.Traceback, 256<<10)
		if e.Line < 0 {
			e.Line = 0
		}
		r.Error = &e
	}
	if wr.ReturnValue != nil {
		v := bound(*wr.ReturnValue, 64<<10)
		r.ReturnValue = &v
	}
	for i, n := range wr.Notes {
		if i == 16 {
			break
		}
		r.Notes = append(r.Notes, bound(n, 1024))
	}
	return r
}

// start launches an agent and waits for its hello. Called with sem held.
func (s *Session) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	p, err := s.launcher.Start(ctx)
	if err != nil {
		return fmt.Errorf("starting sandbox agent: %w", err)
	}
	c := newConn(p, &s.procs)
	select {
	case f := <-c.frames:
		if f.err != nil {
			c.close()
			if d, ok := p.(Diagnoser); ok && d.Diagnostics() != "" {
				return fmt.Errorf("starting sandbox agent: no hello (%s): %w", bound(d.Diagnostics(), 2048), f.err)
			}
			return fmt.Errorf("starting sandbox agent: no hello: %w", f.err)
		}
		if f.kind != kindHello {
			c.close()
			return fmt.Errorf("starting sandbox agent: %w: first frame is %q, not hello", errProtocol, f.kind)
		}
		if err := json.Unmarshal(f.payload, &c.hello); err != nil || c.hello.Proto != 1 {
			c.close()
			return fmt.Errorf("starting sandbox agent: %w: bad hello %.200q", errProtocol, f.payload)
		}
	case <-ctx.Done():
		c.close()
		return fmt.Errorf("starting sandbox agent: no hello within %s: %w", s.opts.StartTimeout, ctx.Err())
	}
	// Publish before checking closed, so a concurrent Close either sees
	// this agent or is seen here.
	s.cur.Store(c)
	if s.closed.Load() {
		c.close()
		return ErrClosed
	}
	s.conn = c
	return nil
}

// lostAgent drops the current agent, resets the sandbox's processes and
// records why for the next result. Called with sem held.
func (s *Session) lostAgent(ctx context.Context, why string) {
	if s.conn != nil {
		s.conn.close()
		s.conn = nil
	}
	if s.closed.Load() {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	note := why + "; the Python session was restarted and its variables were lost"
	if err := s.launcher.Reset(rctx); err != nil {
		note += fmt.Sprintf(" (resetting the sandbox's processes failed: %v)", err)
	}
	s.notes = append(s.notes, note)
}

func (s *Session) takeNotes() []string {
	n := s.notes
	s.notes = nil
	return n
}

// conn is one running agent and the goroutine reading its frames.
type conn struct {
	proc   Process
	frames chan frameOrErr
	quit   chan struct{}
	once   sync.Once
	wmu    sync.Mutex
	hello  Hello
	// procs takes the frames of background processes, which arrive at any
	// time, not only during an execution.
	procs *procTable
}

type frameOrErr struct {
	frame
	err error
}

func newConn(p Process, procs *procTable) *conn {
	c := &conn{proc: p, frames: make(chan frameOrErr, 64), quit: make(chan struct{}), procs: procs}
	go c.readLoop()
	return c
}

// readLoop is owned by the conn: it ends when the process's stdout fails,
// which close guarantees. Frames of background processes go to the
// process table; the rest to the execution waiting on frames.
func (c *conn) readLoop() {
	defer func() {
		if c.procs != nil {
			c.procs.lost(c, "the sandbox agent stopped (it died, or was restarted); its processes were killed")
		}
	}()
	for {
		f, err := readFrame(c.proc)
		if err == nil && c.procs != nil && isProcFrame(f.kind) {
			if err = c.procs.handle(c, f); err == nil {
				continue
			}
		}
		select {
		case c.frames <- frameOrErr{frame: f, err: err}:
		case <-c.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

func (c *conn) write(kind byte, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return writeFrame(c.proc, kind, payload)
}

func (c *conn) isClosed() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.quit)
		_ = c.proc.Close()
	})
}

// wireOutput is the agent's form of a rich output (a "m" frame).
type wireOutput struct {
	Type string            `json:"type"`
	Data map[string]string `json:"data"`
}

// outputList keeps the rich outputs of one execution: the agent is
// untrusted, so each is decoded and validated here, and they are bounded
// like a stream, in count and in bytes: once one is dropped (over a bound,
// or malformed) every later one is too, so the list is a prefix of what
// the code made.
type outputList struct {
	list    []sandbox.Output
	python  bool // shell executions have no rich outputs
	limit   int  // bytes, counted with Output.Size
	used    int
	results int
	dropped bool
	bad     string // why the first malformed output was refused
}

// add decodes, checks and keeps one output, reporting whether it was kept.
func (l *outputList) add(payload []byte) (sandbox.Output, bool) {
	if l.dropped {
		return sandbox.Output{}, false
	}
	var w wireOutput
	err := json.Unmarshal(payload, &w)
	o := sandbox.Output{Type: w.Type, Data: w.Data}
	if err == nil {
		err = o.Validate()
	}
	switch {
	case err != nil:
	case !l.python:
		err = errors.New("a rich output from a shell execution")
	case o.Type == sandbox.OutputResult && l.results > 0:
		err = errors.New("a second result output")
	}
	if err != nil {
		l.dropped = true
		l.bad = bound(err.Error(), 512)
		return sandbox.Output{}, false
	}
	size := o.Size()
	if len(l.list) >= sandbox.MaxOutputs || l.used+size > l.limit {
		l.dropped = true
		return sandbox.Output{}, false
	}
	l.used += size
	if o.Type == sandbox.OutputResult {
		l.results++
	}
	l.list = append(l.list, o)
	return o, true
}

// capBuffer keeps the first limit bytes written to it.
type capBuffer struct {
	buf     []byte
	limit   int
	dropped bool
}

func (b *capBuffer) write(p []byte) []byte {
	room := b.limit - len(b.buf)
	if room <= 0 {
		b.dropped = b.dropped || len(p) > 0
		return nil
	}
	if len(p) > room {
		p = p[:room]
		b.dropped = true
	}
	b.buf = append(b.buf, p...)
	return p
}

func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "...[truncated]"
}

func fmtSeconds(d time.Duration) string {
	s := d.Seconds()
	if s == float64(int64(s)) {
		return fmt.Sprintf("%d", int64(s))
	}
	return fmt.Sprintf("%g", s)
}

// resolveWorkdir maps a shell working directory into the sandbox: empty is
// the workspace, relative is taken under it, absolute is used as given.
func resolveWorkdir(workspace, dir string) string {
	switch {
	case dir == "":
		return workspace
	case path.IsAbs(dir):
		return path.Clean(dir)
	default:
		return path.Join(workspace, dir)
	}
}
