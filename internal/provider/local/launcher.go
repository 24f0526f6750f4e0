package local

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

// waitDelay bounds how long Wait blocks on the agent's pipes once it has
// been killed, should a descendant still hold them.
const waitDelay = 2 * time.Second

// stderrTail is how much of an agent's stderr is kept for diagnostics.
const stderrTail = 16 << 10

// launcher starts the agents of one sandbox as host processes. It
// implements agent.Launcher.
type launcher struct {
	python string
	dir    string   // working directory: the workspace
	env    []string // the agent's whole environment
	marker string   // MarkerEnv=<id>, an entry of env

	mu     sync.Mutex
	closed bool // set by shutdown; guarded by mu
}

// Start implements agent.Launcher. The agent outlives ctx, which bounds
// only the start; the returned Process owns it.
func (l *launcher) Start(ctx context.Context) (agent.Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Holding mu across the start makes shutdown wait for it: whatever
	// was started before shutdown returns carries the marker and is
	// killed by the scan that follows, and nothing starts after.
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("sandbox is being destroyed: %w", sandbox.ErrNotFound)
	}
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	//nolint:gosec // G204: the operator's interpreter running the embedded agent
	cmd := exec.CommandContext(pctx, l.python, "-c", agent.Source, "agent")
	cmd.Dir = l.dir
	cmd.Env = l.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
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
		return nil, fmt.Errorf("starting %s: %w", l.python, err)
	}
	return &proc{Reader: stdout, WriteCloser: stdin, cmd: cmd, cancel: cancel, stderr: stderr, marker: l.marker}, nil
}

// Reset implements agent.Launcher: it kills every process of the sandbox.
func (l *launcher) Reset(ctx context.Context) error {
	return killMarked(ctx, l.marker)
}

// shutdown stops Start from starting agents, waiting for one in progress.
func (l *launcher) shutdown() {
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
	marker         string
	once           sync.Once
}

// Close implements agent.Process. The session closes an agent only when it
// is done with it (closed, dead or misbehaving) and then starts afresh, so
// the sandbox's other processes go too: its workers, snapshots and
// orphans would otherwise outlive the agent that supervised them.
func (p *proc) Close() error {
	p.once.Do(func() {
		p.cancel() // cmd.Cancel: SIGKILL to the agent's process group
		ctx, cancel := context.WithTimeout(context.Background(), teardownTimeout)
		defer cancel()
		_ = killMarked(ctx, p.marker)
		// The exit status tells nothing the session does not know.
		_ = p.cmd.Wait()
	})
	return nil
}

// Diagnostics implements agent.Diagnoser with the tail of the agent's
// stderr.
func (p *proc) Diagnostics() string { return p.stderr.String() }
