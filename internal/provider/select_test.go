package provider

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// noDocker returns a configuration whose Docker host is a socket that does
// not exist, probed once with a short timeout, so Docker is absent
// whatever this machine runs.
func noDocker(t *testing.T) config.Config {
	t.Helper()
	cfg := config.Defaults()
	dir := t.TempDir()
	cfg.Sandbox.DockerHost = "unix://" + filepath.Join(dir, "docker.sock")
	cfg.Sandbox.DockerConnectionTimeout = time.Second
	cfg.Sandbox.DockerMaxRetries = 0
	cfg.Sandbox.WorkspaceRoot = filepath.Join(dir, "ws")
	return cfg
}

// stub is a provider that runs nothing, standing for a real one in the
// selection matrix: Select only names, opens and closes providers.
type stub struct {
	name   string
	iso    sandbox.Isolation
	closed *bool
}

func (p *stub) Name() string { return p.name }
func (p *stub) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Isolation: p.iso}
}
func (p *stub) Create(context.Context, sandbox.Spec) (sandbox.Info, error) {
	return sandbox.Info{}, sandbox.ErrUnsupported
}
func (p *stub) Exec(context.Context, sandbox.ID, sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return sandbox.ExecResult{}, sandbox.ErrUnsupported
}
func (p *stub) UpdateEnv(context.Context, sandbox.ID, sandbox.EnvUpdate) (map[string]string, error) {
	return nil, sandbox.ErrUnsupported
}
func (p *stub) Env(context.Context, sandbox.ID) (map[string]string, error) {
	return nil, sandbox.ErrUnsupported
}
func (p *stub) Destroy(context.Context, sandbox.ID) error { return sandbox.ErrUnsupported }
func (p *stub) Close(context.Context) error               { *p.closed = true; return nil }

// stubSelector selects among stub providers; the names in avail open, the
// others fail with "NAME is missing here".
func stubSelector(cfg config.SandboxConfig, avail ...sandbox.ProviderName) *selector {
	s := &selector{cfg: cfg, log: slog.New(slog.DiscardHandler), open: map[sandbox.ProviderName]opener{}, probeOnly: map[sandbox.ProviderName]prober{}, probeAll: true}
	isos := map[sandbox.ProviderName]sandbox.Isolation{nameSeatbelt: "sandbox", nameBubblewrap: sandbox.IsolationNamespace,
		nameDocker: sandbox.IsolationContainer, nameLocal: sandbox.IsolationNone, nameForkServer: sandbox.IsolationNamespace}
	for name, iso := range isos {
		ok := slices.Contains(avail, name)
		s.open[name] = func(ctx context.Context) (sandbox.Provider, string, error) {
			if !ok {
				return nil, "", errors.New(string(name) + " is missing here")
			}
			return &stub{name: string(name), iso: iso, closed: new(bool)}, string(name) + " works", nil
		}
		s.probeOnly[name] = func(ctx context.Context) (bool, string) {
			if !ok {
				return false, string(name) + " is missing here"
			}
			return true, "available, not selected"
		}
	}
	return s
}

// attempts renders Tried as name=ok|avail|fail, in order.
func attempts(tried []Attempt) string {
	var b []string
	for _, a := range tried {
		state := "fail"
		switch {
		case a.OK:
			state = "ok"
		case a.Available:
			state = "avail"
		}
		b = append(b, string(a.Name)+"="+state)
	}
	return strings.Join(b, ",")
}

