// Package client is the Go client of Warden's HTTP API (docs/api.md), the
// service `warden serve` runs: create sandboxes, run Python (with state kept
// between executions) and shell commands in them, stream their output, move
// files in and out, and manage their environment variables.
//
//	c, err := client.NewFromEnv() // WARDEN_URL, WARDEN_API_KEY
//	sb, err := c.Create(ctx, client.CreateOptions{MemoryLimit: "256m"})
//	defer c.Delete(context.WithoutCancel(ctx), sb.ID)
//	res, err := c.Execute(ctx, sb.ID, client.ExecuteOptions{Code: "x = 6 * 7\nx"})
//	fmt.Println(*res.ReturnValue) // 42
//
// The request and answer types are those of package
// [github.com/warden-sandbox/warden/api], which the server shares. Methods
// mirror the routes moby-style: one method per endpoint, XxxOptions in.
// Every method takes a context; cancelling it aborts the request, and the
// server then stops an execution whose client went away. Non-2xx answers
// are [*APIError] values whose class errors.Is matches: [ErrNotFound],
// [ErrDenied], and so on. A Client is safe for concurrent use and never
// logs.
package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// DefaultUserAgent is the User-Agent a Client sends unless [WithUserAgent]
// sets another.
const DefaultUserAgent = "warden-client"

// Client calls one Warden server. It is safe for concurrent use; its
// configuration is fixed by [New].
type Client struct {
	base      string // scheme://host[/prefix], escaped, without a trailing slash
	hc        *http.Client
	apiKey    string
	userAgent string
}

// Option configures a Client in [New].
type Option func(*Client) error

// WithAPIKey sends "Authorization: Bearer key" on every request. An empty
// key sends no Authorization header, so a key read from an unset variable
// can be passed through unchanged.
func WithAPIKey(key string) Option {
	return func(c *Client) error {
		if !validHeaderValue(key) || strings.TrimSpace(key) != key {
			return errors.New("api key contains spaces or control characters")
		}
		c.apiKey = key
		return nil
	}
}

// WithHTTPClient makes the Client send its requests through hc. hc is
// copied, not modified. Unless hc has a CheckRedirect of its own, redirects
// are not followed (see [New]). A Timeout on hc bounds whole calls,
// including the reading of a streamed execution.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) error {
		if hc == nil {
			return errors.New("http client is nil")
		}
		cp := *hc
		if cp.CheckRedirect == nil {
			cp.CheckRedirect = noRedirect
		}
		c.hc = &cp
		return nil
	}
}

// WithUserAgent sets the User-Agent header. Empty keeps [DefaultUserAgent].
func WithUserAgent(ua string) Option {
	return func(c *Client) error {
		if !validHeaderValue(ua) {
			return errors.New("user agent contains control characters")
		}
		if ua != "" {
			c.userAgent = ua
		}
		return nil
	}
}

// Environment variables [NewFromEnv] reads, and the address it uses when
// the first is unset (warden serve's default).
const (
	EnvURL     = "WARDEN_URL"
	EnvAPIKey  = "WARDEN_API_KEY"
	DefaultURL = "http://127.0.0.1:8000"
)

// NewFromEnv returns a Client for the server at $WARDEN_URL (default
// [DefaultURL]) with the key in $WARDEN_API_KEY, if set. Options are
// applied after the environment, so WithAPIKey overrides the variable.
func NewFromEnv(opts ...Option) (*Client, error) {
	return newFromEnv(os.Getenv, opts...)
}

func newFromEnv(getenv func(string) string, opts ...Option) (*Client, error) {
	url := cmp.Or(strings.TrimSpace(getenv(EnvURL)), DefaultURL)
	key := strings.TrimSpace(getenv(EnvAPIKey))
	if !validHeaderValue(key) || strings.ContainsAny(key, " \t") {
		return nil, fmt.Errorf("%s contains spaces or control characters", EnvAPIKey)
	}
	if _, err := New(url); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvURL, err)
	}
	return New(url, append([]Option{WithAPIKey(key)}, opts...)...)
}

// New returns a Client for the server at baseURL, such as
// "http://127.0.0.1:8000". baseURL must be an http or https URL with a host
// and no query, fragment or credentials (use [WithAPIKey]); a path prefix is
// kept, for a server behind a reverse proxy ("https://host/warden").
//
// Redirects are not followed: a 3xx answer is returned as an [*APIError].
// Following one would turn a POST or DELETE into a GET (net/http's rule for
// 301 to 303), so a mistyped URL could report a deletion that never
// happened.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing base URL: %w", err)
	}
	switch {
	case u.User != nil:
		// Do not echo the URL: it holds a secret.
		return nil, errors.New("base URL must not contain credentials; use WithAPIKey")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("base URL %q must start with http:// or https://", baseURL)
	case u.Host == "":
		return nil, fmt.Errorf("base URL %q has no host", baseURL)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("base URL %q must not have a query or fragment", baseURL)
	}
	c := &Client{
		base:      u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"),
		hc:        &http.Client{CheckRedirect: noRedirect},
		userAgent: DefaultUserAgent,
	}
	for _, opt := range opts {
		if err := opt(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// noRedirect makes http.Client return a 3xx response instead of following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// request is one HTTP call. path is already escaped and starts with "/".
type request struct {
	method      string
	path        string
	query       url.Values
	body        io.Reader
	contentType string
	accept      string
}

// send performs r. It returns the response only for a 2xx status; the
// caller closes its body. Any other status is returned as an *APIError.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, r.body)
	if err != nil {
		return nil, err
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	req.Header.Set("User-Agent", c.userAgent)
	if c.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// doJSON sends in (if not nil) as a JSON body and decodes a 2xx answer into
// out (if not nil).
func (c *Client) doJSON(ctx context.Context, method, path string, query url.Values, in, out any) error {
	r := request{method: method, path: path, query: query, accept: "application/json"}
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding %s %s request: %w", method, path, err)
		}
		r.body, r.contentType = bytes.NewReader(b), "application/json"
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding %s %s response: %w", method, path, err)
	}
	return nil
}

// closeBody drains a little of what is left, so the connection can be
// reused, and closes the body.
func closeBody(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, 4<<10))
	_ = b.Close()
}

// sandboxPath returns the escaped path of sandbox id plus suffix. The server
// validates IDs; the client refuses only those that would change the
// request's meaning: an empty ID addresses the collection, and "." or ".."
// would be resolved as dot segments.
func sandboxPath(id string, suffix string) (string, error) {
	switch id {
	case "", ".", "..":
		return "", fmt.Errorf("sandbox id %q: %w", id, ErrInvalid)
	}
	return "/sandbox/" + url.PathEscape(string(id)) + suffix, nil
}
