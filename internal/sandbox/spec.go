package sandbox

import (
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
)

// Defaults applied by [Spec.WithDefaults]. They match the seed systems
// (TinyAgent's DockerProvider) where those had one.
const (
	DefaultImage         = "warden-runtime:latest"
	DefaultMemoryLimit   = 512 << 20 // 512m
	DefaultCPULimit      = 1.0
	DefaultPidsLimit     = 256
	DefaultTimeout       = 120 * time.Second
	DefaultOutputLimit   = 1 << 20 // bytes per stream per execution
	DefaultWorkspacePath = "/workspace"
	DefaultNamePrefix    = "warden"
	DefaultTmpSize       = 256 << 20
)

// Mount makes a host directory visible inside a sandbox.
type Mount struct {
	// Source is an absolute host path. It must exist.
	Source string `json:"source"`
	// Target is the absolute path inside the sandbox. Empty means the same
	// path as Source, so host paths an agent was told about work unchanged.
	Target string `json:"target,omitempty"`
	// ReadOnly mounts the directory read-only.
	ReadOnly bool `json:"read_only,omitempty"`
}

// Spec describes a sandbox to create. The zero value of every field means
// "use the default"; call [Spec.WithDefaults] then [Spec.Validate].
type Spec struct {
	// Image is the container image (Docker) or runtime root filesystem.
	Image string `json:"image,omitempty"`
	// MemoryLimit in bytes (RAM; swap is not granted on top of it).
	MemoryLimit int64 `json:"memory_limit,omitempty"`
	// CPULimit in CPUs, e.g. 0.5 or 2.
	CPULimit float64 `json:"cpu_limit,omitempty"`
	// PidsLimit caps the number of processes and threads.
	PidsLimit int64 `json:"pids_limit,omitempty"`
	// Network enables outbound networking. Off by default.
	Network bool `json:"enable_network,omitempty"`
	// Env holds environment variables every execution sees. They are passed
	// to the sandbox at execution time, never on a command line.
	Env map[string]string `json:"environment_variables,omitempty"`
	// Mounts are extra host directories.
	Mounts []Mount `json:"mounts,omitempty"`
	// WorkspaceDir is the host directory mounted read-write at
	// WorkspacePath. Empty means a private directory that Warden creates and
	// removes with the sandbox.
	WorkspaceDir string `json:"workspace_dir,omitempty"`
	// WorkspacePath is where the workspace appears inside the sandbox.
	WorkspacePath string `json:"workspace_path,omitempty"`
	// NamePrefix prefixes container names.
	NamePrefix string `json:"container_name_prefix,omitempty"`
	// Timeout is the default per-execution timeout. In JSON it is a number
	// of seconds, as in API requests.
	Timeout time.Duration `json:"-"`
	// OutputLimit caps each output stream of one execution, in bytes.
	OutputLimit int `json:"output_limit,omitempty"`
	// TmpSize is the size of the private /tmp, in bytes.
	TmpSize int64 `json:"tmp_size,omitempty"`
	// WorkspaceSize bounds what a private workspace (no WorkspaceDir) may
	// hold, in bytes, where the provider can enforce it
	// (Capabilities.WorkspaceQuota); 0 means no bound. At least 8m.
	WorkspaceSize int64 `json:"workspace_size,omitempty"`
	// AutoPullImage lets a provider pull a missing image from a registry.
	AutoPullImage bool `json:"auto_pull_image,omitempty"`
	// Labels are extra metadata attached to the sandbox.
	Labels map[string]string `json:"labels,omitempty"`
}

