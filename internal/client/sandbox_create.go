package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/warden-sandbox/warden/internal/session"
)

// CreateOptions are the fields of POST /sandbox/create. Every field is
// optional: a zero value is left out of the request, and the server applies
// its default.
type CreateOptions struct {
	// Image is the container image (Docker) or runtime root filesystem.
	Image string
	// MemoryLimit is a size such as "512m", or a number of bytes ("536870912",
	// sent as a JSON number).
	MemoryLimit string
	// CPULimit in CPUs, e.g. 0.5 or 2.
	CPULimit float64
	// PidsLimit caps the number of processes and threads.
	PidsLimit int
	// Timeout is the default per-execution timeout, sent in seconds
	// (fractional when it is not a whole number of seconds).
	Timeout time.Duration
	// IdleTimeout destroys the sandbox after this long without use, sent in
	// seconds.
	IdleTimeout time.Duration
	// EnableNetwork, when not nil, asks for outbound networking on (true) or
	// explicitly off (false); nil leaves it to the server (off by default).
	EnableNetwork *bool
	// EnvironmentVariables every execution sees.
	EnvironmentVariables map[string]string
	// AdditionalReadDirs and AdditionalWriteDirs are host directories made
	// visible read-only and read-write.
	AdditionalReadDirs  []string
	AdditionalWriteDirs []string
	// WorkspacePath is the host directory to mount as the workspace.
	WorkspacePath string
}

// createRequest is the wire form of CreateOptions.
type createRequest struct {
	Image                string            `json:"image,omitempty"`
	MemoryLimit          memoryLimit       `json:"memory_limit,omitempty"`
	CPULimit             float64           `json:"cpu_limit,omitempty"`
	PidsLimit            int               `json:"pids_limit,omitempty"`
	Timeout              seconds           `json:"timeout,omitempty"`
	IdleTimeout          seconds           `json:"idle_timeout,omitempty"`
	EnableNetwork        *bool             `json:"enable_network,omitempty"`
	EnvironmentVariables map[string]string `json:"environment_variables,omitempty"`
	AdditionalReadDirs   []string          `json:"additional_read_dirs,omitempty"`
	AdditionalWriteDirs  []string          `json:"additional_write_dirs,omitempty"`
	WorkspacePath        string            `json:"workspace_path,omitempty"`
}

// Create calls POST /sandbox/create and returns the new sandbox.
func (c *Client) Create(ctx context.Context, opts CreateOptions) (session.Info, error) {
	body := createRequest{
		Image:                opts.Image,
		MemoryLimit:          memoryLimit(opts.MemoryLimit),
		CPULimit:             opts.CPULimit,
		PidsLimit:            opts.PidsLimit,
		Timeout:              seconds(opts.Timeout),
		IdleTimeout:          seconds(opts.IdleTimeout),
		EnableNetwork:        opts.EnableNetwork,
		EnvironmentVariables: opts.EnvironmentVariables,
		AdditionalReadDirs:   opts.AdditionalReadDirs,
		AdditionalWriteDirs:  opts.AdditionalWriteDirs,
		WorkspacePath:        opts.WorkspacePath,
	}
	var info session.Info
	err := c.doJSON(ctx, http.MethodPost, "/sandbox/create", nil, body, &info)
	return info, err
}

// seconds is a duration sent as a JSON number of seconds: "30" for a whole
// number, "0.25" otherwise. omitempty leaves out the zero value, being an
// integer kind.
type seconds time.Duration

func (s seconds) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(s).Seconds(), 'f', -1, 64), nil
}

// memoryLimit is sent as a JSON number when it is a plain number of bytes
// and as a string ("512m") otherwise, the two forms docs/api.md accepts.
type memoryLimit string

func (m memoryLimit) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseInt(string(m), 10, 64); err == nil {
		return strconv.AppendInt(nil, n, 10), nil
	}
	return json.Marshal(string(m))
}
