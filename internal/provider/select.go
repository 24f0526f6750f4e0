// Package provider chooses the sandbox provider a Warden service runs on.
// It is wiring only: it probes and opens the concrete providers and
// reports what it tried and why, which `warden serve` logs and reports in
// its status and `warden doctor` prints. It is the one place, with cmd/,
// that names concrete providers.
//
// # Selection rules
//
// [Select] applies these rules to the SANDBOX__* settings:
//
//  1. SANDBOX__ENABLED=false: mode "disabled", nothing is probed.
//  2. SANDBOX__PROVIDER=local: mode "mock" with the local provider, which
//     isolates nothing. It requires SANDBOX__MOCK_MODE=true (an error
//     otherwise, as configuration validation also says), and an error if
//     the provider cannot start (no python3).
//  3. SANDBOX__PROVIDER=auto tries, in order, docker (only when
//     SANDBOX__DOCKER_AUTO_DETECT is true), bubblewrap, and then local but
//     only when SANDBOX__MOCK_MODE=true. The first that works is used;
//     when none does, the mode is "disabled": the service runs, answers
//     health and status, and refuses to create sandboxes.
//  4. SANDBOX__PROVIDER=docker or bubblewrap tries that provider first. If
//     it is unavailable and SANDBOX__PROVIDER_FALLBACK is true, the rest
//     of the auto order follows (docker still only with
//     SANDBOX__DOCKER_AUTO_DETECT, local only with SANDBOX__MOCK_MODE),
//     ending in "disabled" as for auto. With the fallback off, Select fails,
//     as the seed system did ("docker provider is not supported on this
//     system: ...").
//  5. SANDBOX__DOCKER_REQUIRED=true: whenever Docker should be used and is
//     not usable, Select fails with the probe's error and its remedies,
//     so the service does not start.
//
// Docker is probed with docker.Detect, honouring SANDBOX__DOCKER_HOST,
// SANDBOX__DOCKER_CONNECTION_TIMEOUT (per attempt) and
// SANDBOX__DOCKER_MAX_RETRIES, then opened with docker.New. The bubblewrap
// provider is not implemented in this version: its attempt always fails,
// saying whether bwrap is installed. Nothing ever falls back to the
// unisolated local provider unless SANDBOX__MOCK_MODE is true.
package provider

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

// Names of the providers in [Attempt.Name].
const (
	nameDocker     = "docker"
	nameBubblewrap = "bubblewrap"
	nameLocal      = "local"
)

// Attempt is one provider Select tried, or considered and skipped.
type Attempt struct {
	// Name is the provider: docker, bubblewrap or local.
	Name string `json:"name"`
	// OK reports that the provider was opened and is the one selected.
	OK bool `json:"ok"`
	// Reason says, in one line, what was found: why the provider failed
	// or was skipped, or what it runs on.
	Reason string `json:"reason"`
}

// Selection is the outcome of [Select].
type Selection struct {
	// Provider is the opened provider, nil when Mode is disabled. The
	// caller owns it and must Close it.
	Provider sandbox.Provider
	// Mode is docker, bubblewrap, mock or disabled.
	Mode session.Mode
	// Reason says in one line why this mode was chosen.
	Reason string
	// Warning is session.MockWarning in mock mode, else "".
	Warning string
	// Tried lists, in order, the providers tried or skipped and why.
	Tried []Attempt
	// Docker is the Docker probe, when Docker was probed.
	Docker *docker.Probe
}

// Select chooses and opens the sandbox provider cfg asks for, following
// the rules in the package documentation. Failing to find a provider is
// not an error, the mode is then "disabled"; Select fails only when the
// configuration demands something it cannot have (SANDBOX__DOCKER_REQUIRED,
// an explicit provider without fallback, local without mock mode), or
// when ctx ends. With an error it still returns what it tried, for
// reporting; Provider is then nil. Errors wrap sandbox.ErrUnavailable
// (Docker required, or requested without fallback, and not usable),
// sandbox.ErrUnsupported (bubblewrap requested without fallback),
// sandbox.ErrDisabled (local without mock mode), sandbox.ErrInvalid (an
// unknown provider name) or ctx's error.
//
// Select may take up to (retries+1) connection timeouts, plus backoff,
// to probe Docker. log is handed to the providers; Select itself logs
// each attempt at debug level and leaves reporting the outcome to the
// caller.
func Select(ctx context.Context, cfg config.Config, log *slog.Logger) (Selection, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &selector{cfg: cfg.Sandbox, log: log}
	sel, err := s.run(ctx)
	sel.Tried = s.tried
	sel.Docker = s.probe
	if err != nil {
		return Selection{Tried: s.tried, Docker: s.probe}, err
	}
	if sel.Mode == session.ModeMock {
		sel.Warning = session.MockWarning
	}
	return sel, nil
}

