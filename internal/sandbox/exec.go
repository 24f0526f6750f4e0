package sandbox

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
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
	// OnDisplay, if set, is called with each rich output of a Python
	// execution as it happens, from the goroutine that calls OnOutput and
	// in order with the output chunks (what the code printed before a
	// display() arrives before it). Only outputs that ExecResult.Outputs
	// keeps are delivered; the callee may retain o.
	OnDisplay func(o Output)
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
	return ValidateWorkdir(r.Workdir)
}

// ValidateWorkdir checks a working directory inside a sandbox: a relative
// one is taken under the workspace and may not climb out of it with "..";
// an absolute one is taken as it is (it names the sandbox's own
// filesystem, never the host's).
func ValidateWorkdir(dir string) error {
	switch {
	case strings.IndexByte(dir, 0) >= 0:
		return fmt.Errorf("workdir contains a NUL byte: %w", ErrInvalid)
	case dir == "" || path.IsAbs(dir):
		return nil
	}
	if c := path.Clean(dir); c == ".." || strings.HasPrefix(c, "../") {
		return fmt.Errorf("workdir %q leaves the workspace; give an absolute path for a directory outside it: %w", dir, ErrInvalid)
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
	// Outputs are the rich outputs of a Python execution, in the order the
	// code made them: one per object given to display(), per matplotlib
	// figure shown (plt.show(), or still open when the cell ends), and an
	// OutputResult when the cell's final expression has a rich
	// representation (ReturnValue still carries its repr). Plain values
	// give no output. Nil when there are none, and for shell.
	Outputs []Output `json:"outputs,omitempty"`
	// OutputsTruncated reports that outputs were dropped: beyond
	// MaxOutputs, beyond Spec.OutputLimit bytes (counted with
	// [Output.Size]; everything after the first output that does not fit
	// is dropped, so Outputs is a prefix), or malformed.
	OutputsTruncated bool `json:"outputs_truncated,omitempty"`
}

// Output types.
const (
	// OutputDisplay is an output made during the execution: display(),
	// plt.show(), or a matplotlib figure still open at its end.
	OutputDisplay = "display"
	// OutputResult is the rich form of the final expression's value; at
	// most one per execution, after the code's display outputs (only
	// figures still open when the cell ends come after it).
	OutputResult = "result"
)

// Bounds on rich outputs, enforced on what a sandbox sends.
const (
	// MaxOutputs is the number of outputs one execution keeps.
	MaxOutputs = 1000
	// MaxOutputTypes is the number of MIME types in one output.
	MaxOutputTypes = 32
	// MaxMIMETypeLength bounds the length of a MIME type name.
	MaxMIMETypeLength = 127
)

// Output is one rich output, as Jupyter's display_data and
// execute_result messages (and E2B's results) carry them.
type Output struct {
	// Type is OutputDisplay or OutputResult.
	Type string `json:"type"`
	// Data maps MIME types ("text/plain", "text/html", "image/png", ...)
	// to the content in that type: text for text types, standard base64
	// (no line breaks) for binary ones (see [IsBinaryMIME]), and JSON text
	// for application/json and "+json" types. "text/plain" holds the repr
	// and is present unless the code's own _repr_mimebundle_ or display
	// include/exclude arguments left it out. Never empty.
	Data map[string]string `json:"data"`
}

// Size is what an output counts against the output limit: the bytes of
// its MIME type names and contents, as sent (base64 for binary types).
func (o Output) Size() int {
	n := 0
	for k, v := range o.Data {
		n += len(k) + len(v)
	}
	return n
}

// Validate checks an output's shape: a known type, 1 to MaxOutputTypes
// MIME types with well-formed names (lowercase type/subtype of letters,
// digits and ".+-", at most MaxMIMETypeLength bytes), and valid base64
// for binary types. Errors wrap ErrInvalid.
func (o Output) Validate() error {
	if o.Type != OutputDisplay && o.Type != OutputResult {
		return fmt.Errorf("output type %.40q is not %q or %q: %w", o.Type, OutputDisplay, OutputResult, ErrInvalid)
	}
	if len(o.Data) == 0 || len(o.Data) > MaxOutputTypes {
		return fmt.Errorf("output has %d MIME types, want 1 to %d: %w", len(o.Data), MaxOutputTypes, ErrInvalid)
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(o.Data)) {
		v := o.Data[k]
		switch {
		case !validMIMEType(k):
			errs = append(errs, fmt.Errorf("MIME type %.140q is malformed", k))
		case IsBinaryMIME(k):
			// The decoder skips line breaks, even in strict mode.
			if _, err := base64.StdEncoding.Strict().DecodeString(v); err != nil || strings.ContainsAny(v, "\r\n") {
				errs = append(errs, fmt.Errorf("%s content is not base64 on one line", k))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", err, ErrInvalid)
	}
	return nil
}

// validMIMEType reports whether s is type/subtype in lowercase: letters
// for the type; letters, digits and ".+-" for the subtype.
func validMIMEType(s string) bool {
	if len(s) > MaxMIMETypeLength {
		return false
	}
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || typ == "" || sub == "" {
		return false
	}
	for i := 0; i < len(typ); i++ {
		if c := typ[i]; c < 'a' || c > 'z' {
			return false
		}
	}
	for i := 0; i < len(sub); i++ {
		c := sub[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '.' && c != '+' && c != '-' {
			return false
		}
	}
	return true
}

// IsBinaryMIME reports whether content of MIME type mime is binary, and
// so base64 in [Output.Data]: image types but SVG, audio, video,
// application/pdf and application/octet-stream.
func IsBinaryMIME(mime string) bool {
	typ, _, _ := strings.Cut(mime, "/")
	switch {
	case typ == "image":
		return mime != "image/svg+xml"
	case typ == "audio", typ == "video":
		return true
	default:
		return mime == "application/pdf" || mime == "application/octet-stream"
	}
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
