package api

// RunRequest is the body of POST /sandbox/run, a one-shot run: a sandbox
// made for one execution and removed when it ends. It holds the fields of
// [CreateRequest] but idle_timeout (the sandbox never idles) and those of
// [ExecuteRequest]; timeout, in both, is the execution's.
type RunRequest struct {
	// The sandbox, as in CreateRequest: nil keeps the server's default.
	Image                *string           `json:"image,omitempty"`
	MemoryLimit          *ByteSize         `json:"memory_limit,omitempty"`
	CPULimit             *float64          `json:"cpu_limit,omitempty"`
	PidsLimit            *int64            `json:"pids_limit,omitempty"`
	EnableNetwork        *bool             `json:"enable_network,omitempty"`
	EnvironmentVariables map[string]string `json:"environment_variables,omitempty"`
	AdditionalReadDirs   []string          `json:"additional_read_dirs,omitempty"`
	AdditionalWriteDirs  []string          `json:"additional_write_dirs,omitempty"`
	WorkspacePath        *string           `json:"workspace_path,omitempty"`
	WorkspaceSize        *ByteSize         `json:"workspace_size,omitempty"`
	WorkspaceMountPath   *string           `json:"workspace_mount_path,omitempty"`

	// The execution, as in ExecuteRequest.
	Language       Language `json:"language,omitempty"`
	Code           *string  `json:"code,omitempty"`
	Command        []string `json:"command,omitempty"`
	ShellOperators bool     `json:"shell_operators,omitempty"`
	// Timeout bounds the execution, in seconds; nil means the server's
	// default execution timeout.
	Timeout *float64 `json:"timeout,omitempty"`
	Workdir string   `json:"workdir,omitempty"`
}

// CreateRequest returns the sandbox settings of r as a create request
// (without a timeout: see ExecuteRequest).
func (r RunRequest) CreateRequest() CreateRequest {
	return CreateRequest{
		Image:                r.Image,
		MemoryLimit:          r.MemoryLimit,
		CPULimit:             r.CPULimit,
		PidsLimit:            r.PidsLimit,
		EnableNetwork:        r.EnableNetwork,
		EnvironmentVariables: r.EnvironmentVariables,
		AdditionalReadDirs:   r.AdditionalReadDirs,
		AdditionalWriteDirs:  r.AdditionalWriteDirs,
		WorkspacePath:        r.WorkspacePath,
		WorkspaceSize:        r.WorkspaceSize,
		WorkspaceMountPath:   r.WorkspaceMountPath,
	}
}

// ExecuteRequest returns the execution of r.
func (r RunRequest) ExecuteRequest() ExecuteRequest {
	return ExecuteRequest{
		Language:       r.Language,
		Code:           r.Code,
		Command:        r.Command,
		ShellOperators: r.ShellOperators,
		Timeout:        r.Timeout,
		Workdir:        r.Workdir,
	}
}
