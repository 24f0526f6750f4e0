package client

import (
	"context"
	"net/http"

	"github.com/warden-sandbox/warden/api"
)

// List calls GET /sandbox and returns the live sandboxes, oldest first.
func (c *Client) List(ctx context.Context) ([]api.Sandbox, error) {
	var r api.SandboxList
	if err := c.doJSON(ctx, http.MethodGet, "/sandbox", nil, nil, &r); err != nil {
		return nil, err
	}
	if r.Sandboxes == nil {
		r.Sandboxes = []api.Sandbox{}
	}
	return r.Sandboxes, nil
}
