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
	// IsolationSeatbelt: a host process confined by a macOS sandbox-exec
	// (Seatbelt) profile: kernel-enforced file, network and IPC rules, no
	// namespaces and no resource limits.
	IsolationSeatbelt Isolation = "seatbelt"
)

// ProviderName is a provider's short name: what [Provider.Name] returns
// and [Info.Provider] holds, and how settings and the API name it.
type ProviderName string

// The providers' names.
const (
	ProviderSeatbelt   ProviderName = "seatbelt"
	ProviderBubblewrap ProviderName = "bubblewrap"
	ProviderDocker     ProviderName = "docker"
	ProviderLocal      ProviderName = "local"
	// ProviderKubernetes runs one pod per sandbox on a cluster.
	ProviderKubernetes ProviderName = "kubernetes"
	// ProviderForkServer forks Linux sandboxes from a pre-imported agent
	// (docs/adr/0017-fork-server.md).
	ProviderForkServer ProviderName = "forkserver"
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
	// Images: the sandbox runs the image Spec.Image names. Providers
	// without it run the host's (or their own) root filesystem and ignore
	// Spec.Image.
	Images bool `json:"images"`
	// WorkspaceQuota: a private workspace holds at most Spec.WorkspaceSize
	// bytes, enforced by the kernel (see package quota). Without it the
	// size is not enforced.
	WorkspaceQuota bool `json:"workspace_quota"`
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
// are serialised: a second Exec waits for the first (or for its ctx), and
// executions in different sandboxes run independently, at the same time.
//
// Every provider passes the conformance suite sandboxtest.Run against its
// real backend; what follows is what that suite checks.
//
// IDs: every method taking an ID returns an error wrapping ErrInvalid for
// an ID [ValidateID] refuses, and ErrNotFound for a well-formed ID that
// this provider does not know (never created, destroyed, or another
// provider's).
//
// Results: a non-zero exit, an exception, a timeout and an out-of-memory
// kill are results, not errors. A result's Warning is non-empty exactly
// when Capabilities().Isolation is IsolationNone. Each output stream keeps
// the first Spec.OutputLimit bytes of an execution and sets its Truncated
// flag only when bytes were dropped; output beyond the limit costs no
// memory and never blocks the execution.
type Provider interface {
	// Name is the provider's short name, one of the [ProviderName]s
	// (a test double has its own). Info.Provider of its sandboxes is this
	// name.
	Name() string
	Capabilities() Capabilities
	// Create starts a sandbox. The spec must have been through
	// Spec.WithDefaults; Create validates it and returns an error wrapping
	// ErrInvalid for an invalid spec, including a WorkspaceDir or mount
	// source that is not an existing directory. The spec's maps are copied:
	// the caller may change them afterwards. Info.Workspace is the host
	// directory behind the workspace: Spec.WorkspaceDir when given, else a
	// private directory the provider creates.
	Create(ctx context.Context, spec Spec) (Info, error)
	// Exec runs one execution in the workspace (or req.Workdir, for
	// shell).
	//
	// A timeout (req.Timeout, else Spec.Timeout) stops the execution: the
	// result has TimedOut and exit code 124, keeps the output produced so
	// far, and comes back within a few seconds of the timeout. A timed-out
	// shell command is killed with its process group, background jobs
	// included (a process that left the group, with setsid say, lives until
	// Destroy). Python code is interrupted, and killed if it does not
	// stop; the session survives either way with at least the variables it
	// had when it was last idle before the execution.
	//
	// Cancelling ctx stops the execution like a timeout, but Exec returns
	// an error wrapping ctx.Err() (with the partial result) and TimedOut is
	// false. Exec with a ctx that is already done returns such an error at
	// once. The sandbox stays usable either way.
	Exec(ctx context.Context, id ID, req ExecRequest) (ExecResult, error)
	// UpdateEnv changes the environment later executions see, in Python
	// (os.environ of the persistent session, including removals) and in
	// shell, and returns a copy of the new set. An invalid name fails the
	// whole update with ErrInvalid and changes nothing.
	UpdateEnv(ctx context.Context, id ID, u EnvUpdate) (map[string]string, error)
	// Env returns a copy of the sandbox's environment variables: changing
	// it changes nothing.
	Env(ctx context.Context, id ID) (map[string]string, error)
	// Destroy stops the sandbox and removes everything it created: every
	// process the sandbox started (in the background, in sessions of their
	// own) and the workspace directory the provider created. A
	// Spec.WorkspaceDir and mounted host directories are left as they are.
	// A running execution ends and its Exec returns an error wrapping
	// ErrNotFound. Destroying an unknown ID returns ErrNotFound, so a
	// second Destroy of the same ID does.
	Destroy(ctx context.Context, id ID) error
	// Close destroys every sandbox this provider created, and no other
	// provider's. A second Close does nothing.
	Close(ctx context.Context) error
}

// backgroundKey marks a context as that of a create nobody waits for.
type backgroundKey struct{}

// WithBackground marks ctx as that of a Create nobody waits for yet, such
// as a warm pool's refill: a provider that can gives the new sandbox's
// processes a low CPU priority, so that starting it does not slow down
// code running in other sandboxes, until [Foregrounder.Foreground] is
// called.
func WithBackground(ctx context.Context) context.Context {
	return context.WithValue(ctx, backgroundKey{}, true)
}

// IsBackground reports whether ctx was marked by [WithBackground].
func IsBackground(ctx context.Context) bool {
	b, _ := ctx.Value(backgroundKey{}).(bool)
	return b
}

// Foregrounder is implemented by providers that lower the CPU priority of
// sandboxes created in the background (see [WithBackground]).
type Foregrounder interface {
	// Foreground gives a sandbox created in the background the priority
	// of any other. It is cheap, and does nothing for other sandboxes.
	Foreground(ctx context.Context, id ID) error
}

// Wrapper is implemented by providers that wrap another one (a quota,
// a warm pool, the policy guard) and pass most calls through.
type Wrapper interface {
	Unwrap() Provider
}

// Ability returns the first provider of p's chain of wrappers (p, then
// what each [Wrapper] unwraps to) that implements T, an optional ability
// such as [Foregrounder]. A wrapper that embeds [Provider] hides the
// wrapped provider's abilities from a type assertion on it; this finds
// them. Use it only for abilities a wrapper has no reason to intercept
// (a wrapper that must see a call implements it itself, and is found
// first).
func Ability[T any](p Provider) (T, bool) {
	for p != nil {
		if a, ok := p.(T); ok {
			return a, true
		}
		w, ok := p.(Wrapper)
		if !ok {
			break
		}
		p = w.Unwrap()
	}
	var zero T
	return zero, false
}

// Checkpointer is implemented by providers whose sandboxes can snapshot
// their Python session on demand, so that a later execution that must be
// killed restores the state of now rather than of the last idle moment.
type Checkpointer interface {
	Checkpoint(ctx context.Context, id ID) error
}

// Lister is implemented by providers that can describe their live
// sandboxes.
type Lister interface {
	// Info describes a live sandbox; its Spec.Env is the caller's copy.
	Info(id ID) (Info, error)
	List() []Info
}
