package provider

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/config"
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

func hasPython() bool {
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return true
	}
	_, err := exec.LookPath("python3")
	return err == nil
}

func names(tried []Attempt) string {
	var b []string
	for _, a := range tried {
		s := a.Name + "=fail"
		if a.OK {
			s = a.Name + "=ok"
		}
		b = append(b, s)
	}
	return strings.Join(b, ",")
}

func TestSelect(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		edit       func(*config.SandboxConfig)
		python     bool // needs a host python3
		wantMode   session.Mode
		wantTried  string   // attempts as name=ok|fail, in order
		wantErr    error    // error class, nil for success
		wantInErr  []string // substrings of the error
		wantReason []string // substrings of the reason
		probed     bool     // Selection.Docker is set
	}{
		{
			name:       "disabled",
			edit:       func(s *config.SandboxConfig) { s.Enabled = false; s.MockMode = true },
			wantMode:   session.ModeDisabled,
			wantReason: []string{"SANDBOX__ENABLED=false"},
		},
		{
			name:      "docker required and absent",
			edit:      func(s *config.SandboxConfig) { s.DockerRequired = true; s.MockMode = true },
			wantTried: "docker=fail",
			wantErr:   sandbox.ErrUnavailable,
			wantInErr: []string{"SANDBOX__DOCKER_REQUIRED=true", "docker.sock", "no such file or directory", "to fix:", "start the Docker daemon"},
			probed:    true,
		},
		{
			name:       "auto, docker absent, mock mode",
			edit:       func(s *config.SandboxConfig) { s.MockMode = true },
			python:     true,
			wantMode:   session.ModeMock,
			wantTried:  "docker=fail,bubblewrap=fail,local=ok",
			wantReason: []string{"docker: unavailable", "bubblewrap: not implemented", "NO isolation"},
			probed:     true,
		},
		{
			name:       "auto, docker absent, no mock mode",
			edit:       func(s *config.SandboxConfig) {},
			wantMode:   session.ModeDisabled,
			wantTried:  "docker=fail,bubblewrap=fail,local=fail",
			wantReason: []string{"docker: unavailable", "bubblewrap: not implemented", "SANDBOX__MOCK_MODE is false"},
			probed:     true,
		},
		{
			name:       "auto without docker auto-detection",
			edit:       func(s *config.SandboxConfig) { s.DockerAutoDetect = false },
			wantMode:   session.ModeDisabled,
			wantTried:  "docker=fail,bubblewrap=fail,local=fail",
			wantReason: []string{"SANDBOX__DOCKER_AUTO_DETECT is false"},
		},
		{
			name: "bubblewrap without fallback",
			edit: func(s *config.SandboxConfig) {
				s.Provider = config.ProviderBubblewrap
				s.ProviderFallback = false
				s.MockMode = true
			},
			wantTried: "bubblewrap=fail",
			wantErr:   sandbox.ErrUnsupported,
			wantInErr: []string{"bubblewrap provider is not supported on this system: not implemented in this version"},
		},
		{
			name:       "bubblewrap with fallback to mock",
			edit:       func(s *config.SandboxConfig) { s.Provider = config.ProviderBubblewrap; s.MockMode = true },
			python:     true,
			wantMode:   session.ModeMock,
			wantTried:  "bubblewrap=fail,docker=fail,local=ok",
			wantReason: []string{"bubblewrap was requested"},
			probed:     true,
		},
		{
			name: "docker without fallback",
			edit: func(s *config.SandboxConfig) {
				s.Provider = config.ProviderDocker
				s.ProviderFallback = false
				s.MockMode = true
			},
			wantTried: "docker=fail",
			wantErr:   sandbox.ErrUnavailable,
			wantInErr: []string{"docker provider is not supported on this system"},
			probed:    true,
		},
		{
			name:       "docker with fallback, no mock mode",
			edit:       func(s *config.SandboxConfig) { s.Provider = config.ProviderDocker },
			wantMode:   session.ModeDisabled,
			wantTried:  "docker=fail,bubblewrap=fail,local=fail",
			wantReason: []string{"docker was requested"},
			probed:     true,
		},
		{
			name:       "local",
			edit:       func(s *config.SandboxConfig) { s.Provider = config.ProviderLocal; s.MockMode = true },
			python:     true,
			wantMode:   session.ModeMock,
			wantTried:  "local=ok",
			wantReason: []string{"SANDBOX__PROVIDER=local"},
		},
		{
			name:      "local without mock mode",
			edit:      func(s *config.SandboxConfig) { s.Provider = config.ProviderLocal },
			wantTried: "local=fail",
			wantErr:   sandbox.ErrDisabled,
			wantInErr: []string{"requires SANDBOX__MOCK_MODE=true"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.python && !hasPython() {
				t.Skip("no host python3 for the local provider")
			}
			cfg := noDocker(t)
			tc.edit(&cfg.Sandbox)
			sel, err := Select(t.Context(), cfg, nil)
			if sel.Provider != nil {
				t.Cleanup(func() {
					if err := sel.Provider.Close(t.Context()); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
			}
			if got := names(sel.Tried); got != tc.wantTried {
				t.Errorf("Select().Tried = %s, want %s\n%+v", got, tc.wantTried, sel.Tried)
			}
			if (sel.Docker != nil) != tc.probed {
				t.Errorf("Select().Docker = %v, want probed %v", sel.Docker, tc.probed)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Select() error = %v, want %v", err, tc.wantErr)
				}
				for _, s := range tc.wantInErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("Select() error = %q, want it to mention %q", err, s)
					}
				}
				if sel.Provider != nil || sel.Mode != "" {
					t.Errorf("Select() with an error = %+v, want no provider and no mode", sel)
				}
				return
			}
			if err != nil {
				t.Fatalf("Select() error = %v", err)
			}
			if sel.Mode != tc.wantMode {
				t.Fatalf("Select().Mode = %s, want %s (reason %q)", sel.Mode, tc.wantMode, sel.Reason)
			}
			for _, s := range tc.wantReason {
				if !strings.Contains(sel.Reason, s) {
					t.Errorf("Select().Reason = %q, want it to mention %q", sel.Reason, s)
				}
			}
			if strings.Contains(sel.Reason, "\n") {
				t.Errorf("Select().Reason spans lines: %q", sel.Reason)
			}
			switch sel.Mode {
			case session.ModeMock:
				if sel.Warning != session.MockWarning {
					t.Errorf("Select().Warning = %q, want %q", sel.Warning, session.MockWarning)
				}
				if sel.Provider == nil || sel.Provider.Name() != "local" || sel.Provider.Capabilities().Isolation != sandbox.IsolationNone {
					t.Fatalf("mock mode provider = %v, want the local provider", sel.Provider)
				}
				// It is enabled: mock mode allowed it.
				info, err := sel.Provider.Create(t.Context(), sandbox.Spec{})
				if err != nil {
					t.Fatalf("Create on the selected local provider: %v", err)
				}
				r, err := sel.Provider.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1 + 1"})
				if err != nil || r.ReturnValue == nil || *r.ReturnValue != "2" || r.Warning == "" {
					t.Errorf("Exec on the selected local provider = %+v, %v", r, err)
				}
			case session.ModeDisabled:
				if sel.Provider != nil || sel.Warning != "" {
					t.Errorf("disabled selection = %+v, want no provider and no warning", sel)
				}
			}
		})
	}
}

// TestSelectRetriesHonoured checks that SANDBOX__DOCKER_MAX_RETRIES=0 means
// one attempt, not the probe's default of three.
func TestSelectRetriesHonoured(t *testing.T) {
	t.Parallel()
	for _, retries := range []int{0, 2} {
		cfg := noDocker(t)
		cfg.Sandbox.DockerMaxRetries = retries
		sel, err := Select(t.Context(), cfg, nil)
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
	cfg.Sandbox.MockMode = true // must not matter: Docker comes first
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
	if sel.Docker == nil || !sel.Docker.Available || names(sel.Tried) != "docker=ok" {
		t.Errorf("probe = %+v, tried %+v", sel.Docker, sel.Tried)
	}
	if !strings.Contains(sel.Reason, "Docker Engine") {
		t.Errorf("Reason = %q", sel.Reason)
	}
}
