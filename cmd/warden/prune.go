package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/provider/forkserver"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/quota"
)

// cmdPrune removes what Warden processes that no longer run left of their
// sandboxes: containers (docker), processes, cgroups and directories
// (bubblewrap, forkserver, local), bounded workspaces (internal/quota), idmapped views
// of writable directories (internal/idmap). SANDBOX__PROVIDER names the provider; auto sweeps
// every one that can have left something here. Sandboxes of live Warden
// processes are never touched.
func cmdPrune(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden prune")
	sf := newSettingFlags(e)
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
	s := cfg.Sandbox
	var errs []error
	if s.Provider == config.ProviderAuto || s.Provider == config.ProviderBubblewrap {
		n, err := bwrap.RemoveOrphans(ctx, bwrap.Options{WorkspaceRoot: s.WorkspaceRoot})
		fmt.Fprintf(e.stdout, "removed %d orphaned bubblewrap sandboxes\n", n)
		errs = append(errs, err)
	}
	if s.Provider == config.ProviderAuto || s.Provider == config.ProviderForkServer {
		n, err := forkserver.RemoveOrphans(ctx, forkserver.Options{WorkspaceRoot: s.WorkspaceRoot})
		fmt.Fprintf(e.stdout, "removed %d orphaned fork server sandboxes\n", n)
		errs = append(errs, err)
	}
	if s.Provider == config.ProviderAuto || s.Provider == config.ProviderLocal {
		// Disabled: it only sweeps, and needs no interpreter for that.
		p, err := local.New(local.Options{WorkspaceRoot: s.WorkspaceRoot})
		if err == nil {
			var n int
			n, err = p.RemoveOrphans(ctx)
			fmt.Fprintf(e.stdout, "removed %d orphaned local sandbox directories and processes\n", n)
		}
		errs = append(errs, err)
	}
	if s.Provider == config.ProviderAuto || s.Provider == config.ProviderDocker {
		p, err := docker.New(ctx, docker.Options{Host: s.DockerHost, Timeout: s.DockerConnectionTimeout,
			WorkspaceRoot: s.WorkspaceRoot, Log: logger(cfg, e.stderr), KeepOrphans: true})
		switch {
		case err != nil && s.Provider == config.ProviderAuto:
			// No Docker here: none of its containers to remove.
			fmt.Fprintln(e.stdout, "docker is not reachable: no containers removed")
		case err != nil:
			errs = append(errs, fmt.Errorf("%w\n(run `warden doctor` for details and remedies)", err))
		default:
			n, err := p.RemoveOrphans(ctx)
			fmt.Fprintf(e.stdout, "removed %d orphaned containers\n", n)
			errs = append(errs, err, p.Close(context.WithoutCancel(ctx)))
		}
	}
	if s.Provider != config.ProviderSeatbelt && quota.Supported() == nil {
		// Bounded workspaces, of either Linux provider.
		n, err := quota.Sweep(s.WorkspaceRoot)
		fmt.Fprintf(e.stdout, "removed %d orphaned bounded workspaces\n", n)
		errs = append(errs, err)
	}
	if s.Provider != config.ProviderSeatbelt {
		// Idmapped views of writable directories, of either Linux provider.
		n, err := stager(s.WorkspaceRoot).RemoveOrphans()
		fmt.Fprintf(e.stdout, "removed %d orphaned idmapped views\n", n)
		errs = append(errs, err)
	}
	if s.Provider == config.ProviderSeatbelt {
		fmt.Fprintf(e.stdout, "seatbelt sandboxes leave nothing to remove\n")
	}
	return errors.Join(errs...)
}
