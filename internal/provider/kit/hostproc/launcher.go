package hostproc

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// WaitDelay bounds how long Wait blocks on a child's pipes once it has
// been killed, should a descendant still hold them.
const WaitDelay = 2 * time.Second

// TeardownTimeout bounds killing a sandbox's processes and removing its
// directory, even when the caller's ctx is already cancelled.
const TeardownTimeout = 30 * time.Second

// stderrTail is how much of an agent's stderr is kept for diagnostics.
const stderrTail = 16 << 10

// Launcher starts the agents of one sandbox as host processes. It
// implements agent.Launcher.
type Launcher struct {
	// Argv runs the agent: an interpreter, or a confining wrapper with
	// one, then "-c", agent.Source, "agent".
	Argv []string
	Dir  string   // working directory: the workspace
	Env  []string // the agent's whole environment; holds Marker
	// Marker is the "NAME=value" entry of Env that marks every process
	// of the sandbox, which Kill finds them by.
	Marker string
	// Setsid starts the agent in a new session rather than only a new
	// process group (no controlling terminal).
	Setsid bool
	// Kill kills every process carrying Marker (see [KillMarked]).
	Kill func(ctx context.Context, marker string) error

	mu     sync.Mutex
	closed bool // set by Shutdown; guarded by mu
}

var _ agent.Launcher = (*Launcher)(nil)

// Start implements agent.Launcher. The agent outlives ctx, which bounds
// only the start; the returned Process owns it.
func (l *Launcher) Start(ctx context.Context) (agent.Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Holding mu across the start makes Shutdown wait for it: whatever
	// was started before Shutdown returns carries the marker and is
	// killed by the scan that follows, and nothing starts after.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("sandbox is being destroyed: %w", sandbox.ErrNotFound)
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	//nolint:gosec // G204: the operator's interpreter (or the system's sandbox-exec) running the embedded agent
	cmd := exec.CommandContext(pctx, l.Argv[0], l.Argv[1:]...)
	cmd.Dir = l.Dir
	cmd.Env = l.Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !l.Setsid, Setsid: l.Setsid}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = WaitDelay
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	stderr := &agent.TailBuffer{Max: stderrTail}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting %s: %w", l.Argv[0], err)
	}
	return &proc{Reader: stdout, WriteCloser: stdin, cmd: cmd, cancel: cancel, stderr: stderr, l: l}, nil
}

// Reset implements agent.Launcher: it kills every process of the sandbox.
func (l *Launcher) Reset(ctx context.Context) error {
	return l.Kill(ctx, l.Marker)
}

// Shutdown stops Start from starting agents, waiting for one in progress.
func (l *Launcher) Shutdown() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// proc is one running agent. Close kills it with the rest of the sandbox's
// processes and waits for it.
type proc struct {
	io.Reader      // the agent's stdout
	io.WriteCloser // the agent's stdin
	cmd            *exec.Cmd
	cancel         context.CancelFunc
	stderr         *agent.TailBuffer
	l              *Launcher
	once           sync.Once
}

// Close implements agent.Process. The session closes an agent only when it
// is done with it (closed, dead or misbehaving) and then starts afresh, so
// the sandbox's other processes go too: its workers, snapshots and
// orphans would otherwise outlive the agent that supervised them.
func (p *proc) Close() error {
	p.once.Do(func() {
		p.cancel() // cmd.Cancel: SIGKILL to the agent's process group
		ctx, cancel := context.WithTimeout(context.Background(), TeardownTimeout)
		defer cancel()
		_ = p.l.Kill(ctx, p.l.Marker)
		// The exit status tells nothing the session does not know.
		_ = p.cmd.Wait()
	})
	return nil
}

// Diagnostics implements agent.Diagnoser with the tail of the agent's
// stderr (where sandbox-exec also reports a profile it cannot compile).
func (p *proc) Diagnostics() string { return p.stderr.String() }
