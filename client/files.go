package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
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
// entries of directory p, sorted by name. An empty p sends no path
// parameter, which lists the workspace itself. Symlinks are reported, not
// followed. To list subdirectories too, use [Client.ListFilesDepth].
func (c *Client) ListFiles(ctx context.Context, id string, p string) (api.FileList, error) {
	path, q, err := filePath(id, "/files/list", p, false)
	if err != nil {
		return api.FileList{}, err
	}
	var res api.FileList
	err = c.doJSON(ctx, http.MethodGet, path, q, nil, &res)
	return res, err
}

// ListFilesDepth calls GET /sandbox/{id}/files/list?path=p&depth=depth and
// returns the entries of directory p down to depth levels: 1 is
// [Client.ListFiles], 2 adds the entries of its subdirectories, and so on
// (the server allows at most 10). Each directory is followed by its own
// entries; an entry's Path, relative to the workspace, tells where it is.
// Symlinks are never descended into. A depth below 1 gives an error
// matching [ErrInvalid] without a request.
func (c *Client) ListFilesDepth(ctx context.Context, id string, p string, depth int) (api.FileList, error) {
	if depth < 1 {
		return api.FileList{}, fmt.Errorf("list depth %d is below 1: %w", depth, ErrInvalid)
	}
	path, q, err := filePath(id, "/files/list", p, false)
	if err != nil {
		return api.FileList{}, err
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("depth", strconv.Itoa(depth))
	var res api.FileList
	err = c.doJSON(ctx, http.MethodGet, path, q, nil, &res)
	return res, err
}

// Stat calls GET /sandbox/{id}/files/stat?path=p and describes the file,
// directory or symlink p; a symlink is reported as one, with its
// LinkTarget, not followed. An empty p describes the workspace itself,
// whose Name and Path are ".". A missing p gives an error matching
// [ErrNotFound].
func (c *Client) Stat(ctx context.Context, id string, p string) (api.FileEntry, error) {
	path, q, err := filePath(id, "/files/stat", p, false)
	if err != nil {
		return api.FileEntry{}, err
	}
	var res api.FileEntry
	err = c.doJSON(ctx, http.MethodGet, path, q, nil, &res)
	return res, err
}

// MakeDir calls POST /sandbox/{id}/files/mkdir?path=p, which creates the
// directory p and its missing parents, and returns the new directory. If
// p already exists, directory or not, the error matches [ErrConflict]; its
// message says that p already exists.
func (c *Client) MakeDir(ctx context.Context, id string, p string) (api.FileEntry, error) {
	path, q, err := filePath(id, "/files/mkdir", p, true)
	if err != nil {
		return api.FileEntry{}, err
	}
	var res api.FileEntry
	err = c.doJSON(ctx, http.MethodPost, path, q, nil, &res)
	return res, err
}

// Move calls POST /sandbox/{id}/files/move, which renames src to dst
// inside the workspace, creating dst's missing parent directories, and
// returns the entry at dst. A symlink is moved itself, not its target. A
// file at dst is replaced; a directory there gives an error matching
// [ErrConflict]. A missing src gives one matching [ErrNotFound].
func (c *Client) Move(ctx context.Context, id string, src, dst string) (api.FileEntry, error) {
	path, err := sandboxPath(id, "/files/move")
	if err != nil {
		return api.FileEntry{}, err
	}
	if src == "" || dst == "" {
		return api.FileEntry{}, fmt.Errorf("move source or destination is empty: %w", ErrInvalid)
	}
	var res api.FileEntry
	err = c.doJSON(ctx, http.MethodPost, path, nil, api.MoveRequest{Source: src, Destination: dst}, &res)
	return res, err
}

// Remove calls DELETE /sandbox/{id}/files?path=p, which removes the file
// or symlink p (not the link's target), or the directory p with all its
// contents. A missing p gives an error matching [ErrNotFound]; the
// workspace itself cannot be removed.
func (c *Client) Remove(ctx context.Context, id string, p string) error {
	path, q, err := filePath(id, "/files", p, true)
	if err != nil {
		return err
	}
	return c.doJSON(ctx, http.MethodDelete, path, q, nil, nil)
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