// selector carries one run of Select.
type selector struct {
	cfg   config.SandboxConfig
	log   *slog.Logger
	tried []Attempt
	probe *docker.Probe
}

func (s *selector) attempt(name string, ok bool, reason string) {
	s.tried = append(s.tried, Attempt{Name: name, OK: ok, Reason: reason})
	s.log.Debug("sandbox provider attempt", "provider", name, "ok", ok, "reason", reason)
}

func (s *selector) run(ctx context.Context) (Selection, error) {
	c := s.cfg
	if !c.Enabled {
		return Selection{Mode: session.ModeDisabled, Reason: "sandboxes are disabled (SANDBOX__ENABLED=false)"}, nil
	}
	switch c.Provider {
	case config.ProviderLocal:
		if !c.MockMode {
			s.attempt(nameLocal, false, "not allowed: SANDBOX__MOCK_MODE is false")
			return Selection{}, fmt.Errorf("SANDBOX__PROVIDER=local runs code with no isolation and requires SANDBOX__MOCK_MODE=true: %w", sandbox.ErrDisabled)
		}
		p, err := s.tryLocal()
		if err != nil {
			return Selection{}, fmt.Errorf("SANDBOX__PROVIDER=local: %w", err)
		}
		return Selection{Provider: p, Mode: session.ModeMock,
			Reason: "SANDBOX__PROVIDER=local with SANDBOX__MOCK_MODE=true: code runs on this host with NO isolation (" + p.Python() + ")"}, nil

	case config.ProviderDocker:
		if sel, ok, err := s.docker(ctx); ok || err != nil {
			return sel, err
		}
		if !c.ProviderFallback {
			return Selection{}, fmt.Errorf("docker provider is not supported on this system: %s; Docker must be installed and running, or set SANDBOX__PROVIDER_FALLBACK=true (run `warden doctor` for remedies): %w",
				s.last().Reason, sandbox.ErrUnavailable)
		}
		s.bubblewrap()
		return s.fallbackEnd("docker was requested but is unavailable")

	case config.ProviderBubblewrap:
		s.bubblewrap()
		if !c.ProviderFallback {
			return Selection{}, fmt.Errorf("bubblewrap provider is not supported on this system: %s; set SANDBOX__PROVIDER=docker, or SANDBOX__PROVIDER_FALLBACK=true: %w",
				s.last().Reason, sandbox.ErrUnsupported)
		}
		if c.DockerAutoDetect {
			if sel, ok, err := s.docker(ctx); ok || err != nil {
				return sel, err
			}
		} else {
			s.attempt(nameDocker, false, "skipped: SANDBOX__DOCKER_AUTO_DETECT is false")
		}
		return s.fallbackEnd("bubblewrap was requested but is unavailable")

	case config.ProviderAuto, "":
		if c.DockerAutoDetect {
			if sel, ok, err := s.docker(ctx); ok || err != nil {
				return sel, err
			}
		} else {
			s.attempt(nameDocker, false, "skipped: SANDBOX__DOCKER_AUTO_DETECT is false")
			if c.DockerRequired {
				return Selection{}, fmt.Errorf("SANDBOX__DOCKER_REQUIRED=true, but SANDBOX__DOCKER_AUTO_DETECT=false stops Docker from being probed: %w", sandbox.ErrUnavailable)
			}
		}
		s.bubblewrap()
		return s.fallbackEnd("no isolating provider is available")

	default:
		return Selection{}, fmt.Errorf("unknown provider %q (want auto, docker, bubblewrap or local): %w", c.Provider, sandbox.ErrInvalid)
	}
}

