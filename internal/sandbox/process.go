package sandbox

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// ProcessSpec is a command to run beside a sandbox's Python session: a
// background process, with its own output, input and lifetime, that runs
// while executions (and other processes) run.
type ProcessSpec struct {
	// Argv is the command as an argument vector, run without a shell; or
	// Command, a command line run with bash -c. Exactly one is set.
	Argv    []string
	Command string
	// Env is added to the sandbox's environment variables for this
	// process.
	Env map[string]string
	// Workdir is the working directory; relative paths are taken under
	// the workspace. Empty means the workspace.
	Workdir string
	// Stdin keeps the process's standard input open for SendInput;
	// without it, stdin is /dev/null.
	Stdin bool
	// Tag is the caller's label for the process, reported back.
	Tag string
	// Timeout kills the process's group when it runs longer; zero means
	// no limit (it runs until it exits, is signalled, or the sandbox goes).
	Timeout time.Duration
	// Watch makes StartProcess return a watch that sees every event of the
	// process from its start.
	Watch bool
}

// Validate checks the spec's shape.
func (s ProcessSpec) Validate() error {
	switch {
	case (s.Command == "") == (len(s.Argv) == 0):
		return fmt.Errorf("a process takes either a command line or an argv: %w", ErrInvalid)
	case len(s.Argv) > 0 && s.Argv[0] == "":
		return fmt.Errorf("argv[0] is empty: %w", ErrInvalid)
	case s.Timeout < 0:
		return fmt.Errorf("timeout %s is negative: %w", s.Timeout, ErrInvalid)
	case len(s.Tag) > 256:
		return fmt.Errorf("tag is longer than 256 bytes: %w", ErrInvalid)
	}
	for k := range s.Env {
		if err := ValidateEnvName(k); err != nil {
			return err
		}
	}
	return ValidateWorkdir(s.Workdir)
}

// ProcessInfo describes a background process.
type ProcessInfo struct {
	// PID is the process's id inside the sandbox; it names the process in
	// every call.
	PID     int
	Tag     string
	Argv    []string // the command as run: a command line is bash -c LINE
	Workdir string   // inside the sandbox
	Stdin   bool
	// Running is true until the process has exited and its output has
	// been delivered.
	Running bool
	// ExitCode is the exit status once it ended; 128+N when killed by
	// signal N (Signal is then N).
	ExitCode int
	Signal   int
	// TimedOut reports that its Timeout killed it.
	TimedOut bool
	// Error says why it ended without an exit status of its own (the
	// sandbox's agent restarted).
	Error     string
	StartedAt time.Time
	EndedAt   time.Time
}

// Process event kinds.
const (
	ProcessStdout = "stdout"
	ProcessStderr = "stderr"
	// ProcessEnd is the last event: Info holds the exit status.
	ProcessEnd = "end"
)

// ProcessEvent is one event of a watched process.
type ProcessEvent struct {
	// Kind is ProcessStdout, ProcessStderr or ProcessEnd.
	Kind string
	// Data is output, for the two output kinds.
	Data []byte
	// Info is the process as it ended, for ProcessEnd.
	Info *ProcessInfo
}

// ProcessWatch delivers a process's events in order. Events is closed
// after the ProcessEnd event, when Close is called, or early when the
// watcher fell too far behind (Lagged then reports true): a watcher must
// read promptly.
type ProcessWatch struct {
	Events <-chan ProcessEvent
	// Close stops the watch; safe to call more than once.
	Close func()
	// Lagged reports, once Events is closed, whether events were lost.
	Lagged func() bool
}

// Signals a process may be sent, by name.
var Signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGKILL": syscall.SIGKILL, "SIGINT": syscall.SIGINT,
	"SIGHUP": syscall.SIGHUP, "SIGQUIT": syscall.SIGQUIT, "SIGUSR1": syscall.SIGUSR1,
	"SIGUSR2": syscall.SIGUSR2, "SIGSTOP": syscall.SIGSTOP, "SIGCONT": syscall.SIGCONT,
}

// ProcessRunner runs background processes in a provider's sandboxes.
// Every method fails with ErrNotFound for an unknown sandbox or process,
// and is safe for concurrent use, also while executions run.
type ProcessRunner interface {
	// StartProcess starts spec in the sandbox id and returns once it runs
	// (or failed to start: a missing program or directory is ErrInvalid,
	// too many processes ErrLimit). With spec.Watch the watch sees every
	// event from the start; the caller must Close it.
	StartProcess(ctx context.Context, id ID, spec ProcessSpec) (ProcessInfo, *ProcessWatch, error)
	// Processes lists the sandbox's processes: running ones and those
	// that ended recently, oldest first.
	Processes(ctx context.Context, id ID) ([]ProcessInfo, error)
	// WatchProcess watches a process: from now on, or with fromStart from
	// its first output still kept (the last 256 KiB or so). A process that
	// has ended gives its kept output and the end event.
	WatchProcess(ctx context.Context, id ID, pid int, fromStart bool) (*ProcessWatch, error)
	// SendInput writes data to the process's standard input; ErrConflict
	// when it was started without stdin, closed it, or has ended.
	SendInput(ctx context.Context, id ID, pid int, data []byte) error
	// CloseInput closes its standard input once what was sent is written.
	CloseInput(ctx context.Context, id ID, pid int) error
	// SignalProcess sends sig to the process's group.
	SignalProcess(ctx context.Context, id ID, pid int, sig syscall.Signal) error
}

// ProcessHost is implemented by providers whose sandboxes can run
// background processes.
type ProcessHost interface {
	Processes() ProcessRunner
}

// ProcessesOf returns p's process runner, nil when p runs no background
// processes.
func ProcessesOf(p Provider) ProcessRunner {
	if h, ok := p.(ProcessHost); ok {
		return h.Processes()
	}
	return nil
}
