package client

import (
	"context"
	"net/http"

	"github.com/warden-sandbox/warden/internal/session"
)

// List calls GET /sandbox and returns the live sandboxes.
func (c *Client) List(ctx context.Context) ([]session.Info, error) {
	var r struct {
		Sandboxes []session.Info `json:"sandboxes"`
	}
	if err := c.doJSON(ctx, http.MethodGet, "/sandbox", nil, nil, &r); err != nil {
		return nil, err
	}
	if r.Sandboxes == nil {
		r.Sandboxes = []session.Info{}
	}
	return r.Sandboxes, nil
}
