package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/e2b"
	"github.com/warden-sandbox/warden/internal/image"
	"github.com/warden-sandbox/warden/internal/mcpserver"
	"github.com/warden-sandbox/warden/internal/pool"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/provider/kubernetes"
	"github.com/warden-sandbox/warden/internal/quota"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// service is the sandbox service that `warden serve` exposes over HTTP
// and `warden mcp` over stdio: the selected provider behind its checks,
// the live sandboxes, and the API handler.
type service struct {
	mgr *session.Manager
	// backend is what the service closes at the end: the provider, or the
	// warm pool in front of it; nil when disabled.
	backend sandbox.Provider
	handler *server.Server
	// mcp serves /mcp; it drives the handler in process.
	mcp *mcpserver.Server
	// e2b is the E2B-compatible surface of warden serve; nil when
	// API__E2B is off (and for warden mcp).
	e2b         *e2b.Server
	closeDocker func()
	// mode is how the service isolates code.
	mode session.Mode
	// replica is the kubernetes provider when this service is one of
	// several replicas (ADR 0016); nil otherwise.
	replica *kubernetes.Provider
}

// startService selects the provider and builds the service. withPool
// keeps warm sandboxes and probes every provider for the status endpoint
// (worth it for a server, not for one MCP session, which probes only the
// provider it uses).
func startService(ctx context.Context, cfg config.Config, log *slog.Logger, withPool bool) (*service, error) {
	choose := provider.Open
	if withPool {
		choose = provider.Select
	}
	sel, err := choose(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	log.Info("sandbox backend selected", "mode", sel.Mode, "reason", sel.Reason)
	if sel.Warning != "" {
		log.Warn(sel.Warning)
	}
	svc := &service{mode: sel.Mode}
	if kp, ok := sel.Provider.(*kubernetes.Provider); ok && kp.ReplicaID() != "" {
		svc.replica = kp
	}
	// Every execution and environment passes the shell and Python checks
	// before the provider sees it.
	var guarded sandbox.Provider
	if sel.Provider != nil {
		// Private workspaces get their size limit below the pool, so that
		// pooled sandboxes have it too.
		// Not for pods: their workspace is on their node, and the
		// kubernetes provider refuses a host directory.
		base := sel.Provider
		if sel.Provider.Name() != string(sandbox.ProviderKubernetes) {
			base = quota.Wrap(sel.Provider, cfg.Sandbox.WorkspaceRoot, image.UID, image.GID, log)
		}
		svc.backend = base
		if n := cfg.Sandbox.WarmPoolSize; n > 0 && withPool {
			svc.backend = pool.New(base, pool.Options{Spec: cfg.SandboxSpec(), Size: n, Log: log})
		}
		g := provider.Guard(svc.backend, cfg.Sandbox)
		log.Info("execution policy", "policy", provider.DescribePolicies(g.Shell, g.Python))
		guarded = g
	}
	dstate, closeDocker := newDockerState(sel, cfg)
	svc.closeDocker = closeDocker
	metrics := server.NewMetrics()
	mopts := session.Options{
		MaxSandboxes: cfg.Sandbox.MaxSandboxes,
		IdleTimeout:  cfg.Sandbox.IdleTimeout,
		Observer:     metrics,
		Log:          log,
	}
	if svc.replica != nil {
		// A replica that stops leaves its sandboxes to the others.
		mopts.HandOver = svc.replica.HandOver
	}
	svc.mgr = session.New(guarded, mopts)
	keys := make([]string, len(cfg.API.Keys))
	for i, k := range cfg.API.Keys {
		keys[i] = k.Reveal()
	}
	var reps server.Replicas
	if svc.replica != nil {
		reps = replicas{svc.replica}
	}
	svc.handler = server.New(server.Options{
		Replicas:        reps,
		Manager:         svc.mgr,
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
		MCP: func(rt http.RoundTripper) http.Handler {
			svc.mcp = newMCPServer(rt, log)
			return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return svc.mcp.MCP() },
				&mcp.StreamableHTTPOptions{SessionTimeout: cfg.Sandbox.IdleTimeout, Logger: log})
		},
	})
	return svc, nil
}

// newMCPServer returns the MCP server over the API reached through rt.
func newMCPServer(rt http.RoundTripper, log *slog.Logger) *mcpserver.Server {
	c, err := client.New("http://warden.invalid", client.WithHTTPClient(&http.Client{Transport: rt}),
		client.WithUserAgent("warden-mcp/"+version))
	if err != nil {
		panic(err) // a constant, valid URL
	}
	return mcpserver.New(mcpserver.Options{Client: c, Version: version, Log: log.With("surface", "mcp")})
}

// newE2BServer returns the E2B-compatible surface over the API reached
// through rt, with its own check of the API keys.
func newE2BServer(rt http.RoundTripper, cfg config.Config, log *slog.Logger) *e2b.Server {
	c, err := client.New("http://warden.invalid", client.WithHTTPClient(&http.Client{Transport: rt}),
		client.WithUserAgent("warden-e2b/"+version))
	if err != nil {
		panic(err) // a constant, valid URL
	}
	keys := make([]string, len(cfg.API.Keys))
	for i, k := range cfg.API.Keys {
		keys[i] = k.Reveal()
	}
	return e2b.New(e2b.Options{
		Client:       c,
		Keys:         keys,
		Templates:    cfg.Sandbox.E2BTemplates,
		MaxBodyBytes: int64(cfg.Sandbox.MaxRequestBytes),
		Log:          log.With("surface", "e2b"),
	})
}
