package client

import (
	"context"
	"net/http"

	"github.com/warden-sandbox/warden/api"
)

// Health calls GET /health, the one endpoint that needs no API key.
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var r api.Health
	err := c.doJSON(ctx, http.MethodGet, "/health", nil, nil, &r)
	return r, err
}

// Status calls GET /sandbox/status: the isolation in use, every provider
// considered and why, and the checks in front of executions.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var r api.Status
	err := c.doJSON(ctx, http.MethodGet, "/sandbox/status", nil, nil, &r)
	return r, err
}

// DockerInfo calls GET /sandbox/docker-info. The server answers 200 even
// when Docker is unreachable; read Available and Status.
func (c *Client) DockerInfo(ctx context.Context) (api.DockerInfo, error) {
	var r api.DockerInfo
	err := c.doJSON(ctx, http.MethodGet, "/sandbox/docker-info", nil, nil, &r)
	return r, err
}
