package api

import "time"

// Language selects the interpreter of an execution.
type Language string

const (
	// Python runs code in the sandbox's persistent Python session.
	Python Language = "python"
	// Shell runs a command string with bash -c, or an argv directly.
	Shell Language = "shell"
)

// Stream names an output stream.
type Stream string

const (
	Stdout Stream = "stdout"
	Stderr Stream = "stderr"
)

// ExecuteRequest is the body of POST /sandbox/{id}/execute.
type ExecuteRequest struct {
	// Language is Python (the default when empty) or Shell.
	Language Language `json:"language,omitempty"`
	// Code is the Python source, or a shell command string run with
	// bash -c. Nil means absent: Python requires it.
	Code *string `json:"code,omitempty"`
	// Command is a shell argv, run without a shell unless ShellOperators
	// is set. Shell takes exactly one of Code and Command.
	Command []string `json:"command,omitempty"`
	// ShellOperators runs Command as TinyAgent's execute_shell did: when
	// a token of it is a shell operator (|, ||, &&, ;, &, <, >, >>, 2>&1,
	// ...), the argv becomes one bash command line in which operators
	// stay operators and every other token is quoted. Without operators
	// the argv runs directly, as without the flag.
	ShellOperators bool `json:"shell_operators,omitempty"`
	// Timeout is in seconds; nil means the sandbox's default.
	Timeout *float64 `json:"timeout,omitempty"`
	// Workdir is the shell's working directory, relative to the workspace.
	Workdir string `json:"workdir,omitempty"`
}

// ExecResult is the outcome of one execution. A non-zero exit code, a
// Python exception, a timeout or an out-of-memory kill are results, not
// errors.
type ExecResult struct {
	// Stdout and Stderr hold the output, up to the output limit; bytes
	// that are not valid UTF-8 become U+FFFD.
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// ExitCode: shell, the command's; Python, 0, 1 on an exception, the
	// sys.exit code; 124 on timeout; 137 when killed.
	ExitCode int `json:"exit_code"`
	// Success is true when the code ran to the end with exit code 0: no
	// exception, no timeout, no kill (alias for Agent Platform clients).
	Success bool `json:"success"`
	// Error is the Python exception, nil if none.
	Error *ExecError `json:"error"`
	// ErrorTraceback is the traceback (or "Name: value"), nil if none:
	// TinyAgent's field.
	ErrorTraceback *string `json:"error_traceback"`
	// ReturnValue is the repr of a final expression that is not None.
	ReturnValue *string `json:"return_value"`
	TimedOut    bool    `json:"timed_out"`
	OOMKilled   bool    `json:"oom_killed"`
	// DurationMS is the execution's wall time in milliseconds.
	DurationMS float64 `json:"duration_ms"`
	// ExecutionTime is the same in seconds (alias for Agent Platform
	// clients).
	ExecutionTime float64 `json:"execution_time"`
	// Truncated is StdoutTruncated || StderrTruncated.
	Truncated       bool `json:"truncated"`
	StdoutTruncated bool `json:"stdout_truncated"`
	StderrTruncated bool `json:"stderr_truncated"`
	// Outputs are the rich outputs of a Python cell, in order: figures,
	// display() calls, and a final expression with a rich form.
	Outputs []Output `json:"outputs,omitempty"`
	// OutputsTruncated reports that outputs beyond the output limit were
	// dropped.
	OutputsTruncated bool `json:"outputs_truncated,omitempty"`
	// Notes are remarks about the session, such as an interpreter restart
	// and which variables survived it.
	Notes []string `json:"notes,omitempty"`
	// Warning is set when nothing isolates the code (mock mode).
	Warning string `json:"warning,omitempty"`
}

// Duration returns DurationMS as a duration.
func (r ExecResult) Duration() time.Duration {
	return time.Duration(r.DurationMS * float64(time.Millisecond))
}

// ExecError is an exception raised by Python code.
type ExecError struct {
	// Name is the exception type, such as "ValueError".
	Name string `json:"name"`
	// Value is the exception's message.
	Value string `json:"value"`
	// Traceback is the formatted traceback, as Python prints it.
	Traceback string `json:"traceback"`
	// Line is the line of the submitted code that raised it, 0 if unknown.
	Line int `json:"line,omitempty"`
}

// Output kinds.
const (
	// OutputDisplay is a figure or a display() call.
	OutputDisplay = "display"
	// OutputResult is the final expression of a cell, when it has a rich
	// form (HTML, an image, ...).
	OutputResult = "result"
)

// Output is one rich output of a Python cell, as in Jupyter: the same
// object in several forms, keyed by MIME type ("text/plain", "text/html",
// "image/png", "image/svg+xml", "application/json", "text/markdown",
// "text/latex", ...). Binary forms (image/png, image/jpeg) are base64.
type Output struct {
	// Type is OutputDisplay or OutputResult.
	Type string            `json:"type"`
	Data map[string]string `json:"data"`
}

// OutputEvent is the data of a "stdout" or "stderr" event of a streamed
// execution.
type OutputEvent struct {
	Text string `json:"text"`
}