// TestSelectMatrix checks TinyAgent's selection matrix (seed-systems
// §1.7) with its error texts, on stub providers.
func TestSelectMatrix(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		edit       func(*config.SandboxConfig)
		avail      []sandbox.ProviderName
		wantMode   session.Mode
		wantTried  string
		wantErr    error
		wantInErr  []string
		wantReason []string
	}{
		{
			name:      "auto takes bubblewrap before docker, and lists docker as available",
			avail:     []sandbox.ProviderName{nameBubblewrap, nameDocker},
			wantMode:  session.ModeBubblewrap,
			wantTried: "seatbelt=fail,bubblewrap=ok,docker=avail,local=fail,forkserver=fail",
		},
		{
			name:      "auto takes seatbelt first",
			avail:     []sandbox.ProviderName{nameSeatbelt, nameBubblewrap, nameDocker},
			wantMode:  session.ModeSeatbelt,
			wantTried: "seatbelt=ok,bubblewrap=avail,docker=avail,local=fail,forkserver=fail",
		},
		{
			name:      "auto falls to docker",
			avail:     []sandbox.ProviderName{nameDocker},
			wantMode:  session.ModeDocker,
			wantTried: "seatbelt=fail,bubblewrap=fail,docker=ok,local=fail,forkserver=fail",
		},
		{
			name:       "auto, nothing, no mock mode",
			wantMode:   session.ModeDisabled,
			wantTried:  "seatbelt=fail,bubblewrap=fail,docker=fail,local=fail",
			wantReason: []string{noLocalProvider, "seatbelt: seatbelt is missing here", "docker: docker is missing here", "SANDBOX__MOCK_MODE is false"},
		},
		{
			name:       "auto, nothing, mock mode",
			edit:       func(s *config.SandboxConfig) { s.MockMode = true },
			avail:      []sandbox.ProviderName{nameLocal},
			wantMode:   session.ModeMock,
			wantTried:  "seatbelt=fail,bubblewrap=fail,docker=fail,local=ok,forkserver=fail",
			wantReason: []string{noLocalProvider, "NO isolation"},
		},
		{
			name:       "auto without docker auto-detection",
			edit:       func(s *config.SandboxConfig) { s.DockerAutoDetect = false },
			avail:      []sandbox.ProviderName{nameDocker},
			wantMode:   session.ModeDisabled,
			wantTried:  "seatbelt=fail,bubblewrap=fail,docker=fail,local=fail",
			wantReason: []string{"SANDBOX__DOCKER_AUTO_DETECT is false"},
		},
		{
			name:      "docker required uses docker although bubblewrap comes first",
			edit:      func(s *config.SandboxConfig) { s.DockerRequired = true },
			avail:     []sandbox.ProviderName{nameBubblewrap, nameDocker},
			wantMode:  session.ModeDocker,
			wantTried: "docker=ok,seatbelt=fail,bubblewrap=avail,local=fail,forkserver=fail",
		},
		{
			name:      "docker required and absent",
			edit:      func(s *config.SandboxConfig) { s.DockerRequired = true; s.MockMode = true },
			avail:     []sandbox.ProviderName{nameBubblewrap, nameLocal},
			wantTried: "docker=fail",
			wantErr:   sandbox.ErrUnavailable,
			wantInErr: []string{"SANDBOX__DOCKER_REQUIRED=true", "docker is missing here"},
		},
		{
			name:      "seatbelt without fallback",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderSeatbelt; s.ProviderFallback = false },
			avail:     []sandbox.ProviderName{nameBubblewrap, nameDocker},
			wantTried: "seatbelt=fail",
			wantErr:   sandbox.ErrUnsupported,
			wantInErr: []string{"Seatbelt provider is not supported on this system. It requires macOS with sandbox-exec. Found: seatbelt is missing here"},
		},
		{
			name:      "seatbelt falls back to bubblewrap",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderSeatbelt },
			avail:     []sandbox.ProviderName{nameBubblewrap, nameDocker},
			wantMode:  session.ModeBubblewrap,
			wantTried: "seatbelt=fail,bubblewrap=ok,docker=avail,local=fail,forkserver=fail",
		},
		{
			name:       "seatbelt, no suitable fallback",
			edit:       func(s *config.SandboxConfig) { s.Provider = config.ProviderSeatbelt },
			wantMode:   session.ModeDisabled,
			wantTried:  "seatbelt=fail,bubblewrap=fail,docker=fail,local=fail",
			wantReason: []string{"Seatbelt provider is not supported on this system. No suitable fallback found."},
		},
		{
			name:      "bubblewrap without fallback",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderBubblewrap; s.ProviderFallback = false },
			avail:     []sandbox.ProviderName{nameDocker},
			wantTried: "bubblewrap=fail",
			wantErr:   sandbox.ErrUnsupported,
			wantInErr: []string{"Bubblewrap provider is not supported on this system. It requires Linux with bubblewrap."},
		},
		{
			name:      "bubblewrap falls back to seatbelt, then docker",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderBubblewrap },
			avail:     []sandbox.ProviderName{nameDocker},
			wantMode:  session.ModeDocker,
			wantTried: "bubblewrap=fail,seatbelt=fail,docker=ok,local=fail,forkserver=fail",
		},
		{
			name:      "docker without fallback",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderDocker; s.ProviderFallback = false },
			avail:     []sandbox.ProviderName{nameBubblewrap},
			wantTried: "docker=fail",
			wantErr:   sandbox.ErrUnavailable,
			wantInErr: []string{"Docker provider is not supported on this system. Docker must be installed and running."},
		},
		{
			name:      "docker falls back to bubblewrap",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderDocker },
			avail:     []sandbox.ProviderName{nameBubblewrap},
			wantMode:  session.ModeBubblewrap,
			wantTried: "docker=fail,seatbelt=fail,bubblewrap=ok,local=fail,forkserver=fail",
		},
		{
			name:      "docker asked for is tried without auto-detection",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderDocker; s.DockerAutoDetect = false },
			avail:     []sandbox.ProviderName{nameDocker},
			wantMode:  session.ModeDocker,
			wantTried: "docker=ok,seatbelt=fail,bubblewrap=fail,local=fail,forkserver=fail",
		},
		{
			name:       "docker, no suitable fallback, mock mode",
			edit:       func(s *config.SandboxConfig) { s.Provider = config.ProviderDocker; s.MockMode = true },
			avail:      []sandbox.ProviderName{nameLocal},
			wantMode:   session.ModeMock,
			wantTried:  "docker=fail,seatbelt=fail,bubblewrap=fail,local=ok,forkserver=fail",
			wantReason: []string{"Docker provider is not supported on this system. No suitable fallback found."},
		},
		{
			name:      "local without mock mode",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderLocal },
			avail:     []sandbox.ProviderName{nameLocal},
			wantTried: "local=fail",
			wantErr:   sandbox.ErrDisabled,
			wantInErr: []string{"requires SANDBOX__MOCK_MODE=true"},
		},
		{
			name:       "local",
			edit:       func(s *config.SandboxConfig) { s.Provider = config.ProviderLocal; s.MockMode = true },
			avail:      []sandbox.ProviderName{nameLocal, nameDocker},
			wantMode:   session.ModeMock,
			wantTried:  "local=ok,seatbelt=fail,bubblewrap=fail,docker=avail,forkserver=fail",
			wantReason: []string{"SANDBOX__PROVIDER=local"},
		},
		{
			name:       "forkserver by name",
			edit:       func(s *config.SandboxConfig) { s.Provider = config.ProviderForkServer },
			avail:      []sandbox.ProviderName{nameForkServer, nameBubblewrap},
			wantMode:   session.Mode(nameForkServer),
			wantTried:  "forkserver=ok,seatbelt=fail,bubblewrap=avail,docker=fail,local=fail",
			wantReason: []string{"forkserver: forkserver works"},
		},
		{
			name: "forkserver missing never falls back",
			edit: func(s *config.SandboxConfig) {
				s.Provider = config.ProviderForkServer
				s.ProviderFallback = true
				s.MockMode = true
			},
			avail:     []sandbox.ProviderName{nameBubblewrap, nameDocker, nameLocal},
			wantTried: "forkserver=fail",
			wantErr:   sandbox.ErrUnavailable,
			wantInErr: []string{"SANDBOX__PROVIDER=forkserver: forkserver is missing here", "never falls back"},
		},
		{
			name:      "unknown provider",
			edit:      func(s *config.SandboxConfig) { s.Provider = "modal" },
			wantErr:   sandbox.ErrInvalid,
			wantInErr: []string{"Unknown provider: modal. Supported providers are: auto, seatbelt, bubblewrap, docker, local"},
		},
		{
			name:       "disabled",
			edit:       func(s *config.SandboxConfig) { s.Enabled = false },
			avail:      []sandbox.ProviderName{nameDocker},
			wantMode:   session.ModeDisabled,
			wantReason: []string{"SANDBOX__ENABLED=false"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := config.Defaults().Sandbox
			if tc.edit != nil {
				tc.edit(&cfg)
			}
			sel, err := stubSelector(cfg, tc.avail...).selectProvider(t.Context())
			if got := attempts(sel.Tried); got != tc.wantTried {
				t.Errorf("Tried = %s, want %s\n%+v", got, tc.wantTried, sel.Tried)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error = %v, want %v", err, tc.wantErr)
				}
				for _, s := range tc.wantInErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error = %q, want it to contain %q", err, s)
					}
				}
				if sel.Provider != nil || sel.Mode != "" {
					t.Errorf("with an error: %+v, want no provider and no mode", sel)
				}
				return
			}
			if err != nil {
				t.Fatalf("error = %v", err)
			}
			if sel.Mode != tc.wantMode {
				t.Fatalf("Mode = %s, want %s (reason %q)", sel.Mode, tc.wantMode, sel.Reason)
			}
			for _, s := range tc.wantReason {
				if !strings.Contains(sel.Reason, s) {
					t.Errorf("Reason = %q, want it to contain %q", sel.Reason, s)
				}
			}
			if (sel.Mode == session.ModeMock) != (sel.Warning == session.MockWarning) {
				t.Errorf("mode %s with warning %q", sel.Mode, sel.Warning)
			}
			if (sel.Provider == nil) != (sel.Mode == session.ModeDisabled) {
				t.Errorf("mode %s with provider %v", sel.Mode, sel.Provider)
			}
		})
	}
}

