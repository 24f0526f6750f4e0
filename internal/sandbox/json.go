package sandbox

import (
	"encoding/json"
	"time"
)

// resultJSON is the wire form of an ExecResult, shared by the CLI's --json
// and the HTTP API. Output bytes that are not valid UTF-8 are replaced by
// U+FFFD in this form; the Go API keeps the exact bytes.
type resultJSON struct {
	Stdout          string     `json:"stdout"`
	Stderr          string     `json:"stderr"`
	ExitCode        int        `json:"exit_code"`
	Error           *ExecError `json:"error"`
	ErrorTraceback  *string    `json:"error_traceback"`
	ReturnValue     *string    `json:"return_value"`
	TimedOut        bool       `json:"timed_out"`
	OOMKilled       bool       `json:"oom_killed"`
	DurationMS      float64    `json:"duration_ms"`
	Truncated       bool       `json:"truncated"`
	StdoutTruncated bool       `json:"stdout_truncated"`
	StderrTruncated bool       `json:"stderr_truncated"`
	Notes           []string   `json:"notes,omitempty"`
	Warning         string     `json:"warning,omitempty"`
	// Rich outputs: absent when there are none and nothing was dropped,
	// so results of code that displays nothing keep their old form.
	Outputs          []Output `json:"outputs,omitempty"`
	OutputsTruncated bool     `json:"outputs_truncated,omitempty"`
}

// MarshalJSON encodes the result with snake_case fields, the output as
// strings, the duration in milliseconds and TinyAgent's error_traceback.
func (r ExecResult) MarshalJSON() ([]byte, error) {
	w := resultJSON{
		Stdout:           string(r.Stdout),
		Stderr:           string(r.Stderr),
		ExitCode:         r.ExitCode,
		Error:            r.Error,
		ReturnValue:      r.ReturnValue,
		TimedOut:         r.TimedOut,
		OOMKilled:        r.OOMKilled,
		DurationMS:       float64(r.Duration) / float64(time.Millisecond),
		Truncated:        r.Truncated(),
		StdoutTruncated:  r.StdoutTruncated,
		StderrTruncated:  r.StderrTruncated,
		Notes:            r.Notes,
		Warning:          r.Warning,
		Outputs:          r.Outputs,
		OutputsTruncated: r.OutputsTruncated,
	}
	if tb := r.ErrorTraceback(); tb != "" {
		w.ErrorTraceback = &tb
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes the form MarshalJSON produces.
func (r *ExecResult) UnmarshalJSON(b []byte) error {
	var w resultJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = ExecResult{
		Stdout:           []byte(w.Stdout),
		Stderr:           []byte(w.Stderr),
		ExitCode:         w.ExitCode,
		Error:            w.Error,
		ReturnValue:      w.ReturnValue,
		TimedOut:         w.TimedOut,
		OOMKilled:        w.OOMKilled,
		Duration:         time.Duration(w.DurationMS * float64(time.Millisecond)),
		StdoutTruncated:  w.StdoutTruncated,
		StderrTruncated:  w.StderrTruncated,
		Notes:            w.Notes,
		Warning:          w.Warning,
		Outputs:          w.Outputs,
		OutputsTruncated: w.OutputsTruncated,
	}
	return nil
}

// specJSON adds the seconds form of the timeout to Spec's JSON.
type specJSON struct {
	specAlias
	TimeoutSeconds float64 `json:"timeout,omitempty"`
}

type specAlias Spec // no methods: avoids recursion

// MarshalJSON encodes the spec with its timeout in seconds.
func (s Spec) MarshalJSON() ([]byte, error) {
	return json.Marshal(specJSON{specAlias: specAlias(s), TimeoutSeconds: s.Timeout.Seconds()})
}

// UnmarshalJSON decodes what MarshalJSON produces.
func (s *Spec) UnmarshalJSON(b []byte) error {
	var w specJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Spec(w.specAlias)
	s.Timeout = time.Duration(w.TimeoutSeconds * float64(time.Second))
	return nil
}
