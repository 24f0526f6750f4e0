package agent

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Frame kinds of background processes (ADR 0003): the host's control
// frame, and the agent's answers.
const (
	kindProcControl = 'P' // {"op": start|stdin|close_stdin|signal, "id", ...}
	kindProcStarted = 'y' // {"id", "pid"} or {"id", "error"}
	kindProcOutput  = 'b' // 4-byte id, stream byte 'o' or 'e', the bytes
	kindProcEnded   = 'z' // {"id", "exit_code", "signal"?, "timed_out"?}
)

// Bounds of the process table.
const (
	// MaxProcesses is how many background processes a sandbox runs at
	// once (the agent refuses more, too).
	MaxProcesses = 64
	// keptOutput is how much of a process's latest output is kept for
	// watchers that want it from the start.
	keptOutput = 256 << 10
	// keptEnded is how many ended processes stay listed.
	keptEnded = 64
	// watchBuffer is how many events a watcher may fall behind.
	watchBuffer = 1024
	// startTimeout bounds the wait for the agent's answer to a start.
	startTimeout = 30 * time.Second
	// maxInput bounds one SendInput.
	maxInput = 1 << 20
)

// procTable is a session's background processes. Its lock is never held
// while writing to the agent.
type procTable struct {
	mu     sync.Mutex
	nextID uint32
	byID   map[uint32]*proc
	order  []*proc // start order, for listing and for dropping old ended ones
}

type proc struct {
	id      uint32
	conn    *conn // the agent that runs it
	info    sandbox.ProcessInfo
	begun   sandbox.ProcessInfo // info when the agent started it
	closing bool                // stdin closed by the caller
	started chan string
	kept    []sandbox.ProcessEvent
	keptN   int
	watch   map[*watcher]struct{}
}

type watcher struct {
	ch     chan sandbox.ProcessEvent
	once   sync.Once
	lagged bool
}

func (w *watcher) stop() { w.once.Do(func() { close(w.ch) }) }

// deliver passes e on; a watcher that cannot take it falls out. Called
// with the table's lock held.
func (p *proc) deliver(e sandbox.ProcessEvent) {
	for w := range p.watch {
		select {
		case w.ch <- e:
		default:
			w.lagged = true
			w.stop()
			delete(p.watch, w)
		}
	}
}

func (p *proc) keep(e sandbox.ProcessEvent) {
	p.kept = append(p.kept, e)
	p.keptN += len(e.Data)
	for p.keptN > keptOutput && len(p.kept) > 1 {
		p.keptN -= len(p.kept[0].Data)
		p.kept = p.kept[1:]
	}
}

// end records the process's end and tells its watchers. Called with the
// table's lock held.
func (p *proc) end(info sandbox.ProcessInfo) {
	if !p.info.Running {
		return
	}
	p.info = info
	p.info.Running = false
	p.info.EndedAt = time.Now()
	final := p.info
	e := sandbox.ProcessEvent{Kind: sandbox.ProcessEnd, Info: &final}
	p.deliver(e)
	for w := range p.watch {
		w.stop()
	}
	p.watch = nil
}