// TestSelectAvailable checks the list of available providers: Docker is
// on it (TinyAgent's list left it out).
func TestSelectAvailable(t *testing.T) {
	t.Parallel()
	sel, err := stubSelector(config.Defaults().Sandbox, nameBubblewrap, nameDocker).selectProvider(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(sel.Available(), ","); got != "bubblewrap,docker" {
		t.Errorf("Available() = %s, want bubblewrap,docker", got)
	}
}

// TestOpenProbesNothingElse: Open's selection stops at the provider it
// opens; the ones after it are never probed.
func TestOpenProbesNothingElse(t *testing.T) {
	t.Parallel()
	s := stubSelector(config.Defaults().Sandbox, nameBubblewrap, nameDocker)
	s.probeAll = false
	probed := false
	s.probeOnly[nameDocker] = func(context.Context) (bool, string) { probed = true; return true, "" }
	sel, err := s.selectProvider(t.Context())
	if err != nil || sel.Mode != "bubblewrap" || probed || attempts(sel.Tried) != "seatbelt=fail,bubblewrap=ok" {
		t.Errorf("Open() = %s %v, probed docker %v; want bubblewrap alone", attempts(sel.Tried), err, probed)
	}
}

// TestSelectHere runs the real selection on this machine, which has
// bubblewrap and Docker: auto takes bubblewrap and lists docker.
func TestSelectHere(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireDocker(t)
	t.Parallel()
	cfg := config.Defaults()
	cfg.Sandbox.WorkspaceRoot = testutil.SharedDir(t)
	sel, err := Select(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Provider.Close(context.WithoutCancel(t.Context()))
	if sel.Mode != session.ModeBubblewrap || sel.Provider.Name() != "bubblewrap" {
		t.Fatalf("Select() = %+v, want bubblewrap", sel)
	}
	if got := attempts(sel.Tried); got != "seatbelt=fail,bubblewrap=ok,docker=avail,local=fail,forkserver=avail" {
		t.Errorf("Tried = %s\n%+v", got, sel.Tried)
	}
	if !strings.Contains(sel.Reason, "root: the root filesystem of "+cfg.Sandbox.Image) {
		t.Errorf("Reason = %q, want bubblewrap on the runtime image's root (SANDBOX__BWRAP_ROOT=auto)", sel.Reason)
	}
	if !slices.Contains(sel.Available(), "docker") || sel.Docker == nil || !sel.Docker.Available {
		t.Errorf("docker not listed as available: %+v", sel.Tried)
	}
	// The selected provider runs code, behind the policy guard.
	g := Guard(sel.Provider, cfg.Sandbox)
	info, err := g.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	// numpy is in the runtime image, not on this host.
	r, err := g.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "import numpy\nint(numpy.int64(6) * 7)"})
	if err != nil || r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Fatalf("Exec = %+v, %v", r, err)
	}
}

