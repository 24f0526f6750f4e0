package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// dirPrefix names the workspaces this package makes under the root; each
// has an image (ImageSuffix) and an owner file (ownerSuffix) beside it.
const (
	dirPrefix   = "quota-"
	ownerSuffix = ".owner"
)

// Provider gives the private workspaces of the provider it wraps a size
// limit: for a spec with WorkspaceSize and no WorkspaceDir, it makes the
// workspace itself (a mounted file system of that size, see [Mount]) and
// hands it to the provider as the spec's WorkspaceDir, then removes it
// after Destroy; a one-shot run ([Provider.Run]) has one for its time.
// Specs with a WorkspaceDir of the caller's pass through unbounded.
// Everything else is the wrapped provider's.
type Provider struct {
	sandbox.Provider
	root     string
	uid, gid int
	log      *slog.Logger

	mu   sync.Mutex
	dirs map[sandbox.ID]string
}

var _ sandbox.Runner = (*Provider)(nil)

// Wrap returns p with quotas on its private workspaces under root (the
// SANDBOX__WORKSPACE_ROOT p uses), owned inside by uid:gid (the sandbox
// user), or p itself when quotas cannot be enforced here (Supported says
// why). It first removes the quota workspaces that Warden processes which
// are gone left under root.
func Wrap(p sandbox.Provider, root string, uid, gid int, log *slog.Logger) sandbox.Provider {
	if err := Supported(); err != nil || p == nil {
		return p
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if n, err := Sweep(root); err != nil {
		log.Warn("removing quota workspaces of dead Warden processes", "err", err)
	} else if n > 0 {
		log.Info("removed quota workspaces of dead Warden processes", "count", n)
	}
	return &Provider{Provider: p, root: root, uid: uid, gid: gid, log: log, dirs: map[sandbox.ID]string{}}
}

// Unwrap returns the wrapped provider.
func (p *Provider) Unwrap() sandbox.Provider { return p.Provider }

// Capabilities adds WorkspaceQuota to the wrapped provider's.
func (p *Provider) Capabilities() sandbox.Capabilities {
	c := p.Provider.Capabilities()
	c.WorkspaceQuota = true
	return c
}

// Processes passes the wrapped provider's background processes through.
func (p *Provider) Processes() sandbox.ProcessRunner { return sandbox.ProcessesOf(p.Provider) }

// Create makes a bounded workspace when the spec asks for one.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (info sandbox.Info, err error) {
	if spec.WorkspaceSize <= 0 || spec.WorkspaceDir != "" {
		return p.Provider.Create(ctx, spec)
	}
	dir, err := p.make(ctx, spec.WorkspaceSize)
	if err != nil {
		return sandbox.Info{}, err
	}
	defer func() {
		if err != nil {
			p.remove(dir)
		}
	}()
	spec.WorkspaceDir = dir
	info, err = p.Provider.Create(ctx, spec)
	if err != nil {
		return sandbox.Info{}, err
	}
	info.Spec.WorkspaceDir = "" // the workspace is the sandbox's own, not the caller's
	p.mu.Lock()
	p.dirs[info.ID] = dir
	p.mu.Unlock()
	return info, nil
}

// Run implements [sandbox.Runner]: a run whose spec asks for a bounded
// private workspace gets one, as Create gives it, for the time of the
// run, then it is removed whatever happened; other runs pass straight to
// the wrapped provider (its one-shot path if it has one).
func (p *Provider) Run(ctx context.Context, spec sandbox.Spec, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	if spec.WorkspaceSize <= 0 || spec.WorkspaceDir != "" {
		return sandbox.Run(ctx, p.Provider, spec, req)
	}
	if err := req.Validate(); err != nil {
		return sandbox.ExecResult{}, err // before making a file system for nothing
	}
	dir, err := p.make(ctx, spec.WorkspaceSize)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	defer p.remove(dir)
	spec.WorkspaceDir = dir
	return sandbox.Run(ctx, p.Provider, spec, req)
}

// make creates a bounded workspace directory under the root.
func (p *Provider) make(ctx context.Context, size int64) (string, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	dir := filepath.Join(p.root, dirPrefix+hex.EncodeToString(b[:]))
	if err := os.MkdirAll(p.root, 0o711); err != nil {
		return "", fmt.Errorf("workspace root: %w", err)
	}
	if err := os.WriteFile(dir+ownerSuffix, []byte(owner.ID()), 0o600); err != nil {
		return "", fmt.Errorf("creating workspace: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		_ = os.Remove(dir + ownerSuffix)
		return "", fmt.Errorf("creating workspace: %w", err)
	}
	if err := Mount(ctx, dir, size, p.uid, p.gid); err != nil {
		p.remove(dir)
		return "", fmt.Errorf("bounding the workspace to %d bytes: %w", size, err)
	}
	return dir, nil
}

// remove unmounts and deletes a bounded workspace, its image and owner
// file.
func (p *Provider) remove(dir string) {
	if err := removeDir(dir); err != nil {
		p.log.Warn("removing a bounded workspace", "dir", dir, "err", err)
	}
}

func removeDir(dir string) error {
	err := Unmount(dir)
	if rerr := os.RemoveAll(dir); rerr != nil {
		err = errors.Join(err, rerr)
	}
	if rerr := os.Remove(dir + ownerSuffix); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// Destroy destroys the sandbox, then its bounded workspace.
func (p *Provider) Destroy(ctx context.Context, id sandbox.ID) error {
	err := p.Provider.Destroy(ctx, id)
	if err != nil && !errors.Is(err, sandbox.ErrNotFound) {
		return err // kept, so that Destroy can be retried
	}
	p.mu.Lock()
	dir, ok := p.dirs[id]
	delete(p.dirs, id)
	p.mu.Unlock()
	if ok {
		p.remove(dir)
	}
	return err
}

// Close closes the wrapped provider, then removes every bounded workspace
// left.
func (p *Provider) Close(ctx context.Context) error {
	err := p.Provider.Close(ctx)
	p.mu.Lock()
	dirs := p.dirs
	p.dirs = map[sandbox.ID]string{}
	p.mu.Unlock()
	for _, dir := range dirs {
		p.remove(dir)
	}
	return err
}

// Sweep removes, under root, the bounded workspaces whose owner is a
// Warden process that is gone (a crash, kill -9), and returns how many.
// Those of live processes, this one's included, stay.
func Sweep(root string) (int, error) {
	entries, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, dirPrefix) || !strings.HasSuffix(name, ownerSuffix) {
			continue
		}
		dir := filepath.Join(root, strings.TrimSuffix(name, ownerSuffix))
		id, err := os.ReadFile(dir + ownerSuffix)
		if err != nil {
			continue
		}
		if alive, ok := owner.Alive(strings.TrimSpace(string(id))); !ok || alive {
			continue // alive, or not ours to judge (another host's)
		}
		if err := removeDir(dir); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
