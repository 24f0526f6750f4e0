package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/provider/docker"
)

// dockerReport is the Docker part of `warden doctor`: what the probe
// found, and what to do about what failed.
type dockerReport struct {
	*docker.Probe
	// Remedies are the commands or actions that would fix what failed.
	Remedies []string `json:"remedies,omitempty"`
}

func newDockerReport(p *docker.Probe) *dockerReport {
	if p == nil {
		return nil
	}
	return &dockerReport{Probe: p, Remedies: provider.DockerRemedies(*p)}
}

// text renders the report as `warden doctor` prints it: a summary line,
// one line per check marked ✓ or ✗, the daemon's warnings, then the
// remedies.
func (r *dockerReport) text() string {
	p := r.Probe
	var b strings.Builder
	switch {
	case p.Available:
		fmt.Fprintf(&b, "Docker: available: engine %s, API %s at %s (%v)\n",
			orUnknown(p.Version), orUnknown(p.APIVersion), p.Host, p.Elapsed.Round(time.Millisecond))
	default:
		attempts := fmt.Sprintf("%d attempts", p.Attempts)
		if p.Attempts == 1 {
			attempts = "1 attempt"
		}
		fmt.Fprintf(&b, "Docker: %s after %s (%v)\n", p.Status, attempts, p.Elapsed.Round(time.Millisecond))
	}
	for _, c := range p.Checks {
		mark := "✗"
		if c.OK {
			mark = "✓"
		}
		fmt.Fprintf(&b, "  %s %s: %s\n", mark, c.Name, c.Detail)
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "  ! daemon warning: %s\n", w)
	}
	if p.Error != "" && p.Available {
		fmt.Fprintf(&b, "  error: %s\n", p.Error)
	}
	if len(r.Remedies) > 0 {
		b.WriteString("To fix:\n")
		for _, rem := range r.Remedies {
			fmt.Fprintf(&b, "  - %s\n", rem)
		}
	}
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