// TestSelectNoDocker probes a Docker socket that does not exist: the
// attempt says why, and without fallback the error is TinyAgent's.
func TestSelectNoDocker(t *testing.T) {
	t.Parallel()
	cfg := noDocker(t)
	cfg.Sandbox.Provider = config.ProviderDocker
	cfg.Sandbox.ProviderFallback = false
	_, err := Select(t.Context(), cfg, nil)
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "Docker provider is not supported on this system") ||
		!strings.Contains(err.Error(), "docker.sock") {
		t.Fatalf("Select() = %v", err)
	}
	cfg.Sandbox.DockerRequired = true
	_, err = Select(t.Context(), cfg, nil)
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "to fix:") {
		t.Fatalf("Select() with Docker required = %v, want the probe's remedies", err)
	}
}

// TestSelectRetriesHonoured checks that SANDBOX__DOCKER_MAX_RETRIES=0 means
// one attempt, not the probe's default of three.
func TestSelectRetriesHonoured(t *testing.T) {
	t.Parallel()
	for _, retries := range []int{0, 2} {
		cfg := noDocker(t)
		cfg.Sandbox.Provider = config.ProviderDocker
		cfg.Sandbox.Enabled = true
		cfg.Sandbox.DockerMaxRetries = retries
		sel, err := Select(t.Context(), cfg, nil)
		if sel.Provider != nil {
			_ = sel.Provider.Close(t.Context())
		}
		if err != nil {
			t.Fatal(err)
		}
		if sel.Docker == nil || sel.Docker.Attempts != retries+1 {
			t.Errorf("retries %d: probe = %+v, want %d attempts", retries, sel.Docker, retries+1)
		}
	}
}

