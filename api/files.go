package api

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Upload is the answer of PUT /sandbox/{id}/files.
type Upload struct {
	// Path is the file's cleaned path relative to the workspace.
	Path string `json:"path"`
	// Size is the number of bytes written.
	Size int64 `json:"size"`
}

// File types of a FileEntry.
const (
	FileTypeFile    = "file"
	FileTypeDir     = "dir"
	FileTypeSymlink = "symlink"
	// FileTypeOther is a FIFO, socket or device.
	FileTypeOther = "other"
)

// FileEntry describes one file of the workspace: an entry of a directory
// listing, or the answer of stat, mkdir and move. Symbolic links are
// reported, not followed.
type FileEntry struct {
	// Name is the base name; "." for the workspace itself.
	Name string `json:"name"`
	// Path is the file's path relative to the workspace ("." for the
	// workspace itself), so that entries of a recursive listing can be
	// told apart.
	Path string `json:"path,omitempty"`
	// Type is one of the FileType constants.
	Type string `json:"type"`
	// Size in bytes (of the link itself for a symlink).
	Size int64 `json:"size"`
	// Mode holds the permission bits, sent as a 4-digit octal string.
	Mode FileMode `json:"mode"`
	// ModTime is sent as RFC 3339 in UTC with fractional seconds.
	ModTime time.Time `json:"mod_time"`
	// LinkTarget is, for a symlink, the link's text as stored (relative or
	// absolute, possibly pointing outside the workspace); empty otherwise.
	LinkTarget string `json:"link_target,omitempty"`
}

// FileList is the answer of GET /sandbox/{id}/files/list.
type FileList struct {
	// Path is the listed directory relative to the workspace ("." for the
	// workspace itself).
	Path string `json:"path"`
	// Entries are sorted by name, each directory followed by its own
	// entries when the listing is recursive (depth above 1).
	Entries []FileEntry `json:"entries"`
}

// MoveRequest is the body of POST /sandbox/{id}/files/move. Both paths
// follow the rules of the file routes: relative to the workspace, or
// absolute under the sandbox's workspace path.
type MoveRequest struct {
	Source      string `json:"source"`
	Destination string `json:"destination"`
}

// Removed is the answer of DELETE /sandbox/{id}/files.
type Removed struct {
	// Path is the removed file's cleaned path relative to the workspace.
	Path string `json:"path"`
	// Status is always "removed".
	Status string `json:"status"`
}

// FileMode is a file's permission bits, sent as a 4-digit octal string
// such as "0644".
type FileMode fs.FileMode

// MarshalJSON writes the permission bits as "0644".
func (m FileMode) MarshalJSON() ([]byte, error) {
	return json.Marshal(fmt.Sprintf("%04o", fs.FileMode(m).Perm()))
}

// UnmarshalJSON reads an octal string ("0644", "0o644") or a number.
func (m *FileMode) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n uint32
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("mode: want an octal string such as \"0644\", got %s", b)
		}
		*m = FileMode(fs.FileMode(n).Perm())
		return nil
	}
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "0o"), 8, 32)
	if err != nil {
		return fmt.Errorf("mode %q is not octal", s)
	}
	*m = FileMode(fs.FileMode(n).Perm())
	return nil
}
