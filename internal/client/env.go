package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// envBody is the request and answer body of the env endpoints. The field is
// always sent: PUT with an empty set clears the environment.
type envBody struct {
	EnvironmentVariables map[string]string `json:"environment_variables"`
}

// Env calls GET /sandbox/{id}/env and returns the sandbox's environment
// variables.
func (c *Client) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	p, err := sandboxPath(id, "/env")
	if err != nil {
		return nil, err
	}
	return c.env(ctx, http.MethodGet, p, nil)
}

// SetEnv calls PUT /sandbox/{id}/env, which replaces all of the sandbox's
// environment variables by env (nil or empty clears them), and returns the
// new set.
func (c *Client) SetEnv(ctx context.Context, id sandbox.ID, env map[string]string) (map[string]string, error) {
	p, err := sandboxPath(id, "/env")
	if err != nil {
		return nil, err
	}
	if env == nil {
		env = map[string]string{}
	}
	return c.env(ctx, http.MethodPut, p, envBody{EnvironmentVariables: env})
}

// UpdateEnv calls PATCH /sandbox/{id}/env, which adds or overwrites the
// variables of set and removes those named in unset (a missing name is not
// an error), and returns the new set.
func (c *Client) UpdateEnv(ctx context.Context, id sandbox.ID, set map[string]string, unset []string) (map[string]string, error) {
	p, err := sandboxPath(id, "/env")
	if err != nil {
		return nil, err
	}
	body := struct {
		Set   map[string]string `json:"set,omitempty"`
		Unset []string          `json:"unset,omitempty"`
	}{set, unset}
	return c.env(ctx, http.MethodPatch, p, body)
}

// UnsetEnv calls DELETE /sandbox/{id}/env/{name}, which removes one
// variable, and returns the new set.
func (c *Client) UnsetEnv(ctx context.Context, id sandbox.ID, name string) (map[string]string, error) {
	if name == "" || name == "." || name == ".." {
		return nil, fmt.Errorf("environment variable name %q: %w", name, sandbox.ErrInvalid)
	}
	p, err := sandboxPath(id, "/env/"+url.PathEscape(name))
	if err != nil {
		return nil, err
	}
	return c.env(ctx, http.MethodDelete, p, nil)
}

func (c *Client) env(ctx context.Context, method, path string, in any) (map[string]string, error) {
	var out envBody
	if err := c.doJSON(ctx, method, path, nil, in, &out); err != nil {
		return nil, err
	}
	if out.EnvironmentVariables == nil {
		out.EnvironmentVariables = map[string]string{}
	}
	return out.EnvironmentVariables, nil
}
