package api

import "time"

// Mode is how a service isolates code: the sandbox_mode of /health and the
// status of /sandbox/status.
type Mode string

const (
	ModeDocker     Mode = "docker"
	ModeBubblewrap Mode = "bubblewrap"
	ModeSeatbelt   Mode = "seatbelt"
	// ModeForkServer: sandboxes forked from a fork server (experimental,
	// chosen by name only).
	ModeForkServer Mode = "forkserver"
	// ModeMock runs code with no isolation (SANDBOX__MOCK_MODE).
	ModeMock Mode = "mock"
	// ModeDisabled creates no sandboxes.
	ModeDisabled Mode = "disabled"
)

// Health is the answer of GET /health, the one route that needs no key.
type Health struct {
	// Status is "ok" while the service runs.
	Status  string `json:"status"`
	Version string `json:"version"`
	// UptimeSeconds is how long the service has been running; Uptime
	// repeats it (alias for Agent Platform clients).
	UptimeSeconds   float64 `json:"uptime_seconds"`
	Uptime          float64 `json:"uptime"`
	SandboxMode     Mode    `json:"sandbox_mode"`
	ActiveSandboxes int     `json:"active_sandboxes"`
}

// UptimeDuration returns UptimeSeconds as a duration.
func (h Health) UptimeDuration() time.Duration {
	return time.Duration(h.UptimeSeconds * float64(time.Second))
}

// Status is the answer of GET /sandbox/status.
type Status struct {
	Status Mode `json:"status"`
	// Enabled and MockMode are the SANDBOX__ENABLED and SANDBOX__MOCK_MODE
	// settings.
	Enabled  bool `json:"enabled"`
	MockMode bool `json:"mock_mode"`
	// DockerAvailable reports whether a Docker daemon answers, whichever
	// provider is selected.
	DockerAvailable bool `json:"docker_available"`
	ActiveSandboxes int  `json:"active_sandboxes"`
	// Provider is the backend in use; nil when disabled.
	Provider *ProviderInfo `json:"provider"`
	// Warning is set when nothing isolates the code.
	Warning string `json:"warning,omitempty"`
	// Policy says which checks run on the host before an execution reaches
	// a sandbox; nil when disabled.
	Policy *PolicyInfo `json:"policy,omitempty"`
	// AvailableProviders lists every provider considered at start-up, in
	// order, with whether it can run here and why.
	AvailableProviders []ProviderAvailability `json:"available_providers,omitempty"`
}

// ProviderInfo names the provider behind a service.
type ProviderInfo struct {
	Name string `json:"name"`
	// Isolation is "container", "namespace", "seatbelt" or "none".
	Isolation string `json:"isolation"`
	// Runtime is the OCI runtime of the provider's containers, as the
	// engine names it ("runc"; "runsc" for gVisor); empty for providers
	// without one.
	Runtime string `json:"runtime,omitempty"`
}

// PolicyInfo says which checks run before an execution reaches a sandbox.
type PolicyInfo struct {
	ShellCheck  bool `json:"shell_check"`
	PythonCheck bool `json:"python_check"`
}

// ProviderAvailability is one provider and whether it can run here.
type ProviderAvailability struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	// Selected marks the provider in use.
	Selected bool `json:"selected"`
	// Reason says what was found: why it cannot run, or what it runs on.
	Reason string `json:"reason"`
}

// Docker states of /sandbox/docker-info, the Agent Platform's.
const (
	// DockerConnected: the daemon answers. Reported whichever provider
	// is selected.
	DockerConnected = "connected"
	// DockerUnavailable: the daemon does not answer (or was not probed
	// because SANDBOX__DOCKER_AUTO_DETECT is false).
	DockerUnavailable = "unavailable"
	// DockerError: the daemon answered, but its version could not be read.
	DockerError = "error"
	// DockerMockMode: the daemon does not answer and the service runs
	// unisolated code (SANDBOX__MOCK_MODE).
	DockerMockMode = "mock_mode"
	// DockerNoManager: the daemon does not answer and sandboxes are
	// disabled.
	DockerNoManager = "no_manager"
)

// DockerInfo is the answer of GET /sandbox/docker-info, always 200.
type DockerInfo struct {
	Available bool `json:"available"`
	// Status is one of the Docker states above.
	Status     string `json:"status"`
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
	Message    string `json:"message"`
	// ContainersRunning and ImagesCount are the daemon's, when connected.
	ContainersRunning *int `json:"containers_running,omitempty"`
	ImagesCount       *int `json:"images_count,omitempty"`
	// Details of the daemon, when known.
	Host           string   `json:"host,omitempty"`
	OS             string   `json:"os,omitempty"`
	Arch           string   `json:"arch,omitempty"`
	KernelVersion  string   `json:"kernel_version,omitempty"`
	Runtimes       []string `json:"runtimes,omitempty"`
	DefaultRuntime string   `json:"default_runtime,omitempty"`
	Rootless       bool     `json:"rootless,omitempty"`
}
