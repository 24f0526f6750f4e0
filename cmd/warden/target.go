package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/image"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/quota"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// execTarget is one sandbox that `warden exec` runs its cells in: local
// (a provider in this process) or remote (a warden serve).
type execTarget interface {
	id() sandbox.ID
	exec(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error)
	// runOnce runs req in a sandbox of its own, removed before it returns
	// (sandbox.Run, POST /sandbox/run), instead of the target's sandbox,
	// which must not have been made.
	runOnce(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error)
	// close destroys the sandbox and releases the backend.
	close(ctx context.Context)
}

type localTarget struct {
	p     sandbox.Provider
	spec  sandbox.Spec
	info  sandbox.Info
	views views
}

// newLocalTarget selects a provider and creates the sandbox, after
// checking that the sandbox can write the directories it is to write;
// without create, the sandbox is left to runOnce.
func newLocalTarget(ctx context.Context, cfg config.Config, spec sandbox.Spec, writable []hostDir, create bool, e env) (*localTarget, error) {
	sel, err := provider.Open(ctx, cfg, logger(cfg, e.stderr))
	if err != nil {
		return nil, fmt.Errorf("%w\n(run `warden doctor` for details and remedies)", err)
	}
	if sel.Provider == nil {
		return nil, fmt.Errorf("no sandbox backend: %s\n(run `warden doctor` for details and remedies)", sel.Reason)
	}
	warnSelection(e, cfg, sel)
	v, err := prepareWritable(sel.Provider, cfg.Sandbox.WorkspaceRoot, writable)
	if err != nil {
		_ = sel.Provider.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	v.apply(&spec)
	base := quota.Wrap(sel.Provider, cfg.Sandbox.WorkspaceRoot, image.UID, image.GID, logger(cfg, e.stderr))
	p := provider.Guard(base, cfg.Sandbox)
	if !create {
		return &localTarget{p: p, spec: spec, views: v}, nil
	}
	info, err := p.Create(ctx, spec)
	if err != nil {
		_ = base.Close(context.WithoutCancel(ctx))
		v.release()
		return nil, fmt.Errorf("creating sandbox: %w", err)
	}
	return &localTarget{p: p, spec: spec, info: info, views: v}, nil
}

// warnSelection says on stderr when the provider is not the one asked
// for (SANDBOX__PROVIDER_FALLBACK), or isolates nothing.
func warnSelection(e env, cfg config.Config, sel provider.Selection) {
	if want := cfg.Sandbox.Provider; want != config.ProviderAuto && sel.Provider != nil && sel.Provider.Name() != string(want) {
		why := ""
		for _, a := range sel.Tried {
			if string(a.Name) == string(want) {
				why = ": " + a.Reason
			}
		}
		fmt.Fprintf(e.stderr, "warden: warning: %s cannot run here%s; using %s instead (SANDBOX__PROVIDER_FALLBACK=false makes this an error)\n", want, why, sel.Provider.Name())
	}
	if sel.Warning != "" {
		fmt.Fprintln(e.stderr, "warden: warning:", sel.Warning)
	}
}

func (t *localTarget) id() sandbox.ID { return t.info.ID }

func (t *localTarget) exec(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return t.p.Exec(ctx, t.info.ID, req)
}

func (t *localTarget) runOnce(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	return sandbox.Run(ctx, t.p, t.spec, req)
}

func (t *localTarget) close(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if t.info.ID != "" {
		_ = t.p.Destroy(ctx, t.info.ID)
	}
	_ = t.p.Close(ctx)
	t.views.release()
}

type remoteTarget struct {
	c    *client.Client
	opts client.CreateOptions
	sid  sandbox.ID
}

// newRemoteTarget creates the sandbox at url; without create, it is left
// to runOnce.
func newRemoteTarget(ctx context.Context, url, key string, opts client.CreateOptions, create bool) (*remoteTarget, error) {
	c, err := client.New(url, client.WithAPIKey(key))
	if err != nil {
		return nil, err
	}
	if !create {
		return &remoteTarget{c: c, opts: opts}, nil
	}
	info, err := c.Create(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("creating sandbox at %s: %w", url, err)
	}
	return &remoteTarget{c: c, opts: opts, sid: sandbox.ID(info.ID)}, nil
}

func (t *remoteTarget) id() sandbox.ID { return t.sid }

func (t *remoteTarget) exec(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	res, err := t.c.Execute(ctx, string(t.sid), executeOptions(req))
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	return execResultOf(res), nil
}

func (t *remoteTarget) runOnce(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	res, err := t.c.Run(ctx, client.RunOptions{CreateOptions: t.opts, ExecuteOptions: executeOptions(req)})
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	return execResultOf(res), nil
}

// executeOptions is req for the client.
func executeOptions(req sandbox.ExecRequest) client.ExecuteOptions {
	opts := client.ExecuteOptions{
		Language: api.Language(req.Language), Code: req.Code, Command: req.Argv,
		Timeout: req.Timeout, Workdir: req.Workdir,
	}
	if req.OnOutput != nil {
		opts.OnOutput = func(s api.Stream, p []byte) { req.OnOutput(sandbox.Stream(s), p) }
	}
	if req.OnDisplay != nil {
		opts.OnDisplay = func(o api.Output) { req.OnDisplay(sandbox.Output{Type: o.Type, Data: o.Data}) }
	}
	return opts
}

// execResultOf is the inverse of wire.ExecResult, for printing a
// remote result as a local one.
func execResultOf(r api.ExecResult) sandbox.ExecResult {
	res := sandbox.ExecResult{
		Stdout:           []byte(r.Stdout),
		Stderr:           []byte(r.Stderr),
		ExitCode:         r.ExitCode,
		ReturnValue:      r.ReturnValue,
		TimedOut:         r.TimedOut,
		OOMKilled:        r.OOMKilled,
		StdoutTruncated:  r.StdoutTruncated,
		StderrTruncated:  r.StderrTruncated,
		Duration:         r.Duration(),
		Notes:            r.Notes,
		Warning:          r.Warning,
		OutputsTruncated: r.OutputsTruncated,
	}
	for _, o := range r.Outputs {
		res.Outputs = append(res.Outputs, sandbox.Output{Type: o.Type, Data: o.Data})
	}
	if e := r.Error; e != nil {
		res.Error = &sandbox.ExecError{Name: e.Name, Value: e.Value, Traceback: e.Traceback, Line: e.Line}
	}
	return res
}

func (t *remoteTarget) close(ctx context.Context) {
	if t.sid == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	_ = t.c.Delete(ctx, string(t.sid))
}

// remoteCreateOptions sends only what the command line set, so the
// server's own configuration decides everything else.
func remoteCreateOptions(spec sandbox.Spec, set map[string]bool, readDirs, writeDirs []string) client.CreateOptions {
	o := client.CreateOptions{EnvironmentVariables: spec.Env, WorkspacePath: spec.WorkspaceDir}
	if set["image"] {
		o.Image = spec.Image
	}
	if set["memory"] {
		o.MemoryLimit = config.FormatBytes(spec.MemoryLimit)
	}
	if set["cpus"] {
		o.CPULimit = spec.CPULimit
	}
	if set["pids"] {
		o.PidsLimit = int(spec.PidsLimit)
	}
	if set["timeout"] {
		o.Timeout = spec.Timeout
	}
	if set["network"] {
		on := spec.Network
		o.EnableNetwork = &on
	}
	for _, d := range readDirs {
		o.AdditionalReadDirs = append(o.AdditionalReadDirs, absPath(d))
	}
	for _, d := range writeDirs {
		o.AdditionalWriteDirs = append(o.AdditionalWriteDirs, absPath(d))
	}
	return o
}

func absPath(d string) string {
	if a, err := filepath.Abs(d); err == nil {
		return a
	}
	return d
}

// envLookup finds name in an environ list.
func envLookup(environ []string, name string) string {
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
