package client

import (
	"context"
	"net/http"

	"github.com/warden-sandbox/warden/api"
)

// Get calls GET /sandbox/{id}. An unknown id gives an error matching
// [ErrNotFound].
func (c *Client) Get(ctx context.Context, id string) (api.Sandbox, error) {
	var info api.Sandbox
	p, err := sandboxPath(id, "")
	if err != nil {
		return info, err
	}
	err = c.doJSON(ctx, http.MethodGet, p, nil, nil, &info)
	return info, err
}
