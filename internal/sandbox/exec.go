package sandbox

import (
	"fmt"
	"time"
)

// Language selects the interpreter of an execution.
type Language string

const (
	// Python runs code in the sandbox's persistent Python session: globals
	// survive between executions.
	Python Language = "python"
	// Shell runs a command with bash (a string) or directly (an argv).
	Shell Language = "shell"
)

// Stream names one of the two output streams.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// TimeoutExitCode is the exit code of an execution stopped by its timeout,
// as with coreutils timeout(1).
const TimeoutExitCode = 124

// ExecRequest is one execution.
type ExecRequest struct {
	Language Language
	// Code is the Python source, or the shell command string run with
	// bash -c. For shell, exactly one of Code and Argv is set.
	Code string
	// Argv is a shell command as an argument vector, run without a shell.
	Argv []string
	// Workdir is the working directory of a shell execution inside the
	// sandbox; relative paths are taken under the workspace. Empty means
	// the workspace. Python executions refuse it (ErrInvalid): the session
	// keeps one working directory, which code changes with os.chdir.
	Workdir string
	// Timeout bounds the execution; zero means the sandbox default.
	Timeout time.Duration
	// OnOutput, if set, is called with each chunk of output as it arrives,
	// in order, from one goroutine. It must not retain p. Chunks beyond the
	// output limit are not delivered.
	OnOutput func(s Stream, p []byte)
}

// Validate checks the request's shape.
func (r ExecRequest) Validate() error {
	switch r.Language {
	case Python:
		if len(r.Argv) > 0 {
			return fmt.Errorf("python execution takes code, not an argv: %w", ErrInvalid)
		}
	case Shell:
		if (r.Code == "") == (len(r.Argv) == 0) {
			return fmt.Errorf("shell execution takes either a command string or an argv: %w", ErrInvalid)
		}
	default:
		return fmt.Errorf("language %q is not python or shell: %w", r.Language, ErrInvalid)
	}
	if r.Timeout < 0 {
		return fmt.Errorf("timeout %s is negative: %w", r.Timeout, ErrInvalid)
	}
	return nil
}

// ExecError describes an exception raised by Python code.
type ExecError struct {
	// Name is the exception type, e.g. "ValueError" or "SyntaxError".
	Name string `json:"name"`
	// Value is the exception message.
	Value string `json:"value"`
	// Traceback is the formatted traceback, as Python prints it.
	Traceback string `json:"traceback"`
	// Line is the line of the submitted code where it was raised, 0 if
	// unknown.
	Line int `json:"line,omitempty"`
}

// ExecResult is the outcome of one execution. A non-zero ExitCode, an
// exception, a timeout or an out-of-memory kill are results, not errors.
type ExecResult struct {
	Stdout []byte `json:"-"`
	Stderr []byte `json:"-"`
	// ExitCode: for shell, the command's; for Python, 0 on success, 1 on an
	// exception, the SystemExit code on sys.exit; 124 on timeout; 137 when
	// killed (for memory or otherwise).
	ExitCode int `json:"exit_code"`
	// Error is the Python exception, nil if none.
	Error *ExecError `json:"error,omitempty"`
	// ReturnValue is the repr of the final expression statement, if the code
	// ended with one whose value was not None.
	ReturnValue *string `json:"return_value,omitempty"`
	// TimedOut reports that the timeout stopped the execution.
	TimedOut bool `json:"timed_out"`
	// OOMKilled reports that the execution was killed for exceeding the
	// memory limit.
	OOMKilled bool `json:"oom_killed"`
	// StdoutTruncated and StderrTruncated report that output beyond the
	// limit was dropped.
	StdoutTruncated bool `json:"stdout_truncated"`
	StderrTruncated bool `json:"stderr_truncated"`
	// Duration is the wall time of the execution inside the sandbox.
	Duration time.Duration `json:"-"`
	// Notes carry warnings about the session, e.g. that the interpreter was
	// restarted and which variables were restored.
	Notes []string `json:"notes,omitempty"`
	// Warning is set by providers that do not isolate the code, e.g.
	// "Executed in mock mode - no isolation!".
	Warning string `json:"warning,omitempty"`
}

// Truncated reports whether either stream was truncated.
func (r *ExecResult) Truncated() bool { return r.StdoutTruncated || r.StderrTruncated }

// ErrorTraceback returns the traceback text in TinyAgent's form: the
// traceback of an exception, "Syntax error: ..." for a syntax error, the
// timeout message, or "" when the code succeeded.
func (r *ExecResult) ErrorTraceback() string {
	switch {
	case r.Error == nil:
		return ""
	case r.Error.Traceback != "":
		return r.Error.Traceback
	default:
		return r.Error.Name + ": " + r.Error.Value
	}
}
