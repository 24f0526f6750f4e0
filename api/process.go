package api

import "time"

// ProcessStart is the body of POST /sandbox/{id}/processes: a command to
// run in the background, beside the sandbox's Python session.
type ProcessStart struct {
	// Command is an argv, run without a shell; or Code, a command line run
	// with bash -c. Exactly one is given.
	Command []string `json:"command,omitempty"`
	Code    string   `json:"code,omitempty"`
	// EnvironmentVariables are added to the sandbox's for this process.
	EnvironmentVariables map[string]string `json:"environment_variables,omitempty"`
	// Workdir is the working directory, relative to the workspace (or
	// absolute inside the sandbox); default the workspace.
	Workdir string `json:"workdir,omitempty"`
	// Stdin keeps standard input open for POST .../stdin; without it stdin
	// is /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// Tag is the caller's label, reported back.
	Tag string `json:"tag,omitempty"`
	// Timeout, in seconds, kills the process after that long; absent
	// means no limit.
	Timeout *float64 `json:"timeout,omitempty"`
}

// Process describes a background process.
type Process struct {
	// PID is its process id inside the sandbox; it names the process in
	// the other routes.
	PID     int      `json:"pid"`
	Tag     string   `json:"tag,omitempty"`
	Command []string `json:"command"` // as run: a command line is bash -c LINE
	Workdir string   `json:"workdir"`
	Stdin   bool     `json:"stdin"`
	// Running is true until it exited and its output was delivered.
	Running bool `json:"running"`
	// ExitCode is null while it runs; 128+N when killed by signal N.
	ExitCode *int `json:"exit_code"`
	Signal   int  `json:"signal,omitempty"`
	TimedOut bool `json:"timed_out,omitempty"`
	// Error says why it ended without an exit status of its own.
	Error     string     `json:"error,omitempty"`
	StartedAt time.Time  `json:"started_at"`
	EndedAt   *time.Time `json:"ended_at,omitempty"`
}

// ProcessList is the answer of GET /sandbox/{id}/processes.
type ProcessList struct {
	Processes []Process `json:"processes"`
}

// Process event types, the event names of a process's event stream.
const (
	// ProcessStarted comes first, with the process as it is.
	ProcessStarted = "start"
	// ProcessStdout and ProcessStderr carry output in Data.
	ProcessStdout = "stdout"
	ProcessStderr = "stderr"
	// ProcessEnded comes last, with the process as it ended.
	ProcessEnded = "end"
)

// ProcessEvent is one event of a process's event stream (its data, with
// the event's name in Type).
type ProcessEvent struct {
	Type string `json:"type"`
	// Data is output, base64 in JSON (the bytes as the process wrote
	// them).
	Data []byte `json:"data,omitempty"`
	// Process is set on the start and end events.
	Process *Process `json:"process,omitempty"`
}

// SignalRequest is the body of POST /sandbox/{id}/processes/{pid}/signal.
type SignalRequest struct {
	// Signal is a name: SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT,
	// SIGUSR1, SIGUSR2, SIGSTOP or SIGCONT.
	Signal string `json:"signal"`
}
