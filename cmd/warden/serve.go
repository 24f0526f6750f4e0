package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
)

// shutdownGrace is how long running executions may finish after SIGTERM
// before they are cancelled.
const shutdownGrace = 10 * time.Second

func cmdServe(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden serve")
	sf := newSettingFlags(e)
	sf.add(fs, "host", "API__HOST", "listen address")
	sf.add(fs, "port", "API__PORT", "listen port; 0 picks a free one")
	sf.add(fs, "provider", "SANDBOX__PROVIDER", "isolation backend: auto, bubblewrap, docker, seatbelt, local, forkserver or kubernetes")
	sf.addBool(fs, "mock", "SANDBOX__MOCK_MODE", "allow the unisolated local provider")
	sf.add(fs, "max-sandboxes", "SANDBOX__MAX_SANDBOXES", "maximum number of live sandboxes")
	sf.add(fs, "idle-timeout", "SANDBOX__IDLE_TIMEOUT", "destroy sandboxes unused this long; 0 never")
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
	log := logger(cfg, e.stderr)
	if cfg.Sandbox.KubernetesReplicaID, err = replicaID(cfg); err != nil {
		return err
	}

	svc, err := startService(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	mgr, backend, handler := svc.mgr, svc.backend, svc.handler
	defer svc.closeDocker()
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		if backend != nil {
			_ = backend.Close(context.WithoutCancel(ctx))
		}
		return err
	}
	if svc.replica != nil {
		addr, err := replicaAddress(cfg, ln)
		if err == nil {
			err = svc.replica.StartReplica(ctx, addr)
		}
		if err != nil {
			_ = ln.Close()
			_ = backend.Close(context.WithoutCancel(ctx))
			return err
		}
	}
	// Tests and scripts read the address from this line (port 0).
	fmt.Fprintf(e.stderr, "warden: listening on http://%s (sandboxes: %s)\n", ln.Addr(), svc.mode)
	var root http.Handler = handler
	if cfg.API.E2B {
		svc.e2b = newE2BServer(handler.InProcess(), cfg, log)
		root = svc.e2b.Handler(handler)
		if len(cfg.API.Keys) == 0 {
			lvl := slog.LevelWarn
			if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && ap.Addr().IsLoopback() {
				lvl = slog.LevelInfo
			}
			log.Log(ctx, lvl, "the E2B-compatible API is open: API__KEYS is empty, so anyone who reaches the address can create sandboxes with any X-API-KEY",
				"addr", ln.Addr().String())
		}
	}
	srv := &http.Server{
		Handler:           root,
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
	go func() { served <- srv.Serve(server.Listener(ln)) }() // net/http's own errors as JSON too

	select {
	case err = <-served:
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace", shutdownGrace)
	// MCP sessions hold streams open: end them first, so that the HTTP
	// server's shutdown does not wait for them.
	svc.mcp.Close(context.WithoutCancel(ctx))
	if svc.e2b != nil {
		svc.e2b.Close()
	}
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
	if svc.replica != nil {
		fmt.Fprintln(e.stderr, "warden: stopped; sandboxes left to the other replicas")
		return nil
	}
	fmt.Fprintln(e.stderr, "warden: stopped; all sandboxes removed")
	return nil
}

// statusFunc reports the service's state for /sandbox/status. Docker's
// line in the provider list and docker_available both come from a live
// query of the daemon, so they agree whichever provider is selected.
func statusFunc(sel provider.Selection, cfg config.Config, guarded sandbox.Provider, d *dockerState) func(context.Context) server.StatusInfo {
	return func(ctx context.Context) server.StatusInfo {
		dk := d.get(ctx)
		providers := make([]api.ProviderAvailability, len(sel.Tried))
		for i, a := range sel.Tried {
			providers[i] = api.ProviderAvailability{Name: string(a.Name), Available: a.Available, Selected: a.OK, Reason: a.Reason}
			if a.Name == sandbox.ProviderDocker && !a.OK && a.Available != dk.Available {
				providers[i].Available = dk.Available
				providers[i].Reason = dk.Message + " (now; at start-up: " + a.Reason + ")"
			}
		}
		st := server.StatusInfo{Mode: sel.Mode, Warning: sel.Warning, Providers: providers,
			Enabled: cfg.Sandbox.Enabled, MockMode: cfg.Sandbox.MockMode}
		if sel.Provider != nil {
			st.Provider = sel.Provider.Name()
			st.Isolation = sel.Provider.Capabilities().Isolation
			if dp, ok := sel.Provider.(*docker.Provider); ok {
				st.Runtime = dp.Runtime().Name
			}
			st.Policy = server.PolicyOf(guarded)
		}
		st.DockerAvailable = dk.Available
		return st
	}
}