// handle takes one of the agent's process frames. It runs on the conn's
// read loop and never blocks.
func (t *procTable) handle(c *conn, f frame) error {
	switch f.kind {
	case kindProcOutput:
		if len(f.payload) < 5 || (f.payload[4] != 'o' && f.payload[4] != 'e') {
			return fmt.Errorf("%w: malformed process output frame", errProtocol)
		}
		id := binary.BigEndian.Uint32(f.payload)
		kind := sandbox.ProcessStdout
		if f.payload[4] == 'e' {
			kind = sandbox.ProcessStderr
		}
		e := sandbox.ProcessEvent{Kind: kind, Data: f.payload[5:]}
		t.mu.Lock()
		defer t.mu.Unlock()
		if p := t.byID[id]; p != nil && p.conn == c && p.info.Running {
			p.keep(e)
			p.deliver(e)
		}
		return nil
	case kindProcStarted, kindProcEnded:
		var m struct {
			ID       uint32 `json:"id"`
			PID      int    `json:"pid"`
			Error    string `json:"error"`
			ExitCode int    `json:"exit_code"`
			Signal   int    `json:"signal"`
			TimedOut bool   `json:"timed_out"`
		}
		if err := json.Unmarshal(f.payload, &m); err != nil {
			return fmt.Errorf("%w: malformed process frame: %v", errProtocol, err)
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		p := t.byID[m.ID]
		if p == nil || p.conn != c {
			return nil // forgotten meanwhile
		}
		if f.kind == kindProcStarted {
			if m.Error == "" && m.PID > 0 {
				p.info.PID = m.PID
				p.begun = p.info
			} else if m.Error == "" {
				m.Error = "the sandbox agent reported no pid"
			}
			select {
			case p.started <- bound(m.Error, 1024):
			default:
			}
			return nil
		}
		info := p.info
		info.ExitCode = min(max(m.ExitCode, 0), 255)
		info.Signal = min(max(m.Signal, 0), 64)
		info.TimedOut = m.TimedOut
		p.end(info)
		t.prune()
		return nil
	}
	return fmt.Errorf("%w: unexpected %q frame", errProtocol, f.kind)
}

// lost ends every process of an agent that is gone.
func (t *procTable) lost(c *conn, why string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.byID {
		if p.conn != c {
			continue
		}
		select {
		case p.started <- why:
		default:
		}
		info := p.info
		info.ExitCode = 137
		info.Error = why
		p.end(info)
	}
}

// prune drops the oldest ended processes beyond keptEnded. Called with the
// lock held.
func (t *procTable) prune() {
	ended := 0
	for _, p := range t.order {
		if !p.info.Running {
			ended++
		}
	}
	for i := 0; i < len(t.order) && ended > keptEnded; {
		if p := t.order[i]; !p.info.Running {
			delete(t.byID, p.id)
			t.order = slices.Delete(t.order, i, i+1)
			ended--
			continue
		}
		i++
	}
}

// byPID finds the latest process with pid. Called with the lock held.
func (t *procTable) byPID(pid int) *proc {
	for i := len(t.order) - 1; i >= 0; i-- {
		if p := t.order[i]; p.info.PID == pid && pid > 0 {
			return p
		}
	}
	return nil
}

func (t *procTable) running() int {
	n := 0
	for _, p := range t.order {
		if p.info.Running {
			n++
		}
	}
	return n
}

// agentConn returns the running agent, starting one if there is none.
func (s *Session) agentConn(ctx context.Context) (*conn, error) {
	if c := s.cur.Load(); c != nil && !c.isClosed() {
		return c, nil
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	if s.conn == nil {
		if err := s.start(ctx); err != nil {
			return nil, err
		}
	}
	return s.conn, nil
}

// StartProcess starts a background process (sandbox.ProcessRunner).
func (s *Session) StartProcess(ctx context.Context, spec sandbox.ProcessSpec) (sandbox.ProcessInfo, *sandbox.ProcessWatch, error) {
	if err := spec.Validate(); err != nil {
		return sandbox.ProcessInfo{}, nil, err
	}
	if s.closed.Load() {
		return sandbox.ProcessInfo{}, nil, ErrClosed
	}
	c, err := s.agentConn(ctx)
	if err != nil {
		return sandbox.ProcessInfo{}, nil, err
	}
	// A process whose ctx ended (its sandbox deleted, say) does not start.
	if err := ctx.Err(); err != nil {
		return sandbox.ProcessInfo{}, nil, err
	}
	env := s.Env()
	maps.Copy(env, spec.Env)
	argv := spec.Argv
	if len(argv) == 0 {
		argv = []string{"/bin/bash", "-c", spec.Command}
	}
	cwd := resolveWorkdir(s.opts.Workspace, spec.Workdir)

	t := &s.procs
	t.mu.Lock()
	if t.running() >= MaxProcesses {
		t.mu.Unlock()
		return sandbox.ProcessInfo{}, nil, fmt.Errorf("%d processes run in this sandbox already, the most it may: %w", MaxProcesses, sandbox.ErrLimit)
	}
	if t.byID == nil {
		t.byID = map[uint32]*proc{}
	}
	t.nextID++
	p := &proc{id: t.nextID, conn: c, started: make(chan string, 1), watch: map[*watcher]struct{}{},
		info: sandbox.ProcessInfo{Tag: spec.Tag, Argv: slices.Clone(argv), Workdir: cwd, Stdin: spec.Stdin,
			Running: true, StartedAt: time.Now()}}
	var w *watcher
	if spec.Watch {
		w = &watcher{ch: make(chan sandbox.ProcessEvent, watchBuffer)}
		p.watch[w] = struct{}{}
	}
	t.byID[p.id] = p
	t.order = append(t.order, p)
	t.mu.Unlock()

	forget := func() {
		t.mu.Lock()
		delete(t.byID, p.id)
		if i := slices.Index(t.order, p); i >= 0 {
			t.order = slices.Delete(t.order, i, i+1)
		}
		t.mu.Unlock()
	}
	req := map[string]any{"op": "start", "id": p.id, "env": env, "cwd": cwd, "stdin": spec.Stdin,
		"timeout": spec.Timeout.Seconds()}
	if len(spec.Argv) > 0 {
		req["argv"] = spec.Argv
	} else {
		req["command"] = spec.Command
	}
	payload, err := json.Marshal(req)
	if err != nil {
		forget()
		return sandbox.ProcessInfo{}, nil, fmt.Errorf("encoding process request: %w", err)
	}
	if err := c.write(kindProcControl, payload); err != nil {
		forget()
		return sandbox.ProcessInfo{}, nil, fmt.Errorf("sending process request to the sandbox agent: %w", err)
	}
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	var failed string
	select {
	case failed = <-p.started:
	case <-ctx.Done():
		// It may start anyway: kill it once it does.
		go s.killWhenStarted(p)
		return sandbox.ProcessInfo{}, nil, ctx.Err()
	case <-timer.C:
		failed = fmt.Sprintf("the sandbox agent did not start the process within %s", startTimeout)
	}
	if failed != "" {
		forget()
		if strings.Contains(failed, "processes run already") {
			return sandbox.ProcessInfo{}, nil, fmt.Errorf("%s: %w", failed, sandbox.ErrLimit)
		}
		return sandbox.ProcessInfo{}, nil, fmt.Errorf("starting the process: %s: %w", failed, sandbox.ErrInvalid)
	}
	// The process as it started: it may have ended already, which its
	// watchers and Processes tell.
	t.mu.Lock()
	info := p.begun
	t.mu.Unlock()
	if w == nil {
		return info, nil, nil
	}
	return info, t.watchOf(p, w), nil
}

func (s *Session) killWhenStarted(p *proc) {
	select {
	case msg := <-p.started:
		if msg == "" {
			s.procs.mu.Lock()
			pid := p.info.PID
			s.procs.mu.Unlock()
			_ = s.SignalProcess(context.Background(), pid, syscall.SIGKILL)
		}
	case <-time.After(startTimeout):
	}
}

// watchOf wraps a registered watcher.
func (t *procTable) watchOf(p *proc, w *watcher) *sandbox.ProcessWatch {
	return &sandbox.ProcessWatch{
		Events: w.ch,
		Close: func() {
			t.mu.Lock()
			delete(p.watch, w)
			t.mu.Unlock()
			w.stop()
		},
		Lagged: func() bool {
			t.mu.Lock()
			defer t.mu.Unlock()
			return w.lagged
		},
	}
}

// Processes lists the session's processes (sandbox.ProcessRunner).
func (s *Session) Processes() []sandbox.ProcessInfo {
	t := &s.procs
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]sandbox.ProcessInfo, 0, len(t.order))
	for _, p := range t.order {
		if p.info.PID > 0 {
			out = append(out, p.info)
		}
	}
	return out
}

