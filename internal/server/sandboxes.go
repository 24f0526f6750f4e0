package server

import (
	"context"
	"net/http"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

type healthResponse struct {
	Status          string       `json:"status"`
	Version         string       `json:"version"`
	UptimeSeconds   float64      `json:"uptime_seconds"`
	SandboxMode     session.Mode `json:"sandbox_mode"`
	ActiveSandboxes int          `json:"active_sandboxes"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, healthResponse{
		Status:          "ok",
		Version:         s.opts.Version,
		UptimeSeconds:   time.Since(s.start).Seconds(),
		SandboxMode:     s.statusInfo(r.Context()).Mode,
		ActiveSandboxes: s.mgr.Active(),
	})
}

type providerInfo struct {
	Name      string            `json:"name"`
	Isolation sandbox.Isolation `json:"isolation"`
}

type statusResponse struct {
	Status          session.Mode  `json:"status"`
	DockerAvailable bool          `json:"docker_available"`
	ActiveSandboxes int           `json:"active_sandboxes"`
	Provider        *providerInfo `json:"provider"`
	Warning         string        `json:"warning,omitempty"`
	// Policy and AvailableProviders are Warden's additions.
	Policy             *PolicyInfo            `json:"policy,omitempty"`
	AvailableProviders []ProviderAvailability `json:"available_providers,omitempty"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	st := s.statusInfo(r.Context())
	resp := statusResponse{
		Status:             st.Mode,
		DockerAvailable:    st.DockerAvailable,
		ActiveSandboxes:    s.mgr.Active(),
		Warning:            st.Warning,
		Policy:             st.Policy,
		AvailableProviders: st.Providers,
	}
	if st.Provider != "" {
		resp.Provider = &providerInfo{Name: st.Provider, Isolation: st.Isolation}
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
	st := StatusInfo{Provider: p.Name(), Isolation: p.Capabilities().Isolation, Policy: PolicyOf(p)}
	st.Mode = session.ModeOf(p)
	if st.Mode == session.ModeMock {
		st.Warning = session.MockWarning
	}
	st.DockerAvailable = st.Mode == session.ModeDocker
	return st
}

func (s *Server) dockerInfo(w http.ResponseWriter, r *http.Request) error {
	info := DockerInfo{Status: "disabled", Message: "Docker detection is not configured"}
	if s.opts.DockerInfo != nil {
		info = s.opts.DockerInfo(r.Context())
	}
	return writeJSON(w, http.StatusOK, info)
}

type listResponse struct {
	Sandboxes []session.Info `json:"sandboxes"`
}

func (s *Server) listSandboxes(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, listResponse{Sandboxes: s.mgr.List()})
}

func (s *Server) getSandbox(w http.ResponseWriter, r *http.Request) error {
	info, err := s.mgr.Get(sandboxID(r))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, info)
}

type deleteResponse struct {
	ID     sandbox.ID `json:"id"`
	Status string     `json:"status"`
}

func (s *Server) deleteSandbox(w http.ResponseWriter, r *http.Request) error {
	id := sandboxID(r)
	// Removal outlives a client that hangs up: half-removed sandboxes help
	// no one.
	if err := s.mgr.Destroy(context.WithoutCancel(r.Context()), id); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, deleteResponse{ID: id, Status: "destroyed"})
}

func sandboxID(r *http.Request) sandbox.ID { return sandbox.ID(r.PathValue("id")) }

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = s.metrics.writeTo(w, s.mgr.Active())
	return nil
}
