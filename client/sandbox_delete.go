package client

import (
	"context"
	"net/http"
)

// Delete calls DELETE /sandbox/{id}, which destroys the sandbox and its
// private workspace. An unknown id gives an error matching [ErrNotFound].
func (c *Client) Delete(ctx context.Context, id string) error {
	p, err := sandboxPath(id, "")
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, p, nil, nil, nil)
}
