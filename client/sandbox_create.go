package client

import (
	"context"
	"net/http"
	"time"

	"github.com/warden-sandbox/warden/api"
)

// CreateOptions are the settings of a new sandbox. Every field is
// optional: a zero value is left out of the request, and the server applies
// its configured default.
type CreateOptions struct {
	// Image is the container image (Docker) or the image whose root
	// filesystem bubblewrap uses.
	Image string
	// MemoryLimit is a size such as "512m", or a number of bytes.
	MemoryLimit string
	// CPULimit in CPUs, e.g. 0.5 or 2.
	CPULimit float64
	// PidsLimit caps the number of processes and threads.
	PidsLimit int
	// Timeout is the default per-execution timeout.
	Timeout time.Duration
	// IdleTimeout destroys the sandbox after this long without use.
	IdleTimeout time.Duration
	// EnableNetwork, when not nil, asks for outbound networking on (true)
	// or explicitly off (false); nil leaves it to the server (off by
	// default).
	EnableNetwork *bool
	// EnvironmentVariables every execution sees, added to the server's.
	EnvironmentVariables map[string]string
	// AdditionalReadDirs and AdditionalWriteDirs are host directories made
	// visible at the same path, read-only and read-write.
	AdditionalReadDirs  []string
	AdditionalWriteDirs []string
	// WorkspacePath is a host directory to mount as the workspace.
	WorkspacePath string
	// WorkspaceSize bounds what the private workspace may hold, a size
	// such as "1g" (not with WorkspacePath); empty takes the server's.
	WorkspaceSize string
	// WorkspaceMountPath is where the workspace appears inside the
	// sandbox, such as "/home/user"; empty keeps the server's
	// (SANDBOX__VOLUME_MOUNT_PATH).
	WorkspaceMountPath string
}

// request is the wire form of o.
func (o CreateOptions) request() api.CreateRequest {
	r := api.CreateRequest{
		EnableNetwork:        o.EnableNetwork,
		EnvironmentVariables: o.EnvironmentVariables,
		AdditionalReadDirs:   o.AdditionalReadDirs,
		AdditionalWriteDirs:  o.AdditionalWriteDirs,
	}
	if o.Image != "" {
		r.Image = &o.Image
	}
	if o.MemoryLimit != "" {
		m := api.ByteSize(o.MemoryLimit)
		r.MemoryLimit = &m
	}
	if o.CPULimit != 0 {
		r.CPULimit = &o.CPULimit
	}
	if o.PidsLimit != 0 {
		n := int64(o.PidsLimit)
		r.PidsLimit = &n
	}
	r.Timeout = seconds(o.Timeout)
	r.IdleTimeout = seconds(o.IdleTimeout)
	if o.WorkspacePath != "" {
		r.WorkspacePath = &o.WorkspacePath
	}
	if o.WorkspaceSize != "" {
		m := api.ByteSize(o.WorkspaceSize)
		r.WorkspaceSize = &m
	}
	if o.WorkspaceMountPath != "" {
		r.WorkspaceMountPath = &o.WorkspaceMountPath
	}
	return r
}

// seconds is d in seconds for the wire, nil for zero.
func seconds(d time.Duration) *float64 {
	if d == 0 {
		return nil
	}
	s := d.Seconds()
	return &s
}

// Create calls POST /sandbox/create and returns the new sandbox. Its
// Python session is ready: the first Execute needs no warm-up.
func (c *Client) Create(ctx context.Context, opts CreateOptions) (api.Sandbox, error) {
	var info api.Sandbox
	err := c.doJSON(ctx, http.MethodPost, "/sandbox/create", nil, opts.request(), &info)
	return info, err
}
