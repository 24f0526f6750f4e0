package server

import (
	"context"
	"net/http"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
	"github.com/warden-sandbox/warden/internal/wire"
)

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	up := time.Since(s.start).Seconds()
	return writeJSON(w, http.StatusOK, api.Health{
		Status:          "ok",
		Version:         s.opts.Version,
		UptimeSeconds:   up,
		Uptime:          up,
		SandboxMode:     api.Mode(s.statusInfo(r.Context()).Mode),
		ActiveSandboxes: s.mgr.Active(),
	})
}

// root names the service and its main routes, as the Agent Platform's
// root did.
func (s *Server) root(w http.ResponseWriter, r *http.Request) error {
	body := map[string]string{"name": "Warden", "version": s.opts.Version, "docs": "/openapi.json",
		"health": "/health", "sandbox_status": "/sandbox/status"}
	if s.opts.MCP != nil {
		body["mcp"] = "/mcp"
	}
	return writeJSON(w, http.StatusOK, body)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	st := s.statusInfo(r.Context())
	resp := api.Status{
		Status:             api.Mode(st.Mode),
		Enabled:            st.Enabled,
		MockMode:           st.MockMode,
		DockerAvailable:    st.DockerAvailable,
		ActiveSandboxes:    s.mgr.Active(),
		Warning:            st.Warning,
		Policy:             st.Policy,
		AvailableProviders: st.Providers,
	}
	if st.Provider != "" {
		resp.Provider = &api.ProviderInfo{Name: st.Provider, Isolation: string(st.Isolation), Runtime: st.Runtime}
	}
	return writeJSON(w, http.StatusOK, resp)
}

// statusInfo asks Options.Status, or derives the mode from the provider.
func (s *Server) statusInfo(ctx context.Context) StatusInfo {
	if s.opts.Status != nil {
		return s.opts.Status(ctx)
	}
	p := s.mgr.Provider()
	if p == nil {
		return StatusInfo{Mode: session.ModeDisabled}
	}
	st := StatusInfo{Provider: p.Name(), Isolation: p.Capabilities().Isolation, Policy: PolicyOf(p), Enabled: true}
	st.Mode = session.ModeOf(p)
	if st.Mode == session.ModeMock {
		st.Warning = session.MockWarning
		st.MockMode = true
	}
	st.DockerAvailable = st.Mode == session.ModeDocker
	return st
}

func (s *Server) dockerInfo(w http.ResponseWriter, r *http.Request) error {
	info := api.DockerInfo{Status: api.DockerUnavailable, Message: "Docker detection is not configured"}
	if s.opts.DockerInfo != nil {
		info = s.opts.DockerInfo(r.Context())
	}
	return writeJSON(w, http.StatusOK, info)
}

func (s *Server) listSandboxes(w http.ResponseWriter, r *http.Request) error {
	infos := s.mgr.List()
	list := api.SandboxList{Sandboxes: make([]api.Sandbox, len(infos))}
	for i, info := range infos {
		list.Sandboxes[i] = sandboxOf(info)
	}
	if s.replicas != nil && r.Header.Get(HeaderForwardedBy) == "" {
		list.Sandboxes = s.listEverywhere(w, r, list.Sandboxes)
	}
	return writeJSON(w, http.StatusOK, list)
}

func (s *Server) getSandbox(w http.ResponseWriter, r *http.Request) error {
	info, err := s.mgr.Get(sandboxID(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, sandboxOf(info))
}

func (s *Server) deleteSandbox(w http.ResponseWriter, r *http.Request) error {
	id := sandboxID(r)
	// Removal outlives a client that hangs up: half-removed sandboxes help
	// no one.
	if err := s.mgr.Destroy(context.WithoutCancel(r.Context()), id); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, api.DeleteResponse{ID: string(id), Status: "destroyed"})
}

func sandboxID(r *http.Request) sandbox.ID { return sandbox.ID(r.PathValue("id")) }

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = s.metrics.writeTo(w, s.mgr.Active(), s.mgr.Runs(), s.mgr.Removing())
	return nil
}

// sandboxOf is the wire form of a live sandbox.
func sandboxOf(info session.Info) api.Sandbox {
	return api.Sandbox{
		ID:                 string(info.ID),
		SandboxID:          string(info.ID),
		Provider:           info.Provider,
		Name:               info.Name,
		Workspace:          info.Workspace,
		Spec:               wire.Spec(info.Spec),
		Status:             info.Status,
		Image:              info.Image,
		CreatedAt:          info.CreatedAt,
		LastUsedAt:         info.LastUsedAt,
		IdleTimeoutSeconds: info.IdleTimeoutSeconds,
		Executions:         info.Executions,
		Busy:               info.Busy,
	}
}
