package client

import (
	"context"
	"fmt"

	"github.com/warden-sandbox/warden/api"
)

// RunOptions are the fields of POST /sandbox/run, a one-shot run: the
// settings of a sandbox made for the run alone and the execution it runs.
// The execution's timeout is ExecuteOptions.Timeout, or when that is zero
// CreateOptions.Timeout; CreateOptions.IdleTimeout does not apply (the
// sandbox goes when the run ends) and must be zero.
type RunOptions struct {
	CreateOptions
	ExecuteOptions
}

// Run calls POST /sandbox/run: it runs one execution in a sandbox made for
// it, which the server removes before answering, and returns the result as
// Execute does (OnOutput and OnDisplay stream it the same way). Nothing of
// the sandbox outlives the call, its private workspace included: a
// workspace that must outlast the run is a WorkspacePath of yours.
func (c *Client) Run(ctx context.Context, opts RunOptions) (api.ExecResult, error) {
	if opts.IdleTimeout != 0 {
		return api.ExecResult{}, fmt.Errorf("IdleTimeout does not apply to a run, whose sandbox goes when it ends: %w", ErrInvalid)
	}
	return c.execute(ctx, "/sandbox/run", opts.request(), opts.ExecuteOptions)
}

// request is the wire form of o.
func (o RunOptions) request() api.RunRequest {
	cr, er := o.CreateOptions.request(), o.ExecuteOptions.request()
	if er.Timeout == nil {
		er.Timeout = cr.Timeout
	}
	return api.RunRequest{
		Image:                cr.Image,
		MemoryLimit:          cr.MemoryLimit,
		CPULimit:             cr.CPULimit,
		PidsLimit:            cr.PidsLimit,
		EnableNetwork:        cr.EnableNetwork,
		EnvironmentVariables: cr.EnvironmentVariables,
		AdditionalReadDirs:   cr.AdditionalReadDirs,
		AdditionalWriteDirs:  cr.AdditionalWriteDirs,
		WorkspacePath:        cr.WorkspacePath,
		WorkspaceSize:        cr.WorkspaceSize,
		WorkspaceMountPath:   cr.WorkspaceMountPath,

		Language:       er.Language,
		Code:           er.Code,
		Command:        er.Command,
		ShellOperators: er.ShellOperators,
		Timeout:        er.Timeout,
		Workdir:        er.Workdir,
	}
}
