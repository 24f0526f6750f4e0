// Package session manages the live sandboxes of a Warden service on top of
// one sandbox.Provider: a registry with per-sandbox bookkeeping (created,
// last used, executions, busy), a limit on live sandboxes, destruction of
// sandboxes idle longer than their idle timeout, and a graceful shutdown
// that finishes or cancels running executions and removes every sandbox.
//
// A Manager is safe for concurrent use. Executions in one sandbox are
// serialised by the provider (they queue, never interleave).
package session

import (
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Mode is how a service isolates code: the states of the seed's Docker
// integration.
type Mode string

const (
	ModeDocker          = Mode(sandbox.ProviderDocker)
	ModeBubblewrap      = Mode(sandbox.ProviderBubblewrap)
	ModeSeatbelt        = Mode(sandbox.ProviderSeatbelt)
	ModeForkServer      = Mode(sandbox.ProviderForkServer)
	ModeMock       Mode = "mock"
	ModeDisabled   Mode = "disabled"
)

// ModeOf returns the mode a provider gives a service: mock when it does
// not isolate, else its name (docker, bubblewrap, seatbelt); disabled for
// nil.
func ModeOf(p sandbox.Provider) Mode {
	switch {
	case p == nil:
		return ModeDisabled
	case p.Capabilities().Isolation == sandbox.IsolationNone:
		return ModeMock
	}
	return Mode(p.Name())
}

// MockWarning is the status warning of a service running unisolated code.
const MockWarning = "Running in MOCK mode - NO SECURITY ISOLATION"

// Info describes a live sandbox as the service reports it.
type Info struct {
	sandbox.Info
	// Status is "running" for every live sandbox.
	Status             string    `json:"status"`
	Image              string    `json:"image"`
	CreatedAt          time.Time `json:"created_at"`
	LastUsedAt         time.Time `json:"last_used_at"`
	IdleTimeoutSeconds float64   `json:"idle_timeout_seconds"`
	Executions         int64     `json:"executions"`
	Busy               bool      `json:"busy"`
}

// DestroyReason says why a sandbox was destroyed.
type DestroyReason string

// Destroy reasons.
const (
	DestroyDeleted  DestroyReason = "deleted"  // a client deleted it
	DestroyIdle     DestroyReason = "idle"     // its idle timeout passed
	DestroyShutdown DestroyReason = "shutdown" // the manager closed
)

// DestroyReasons are all destroy reasons, for metrics that list them
// before they happen.
func DestroyReasons() []DestroyReason {
	return []DestroyReason{DestroyDeleted, DestroyIdle, DestroyShutdown}
}

// ExecOutcome classifies an execution for metrics.
type ExecOutcome string

// Execution outcomes.
const (
	OutcomeOK      ExecOutcome = "ok"
	OutcomeError   ExecOutcome = "error" // non-zero exit or exception
	OutcomeTimeout ExecOutcome = "timeout"
	OutcomeOOM     ExecOutcome = "oom"
	OutcomeFailed  ExecOutcome = "failed" // the execution could not run
)

// ExecOutcomes are all execution outcomes.
func ExecOutcomes() []ExecOutcome {
	return []ExecOutcome{OutcomeOK, OutcomeError, OutcomeTimeout, OutcomeOOM, OutcomeFailed}
}

// Observer receives lifecycle events, for metrics. Methods must not block.
type Observer interface {
	SandboxCreated()
	SandboxDestroyed(reason DestroyReason)
	// Executed is called after each execution.
	Executed(lang sandbox.Language, outcome ExecOutcome, d time.Duration)
}

// Outcome classifies an execution for metrics.
func Outcome(r sandbox.ExecResult, err error) ExecOutcome {
	switch {
	case err != nil && r.Stdout == nil:
		return OutcomeFailed
	case r.TimedOut:
		return OutcomeTimeout
	case r.OOMKilled:
		return OutcomeOOM
	case r.ExitCode != 0 || r.Error != nil:
		return OutcomeError
	}
	return OutcomeOK
}