// lookup finds a process by pid, with the lock held on success.
func (t *procTable) lookup(pid int) (*proc, error) {
	t.mu.Lock()
	p := t.byPID(pid)
	if p == nil {
		t.mu.Unlock()
		return nil, fmt.Errorf("process %d: %w", pid, sandbox.ErrNotFound)
	}
	return p, nil
}

// WatchProcess watches a process (sandbox.ProcessRunner).
func (s *Session) WatchProcess(pid int, fromStart bool) (*sandbox.ProcessWatch, error) {
	t := &s.procs
	p, err := t.lookup(pid)
	if err != nil {
		return nil, err
	}
	defer t.mu.Unlock()
	w := &watcher{ch: make(chan sandbox.ProcessEvent, watchBuffer+len(p.kept)+1)}
	if fromStart {
		for _, e := range p.kept {
			w.ch <- e
		}
	}
	if !p.info.Running {
		final := p.info
		w.ch <- sandbox.ProcessEvent{Kind: sandbox.ProcessEnd, Info: &final}
		w.stop()
	} else {
		p.watch[w] = struct{}{}
	}
	return t.watchOf(p, w), nil
}

// control sends a control frame about a running process.
func (s *Session) control(pid int, op string, extra map[string]any, check func(*proc) error) error {
	t := &s.procs
	p, err := t.lookup(pid)
	if err != nil {
		return err
	}
	if !p.info.Running {
		t.mu.Unlock()
		return fmt.Errorf("process %d has ended: %w", pid, sandbox.ErrConflict)
	}
	if check != nil {
		if err := check(p); err != nil {
			t.mu.Unlock()
			return err
		}
	}
	c, id := p.conn, p.id
	t.mu.Unlock()
	m := map[string]any{"op": op, "id": id}
	maps.Copy(m, extra)
	payload, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := c.write(kindProcControl, payload); err != nil {
		return fmt.Errorf("sending to the sandbox agent: %w", err)
	}
	return nil
}

