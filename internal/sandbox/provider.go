package sandbox

import "context"

// Isolation says how strongly a provider separates sandboxed code from the
// host.
type Isolation string

const (
	// IsolationNone: code runs as a host process. Off unless enabled.
	IsolationNone Isolation = "none"
	// IsolationNamespace: Linux namespaces (and seccomp) without a
	// container runtime, e.g. bubblewrap.
	IsolationNamespace Isolation = "namespace"
	// IsolationContainer: an OCI container (Docker).
	IsolationContainer Isolation = "container"
)

// Capabilities says what a provider can enforce. Callers refuse specs that
// ask for more than a provider promises instead of silently downgrading.
type Capabilities struct {
	Isolation     Isolation `json:"isolation"`
	NetworkToggle bool      `json:"network_toggle"`
	MemoryLimit   bool      `json:"memory_limit"`
	CPULimit      bool      `json:"cpu_limit"`
	PidsLimit     bool      `json:"pids_limit"`
	Mounts        bool      `json:"mounts"`
}

// Info describes a live sandbox.
type Info struct {
	ID       ID     `json:"id"`
	Provider string `json:"provider"`
	// Name is the backend's name for it (the container name for Docker).
	Name string `json:"name,omitempty"`
	// Workspace is the host directory behind the sandbox's workspace.
	Workspace string `json:"workspace,omitempty"`
	Spec      Spec   `json:"spec"`
	// WorkspaceUID and WorkspaceGID own files the sandbox must be able to
	// change; a file API running as root hands new files to them. -1: leave
	// ownership alone.
	WorkspaceUID int `json:"-"`
	WorkspaceGID int `json:"-"`
}

// EnvUpdate changes a sandbox's environment variables. Replace, if set,
// replaces the whole set by Set; otherwise Set adds or overwrites and Unset
// removes (removing a missing name is not an error).
type EnvUpdate struct {
	Set     map[string]string
	Unset   []string
	Replace bool
}

// Provider creates and drives sandboxes on one isolation backend.
// Implementations are safe for concurrent use. Executions in one sandbox
// are serialised: a second Exec waits for the first (or for its ctx).
type Provider interface {
	// Name is the provider's short name: "docker", "bubblewrap", "local".
	Name() string
	Capabilities() Capabilities
	// Create starts a sandbox. The spec must have been through
	// Spec.WithDefaults; Create validates it.
	Create(ctx context.Context, spec Spec) (Info, error)
	// Exec runs one execution. Cancelling ctx stops it like a timeout.
	Exec(ctx context.Context, id ID, req ExecRequest) (ExecResult, error)
	// UpdateEnv changes the environment later executions see and returns a
	// copy of the new set.
	UpdateEnv(ctx context.Context, id ID, u EnvUpdate) (map[string]string, error)
	// Env returns a copy of the sandbox's environment variables.
	Env(ctx context.Context, id ID) (map[string]string, error)
	// Destroy stops the sandbox and removes everything it created.
	// Destroying an unknown ID returns ErrNotFound.
	Destroy(ctx context.Context, id ID) error
	// Close destroys every sandbox this provider created.
	Close(ctx context.Context) error
}
