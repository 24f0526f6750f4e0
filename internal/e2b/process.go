package e2b

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/processpb"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/processpb/processpbconnect"
)

// processService is process.Process over Warden's background processes:
// commands that run beside the sandbox's Python session, each followed by
// whoever is connected to it.
type processService struct {
	processpbconnect.UnimplementedProcessHandler
	s *Server
}

// maxProcessTimeout is the longest timeout Warden gives a process.
const maxProcessTimeout = 7 * 24 * time.Hour

var errNoPTY = connect.NewError(connect.CodeUnimplemented, errors.New("PTYs are not supported by Warden"))

// eventSender sends a stream's events one at a time: the process's, and
// keepalives from a timer while it is quiet.
type eventSender struct {
	mu     sync.Mutex
	send   func(*processpb.ProcessEvent) error
	err    error
	cancel context.CancelFunc
	last   time.Time
}

func (e *eventSender) event(ev *processpb.ProcessEvent) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return
	}
	if e.err = e.send(ev); e.err != nil {
		e.cancel() // the client is gone: stop following
	}
	e.last = time.Now()
}

// keepalive sends a keepalive event whenever the stream was quiet for
// every, until ctx ends.
func (e *eventSender) keepalive(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.mu.Lock()
			quiet := time.Since(e.last) >= every
			e.mu.Unlock()
			if quiet {
				e.event(&processpb.ProcessEvent{Event: &processpb.ProcessEvent_Keepalive{Keepalive: &processpb.ProcessEvent_KeepAlive{}}})
			}
		}
	}
}

// follow streams a process's events through send, as envd does: start
// with the pid, output, end; keepalives in between at the interval the
// client asks for (Keepalive-Ping-Interval, seconds). run starts or
// watches the process with the callback it is given.
func (p *processService) follow(ctx context.Context, b *box, interval string, send func(*processpb.ProcessEvent) error,
	run func(context.Context, func(api.ProcessEvent)) (api.Process, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	every := p.s.keepalive
	if n, err := strconv.Atoi(interval); err == nil && n > 0 {
		every = time.Duration(n) * time.Second
	}
	es := &eventSender{send: send, cancel: cancel, last: time.Now()}
	var keepalives sync.WaitGroup
	keepalives.Go(func() { es.keepalive(ctx, every) })
	started := false
	_, err := run(ctx, func(ev api.ProcessEvent) {
		switch ev.Type {
		case api.ProcessStarted:
			if ev.Process == nil || started {
				return
			}
			started = true
			es.event(&processpb.ProcessEvent{Event: &processpb.ProcessEvent_Start{Start: &processpb.ProcessEvent_StartEvent{Pid: uint32(ev.Process.PID)}}})
		case api.ProcessStdout:
			es.event(&processpb.ProcessEvent{Event: &processpb.ProcessEvent_Data{Data: &processpb.ProcessEvent_DataEvent{Output: &processpb.ProcessEvent_DataEvent_Stdout{Stdout: ev.Data}}}})
		case api.ProcessStderr:
			es.event(&processpb.ProcessEvent{Event: &processpb.ProcessEvent_Data{Data: &processpb.ProcessEvent_DataEvent{Output: &processpb.ProcessEvent_DataEvent_Stderr{Stderr: ev.Data}}}})
		case api.ProcessEnded:
			if ev.Process != nil {
				es.event(&processpb.ProcessEvent{Event: &processpb.ProcessEvent_End{End: endEvent(*ev.Process)}})
			}
		}
	})
	// No send may follow the handler's return.
	cancel()
	keepalives.Wait()
	es.mu.Lock()
	sendErr := es.err
	es.mu.Unlock()
	switch {
	case sendErr != nil:
		return sendErr
	case err != nil && !started:
		return p.s.rpcError(ctx, b, err)
	case err != nil:
		// The stream broke off after the start: the client's deadline,
		// a stream that fell behind, the sandbox gone.
		return p.s.rpcError(context.WithoutCancel(ctx), b, err)
	}
	return nil
}

// endEvent describes how a process ended as envd does, after Go's
// os.ProcessState: a process killed by a signal has exit code -1, is not
// "exited", and its status names the signal.
func endEvent(pr api.Process) *processpb.ProcessEvent_EndEvent {
	end := &processpb.ProcessEvent_EndEvent{}
	switch {
	case pr.Signal != 0:
		end.ExitCode, end.Status = -1, "signal: "+syscall.Signal(pr.Signal).String()
	case pr.ExitCode != nil:
		end.ExitCode, end.Exited, end.Status = int32(*pr.ExitCode), true, fmt.Sprintf("exit status %d", *pr.ExitCode)
	default:
		end.ExitCode, end.Status = -1, "unknown"
	}
	msg := pr.Error
	if pr.TimedOut {
		msg = strings.TrimPrefix(msg+"; the command timed out", "; ")
	}
	if msg != "" {
		end.Error = &msg
	}
	return end
}

func (p *processService) Start(ctx context.Context, req *connect.Request[processpb.StartRequest], stream *connect.ServerStream[processpb.StartResponse]) error {
	ref, _ := boxFrom(ctx)
	b := ref.b
	m := req.Msg
	if m.Pty != nil {
		return errNoPTY
	}
	cfg := m.GetProcess()
	if cfg.GetCmd() == "" {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("process.cmd is required"))
	}
	opts := client.ProcessOptions{
		Command: append([]string{cfg.GetCmd()}, cfg.GetArgs()...),
		Env:     cfg.GetEnvs(),
		Tag:     m.GetTag(),
		// Older clients do not send stdin and get it open, as from envd.
		Stdin: m.Stdin == nil || m.GetStdin(),
	}
	if cfg.Cwd != nil {
		opts.Workdir = b.workdir(cfg.GetCwd())
	}
	// The call's deadline (Connect-Timeout-Ms) is the command's timeout,
	// as envd has it; a client that goes away earlier leaves it running.
	if d, ok := ctx.Deadline(); ok {
		opts.Timeout = min(max(time.Until(d), time.Millisecond), maxProcessTimeout)
	}
	return p.follow(ctx, b, req.Header().Get("Keepalive-Ping-Interval"),
		func(ev *processpb.ProcessEvent) error { return stream.Send(&processpb.StartResponse{Event: ev}) },
		func(ctx context.Context, on func(api.ProcessEvent)) (api.Process, error) {
			opts.OnEvent = on
			return p.s.c.StartProcess(ctx, b.wardenID, opts)
		})
}

