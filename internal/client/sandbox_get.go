package client

import (
	"context"
	"net/http"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

// Get calls GET /sandbox/{id}. An unknown id gives an error matching
// [sandbox.ErrNotFound].
func (c *Client) Get(ctx context.Context, id sandbox.ID) (session.Info, error) {
	var info session.Info
	p, err := sandboxPath(id, "")
	if err != nil {
		return info, err
	}
	err = c.doJSON(ctx, http.MethodGet, p, nil, nil, &info)
	return info, err
}