// SendInput writes to a process's stdin (sandbox.ProcessRunner).
func (s *Session) SendInput(pid int, data []byte) error {
	if len(data) > maxInput {
		return fmt.Errorf("input of %d bytes is more than the %d one call may send: %w", len(data), maxInput, sandbox.ErrInvalid)
	}
	return s.control(pid, "stdin", map[string]any{"data": base64.StdEncoding.EncodeToString(data)}, func(p *proc) error {
		switch {
		case !p.info.Stdin:
			return fmt.Errorf("process %d was started without stdin: %w", pid, sandbox.ErrConflict)
		case p.closing:
			return fmt.Errorf("process %d's stdin is closed: %w", pid, sandbox.ErrConflict)
		}
		return nil
	})
}

// CloseInput closes a process's stdin (sandbox.ProcessRunner).
func (s *Session) CloseInput(pid int) error {
	return s.control(pid, "close_stdin", nil, func(p *proc) error {
		if !p.info.Stdin {
			return fmt.Errorf("process %d was started without stdin: %w", pid, sandbox.ErrConflict)
		}
		p.closing = true
		return nil
	})
}

// SignalProcess signals a process's group (sandbox.ProcessRunner).
func (s *Session) SignalProcess(ctx context.Context, pid int, sig syscall.Signal) error {
	if sig <= 0 || sig > 64 {
		return fmt.Errorf("signal %d: %w", sig, sandbox.ErrInvalid)
	}
	return s.control(pid, "signal", map[string]any{"signal": int(sig)}, nil)
}
