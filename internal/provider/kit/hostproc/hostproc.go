// Package hostproc is the part of a provider that runs each sandbox as
// host processes (local, seatbelt): the agent's launcher, a private
// directory per sandbox, and a teardown that finds every process of a
// sandbox by a marker in its environment. It is bookkeeping, not
// containment: a process that drops the marker is not found, and stays
// confined only by what the provider wraps it in.
package hostproc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Box is what a host-process provider keeps of a sandbox besides its
// session.
type Box struct {
	Dir      string // private directory: home, tmp and maybe workspace
	Launcher *Launcher
}

// MakeDirs creates root (if need be) and, in it, the private directory
// dir of a sandbox with its home and tmp. On failure it leaves nothing
// behind.
func MakeDirs(root, dir string) (err error) {
	if err := safedir.EnsureRoot(root); err != nil {
		return fmt.Errorf("%w: %w", err, sandbox.ErrInvalid)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("creating sandbox directory: %w", err)
	}
	defer func() {
		if err != nil {
			_ = RemoveAll(dir)
		}
	}()
	for _, sub := range []string{"home", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o700); err != nil {
			return fmt.Errorf("creating sandbox directory: %w", err)
		}
	}
	return nil
}

// Teardown is a kit.Base Teardown: no agent may start any more, every
// marked process is killed, the session is closed and the private
// directory removed (with the workspace, when it is inside). Fields of sb
// may be nil after a failed Create. It runs to completion even if ctx is
// cancelled.
func Teardown(ctx context.Context, sb *kit.Sandbox[Box]) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), TeardownTimeout)
	defer cancel()
	var errs []error
	if l := sb.Box.Launcher; l != nil {
		l.Shutdown()
		if err := l.Kill(ctx, l.Marker); err != nil {
			errs = append(errs, fmt.Errorf("killing sandbox processes: %w", err))
		}
	}
	// Closed after the kill, the session sees its agent die and a running
	// Exec returns at once (closed first, it may wait out the timeout).
	if sb.Session != nil {
		_ = sb.Session.Close()
	}
	if sb.Box.Dir != "" {
		if err := RemoveAll(sb.Box.Dir); err != nil {
			errs = append(errs, fmt.Errorf("removing sandbox directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// RemoveAll removes dir. When Warden does not run as root, sandboxed code
// may have taken write or search permission away from its own
// directories; they are given back, and the removal retried. (For root
// permissions are no obstacle, and chmod, which follows symlinks, is
// better not run on paths code could still be changing.)
func RemoveAll(dir string) error {
	err := os.RemoveAll(dir)
	if err == nil || os.Geteuid() == 0 {
		return err
	}
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// killPause is the wait between two rounds of KillMarked that found
// processes, so that killed processes can exit.
const killPause = 5 * time.Millisecond

// KillMarked sends SIGKILL to every process scan finds (processes whose
// environment holds marker), and repeats until a scan finds none:
// processes may fork between the scan and the kill. It returns an error
// if processes are still found when ctx ends.
func KillMarked(ctx context.Context, marker string, scan func() ([]int, error)) error {
	for {
		pids, err := scan()
		if err != nil {
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		t := time.NewTimer(killPause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%d processes marked %s still running: %w", len(pids), marker, ctx.Err())
		}
	}
}

// Run runs argv outside any sandbox, in / with env, in a process group of
// its own that is killed when ctx ends, and returns its stdout and the
// tail of its stderr. Providers ask their interpreter about itself with it.
func Run(ctx context.Context, env []string, argv ...string) (stdout []byte, stderr string, err error) {
	//nolint:gosec // G204: the operator's interpreter with a constant script
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = "/"
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = WaitDelay
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	msg := strings.TrimSpace(errb.String())
	if len(msg) > 512 {
		msg = msg[len(msg)-512:]
	}
	return out.Bytes(), msg, err
}

// Create makes the sandbox id of provider name: its private directory
// dir under root (with home and tmp), the workspace (spec.WorkspaceDir, or
// dir/workspace), then the launcher that setup returns for them, and
// starts its agent; a failed start's error begins with agentName. The
// workspace's path inside is its host path: there is no inside. On
// failure nothing is left behind.
func Create(ctx context.Context, name string, id sandbox.ID, spec sandbox.Spec, root, dir, agentName string,
	setup func(ws string) (*Launcher, error)) (_ *kit.Sandbox[Box], err error) {
	if err := MakeDirs(root, dir); err != nil {
		return nil, err
	}
	sb := &kit.Sandbox[Box]{Box: Box{Dir: dir}}
	defer func() {
		if err != nil {
			_ = Teardown(ctx, sb)
		}
	}()
	ws := filepath.Clean(spec.WorkspaceDir)
	if spec.WorkspaceDir == "" {
		ws = filepath.Join(dir, "workspace")
		if err := os.Mkdir(ws, 0o755); err != nil {
			return nil, fmt.Errorf("creating workspace: %w", err)
		}
	}
	if sb.Box.Launcher, err = setup(ws); err != nil {
		return nil, err
	}
	spec.WorkspacePath = ws
	sb.Session = kit.NewSession(sb.Box.Launcher, spec, ws)
	if _, err := sb.Session.Start(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", agentName, err)
	}
	sb.Info = sandbox.Info{
		ID:           id,
		Provider:     name,
		Name:         spec.NamePrefix + "-" + string(id),
		Workspace:    ws,
		Spec:         spec,
		WorkspaceUID: -1,
		WorkspaceGID: -1,
	}
	return sb, nil
}