func (p *processService) Connect(ctx context.Context, req *connect.Request[processpb.ConnectRequest], stream *connect.ServerStream[processpb.ConnectResponse]) error {
	ref, _ := boxFrom(ctx)
	b := ref.b
	pid, err := p.pid(ctx, b, req.Msg.GetProcess())
	if err != nil {
		return err
	}
	return p.follow(ctx, b, req.Header().Get("Keepalive-Ping-Interval"),
		func(ev *processpb.ProcessEvent) error { return stream.Send(&processpb.ConnectResponse{Event: ev}) },
		func(ctx context.Context, on func(api.ProcessEvent)) (api.Process, error) {
			return p.s.c.WatchProcess(ctx, b.wardenID, pid, on)
		})
}

// pid resolves a selector to a running process's pid: by pid, or by tag.
func (p *processService) pid(ctx context.Context, b *box, sel *processpb.ProcessSelector) (int, error) {
	switch {
	case sel == nil || sel.Selector == nil:
		return 0, connect.NewError(connect.CodeInvalidArgument, errors.New("process selector (pid or tag) is required"))
	case sel.GetTag() != "":
		list, err := p.s.c.Processes(ctx, b.wardenID)
		if err != nil {
			return 0, p.s.rpcError(ctx, b, err)
		}
		for _, pr := range list {
			if pr.Running && pr.Tag == sel.GetTag() {
				return pr.PID, nil
			}
		}
		return 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("no running process has tag %q", sel.GetTag()))
	}
	pid := int(sel.GetPid())
	pr, err := p.s.c.Process(ctx, b.wardenID, pid)
	if err != nil || !pr.Running {
		if err == nil || errors.Is(err, client.ErrNotFound) || errors.Is(err, client.ErrInvalid) {
			if errors.Is(err, client.ErrNotFound) && p.s.gone(ctx, b) {
				return 0, connect.NewError(connect.CodeUnavailable, errSandboxGone)
			}
			return 0, connect.NewError(connect.CodeNotFound, fmt.Errorf("process %d is not running", pid))
		}
		return 0, p.s.rpcError(ctx, b, err)
	}
	return pid, nil
}

