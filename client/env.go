package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/warden-sandbox/warden/api"
)

// Env calls GET /sandbox/{id}/env and returns the sandbox's environment
// variables.
func (c *Client) Env(ctx context.Context, id string) (map[string]string, error) {
	p, err := sandboxPath(id, "/env")
	if err != nil {
		return nil, err
	}
	return c.env(ctx, http.MethodGet, p, nil)
}

// SetEnv calls PUT /sandbox/{id}/env, which replaces all of the sandbox's
// environment variables by env (nil or empty clears them), and returns the
// new set.
func (c *Client) SetEnv(ctx context.Context, id string, env map[string]string) (map[string]string, error) {
	p, err := sandboxPath(id, "/env")
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = map[string]string{}
	}
	return c.env(ctx, http.MethodPut, p, api.Env{EnvironmentVariables: env})
}

// UpdateEnv calls PATCH /sandbox/{id}/env, which adds or overwrites the
// variables of set and removes those named in unset (a missing name is not
// an error), and returns the new set.
func (c *Client) UpdateEnv(ctx context.Context, id string, set map[string]string, unset []string) (map[string]string, error) {
	p, err := sandboxPath(id, "/env")
	if err != nil {
		return nil, err
	}
	return c.env(ctx, http.MethodPatch, p, api.EnvPatch{Set: set, Unset: unset})
}

// UnsetEnv calls DELETE /sandbox/{id}/env/{name}, which removes one
// variable, and returns the new set.
func (c *Client) UnsetEnv(ctx context.Context, id string, name string) (map[string]string, error) {
	if name == "" || name == "." || name == ".." {
		return nil, fmt.Errorf("environment variable name %q: %w", name, ErrInvalid)
	}
	p, err := sandboxPath(id, "/env/"+url.PathEscape(name))
	if err != nil {
		return nil, err
	}
	return c.env(ctx, http.MethodDelete, p, nil)
}

func (c *Client) env(ctx context.Context, method, path string, in any) (map[string]string, error) {
	var out api.Env
	if err := c.doJSON(ctx, method, path, nil, in, &out); err != nil {
		return nil, err
	}
	if out.EnvironmentVariables == nil {
		out.EnvironmentVariables = map[string]string{}
	}
	return out.EnvironmentVariables, nil
}
