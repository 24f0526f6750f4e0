// Package sandboxtest holds what tests of sandbox.Provider users and
// implementations share:
//
//   - [Fake], an in-memory provider for testing the layers above providers
//     (session, api). It isolates nothing and runs nothing: executions are
//     answered by a function. It never stands in for a real provider in a
//     provider's own tests.
//   - [Run], the conformance suite every provider's tests run against the
//     real backend, so that all providers keep one contract.
package sandboxtest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Fake is an in-memory provider. The zero value is ready to use. By
// default an execution echoes its code on stdout, except for code of the
// form "sleep DURATION" (waits, honouring ctx: a cancelled wait is a
// timeout result), "exit N" (exit code N) and, in Python, "display TEXT"
// (one rich output of type display with TEXT as text/plain, also given to
// OnDisplay).
type Fake struct {
	// ExecFunc, if set, answers executions instead of the default.
	ExecFunc func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error)
	// CreateErr, if set, makes Create fail with it.
	CreateErr error
	// Workspace, if set, is reported as every sandbox's workspace.
	Workspace string
	// Warning is put on every result, as an unisolated provider does.
	Warning string

	mu        sync.Mutex
	boxes     map[sandbox.ID]*box
	Created   int
	Destroyed int
}

type box struct {
	info sandbox.Info
	env  map[string]string
	run  chan struct{} // holds a token while an execution runs
}

var _ sandbox.Provider = (*Fake)(nil)

func (f *Fake) Name() string { return "fake" }

func (f *Fake) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Isolation: sandbox.IsolationNone, NetworkToggle: true, Mounts: true}
}

func (f *Fake) Create(ctx context.Context, spec sandbox.Spec) (sandbox.Info, error) {
	if f.CreateErr != nil {
		return sandbox.Info{}, f.CreateErr
	}
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return sandbox.Info{}, err
	}
	dirs := []string{spec.WorkspaceDir}
	for _, m := range spec.Mounts {
		dirs = append(dirs, m.Source)
	}
	for _, d := range dirs {
		if st, err := os.Stat(d); d != "" && (err != nil || !st.IsDir()) {
			return sandbox.Info{}, fmt.Errorf("%q is not an existing directory: %w", d, sandbox.ErrInvalid)
		}
	}
	if err := ctx.Err(); err != nil {
		return sandbox.Info{}, err
	}
	id := sandbox.NewID()
	info := sandbox.Info{ID: id, Provider: f.Name(), Name: "fake-" + string(id), Workspace: f.Workspace, Spec: spec,
		WorkspaceUID: -1, WorkspaceGID: -1}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.boxes == nil {
		f.boxes = map[sandbox.ID]*box{}
	}
	f.boxes[id] = &box{info: info, env: maps.Clone(spec.Env), run: make(chan struct{}, 1)}
	f.Created++
	return info, nil
}

func (f *Fake) get(id sandbox.ID) (*box, error) {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b := f.boxes[id]
	if b == nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	return b, nil
}

// Exec runs executions of one sandbox one at a time, as the contract
// requires: a second waits for the first, or for its ctx.
func (f *Fake) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	b, err := f.get(id)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	if err := req.Validate(); err != nil {
		return sandbox.ExecResult{}, err
	}
	select {
	case b.run <- struct{}{}:
		defer func() { <-b.run }()
	case <-ctx.Done():
		return sandbox.ExecResult{}, ctx.Err()
	}
	var r sandbox.ExecResult
	if f.ExecFunc != nil {
		r, err = f.ExecFunc(ctx, id, req)
	} else {
		r, err = defaultExec(ctx, req)
	}
	if r.Warning == "" {
		r.Warning = f.Warning
	}
	return r, err
}

func defaultExec(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	code := req.Code
	if len(req.Argv) > 0 {
		code = strings.Join(req.Argv, " ")
	}
	start := time.Now()
	r := sandbox.ExecResult{Stdout: []byte{}, Stderr: []byte{}}
	switch {
	case strings.HasPrefix(code, "sleep "):
		d, err := time.ParseDuration(strings.TrimPrefix(code, "sleep "))
		if err != nil {
			return r, fmt.Errorf("fake: %v: %w", err, sandbox.ErrInvalid)
		}
		timeout := req.Timeout
		if timeout == 0 {
			timeout = time.Hour
		}
		select {
		case <-time.After(d):
		case <-time.After(timeout):
			r.TimedOut, r.ExitCode = true, sandbox.TimeoutExitCode
		case <-ctx.Done():
			r.ExitCode = sandbox.TimeoutExitCode
			r.Duration = time.Since(start)
			return r, fmt.Errorf("execution cancelled: %w", ctx.Err())
		}
	case strings.HasPrefix(code, "exit "):
		r.ExitCode, _ = strconv.Atoi(strings.TrimPrefix(code, "exit "))
	case req.Language == sandbox.Python && strings.HasPrefix(code, "display "):
		o := sandbox.Output{Type: sandbox.OutputDisplay, Data: map[string]string{"text/plain": strings.TrimPrefix(code, "display ")}}
		r.Outputs = []sandbox.Output{o}
		if req.OnDisplay != nil {
			req.OnDisplay(o)
		}
	default:
		r.Stdout = []byte(code)
		if req.OnOutput != nil {
			req.OnOutput(sandbox.Stdout, r.Stdout)
		}
	}
	r.Duration = time.Since(start)
	return r, nil
}

func (f *Fake) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	for k := range u.Set {
		if err := sandbox.ValidateEnvName(k); err != nil {
			return nil, err
		}
	}
	b, err := f.get(id)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if u.Replace || b.env == nil {
		b.env = map[string]string{}
	}
	for _, k := range u.Unset {
		delete(b.env, k)
	}
	maps.Copy(b.env, u.Set)
	return maps.Clone(b.env), nil
}

func (f *Fake) Env(ctx context.Context, id sandbox.ID) (map[string]string, error) {
	b, err := f.get(id)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b.env == nil {
		return map[string]string{}, nil
	}
	return maps.Clone(b.env), nil
}

func (f *Fake) Destroy(ctx context.Context, id sandbox.ID) error {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.boxes[id] == nil {
		return fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	delete(f.boxes, id)
	f.Destroyed++
	return nil
}

func (f *Fake) Close(ctx context.Context) error {
	f.mu.Lock()
	ids := slicesOf(f.boxes)
	f.mu.Unlock()
	for _, id := range ids {
		_ = f.Destroy(ctx, id)
	}
	return nil
}

// Live returns the number of live sandboxes.
func (f *Fake) Live() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.boxes)
}

func slicesOf(m map[sandbox.ID]*box) []sandbox.ID {
	out := make([]sandbox.ID, 0, len(m))
	for id := range m {
		out = append(out, id)
	}
	return out
}
