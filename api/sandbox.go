package api

import (
	"encoding/json"
	"strconv"
	"time"
)

// CreateRequest is the body of POST /sandbox/create. Every field is
// optional: nil (absent, or JSON null) keeps the server's configured
// default, and an explicit zero is refused rather than read as "default".
type CreateRequest struct {
	// Image is the container image (or, for bubblewrap, the image whose
	// root filesystem is used).
	Image *string `json:"image,omitempty"`
	// MemoryLimit is a byte size: "512m", "1g", or a whole number of bytes.
	MemoryLimit *ByteSize `json:"memory_limit,omitempty"`
	// CPULimit is in CPUs, such as 0.5 or 2.
	CPULimit *float64 `json:"cpu_limit,omitempty"`
	// PidsLimit bounds processes and threads.
	PidsLimit *int64 `json:"pids_limit,omitempty"`
	// Timeout is the default execution timeout, in seconds.
	Timeout *float64 `json:"timeout,omitempty"`
	// IdleTimeout destroys the sandbox after this many seconds unused.
	IdleTimeout *float64 `json:"idle_timeout,omitempty"`
	// EnableNetwork gives the sandbox outbound network access.
	EnableNetwork *bool `json:"enable_network,omitempty"`
	// EnvironmentVariables are merged into the configured ones.
	EnvironmentVariables map[string]string `json:"environment_variables,omitempty"`
	// AdditionalReadDirs and AdditionalWriteDirs are absolute host
	// directories mounted at the same path, read-only and read-write.
	AdditionalReadDirs  []string `json:"additional_read_dirs,omitempty"`
	AdditionalWriteDirs []string `json:"additional_write_dirs,omitempty"`
	// WorkspacePath is an absolute host directory used as the workspace,
	// kept when the sandbox is destroyed.
	WorkspacePath *string `json:"workspace_path,omitempty"`
	// WorkspaceSize bounds what the sandbox's private workspace may hold
	// (a byte size, at least "8m"); writes past it fail with ENOSPC. Not
	// with WorkspacePath.
	WorkspaceSize *ByteSize `json:"workspace_size,omitempty"`
	// WorkspaceMountPath is where the workspace appears inside the
	// sandbox, such as "/home/user": a clean absolute path outside the
	// system directories. Nil keeps the configured one
	// (SANDBOX__VOLUME_MOUNT_PATH).
	WorkspaceMountPath *string `json:"workspace_mount_path,omitempty"`
}

// ByteSize is a size in bytes as the API accepts it: a JSON string with an
// optional unit ("512m", "1g"; k, m, g, t are powers of 1024; digits alone
// are bytes) or a JSON integer of bytes. The server validates the value.
type ByteSize string

// MarshalJSON writes digits alone as a JSON integer and anything else as a
// string.
func (b ByteSize) MarshalJSON() ([]byte, error) {
	if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return strconv.AppendInt(nil, n, 10), nil
	}
	return json.Marshal(string(b))
}

// UnmarshalJSON accepts a string or a whole number.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*b = ByteSize(s)
		return nil
	}
	if _, err := strconv.ParseInt(string(data), 10, 64); err != nil {
		return &ByteSizeError{JSON: string(data)}
	}
	*b = ByteSize(data)
	return nil
}

// ByteSizeError reports JSON that is neither a string nor a whole number
// where a [ByteSize] is expected.
type ByteSizeError struct {
	// JSON is the value found.
	JSON string
}

func (e *ByteSizeError) Error() string {
	return `want a byte size such as "512m" or a whole number of bytes, got ` + e.JSON
}

// Sandbox describes a live sandbox (SandboxInfo in docs/api.md): the
// answer of create and get, and an element of the list.
type Sandbox struct {
	// ID is "sb-" and 16 hex digits.
	ID string `json:"id"`
	// SandboxID repeats ID (alias for Agent Platform clients).
	SandboxID string `json:"sandbox_id"`
	// Provider is the backend: "bubblewrap", "docker", "seatbelt",
	// "forkserver", "kubernetes" or "local".
	Provider string `json:"provider"`
	// Name is the backend's name for the sandbox (the container name).
	Name string `json:"name,omitempty"`
	// Workspace is the host directory behind the workspace, if any.
	Workspace string `json:"workspace,omitempty"`
	// Spec is the sandbox's settings as created, without environment
	// variables (their values are often secrets; see the env routes).
	Spec Spec `json:"spec"`
	// Status is "running" for every live sandbox.
	Status string `json:"status"`
	Image  string `json:"image"`
	// CreatedAt and LastUsedAt are when it was made and last used
	// (executions, env and file operations).
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	// IdleTimeoutSeconds is how long it may stay unused; 0 is forever.
	IdleTimeoutSeconds float64 `json:"idle_timeout_seconds"`
	// Executions counts executions so far.
	Executions int64 `json:"executions"`
	// Busy reports an operation (such as an execution) in progress.
	Busy bool `json:"busy"`
}

// Spec is a sandbox's settings. Fields with a zero value are omitted.
type Spec struct {
	Image       string  `json:"image,omitempty"`
	MemoryLimit int64   `json:"memory_limit,omitempty"` // bytes
	CPULimit    float64 `json:"cpu_limit,omitempty"`
	PidsLimit   int64   `json:"pids_limit,omitempty"`
	// EnableNetwork reports outbound network access.
	EnableNetwork bool `json:"enable_network,omitempty"`
	// EnvironmentVariables is never filled in answers.
	EnvironmentVariables map[string]string `json:"environment_variables,omitempty"`
	Mounts               []Mount           `json:"mounts,omitempty"`
	// WorkspaceDir is the host directory given as workspace_path at
	// creation; WorkspacePath is where the workspace appears inside the
	// sandbox (default /workspace).
	WorkspaceDir        string `json:"workspace_dir,omitempty"`
	WorkspacePath       string `json:"workspace_path,omitempty"`
	ContainerNamePrefix string `json:"container_name_prefix,omitempty"`
	// TimeoutSeconds is the default execution timeout.
	TimeoutSeconds float64 `json:"timeout,omitempty"`
	// OutputLimit is the cap in bytes on each output stream of one
	// execution.
	OutputLimit int   `json:"output_limit,omitempty"`
	TmpSize     int64 `json:"tmp_size,omitempty"` // bytes of /tmp
	// WorkspaceSize bounds what the private workspace may hold, in bytes;
	// absent when unbounded.
	WorkspaceSize int64             `json:"workspace_size,omitempty"`
	AutoPullImage bool              `json:"auto_pull_image,omitempty"`
	Labels        map[string]string `json:"labels,omitempty"`
}

// Mount is a host directory mounted into a sandbox.
type Mount struct {
	Source   string `json:"source"`
	Target   string `json:"target,omitempty"`
	ReadOnly bool   `json:"read_only,omitempty"`
}

// SandboxList is the answer of GET /sandbox, oldest first.
type SandboxList struct {
	Sandboxes []Sandbox `json:"sandboxes"`
}

// DeleteResponse is the answer of DELETE /sandbox/{id}.
type DeleteResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"` // "destroyed"
}
