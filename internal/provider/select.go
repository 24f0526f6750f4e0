// Package provider chooses the sandbox provider a Warden service runs on.
// It is wiring only: it probes and opens the concrete providers and
// reports what it tried and why, which `warden serve` logs and reports in
// its status and `warden doctor` prints. It is the one place, with cmd/,
// that names concrete providers. It also maps the policy settings to the
// guard every execution passes ([Guard]).
//
// # Selection rules
//
// [Select] applies these rules to the SANDBOX__* settings. The order of
// the local providers is TinyAgent's: seatbelt (macOS), bubblewrap
// (Linux), then docker.
//
//  1. SANDBOX__ENABLED=false: mode "disabled", nothing is probed.
//  2. SANDBOX__PROVIDER=local: mode "mock" with the local provider, which
//     isolates nothing. It requires SANDBOX__MOCK_MODE=true (an error
//     otherwise, as configuration validation also says), and an error if
//     the provider cannot start (no python3).
//  3. SANDBOX__PROVIDER=auto tries seatbelt, bubblewrap and docker (docker
//     only when SANDBOX__DOCKER_AUTO_DETECT is true), then local but only
//     when SANDBOX__MOCK_MODE=true. The first that works is used; when
//     none does, the mode is "disabled" and the reason says "No local
//     provider available. Install Docker or platform-specific sandbox
//     (macOS: sandbox-exec, Linux: bubblewrap)." with what each attempt
//     found: the service runs, answers health and status, and refuses to
//     create sandboxes.
//  4. SANDBOX__PROVIDER=seatbelt, bubblewrap or docker tries that provider
//     first. If it is unavailable and SANDBOX__PROVIDER_FALLBACK is true,
//     the other two follow in the order above (docker only with
//     SANDBOX__DOCKER_AUTO_DETECT), then local only with
//     SANDBOX__MOCK_MODE, ending in "disabled" with the reason "<X>
//     provider is not supported on this system. No suitable fallback
//     found.". With the fallback off, Select fails with TinyAgent's text:
//     "Seatbelt provider is not supported on this system. It requires
//     macOS with sandbox-exec.", "Bubblewrap provider is not supported on
//     this system. It requires Linux with bubblewrap." or "Docker provider
//     is not supported on this system. Docker must be installed and
//     running.", followed by what was found.
//  5. SANDBOX__PROVIDER=forkserver (Linux, root; ADR 0017) and
//     SANDBOX__PROVIDER=kubernetes open that provider or fail, saying
//     why: they are chosen by name only, auto never tries them, and
//     SANDBOX__PROVIDER_FALLBACK does not apply to them.
//  6. SANDBOX__DOCKER_REQUIRED=true makes docker the provider (with auto,
//     docker is tried first and alone): if Docker is not usable, Select
//     fails with the probe's error and its remedies, so the service does
//     not start.
//
// Whatever is selected, [Select] probes the providers after it in the
// order (cheaply, without opening them), so [Selection.Tried] lists every
// provider and whether it could run here: the list of available
// providers, Docker included, and the fork server last (its prerequisites
// only: [forkserver.Check] starts no server). [Open] makes the same choice without those
// probes, for commands that only need a sandbox: with bubblewrap selected
// it never contacts Docker, except to find the runtime image's root
// filesystem when SANDBOX__BWRAP_ROOT is auto.
//
// Docker is probed with docker.Detect, honouring SANDBOX__DOCKER_HOST,
// SANDBOX__DOCKER_CONNECTION_TIMEOUT (per attempt) and
// SANDBOX__DOCKER_MAX_RETRIES, then opened with docker.New. Nothing ever
// falls back to the unisolated local provider unless SANDBOX__MOCK_MODE is
// true.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

// The providers' names, in [Attempt.Name].
const (
	nameSeatbelt   = sandbox.ProviderSeatbelt
	nameBubblewrap = sandbox.ProviderBubblewrap
	nameDocker     = sandbox.ProviderDocker
	nameLocal      = sandbox.ProviderLocal
	nameKubernetes = sandbox.ProviderKubernetes
	nameForkServer = sandbox.ProviderForkServer
)