func TestSelectCancelled(t *testing.T) {
	t.Parallel()
	cfg := noDocker(t)
	cfg.Sandbox.Provider = config.ProviderDocker
	cfg.Sandbox.MockMode = true
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	sel, err := Select(ctx, cfg, nil)
	if !errors.Is(err, context.Canceled) || sel.Provider != nil {
		t.Fatalf("Select(cancelled) = %+v, %v; want an error and no provider", sel, err)
	}
}

func TestSelectDocker(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	cfg := config.Defaults()
	cfg.Sandbox.WorkspaceRoot = t.TempDir()
	cfg.Sandbox.Provider = config.ProviderDocker
	cfg.Sandbox.MockMode = true // must not matter: Docker works
	sel, err := Select(t.Context(), cfg, nil)
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	defer func() {
		if err := sel.Provider.Close(t.Context()); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	if sel.Mode != session.ModeDocker || sel.Provider == nil || sel.Provider.Name() != "docker" || sel.Warning != "" {
		t.Fatalf("Select() = %+v, want docker mode with the docker provider", sel)
	}
	if sel.Docker == nil || !sel.Docker.Available || !strings.HasPrefix(attempts(sel.Tried), "docker=ok,") {
		t.Errorf("probe = %+v, tried %+v", sel.Docker, sel.Tried)
	}
	if !strings.Contains(sel.Reason, "Docker Engine") {
		t.Errorf("Reason = %q", sel.Reason)
	}
}

// TestMain lets the test binary serve as the bubblewrap sandboxes' shim
// (Landlock and rlimits), as the warden binary does.
func TestMain(m *testing.M) {
	bwrap.Init()
	os.Exit(m.Run())
}

// TestSelectKubernetesUnreachable: a cluster asked for and not reachable
// fails start-up, saying why, and never falls back to this host.
func TestSelectKubernetesUnreachable(t *testing.T) {
	t.Parallel()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Sandbox.Provider = config.ProviderKubernetes
	cfg.Sandbox.ProviderFallback = true
	cfg.Sandbox.KubernetesKubeconfig = kc
	sel, err := Select(t.Context(), cfg, nil)
	if !errors.Is(err, sandbox.ErrUnavailable) || !strings.Contains(err.Error(), "SANDBOX__PROVIDER=kubernetes") || sel.Provider != nil {
		t.Fatalf("Select() = %+v, %v; want ErrUnavailable and no provider", sel, err)
	}
	if len(sel.Tried) != 1 || sel.Tried[0].Name != "kubernetes" {
		t.Errorf("Select() tried %+v, want kubernetes alone", sel.Tried)
	}
}

// TestSelectForkServerHere: SANDBOX__PROVIDER=forkserver opens the fork
// server on the runtime image's root, as bubblewrap gets it, and its
// sandboxes run code behind the policy guard.
func TestSelectForkServerHere(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireDocker(t)
	if os.Geteuid() != 0 {
		t.Skip("the fork server needs a root Warden")
	}
	t.Parallel()
	cfg := config.Defaults()
	cfg.Sandbox.WorkspaceRoot = testutil.SharedDir(t)
	cfg.Sandbox.Provider = config.ProviderForkServer
	sel, err := Open(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Provider.Close(context.WithoutCancel(t.Context()))
	if sel.Mode != session.Mode(sandbox.ProviderForkServer) || sel.Provider.Name() != "forkserver" {
		t.Fatalf("Open() = %+v, want forkserver", sel)
	}
	if got := attempts(sel.Tried); got != "forkserver=ok" {
		t.Errorf("Tried = %s\n%+v", got, sel.Tried)
	}
	if !strings.Contains(sel.Reason, "root: the root filesystem of "+cfg.Sandbox.Image) {
		t.Errorf("Reason = %q, want the runtime image's root (SANDBOX__BWRAP_ROOT=auto)", sel.Reason)
	}
	g := Guard(sel.Provider, cfg.Sandbox)
	info, err := g.Create(t.Context(), sandbox.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy(context.WithoutCancel(t.Context()), info.ID)
	// numpy is in the runtime image, not on this host.
	r, err := g.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "import numpy\nint(numpy.int64(6) * 7)"})
	if err != nil || r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Fatalf("Exec = %+v, %v; want 42", r, err)
	}
}
