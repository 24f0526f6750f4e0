package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/quota"
	"github.com/warden-sandbox/warden/internal/session"
)

// doctorReport is what `warden doctor` finds: the same selection `warden
// serve` and `warden exec` make, with every provider's reason.
type doctorReport struct {
	// Selected is the mode the settings give: a provider name, mock or
	// disabled; "" when the selection fails (Error says why).
	Selected string `json:"selected"`
	Reason   string `json:"reason,omitempty"`
	Error    string `json:"error,omitempty"`
	Warning  string `json:"warning,omitempty"`
	// Providers are all providers in the order considered.
	Providers []provider.Attempt `json:"providers"`
	// Available names the providers that can run here.
	Available []string `json:"available"`
	// Policy says which checks run before executions.
	Policy string        `json:"policy,omitempty"`
	Docker *dockerReport `json:"docker,omitempty"`
	// Image is SANDBOX__IMAGE and whether Docker has it.
	Image        string `json:"image"`
	ImagePresent bool   `json:"image_present"`
	// WorkspaceQuota says how private workspaces are bounded.
	WorkspaceQuota string `json:"workspace_quota"`
}

func cmdDoctor(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden doctor")
	sf := newSettingFlags(e)
	sf.add(fs, "provider", "SANDBOX__PROVIDER", "provider to check: auto, seatbelt, bubblewrap, docker, local, kubernetes or forkserver")
	sf.add(fs, "timeout", "SANDBOX__DOCKER_CONNECTION_TIMEOUT", "timeout of one connection attempt")
	sf.add(fs, "retries", "SANDBOX__DOCKER_MAX_RETRIES", "connection retries")
	sf.add(fs, "image", "SANDBOX__IMAGE", "runtime image to look for")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	cfg, err := sf.load(e)
	if err != nil {
		return err
	}
	cfg.Sandbox.KubernetesReplicaID = "" // only warden serve is a replica
	s := cfg.Sandbox
	sel, serr := provider.Select(ctx, cfg, nil)
	rep := doctorReport{Selected: string(sel.Mode), Reason: sel.Reason, Warning: sel.Warning,
		Providers: sel.Tried, Available: sel.Available(), Docker: newDockerReport(sel.Docker), Image: s.Image}
	if serr != nil {
		rep.Error = serr.Error()
	}
	rep.WorkspaceQuota = quotaReport(s.WorkspaceSize)
	if sel.Provider != nil {
		g := provider.Guard(sel.Provider, s)
		rep.Policy = provider.DescribePolicies(g.Shell, g.Python)
		_ = sel.Provider.Close(context.WithoutCancel(ctx))
	}
	if sel.Docker != nil && sel.Docker.Available {
		rep.ImagePresent = imagePresent(ctx, s.DockerHost, s.Image, s.DockerConnectionTimeout)
	}
	// A service with these settings could not run code, or Docker is in
	// use without its image: that is a failure.
	failed := sel.Provider == nil || (sel.Mode == session.ModeDocker && !rep.ImagePresent)
	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
		if failed {
			return exitError{code: 1}
		}
		return nil
	}
	w := e.stdout
	fmt.Fprintf(w, "Providers (SANDBOX__PROVIDER=%s; auto tries them in this order, never those chosen by name only):\n", s.Provider)
	for _, a := range rep.Providers {
		mark := "✗"
		switch {
		case a.OK:
			mark = "✓"
		case a.Available:
			mark = "○"
		}
		fmt.Fprintf(w, "  %s %-10s %s\n", mark, a.Name, a.Reason)
	}
	fmt.Fprintln(w, "  (✓ selected, ○ available, ✗ not available)")
	fmt.Fprintln(w)
	switch {
	case serr != nil:
		fmt.Fprintf(w, "Selection fails: %v\n", serr)
	default:
		reason := sel.Reason
		if !strings.HasPrefix(reason, string(sel.Mode)+":") {
			reason = string(sel.Mode) + ": " + reason
		}
		fmt.Fprintf(w, "Selected: %s\n", reason)
	}
	if rep.Warning != "" {
		fmt.Fprintf(w, "WARNING: %s\n", rep.Warning)
	}
	if rep.Policy != "" {
		fmt.Fprintf(w, "Policy: %s\n", rep.Policy)
	}
	fmt.Fprintf(w, "Workspace quotas: %s\n", rep.WorkspaceQuota)
	if p := rep.Docker; p != nil {
		fmt.Fprintln(w)
		fmt.Fprint(w, p.text())
		if p.Available {
			if rep.ImagePresent {
				fmt.Fprintf(w, "runtime image %s: present\n", s.Image)
			} else {
				fmt.Fprintf(w, "runtime image %s: MISSING; run `warden image build`\n", s.Image)
			}
		}
	}
	if failed {
		return exitError{code: 1}
	}
	return nil
}

func imagePresent(ctx context.Context, host, image string, timeout time.Duration) bool {
	cli, err := docker.NewClient(host)
	if err != nil {
		return false
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err = cli.ImageInspect(ctx, image)
	return err == nil
}

// quotaReport says how private workspaces are bounded here.
func quotaReport(size config.ByteSize) string {
	switch err := quota.Supported(); {
	case size == 0:
		return "off (SANDBOX__WORKSPACE_SIZE=0): workspaces are not bounded"
	case err != nil:
		return "NOT enforced: " + err.Error() + "; a sandbox can fill the disk that holds SANDBOX__WORKSPACE_ROOT"
	default:
		return fmt.Sprintf("%s per private workspace, enforced by the kernel (ext4 in a sparse image, loop-mounted)", size)
	}
}