func (p *processService) List(ctx context.Context, req *connect.Request[processpb.ListRequest]) (*connect.Response[processpb.ListResponse], error) {
	ref, _ := boxFrom(ctx)
	list, err := p.s.c.Processes(ctx, ref.b.wardenID)
	if err != nil {
		return nil, p.s.rpcError(ctx, ref.b, err)
	}
	out := &processpb.ListResponse{Processes: []*processpb.ProcessInfo{}}
	for _, pr := range list {
		if !pr.Running {
			continue
		}
		cfg := &processpb.ProcessConfig{Envs: map[string]string{}}
		if len(pr.Command) > 0 {
			cfg.Cmd, cfg.Args = pr.Command[0], pr.Command[1:]
		}
		cwd := ref.b.sandboxPath(pr.Workdir)
		cfg.Cwd = &cwd
		info := &processpb.ProcessInfo{Config: cfg, Pid: uint32(pr.PID)}
		if pr.Tag != "" {
			info.Tag = &pr.Tag
		}
		out.Processes = append(out.Processes, info)
	}
	return connect.NewResponse(out), nil
}

func (p *processService) SendInput(ctx context.Context, req *connect.Request[processpb.SendInputRequest]) (*connect.Response[processpb.SendInputResponse], error) {
	ref, _ := boxFrom(ctx)
	if _, ok := req.Msg.GetInput().GetInput().(*processpb.ProcessInput_Pty); ok {
		return nil, errNoPTY
	}
	pid, err := p.pid(ctx, ref.b, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if err := p.s.c.SendInput(ctx, ref.b.wardenID, pid, req.Msg.GetInput().GetStdin()); err != nil {
		return nil, p.inputError(ctx, ref.b, pid, err)
	}
	return connect.NewResponse(&processpb.SendInputResponse{}), nil
}

func (p *processService) CloseStdin(ctx context.Context, req *connect.Request[processpb.CloseStdinRequest]) (*connect.Response[processpb.CloseStdinResponse], error) {
	ref, _ := boxFrom(ctx)
	pid, err := p.pid(ctx, ref.b, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if err := p.s.c.CloseInput(ctx, ref.b.wardenID, pid); err != nil {
		return nil, p.inputError(ctx, ref.b, pid, err)
	}
	return connect.NewResponse(&processpb.CloseStdinResponse{}), nil
}

// inputError: a process without open stdin is a failed precondition.
func (p *processService) inputError(ctx context.Context, b *box, pid int, err error) error {
	if errors.Is(err, client.ErrConflict) {
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("process %d: %s", pid, messageOf(err)))
	}
	return p.s.rpcError(ctx, b, err)
}

func (p *processService) SendSignal(ctx context.Context, req *connect.Request[processpb.SendSignalRequest]) (*connect.Response[processpb.SendSignalResponse], error) {
	ref, _ := boxFrom(ctx)
	var sig string
	switch req.Msg.GetSignal() {
	case processpb.Signal_SIGNAL_SIGKILL:
		sig = "SIGKILL"
	case processpb.Signal_SIGNAL_SIGTERM:
		sig = "SIGTERM"
	default:
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("signal %d is not SIGKILL (9) or SIGTERM (15)", req.Msg.GetSignal()))
	}
	pid, err := p.pid(ctx, ref.b, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if err := p.s.c.Signal(ctx, ref.b.wardenID, pid, sig); err != nil {
		if errors.Is(err, client.ErrConflict) { // it ended meanwhile
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("process %d is not running", pid))
		}
		return nil, p.s.rpcError(ctx, ref.b, err)
	}
	return connect.NewResponse(&processpb.SendSignalResponse{}), nil
}

func (p *processService) Update(context.Context, *connect.Request[processpb.UpdateRequest]) (*connect.Response[processpb.UpdateResponse], error) {
	return nil, errNoPTY
}

func (p *processService) StreamInput(context.Context, *connect.ClientStream[processpb.StreamInputRequest]) (*connect.Response[processpb.StreamInputResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("streamed input is not supported by Warden: use SendInput"))
}

// workdir maps a working directory as the SDKs send it onto Warden's:
// relative to the workspace when it lies in the home directory, else the
// absolute path inside the sandbox.
func (b *box) workdir(cwd string) string {
	if rel, err := b.wardenPath(cwd); err == nil {
		return rel
	}
	if path.IsAbs(cwd) {
		return path.Clean(cwd)
	}
	return cwd
}

// sandboxPath is the absolute path, as the SDKs see it, of a working
// directory Warden reports: relative to the workspace, or absolute.
func (b *box) sandboxPath(dir string) string {
	if !path.IsAbs(dir) {
		return e2bPath(dir)
	}
	if rel, err := b.wardenPath(dir); err == nil {
		return e2bPath(rel)
	}
	return dir
}
