package server

import (
	"maps"
	"slices"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

// SandboxOf is the wire form of a live sandbox.
func SandboxOf(info session.Info) api.Sandbox {
	return api.Sandbox{
		ID:                 string(info.ID),
		SandboxID:          string(info.ID),
		Provider:           info.Provider,
		Name:               info.Name,
		Workspace:          info.Workspace,
		Spec:               SpecOf(info.Spec),
		Status:             info.Status,
		Image:              info.Image,
		CreatedAt:          info.CreatedAt,
		LastUsedAt:         info.LastUsedAt,
		IdleTimeoutSeconds: info.IdleTimeoutSeconds,
		Executions:         info.Executions,
		Busy:               info.Busy,
	}
}

// SpecOf is the wire form of a spec. Environment variables are left out:
// their values are often secrets, and only the env routes show them.
func SpecOf(s sandbox.Spec) api.Spec {
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
		AutoPullImage:       s.AutoPullImage,
		Labels:              maps.Clone(s.Labels),
	}
	for _, m := range s.Mounts {
		w.Mounts = append(w.Mounts, api.Mount{Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	return w
}

// ExecResultOf is the wire form of a result, shared by the API and the
// CLI's --json. Output that is not valid UTF-8 stays as it is in the Go
// value; encoding/json writes each invalid byte as U+FFFD.
func ExecResultOf(r sandbox.ExecResult) api.ExecResult {
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
		w.Outputs = append(w.Outputs, OutputOf(o))
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

// OutputOf is the wire form of a rich output.
func OutputOf(o sandbox.Output) api.Output {
	return api.Output{Type: o.Type, Data: maps.Clone(o.Data)}
}