// WithDefaults returns a copy of s with every zero field set to its default.
func (s Spec) WithDefaults() Spec {
	if s.Image == "" {
		s.Image = DefaultImage
	}
	if s.MemoryLimit == 0 {
		s.MemoryLimit = DefaultMemoryLimit
	}
	if s.CPULimit == 0 {
		s.CPULimit = DefaultCPULimit
	}
	if s.PidsLimit == 0 {
		s.PidsLimit = DefaultPidsLimit
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.OutputLimit == 0 {
		s.OutputLimit = DefaultOutputLimit
	}
	if s.WorkspacePath == "" {
		s.WorkspacePath = DefaultWorkspacePath
	}
	if s.NamePrefix == "" {
		s.NamePrefix = DefaultNamePrefix
	}
	if s.TmpSize == 0 {
		s.TmpSize = DefaultTmpSize
	}
	s.Env = cloneMap(s.Env)
	s.Labels = cloneMap(s.Labels)
	s.Mounts = append([]Mount(nil), s.Mounts...)
	for i := range s.Mounts {
		if s.Mounts[i].Target == "" {
			s.Mounts[i].Target = s.Mounts[i].Source
		}
	}
	return s
}

// A mount may not equal a reservedExact path, nor equal or lie below a
// reservedTree: those hold what the sandbox needs to run, or are pseudo
// filesystems. Mounting below /tmp, /var, /home or /opt is allowed (host
// temporary directories keep their paths inside the sandbox).
var (
	reservedExact = []string{"/", "/tmp", "/var", "/home", "/opt", "/root", "/srv", "/mnt", "/media"}
	reservedTree  = []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/usr", "/etc", "/proc", "/sys", "/dev", "/run", "/boot"}
)

// Validate reports every problem with s at once (joined), each wrapping
// [ErrInvalid]. Call it on the result of [Spec.WithDefaults].
func (s Spec) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, ErrInvalid)...))
	}
	if s.MemoryLimit < 6<<20 {
		bad("memory_limit %d bytes is below the minimum of 6m", s.MemoryLimit)
	}
	if s.CPULimit < 0.01 || s.CPULimit > 1024 {
		bad("cpu_limit %g is outside 0.01..1024", s.CPULimit)
	}
	if s.PidsLimit < 8 {
		bad("pids_limit %d is below the minimum of 8", s.PidsLimit)
	}
	if s.Timeout < 0 {
		bad("timeout %s is negative", s.Timeout)
	}
	if s.OutputLimit < 0 {
		bad("output_limit %d is negative", s.OutputLimit)
	}
	if s.WorkspaceSize != 0 && s.WorkspaceSize < 8<<20 {
		bad("workspace_size %d bytes is below the minimum of 8m", s.WorkspaceSize)
	}
	if s.TmpSize < 1<<20 {
		bad("tmp_size %d bytes is below the minimum of 1m", s.TmpSize)
	}
	if err := ValidateWorkspacePath(s.WorkspacePath); err != nil {
		errs = append(errs, err)
	}
	if s.WorkspaceDir != "" && !path.IsAbs(s.WorkspaceDir) {
		bad("workspace_dir %q must be an absolute host path", s.WorkspaceDir)
	}
	if err := ValidateName(s.NamePrefix); err != nil {
		bad("container_name_prefix %q: only letters, digits, '_', '.' and '-'", s.NamePrefix)
	}
	for k := range s.Env {
		if err := ValidateEnvName(k); err != nil {
			errs = append(errs, err)
		}
	}
	seen := map[string]bool{s.WorkspacePath: true}
	for _, m := range s.Mounts {
		switch {
		case !path.IsAbs(m.Source):
			bad("mount source %q must be an absolute host path", m.Source)
		case !isCleanAbs(m.Target):
			bad("mount target %q must be a clean absolute path", m.Target)
		case isReserved(m.Target):
			bad("mount target %q would cover a system directory of the sandbox", m.Target)
		case seen[m.Target]:
			bad("mount target %q is used twice", m.Target)
		}
		seen[m.Target] = true
	}
	return errors.Join(errs...)
}

// ValidateWorkspacePath checks where a workspace may appear inside a
// sandbox: a clean absolute path that does not cover a system directory.
func ValidateWorkspacePath(p string) error {
	if !isCleanAbs(p) || isReserved(p) {
		return fmt.Errorf("workspace_path %q must be a clean absolute path outside the system directories: %w", p, ErrInvalid)
	}
	return nil
}

// ValidateName checks a name prefix: 1 to 32 characters of [A-Za-z0-9_.-].
func ValidateName(s string) error {
	if len(s) > 32 {
		return fmt.Errorf("name %q is longer than 32 characters: %w", s, ErrInvalid)
	}
	return ValidateID(s)
}

// ValidateEnvName checks an environment variable name: a letter or '_'
// followed by letters, digits or '_'.
func ValidateEnvName(k string) error {
	if k == "" {
		return fmt.Errorf("environment variable name is empty: %w", ErrInvalid)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		ok := c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9'
		if !ok {
			return fmt.Errorf("environment variable name %q is not of the form [A-Za-z_][A-Za-z0-9_]*: %w", k, ErrInvalid)
		}
	}
	return nil
}

func isCleanAbs(p string) bool { return path.IsAbs(p) && path.Clean(p) == p }

// isReserved reports whether mounting at p would cover or shadow a reserved
// system path.
func isReserved(p string) bool {
	for _, r := range reservedExact {
		if p == r {
			return true
		}
	}
	for _, r := range reservedTree {
		if p == r || strings.HasPrefix(p, r+"/") {
			return true
		}
	}
	return false
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
