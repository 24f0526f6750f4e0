// Package wire converts Warden's internal types to the public wire types
// of package api: the one place where a spec or a result takes the form
// clients see, shared by the HTTP server, the CLI's --json and the
// providers' conformance suite. It imports nothing of Warden's beyond
// package sandbox, so that every layer may use it.
package wire

import (
	"maps"
	"slices"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Spec is the wire form of a spec. Environment variables are left out:
// their values are often secrets, and only the env routes show them.
func Spec(s sandbox.Spec) api.Spec {
	w := api.Spec{
		Image:               s.Image,
		MemoryLimit:         s.MemoryLimit,
		CPULimit:            s.CPULimit,
		PidsLimit:           s.PidsLimit,
		EnableNetwork:       s.Network,
		WorkspaceDir:        s.WorkspaceDir,
		WorkspacePath:       s.WorkspacePath,
		ContainerNamePrefix: s.NamePrefix,
		TimeoutSeconds:      s.Timeout.Seconds(),
		OutputLimit:         s.OutputLimit,
		TmpSize:             s.TmpSize,
		WorkspaceSize:       s.WorkspaceSize,
		AutoPullImage:       s.AutoPullImage,
		Labels:              maps.Clone(s.Labels),
	}
	for _, m := range s.Mounts {
		w.Mounts = append(w.Mounts, api.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	return w
}

// ExecResult is the wire form of a result, shared by the API and the
// CLI's --json. Output that is not valid UTF-8 stays as it is in the Go
// value; encoding/json writes each invalid byte as U+FFFD.
func ExecResult(r sandbox.ExecResult) api.ExecResult {
	w := api.ExecResult{
		Stdout:          string(r.Stdout),
		Stderr:          string(r.Stderr),
		ExitCode:        r.ExitCode,
		Success:         r.ExitCode == 0 && r.Error == nil && !r.TimedOut && !r.OOMKilled,
		ReturnValue:     r.ReturnValue,
		TimedOut:        r.TimedOut,
		OOMKilled:       r.OOMKilled,
		DurationMS:      float64(r.Duration) / float64(time.Millisecond),
		ExecutionTime:   r.Duration.Seconds(),
		Truncated:       r.Truncated(),
		StdoutTruncated: r.StdoutTruncated,
		StderrTruncated: r.StderrTruncated,
		Notes:           slices.Clone(r.Notes),
		Warning:         r.Warning,
	}
	for _, o := range r.Outputs {
		w.Outputs = append(w.Outputs, Output(o))
	}
	w.OutputsTruncated = r.OutputsTruncated
	if e := r.Error; e != nil {
		w.Error = &api.ExecError{Name: e.Name, Value: e.Value, Traceback: e.Traceback, Line: e.Line}
	}
	if tb := r.ErrorTraceback(); tb != "" {
		w.ErrorTraceback = &tb
	}
	return w
}

// Output is the wire form of a rich output.
func Output(o sandbox.Output) api.Output {
	return api.Output{Type: o.Type, Data: maps.Clone(o.Data)}
}

// Process is the wire form of a background process.
func Process(p sandbox.ProcessInfo) api.Process {
	w := api.Process{
		PID: p.PID, Tag: p.Tag, Command: slices.Clone(p.Argv), Workdir: p.Workdir, Stdin: p.Stdin,
		Running: p.Running, Signal: p.Signal, TimedOut: p.TimedOut, Error: p.Error, StartedAt: p.StartedAt,
	}
	if !p.Running {
		code := p.ExitCode
		w.ExitCode = &code
		if !p.EndedAt.IsZero() {
			end := p.EndedAt
			w.EndedAt = &end
		}
	}
	return w
}

// ProcessEvent is the wire form of a process event.
func ProcessEvent(e sandbox.ProcessEvent) api.ProcessEvent {
	w := api.ProcessEvent{Data: e.Data}
	switch e.Kind {
	case sandbox.ProcessStdout:
		w.Type = api.ProcessStdout
	case sandbox.ProcessStderr:
		w.Type = api.ProcessStderr
	case sandbox.ProcessEnd:
		w.Type = api.ProcessEnded
	}
	if e.Info != nil {
		p := Process(*e.Info)
		w.Process = &p
	}
	return w
}