// localOrder is TinyAgent's order of local providers.
var localOrder = []sandbox.ProviderName{nameSeatbelt, nameBubblewrap, nameDocker}

// unsupported are TinyAgent's errors for a provider requested without
// fallback that cannot run.
var unsupported = map[sandbox.ProviderName]string{
	nameSeatbelt:   "Seatbelt provider is not supported on this system. It requires macOS with sandbox-exec.",
	nameBubblewrap: "Bubblewrap provider is not supported on this system. It requires Linux with bubblewrap.",
	nameDocker:     "Docker provider is not supported on this system. Docker must be installed and running.",
}

// noLocalProvider is TinyAgent's error when no local provider works.
const noLocalProvider = "No local provider available. Install Docker or platform-specific sandbox (macOS: sandbox-exec, Linux: bubblewrap)."

// Attempt is one provider Select tried, probed or skipped.
type Attempt struct {
	// Name is the provider: seatbelt, bubblewrap, docker or local.
	Name sandbox.ProviderName `json:"name"`
	// OK reports that the provider was opened and is the one selected.
	OK bool `json:"ok"`
	// Available reports that the provider can run here, whether or not
	// it was selected.
	Available bool `json:"available"`
	// Reason says, in one line, what was found: why the provider failed
	// or was skipped, or what it runs on.
	Reason string `json:"reason"`
}

// Selection is the outcome of [Select].
type Selection struct {
	// Provider is the opened provider, nil when Mode is disabled. The
	// caller owns it and must Close it. It is not guarded: wrap it with
	// [Guard] before running agent code.
	Provider sandbox.Provider
	// Mode is seatbelt, bubblewrap, docker, mock or disabled.
	Mode session.Mode
	// Reason says in one line why this mode was chosen.
	Reason string
	// Warning is session.MockWarning in mock mode, else "".
	Warning string
	// Tried lists every provider in the order considered: those tried,
	// skipped, and those after the selected one, probed for availability.
	Tried []Attempt
	// Docker is the Docker probe, when Docker was probed.
	Docker *docker.Probe
}

// Available returns the names of the providers that can run here, in
// order.
func (s Selection) Available() []string {
	var out []string
	for _, a := range s.Tried {
		if a.Available {
			out = append(out, string(a.Name))
		}
	}
	return out
}

// opener opens one provider: the provider, a one-line description of what
// it runs on, or why it cannot run.
type opener func(ctx context.Context) (sandbox.Provider, string, error)

// prober says whether a provider could run here, without opening it.
type prober func(ctx context.Context) (bool, string)

// Select chooses and opens the sandbox provider cfg asks for, following
// the rules in the package documentation. Failing to find a provider is
// not an error, the mode is then "disabled"; Select fails only when the
// configuration demands something it cannot have (SANDBOX__DOCKER_REQUIRED,
// an explicit provider without fallback, local without mock mode), or
// when ctx ends. With an error it still returns what it tried, for
// reporting; Provider is then nil. Errors wrap sandbox.ErrUnavailable
// (Docker required, or requested without fallback, and not usable),
// sandbox.ErrUnsupported (seatbelt or bubblewrap requested without
// fallback), sandbox.ErrDisabled (local without mock mode),
// sandbox.ErrInvalid (an unknown provider name) or ctx's error.
//
// Select may take up to (retries+1) connection timeouts, plus backoff,
// to probe Docker. log is handed to the providers; Select itself logs
// each attempt at debug level and leaves reporting the outcome to the
// caller.
func Select(ctx context.Context, cfg config.Config, log *slog.Logger) (Selection, error) {
	return selectWith(ctx, cfg, log, true)
}

// Open is [Select] without probing the providers after the selected one:
// it costs only what opening the selected provider costs, and
// [Selection.Tried] lists only the providers tried.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (Selection, error) {
	return selectWith(ctx, cfg, log, false)
}

