package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// UploadResult is the answer of PUT /sandbox/{id}/files.
type UploadResult struct {
	// Path is the file's path relative to the workspace.
	Path string `json:"path"`
	// Size is the number of bytes written.
	Size int64 `json:"size"`
}

// Upload calls PUT /sandbox/{id}/files?path=p with the bytes of r as the
// body, creating or replacing the file p (relative to the workspace) and
// its missing parent directories. Upload reads r to its end but does not
// close it; the caller owns r. A *bytes.Reader, *bytes.Buffer or
// *strings.Reader is sent with a Content-Length, anything else chunked.
func (c *Client) Upload(ctx context.Context, id sandbox.ID, p string, r io.Reader) (UploadResult, error) {
	path, q, err := filePath(id, "/files", p, true)
	if err != nil {
		return UploadResult{}, err
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
		return UploadResult{}, err
	}
	defer closeBody(resp.Body)
	var res UploadResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return UploadResult{}, fmt.Errorf("decoding upload response: %w", err)
	}
	return res, nil
}

// Download calls GET /sandbox/{id}/files?path=p and returns the file's
// contents as a stream. The caller must close it. Cancelling ctx aborts the
// transfer: reads then fail. An unknown file gives an error matching
// [sandbox.ErrNotFound].
func (c *Client) Download(ctx context.Context, id sandbox.ID, p string) (io.ReadCloser, error) {
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

// File types of a [FileEntry].
const (
	FileTypeFile    = "file"
	FileTypeDir     = "dir"
	FileTypeSymlink = "symlink"
	// FileTypeOther is a FIFO, socket or device.
	FileTypeOther = "other"
)

// FileEntry is one entry of a directory listing.
type FileEntry struct {
	Name string `json:"name"`
	// Type is FileTypeFile, FileTypeDir, FileTypeSymlink or FileTypeOther.
	Type string `json:"type"`
	Size int64  `json:"size"`
	// Mode holds the permission bits.
	Mode fs.FileMode `json:"mode"`
	// ModTime is the time of the last modification.
	ModTime time.Time `json:"mod_time"`
}

// UnmarshalJSON accepts mode as a number or as a string, either octal
// ("0644", "0o644") or in ls form ("-rw-r--r--"), and mod_time as an RFC
// 3339 string or a number of seconds since the Unix epoch.
func (e *FileEntry) UnmarshalJSON(b []byte) error {
	var w struct {
		Name    string          `json:"name"`
		Type    string          `json:"type"`
		Size    int64           `json:"size"`
		Mode    json.RawMessage `json:"mode"`
		ModTime json.RawMessage `json:"mod_time"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	mode, err := parseMode(w.Mode)
	if err != nil {
		return fmt.Errorf("file entry %q: %w", w.Name, err)
	}
	mtime, err := parseTime(w.ModTime)
	if err != nil {
		return fmt.Errorf("file entry %q: %w", w.Name, err)
	}
	*e = FileEntry{Name: w.Name, Type: w.Type, Size: w.Size, Mode: mode, ModTime: mtime}
	return nil
}

func parseMode(raw json.RawMessage) (fs.FileMode, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var n uint32
	if err := json.Unmarshal(raw, &n); err == nil {
		return fs.FileMode(n) & fs.ModePerm, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, fmt.Errorf("mode %s is neither a number nor a string", raw)
	}
	if len(s) >= 10 && strings.Trim(s[len(s)-9:], "rwxsStT-") == "" {
		// ls form: the last nine characters are rwx for user, group, other.
		var m fs.FileMode
		for i, c := range s[len(s)-9:] {
			if c != '-' && c != 'S' && c != 'T' {
				m |= 1 << (8 - i)
			}
		}
		return m, nil
	}
	n64, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O"), 8, 32)
	if err != nil {
		return 0, fmt.Errorf("mode %q is not octal", s)
	}
	return fs.FileMode(n64) & fs.ModePerm, nil
}

func parseTime(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var t time.Time
	if err := json.Unmarshal(raw, &t); err == nil {
		return t, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil {
		return time.Time{}, fmt.Errorf("mod_time %s is neither RFC 3339 nor Unix seconds", raw)
	}
	return time.Unix(0, int64(secs*float64(time.Second))), nil
}

// ListFilesResult is the answer of GET /sandbox/{id}/files/list.
type ListFilesResult struct {
	// Path is the listed directory, relative to the workspace.
	Path    string      `json:"path"`
	Entries []FileEntry `json:"entries"`
}

// ListFiles calls GET /sandbox/{id}/files/list?path=p and returns the
// entries of directory p. An empty p sends no path parameter, which lists
// the workspace itself.
func (c *Client) ListFiles(ctx context.Context, id sandbox.ID, p string) (ListFilesResult, error) {
	path, q, err := filePath(id, "/files/list", p, false)
	if err != nil {
		return ListFilesResult{}, err
	}
	var res ListFilesResult
	err = c.doJSON(ctx, http.MethodGet, path, q, nil, &res)
	return res, err
}

// filePath returns the request path and query of a file endpoint. The file
// path travels as the query parameter "path"; the server checks that it
// stays inside the workspace.
func filePath(id sandbox.ID, suffix, p string, required bool) (string, url.Values, error) {
	path, err := sandboxPath(id, suffix)
	if err != nil {
		return "", nil, err
	}
	if p == "" {
		if required {
			return "", nil, fmt.Errorf("file path is empty: %w", sandbox.ErrInvalid)
		}
		return path, nil, nil
	}
	return path, url.Values{"path": {p}}, nil
}
