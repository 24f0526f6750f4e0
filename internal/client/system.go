package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

// HealthResult is the answer of GET /health.
type HealthResult struct {
	// Status is "ok" when the service is up.
	Status  string `json:"status"`
	Version string `json:"version"`
	// UptimeSeconds is how long the service has been running.
	UptimeSeconds float64 `json:"uptime_seconds"`
	// SandboxMode is how the service isolates code.
	SandboxMode     session.Mode `json:"sandbox_mode"`
	ActiveSandboxes int          `json:"active_sandboxes"`
}

// Uptime returns UptimeSeconds as a duration.
func (r HealthResult) Uptime() time.Duration {
	return time.Duration(r.UptimeSeconds * float64(time.Second))
}

// Health calls GET /health, the one endpoint that needs no API key.
func (c *Client) Health(ctx context.Context) (HealthResult, error) {
	var r HealthResult
	err := c.doJSON(ctx, http.MethodGet, "/health", nil, nil, &r)
	return r, err
}

// ProviderInfo names the provider behind a service.
type ProviderInfo struct {
	Name      string            `json:"name"`
	Isolation sandbox.Isolation `json:"isolation"`
}

// StatusResult is the answer of GET /sandbox/status.
type StatusResult struct {
	// Status is the sandbox mode: docker, bubblewrap, mock or disabled.
	Status          session.Mode `json:"status"`
	DockerAvailable bool         `json:"docker_available"`
	ActiveSandboxes int          `json:"active_sandboxes"`
	// Provider is zero when the server reports none (disabled).
	Provider ProviderInfo `json:"provider"`
	// Warning is set whenever nothing isolates the code, e.g. in mock mode.
	Warning string `json:"warning,omitempty"`
}

// Status calls GET /sandbox/status.
func (c *Client) Status(ctx context.Context) (StatusResult, error) {
	var r StatusResult
	err := c.doJSON(ctx, http.MethodGet, "/sandbox/status", nil, nil, &r)
	return r, err
}

// DockerInfoResult is the answer of GET /sandbox/docker-info.
type DockerInfoResult struct {
	Available bool `json:"available"`
	// Status is "connected", "unavailable", "error" or "disabled".
	Status     string `json:"status"`
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
	Message    string `json:"message"`
	// Extra holds the fields of the answer not named above, decoded as
	// encoding/json decodes into an any; nil if there are none.
	Extra map[string]any `json:"-"`
}

// UnmarshalJSON decodes the named fields and keeps the others in Extra.
func (r *DockerInfoResult) UnmarshalJSON(b []byte) error {
	type plain DockerInfoResult
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range []string{"available", "status", "version", "api_version", "message"} {
		delete(all, k)
	}
	if len(all) > 0 {
		p.Extra = all
	}
	*r = DockerInfoResult(p)
	return nil
}

// DockerInfo calls GET /sandbox/docker-info. The server answers 200 even
// when Docker is unreachable; read Available and Status.
func (c *Client) DockerInfo(ctx context.Context) (DockerInfoResult, error) {
	var r DockerInfoResult
	err := c.doJSON(ctx, http.MethodGet, "/sandbox/docker-info", nil, nil, &r)
	return r, err
}