func selectWith(ctx context.Context, cfg config.Config, log *slog.Logger, probeRest bool) (Selection, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &selector{cfg: cfg.Sandbox, log: log, probeAll: probeRest, imageNamed: cfg.IsSet("SANDBOX__IMAGE")}
	s.open = map[sandbox.ProviderName]opener{
		nameSeatbelt:   s.openSeatbelt,
		nameBubblewrap: s.openBubblewrap,
		nameDocker:     s.openDocker,
		nameLocal:      s.openLocal,
		nameKubernetes: s.openKubernetes,
		nameForkServer: s.openForkServer,
	}
	s.probeOnly = map[sandbox.ProviderName]prober{
		nameSeatbelt:   s.probeSeatbelt,
		nameBubblewrap: s.probeBubblewrap,
		nameDocker:     s.probeDocker,
		nameLocal:      s.probeLocal,
		nameForkServer: s.probeForkServer,
	}
	return s.selectProvider(ctx)
}

// selector carries one run of Select.
type selector struct {
	cfg       config.SandboxConfig
	log       *slog.Logger
	open      map[sandbox.ProviderName]opener
	probeOnly map[sandbox.ProviderName]prober
	probeAll  bool // probe the providers after the selected one
	// imageNamed: SANDBOX__IMAGE was given, so bubblewrap never runs
	// without that image's root filesystem.
	imageNamed bool

	tried []Attempt
	probe *docker.Probe
	// openErr is the error of the last provider that failed to open.
	openErr error
}