// docker probes and opens Docker. ok reports success; err is set when the
// selection must stop: Docker is required, or ctx ended.
func (s *selector) docker(ctx context.Context) (sel Selection, ok bool, err error) {
	c := s.cfg
	retries := c.DockerMaxRetries
	if retries <= 0 {
		retries = -1 // docker.DetectOptions reads 0 as "the default, 3"
	}
	probe := docker.Detect(ctx, docker.DetectOptions{Host: c.DockerHost, Timeout: c.DockerConnectionTimeout, Retries: retries})
	s.probe = &probe
	if err := ctx.Err(); err != nil {
		s.attempt(nameDocker, false, probe.Status+": "+probe.Error)
		return Selection{}, false, fmt.Errorf("selecting a sandbox provider: %w", err)
	}
	if !probe.Available {
		s.attempt(nameDocker, false, probe.Status+": "+probe.Error)
		return Selection{}, false, s.dockerRequired(probe.Error, probe.Remedies)
	}
	p, err := docker.New(ctx, docker.Options{
		Host:          c.DockerHost,
		WorkspaceRoot: c.WorkspaceRoot,
		Timeout:       c.DockerConnectionTimeout,
		Log:           s.log,
	})
	if err != nil {
		s.attempt(nameDocker, false, err.Error())
		if cerr := ctx.Err(); cerr != nil {
			return Selection{}, false, fmt.Errorf("selecting a sandbox provider: %w", cerr)
		}
		return Selection{}, false, s.dockerRequired(err.Error(), nil)
	}
	why := fmt.Sprintf("Docker Engine %s (API %s) at %s", probe.Version, probe.APIVersion, probe.Host)
	s.attempt(nameDocker, true, why)
	return Selection{Provider: p, Mode: session.ModeDocker, Reason: "docker: " + why}, true, nil
}

// dockerRequired is the start-up error when Docker is required and not
// usable, nil when it is not required.
func (s *selector) dockerRequired(problem string, remedies []string) error {
	if !s.cfg.DockerRequired {
		return nil
	}
	msg := "Docker is required (SANDBOX__DOCKER_REQUIRED=true) but not usable: " + problem
	if len(remedies) > 0 {
		msg += "; to fix: " + strings.Join(remedies, "; ")
	}
	return fmt.Errorf("%s (run `warden doctor` for details): %w", msg, sandbox.ErrUnavailable)
}

// bubblewrap records the bubblewrap attempt: not implemented in this
// version.
func (s *selector) bubblewrap() {
	reason := "not implemented in this version"
	if path, err := exec.LookPath("bwrap"); err == nil {
		reason += " (bwrap is installed at " + path + ")"
	} else {
		reason += " (and bwrap is not installed)"
	}
	s.attempt(nameBubblewrap, false, reason)
}

// tryLocal opens the local provider, enabled. The caller has checked that
// mock mode allows it.
func (s *selector) tryLocal() (*local.Provider, error) {
	p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: s.cfg.WorkspaceRoot, Log: s.log})
	if err != nil {
		s.attempt(nameLocal, false, err.Error())
		return nil, err
	}
	s.attempt(nameLocal, true, "no isolation: code runs as host processes with "+p.Python())
	return p, nil
}

// fallbackEnd ends a fallback chain: the local provider if mock mode
// allows it, else disabled. why says why the chain got this far.
func (s *selector) fallbackEnd(why string) (Selection, error) {
	tried := s.summary()
	if !s.cfg.MockMode {
		s.attempt(nameLocal, false, "not allowed: SANDBOX__MOCK_MODE is false")
		return Selection{Mode: session.ModeDisabled, Reason: why + " (" + tried + ") and SANDBOX__MOCK_MODE is false: sandboxes are disabled"}, nil
	}
	p, err := s.tryLocal()
	if err != nil {
		return Selection{Mode: session.ModeDisabled, Reason: why + " (" + s.summary() + "): sandboxes are disabled"}, nil
	}
	return Selection{Provider: p, Mode: session.ModeMock,
		Reason: why + " (" + tried + ") and SANDBOX__MOCK_MODE=true: code runs on this host with NO isolation"}, nil
}

// summary renders the failed attempts so far as "name: reason; ...".
func (s *selector) summary() string {
	parts := make([]string, 0, len(s.tried))
	for _, a := range s.tried {
		if !a.OK {
			parts = append(parts, a.Name+": "+a.Reason)
		}
	}
	return strings.Join(parts, "; ")
}

func (s *selector) last() Attempt {
	if len(s.tried) == 0 {
		return Attempt{}
	}
	return s.tried[len(s.tried)-1]
}
