package client

import (
	"context"
	"net/http"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Delete calls DELETE /sandbox/{id}, which destroys the sandbox. An unknown
// id gives an error matching [sandbox.ErrNotFound].
func (c *Client) Delete(ctx context.Context, id sandbox.ID) error {
	p, err := sandboxPath(id, "")
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, p, nil, nil, nil)
}
