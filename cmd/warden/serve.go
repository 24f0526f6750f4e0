package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/pool"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// shutdownGrace is how long running executions may finish after SIGTERM
// before they are cancelled.
const shutdownGrace = 10 * time.Second

func cmdServe(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("warden serve", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	sf := newSettingFlags(e)
	sf.add(fs, "host", "API__HOST", "listen address")
	sf.add(fs, "port", "API__PORT", "listen port; 0 picks a free one")
	sf.add(fs, "provider", "SANDBOX__PROVIDER", "isolation backend: auto, bubblewrap, docker, seatbelt or local")
	sf.addBool(fs, "mock", "SANDBOX__MOCK_MODE", "allow the unisolated local provider")
	sf.add(fs, "max-sandboxes", "SANDBOX__MAX_SANDBOXES", "maximum number of live sandboxes")
	sf.add(fs, "idle-timeout", "SANDBOX__IDLE_TIMEOUT", "destroy sandboxes unused this long; 0 never")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: %w", fs.Args(), errUsage)
	}
	cfg, err := sf.load(e)
	if err != nil {
		return err
	}
	log := logger(cfg, e.stderr)

	sel, err := provider.Select(ctx, cfg, log)
	if err != nil {
		return err
	}
	log.Info("sandbox backend selected", "mode", sel.Mode, "reason", sel.Reason)
	if sel.Warning != "" {
		log.Warn(sel.Warning)
	}
	// Every execution and environment passes the shell and Python checks
	// before the provider sees it.
	// backend is what the service closes at the end: the provider, or the
	// warm pool in front of it.
	var guarded, backend sandbox.Provider
	if sel.Provider != nil {
		backend = sel.Provider
		if n := cfg.Sandbox.WarmPoolSize; n > 0 {
			backend = pool.New(sel.Provider, pool.Options{Spec: cfg.SandboxSpec(), Size: n, Log: log})
		}
		g := provider.Guard(backend, cfg.Sandbox)
		log.Info("execution policy", "policy", provider.DescribePolicies(g.Shell, g.Python))
		guarded = g
	}
	dstate, closeDocker := newDockerState(sel, cfg)
	defer closeDocker()
	metrics := server.NewMetrics()
	mgr := session.New(guarded, session.Options{
		MaxSandboxes: cfg.Sandbox.MaxSandboxes,
		IdleTimeout:  cfg.Sandbox.IdleTimeout,
		Observer:     metrics,
		Log:          log,
	})
	keys := make([]string, len(cfg.API.Keys))
	for i, k := range cfg.API.Keys {
		keys[i] = k.Reveal()
	}
	handler := server.New(server.Options{
		Manager:         mgr,
		Status:          statusFunc(sel, cfg, guarded, dstate),
		DockerInfo:      dstate.get,
		Defaults:        cfg.SandboxSpec(),
		IdleTimeout:     cfg.Sandbox.IdleTimeout,
		Keys:            keys,
		MaxBodyBytes:    int64(cfg.Sandbox.MaxRequestBytes),
		AllowedHostDirs: cfg.Sandbox.AllowedHostDirs,
		Version:         version,
		Log:             log,
		Metrics:         metrics,
	})

	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		if backend != nil {
			_ = backend.Close(context.WithoutCancel(ctx))
		}
		return err
	}
	// Tests and scripts read the address from this line (port 0).
	fmt.Fprintf(e.stderr, "warden: listening on http://%s (sandboxes: %s)\n", ln.Addr(), sel.Mode)
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Minute, // bodies are bounded in size too
		IdleTimeout:       2 * time.Minute,
		// No WriteTimeout: executions (and their event streams) may run
		// up to their own timeout, which the sandbox enforces.
	}
	reapCtx, stopReap := context.WithCancel(context.WithoutCancel(ctx))
	reaped := make(chan struct{})
	go func() {
		_ = mgr.Run(reapCtx)
		close(reaped)
	}()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err = <-served:
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	// Stop accepting requests while running executions get the grace
	// period; then they are cancelled, and every sandbox is removed.
	httpDone := make(chan error, 1)
	go func() { httpDone <- srv.Shutdown(sctx) }()
	errs := []error{mgr.Shutdown(sctx)}
	if herr := <-httpDone; herr != nil && !errors.Is(herr, context.DeadlineExceeded) {
		errs = append(errs, herr)
	}
	stopReap()
	<-reaped
	if backend != nil {
		errs = append(errs, backend.Close(context.WithoutCancel(ctx)))
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	fmt.Fprintln(e.stderr, "warden: stopped; all sandboxes removed")
	return nil
}

// statusFunc reports the service's state for /sandbox/status. Docker's
// line in the provider list and docker_available both come from a live
// query of the daemon, so they agree whichever provider is selected.
func statusFunc(sel provider.Selection, cfg config.Config, guarded sandbox.Provider, d *dockerState) func(context.Context) server.StatusInfo {
	return func(ctx context.Context) server.StatusInfo {
		docker := d.get(ctx)
		providers := make([]api.ProviderAvailability, len(sel.Tried))
		for i, a := range sel.Tried {
			providers[i] = api.ProviderAvailability{Name: a.Name, Available: a.Available, Selected: a.OK, Reason: a.Reason}
			if a.Name == "docker" && !a.OK && a.Available != docker.Available {
				providers[i].Available = docker.Available
				providers[i].Reason = docker.Message + " (now; at start-up: " + a.Reason + ")"
			}
		}
		st := server.StatusInfo{Mode: sel.Mode, Warning: sel.Warning, Providers: providers,
			Enabled: cfg.Sandbox.Enabled, MockMode: cfg.Sandbox.MockMode}
		if sel.Provider != nil {
			st.Provider = sel.Provider.Name()
			st.Isolation = sel.Provider.Capabilities().Isolation
			st.Policy = server.PolicyOf(guarded)
		}
		st.DockerAvailable = docker.Available
		return st
	}
}