func (s *selector) selectProvider(ctx context.Context) (Selection, error) {
	sel, err := s.run(ctx)
	if err == nil && sel.Provider != nil && s.probeAll {
		s.probeRest(ctx)
	}
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

func (s *selector) attempt(name sandbox.ProviderName, ok, available bool, reason string) {
	s.tried = append(s.tried, Attempt{Name: name, OK: ok, Available: available, Reason: reason})
	s.log.Debug("sandbox provider attempt", "provider", name, "ok", ok, "available", available, "reason", reason)
}

func (s *selector) considered(name sandbox.ProviderName) bool {
	for _, a := range s.tried {
		if a.Name == name {
			return true
		}
	}
	return false
}

// probeRest records, for each provider not yet considered, whether it
// could run here.
func (s *selector) probeRest(ctx context.Context) {
	for _, name := range append(localOrder[:len(localOrder):len(localOrder)], nameLocal, nameForkServer) {
		if s.considered(name) || ctx.Err() != nil {
			continue
		}
		ok, why := s.probeOnly[name](ctx)
		s.attempt(name, false, ok, why)
	}
}

func (s *selector) run(ctx context.Context) (Selection, error) {
	c := s.cfg
	if !c.Enabled {
		return Selection{Mode: session.ModeDisabled, Reason: "sandboxes are disabled (SANDBOX__ENABLED=false)"}, nil
	}
	switch c.Provider {
	case config.ProviderLocal:
		if !c.MockMode {
			s.attempt(nameLocal, false, false, "not allowed: SANDBOX__MOCK_MODE is false")
			return Selection{}, fmt.Errorf("SANDBOX__PROVIDER=local runs code with no isolation and requires SANDBOX__MOCK_MODE=true: %w", sandbox.ErrDisabled)
		}
		sel, ok, err := s.try(ctx, nameLocal)
		if err != nil || !ok {
			return Selection{}, fmt.Errorf("SANDBOX__PROVIDER=local: %s: %w", s.last().Reason, sandbox.ErrUnavailable)
		}
		sel.Reason = "SANDBOX__PROVIDER=local with SANDBOX__MOCK_MODE=true: code runs on this host with NO isolation (" + s.last().Reason + ")"
		return sel, nil

	case config.ProviderAuto, "":
		if c.DockerRequired {
			sel, ok, err := s.try(ctx, nameDocker)
			if err == nil && !ok {
				err = s.dockerRequired()
			}
			return sel, err
		}
		return s.chain(ctx, localOrder, noLocalProvider)

	case config.ProviderSeatbelt, config.ProviderBubblewrap, config.ProviderDocker:
		want := sandbox.ProviderName(c.Provider)
		sel, ok, err := s.try(ctx, want)
		if ok || err != nil {
			return sel, err
		}
		if want == nameDocker && c.DockerRequired {
			return Selection{}, s.dockerRequired()
		}
		if !c.ProviderFallback {
			class := sandbox.ErrUnsupported
			if want == nameDocker {
				class = sandbox.ErrUnavailable
			}
			return Selection{}, fmt.Errorf("%s Found: %s (set SANDBOX__PROVIDER_FALLBACK=true to try the others; run `warden doctor` for remedies): %w",
				unsupported[want], s.last().Reason, class)
		}
		rest := make([]sandbox.ProviderName, 0, len(localOrder))
		for _, n := range localOrder {
			if n != want {
				rest = append(rest, n)
			}
		}
		title := strings.ToUpper(string(want[:1])) + string(want[1:])
		return s.chain(ctx, rest, title+" provider is not supported on this system. No suitable fallback found.")

	case config.ProviderKubernetes:
		// A cluster is asked for by name only, and never traded for a
		// backend on this host: SANDBOX__PROVIDER_FALLBACK does not apply.
		sel, ok, err := s.try(ctx, nameKubernetes)
		if err == nil && !ok {
			err = fmt.Errorf("SANDBOX__PROVIDER=kubernetes: %s: %w", s.last().Reason, sandbox.ErrUnavailable)
		}
		return sel, err

	case config.ProviderForkServer:
		// Experimental, and asked for by name only: never traded for
		// another backend (SANDBOX__PROVIDER_FALLBACK does not apply).
		sel, ok, err := s.try(ctx, nameForkServer)
		if err == nil && !ok {
			class := sandbox.ErrUnavailable
			if errors.Is(s.openErr, sandbox.ErrUnsupported) {
				class = sandbox.ErrUnsupported
			}
			err = fmt.Errorf("SANDBOX__PROVIDER=forkserver: %s (the fork server never falls back to another provider; run `warden doctor`): %w", s.last().Reason, class)
		}
		return sel, err

	default:
		return Selection{}, fmt.Errorf("Unknown provider: %s. Supported providers are: auto, seatbelt, bubblewrap, docker, local, kubernetes, forkserver: %w", c.Provider, sandbox.ErrInvalid)
	}
}

// try opens the named provider and records the attempt. ok reports
// success; err is set when the selection must stop: ctx ended.
func (s *selector) try(ctx context.Context, name sandbox.ProviderName) (sel Selection, ok bool, err error) {
	if name == nameDocker && !s.cfg.DockerAutoDetect && s.cfg.Provider != config.ProviderDocker && !s.cfg.DockerRequired {
		s.attempt(nameDocker, false, false, "skipped: SANDBOX__DOCKER_AUTO_DETECT is false")
		return Selection{}, false, nil
	}
	p, why, oerr := s.open[name](ctx)
	if cerr := ctx.Err(); cerr != nil {
		if p != nil {
			_ = p.Close(context.WithoutCancel(ctx))
		}
		s.attempt(name, false, false, "interrupted: "+cerr.Error())
		return Selection{}, false, fmt.Errorf("selecting a sandbox provider: %w", cerr)
	}
	if oerr != nil {
		s.openErr = oerr
		s.attempt(name, false, false, oneLine(oerr.Error()))
		return Selection{}, false, nil
	}
	s.attempt(name, true, true, why)
	mode := session.ModeOf(p)
	return Selection{Provider: p, Mode: mode, Reason: string(name) + ": " + why}, true, nil
}

// chain tries names in order, then local if mock mode allows it, and
// otherwise ends in disabled with the reason none, followed by what was
// found.
func (s *selector) chain(ctx context.Context, names []sandbox.ProviderName, none string) (Selection, error) {
	for _, n := range names {
		if sel, ok, err := s.try(ctx, n); ok || err != nil {
			return sel, err
		}
	}
	found := s.summary()
	if !s.cfg.MockMode {
		s.attempt(nameLocal, false, false, "not allowed: SANDBOX__MOCK_MODE is false")
		return Selection{Mode: session.ModeDisabled, Reason: none + " Found: " + found + "; SANDBOX__MOCK_MODE is false, so sandboxes are disabled"}, nil
	}
	sel, ok, err := s.try(ctx, nameLocal)
	if err != nil {
		return sel, err
	}
	if !ok {
		return Selection{Mode: session.ModeDisabled, Reason: none + " Found: " + s.summary() + "; sandboxes are disabled"}, nil
	}
	sel.Reason = none + " Found: " + found + "; SANDBOX__MOCK_MODE=true: code runs on this host with NO isolation"
	return sel, nil
}

// dockerRequired is the start-up error when Docker is required and not
// usable.
func (s *selector) dockerRequired() error {
	msg := "Docker is required (SANDBOX__DOCKER_REQUIRED=true) but not usable: " + s.last().Reason
	if s.probe != nil {
		if r := DockerRemedies(*s.probe); len(r) > 0 {
			msg += "; to fix: " + strings.Join(r, "; ")
		}
	}
	return fmt.Errorf("%s (run `warden doctor` for details): %w", msg, sandbox.ErrUnavailable)
}

func (s *selector) retries() int {
	if r := s.cfg.DockerMaxRetries; r > 0 {
		return r
	}
	return -1 // docker.DetectOptions reads 0 as "the default, 3"
}

// openDocker probes Docker with the configured retries and opens it.
func (s *selector) openDocker(ctx context.Context) (sandbox.Provider, string, error) {
	c := s.cfg
	probe := docker.Detect(ctx, docker.DetectOptions{Host: c.DockerHost, Timeout: c.DockerConnectionTimeout, Retries: s.retries()})
	s.probe = &probe
	if !probe.Available {
		return nil, "", fmt.Errorf("%s: %s", probe.Status, probe.Error)
	}
	p, err := docker.New(ctx, docker.Options{
		Host:          c.DockerHost,
		WorkspaceRoot: c.WorkspaceRoot,
		Timeout:       c.DockerConnectionTimeout,
		Runtime:       c.DockerRuntime,
		Log:           s.log,
	})
	if err != nil {
		return nil, "", err
	}
	return p, fmt.Sprintf("Docker Engine %s (API %s) at %s, %s", probe.Version, probe.APIVersion, probe.Host, p.Runtime()), nil
}

// probeDocker pings Docker once.
func (s *selector) probeDocker(ctx context.Context) (bool, string) {
	if !s.cfg.DockerAutoDetect {
		return false, "not probed: SANDBOX__DOCKER_AUTO_DETECT is false"
	}
	probe := docker.Detect(ctx, docker.DetectOptions{Host: s.cfg.DockerHost, Timeout: s.cfg.DockerConnectionTimeout, Retries: -1})
	s.probe = &probe
	if !probe.Available {
		return false, string(probe.Status) + ": " + probe.Error
	}
	if err := probe.CheckRuntime(s.cfg.DockerRuntime); err != nil {
		return false, oneLine(err.Error())
	}
	rt := ""
	if s.cfg.DockerRuntime != "" {
		rt = ", runtime " + s.cfg.DockerRuntime
	}
	return true, fmt.Sprintf("available, not selected: Docker Engine %s at %s%s", probe.Version, probe.Host, rt)
}

// openLocal opens the local provider, enabled. The caller has checked
// that mock mode allows it.
func (s *selector) openLocal(ctx context.Context) (sandbox.Provider, string, error) {
	p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: s.cfg.WorkspaceRoot, Log: s.log})
	if err != nil {
		return nil, "", err
	}
	return p, "no isolation: code runs as host processes with " + p.Python(), nil
}

func (s *selector) probeLocal(ctx context.Context) (bool, string) {
	if !s.cfg.MockMode {
		return false, "not allowed: SANDBOX__MOCK_MODE is false"
	}
	p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: s.cfg.WorkspaceRoot, Log: s.log})
	if err != nil {
		return false, oneLine(err.Error())
	}
	defer p.Close(context.WithoutCancel(ctx))
	return true, "available, not selected (no isolation): " + p.Python()
}

// summary renders the failed attempts so far as "name: reason; ...".
func (s *selector) summary() string {
	parts := make([]string, 0, len(s.tried))
	for _, a := range s.tried {
		if !a.OK {
			parts = append(parts, string(a.Name)+": "+a.Reason)
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

// oneLine folds a multi-line error message into one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
