//go:build darwin

package seatbelt

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

// stderrTail is how much of an agent's stderr is kept for diagnostics.
const stderrTail = 16 << 10

// teardownTimeout bounds killing a sandbox's processes and removing its
// directory, even when the caller's ctx is already cancelled.
const teardownTimeout = 30 * time.Second

// launcher starts the agents of one sandbox under sandbox-exec. It
// implements agent.Launcher.
type launcher struct {
	python  string
	profile string   // the SBPL profile, passed with -p
	dir     string   // working directory: the workspace
	env     []string // the agent's whole environment
	marker  string   // MarkerEnv=<id>, an entry of env

	mu     sync.Mutex
	closed bool // set by shutdown; guarded by mu
}

// Start implements agent.Launcher: it runs
// `sandbox-exec -p <profile> <python> -c <agent> agent` in a new session,
// hence a new process group and no controlling terminal. sandbox-exec
// applies the profile to itself and then executes the interpreter, so
// the agent and everything it starts are confined. The agent outlives ctx,
// which bounds only the start; the returned Process owns it.
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
	//nolint:gosec // G204: the system's sandbox-exec running the operator's interpreter on the embedded agent
	cmd := exec.CommandContext(pctx, SandboxExec, "-p", l.profile, l.python, "-c", agent.Source, "agent")
	cmd.Dir = l.dir
	cmd.Env = l.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
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
		return nil, fmt.Errorf("starting %s: %w", SandboxExec, err)
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
// is done with it, so the sandbox's other processes (workers, snapshots,
// orphans) go too.
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
// stderr, where sandbox-exec also reports a profile it cannot compile.
func (p *proc) Diagnostics() string { return p.stderr.String() }
