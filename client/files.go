package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/warden-sandbox/warden/api"
)

// Upload calls PUT /sandbox/{id}/files?path=p with the bytes of r as the
// body, creating or replacing the file p (relative to the workspace) and
// its missing parent directories. Upload reads r to its end but does not
// close it; the caller owns r. A *bytes.Reader, *bytes.Buffer or
// *strings.Reader is sent with a Content-Length, anything else chunked.
func (c *Client) Upload(ctx context.Context, id string, p string, r io.Reader) (api.Upload, error) {
	path, q, err := filePath(id, "/files", p, true)
	if err != nil {
		return api.Upload{}, err
	}
	switch r.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		// net/http sets the length and can replay these.
	default:
		// Hide Close: net/http would close an io.ReadCloser, and r is the
		// caller's.
		r = struct{ io.Reader }{r}
	}
	resp, err := c.send(ctx, request{
		method: http.MethodPut, path: path, query: q, body: r,
		contentType: "application/octet-stream", accept: "application/json",
	})
	if err != nil {
		return api.Upload{}, err
	}
	defer closeBody(resp.Body)
	var res api.Upload
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return api.Upload{}, fmt.Errorf("decoding upload response: %w", err)
	}
	return res, nil
}

// Download calls GET /sandbox/{id}/files?path=p and returns the file's
// contents as a stream. The caller must close it. Cancelling ctx aborts the
// transfer: reads then fail. An unknown file gives an error matching
// [ErrNotFound].
func (c *Client) Download(ctx context.Context, id string, p string) (io.ReadCloser, error) {
	path, q, err := filePath(id, "/files", p, true)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: path, query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ListFiles calls GET /sandbox/{id}/files/list?path=p and returns the
// entries of directory p. An empty p sends no path parameter, which lists
// the workspace itself.
func (c *Client) ListFiles(ctx context.Context, id string, p string) (api.FileList, error) {
	path, q, err := filePath(id, "/files/list", p, false)
	if err != nil {
		return api.FileList{}, err
	}
	var res api.FileList
	err = c.doJSON(ctx, http.MethodGet, path, q, nil, &res)
	return res, err
}

// filePath returns the request path and query of a file endpoint. The file
// path travels as the query parameter "path"; the server checks that it
// stays inside the workspace.
func filePath(id string, suffix, p string, required bool) (string, url.Values, error) {
	path, err := sandboxPath(id, suffix)
	if err != nil {
		return "", nil, err
	}
	if p == "" {
		if required {
			return "", nil, fmt.Errorf("file path is empty: %w", ErrInvalid)
		}
		return path, nil, nil
	}
	return path, url.Values{"path": {p}}, nil
}
