package config

import "github.com/warden-sandbox/warden/internal/sandbox"

// SandboxSpec returns the sandbox spec the settings describe, with
// [sandbox.Spec.WithDefaults] applied for what the settings do not cover
// (workspace path, /tmp size). Each additional directory is mounted at its
// own host path, read-only for SANDBOX__ADDITIONAL_READ_DIRS. The result is
// a fresh value the caller may modify.
func (c Config) SandboxSpec() sandbox.Spec {
	sb := c.Sandbox
	s := sandbox.Spec{
		Image:         sb.Image,
		MemoryLimit:   int64(sb.MemoryLimit),
		CPULimit:      sb.CPULimit,
		PidsLimit:     int64(sb.PidsLimit),
		Network:       !sb.NetworkDisabled,
		NamePrefix:    sb.ContainerNamePrefix,
		WorkspacePath: sb.VolumeMountPath,
		Timeout:       sb.Timeout,
		OutputLimit:   int(sb.MaxOutputBytes),
		WorkspaceSize: int64(sb.WorkspaceSize),
		AutoPullImage: sb.AutoPullImage,
	}
	for _, d := range sb.AdditionalReadDirs {
		s.Mounts = append(s.Mounts, sandbox.Mount{Source: d, Target: d, ReadOnly: true})
	}
	for _, d := range sb.AdditionalWriteDirs {
		s.Mounts = append(s.Mounts, sandbox.Mount{Source: d, Target: d})
	}
	return s.WithDefaults()
}
