package bwrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// agentPath is where a sandbox finds the compiled agent, bound read-only.
const agentPath = initDir + "/agent"

// compileAgent compiles the agent once for all sandboxes, with their
// interpreter, in a sandbox of its own that holds nothing of any
// sandbox's (no workspace, no mounts, no environment but PATH), and keeps
// it under the workspace root, where only this process's user may write
// (see agent.Compiled). It returns the file's path.
func (p *Provider) compileAgent(ctx context.Context) (string, error) {
	dir := filepath.Join(p.opts.WorkspaceRoot, ".init")
	if err := safedir.Ensure(dir, 0o711); err != nil {
		return "", err
	}
	if p.opts.RunAs != nil {
		// Searchable, not listable, as for the shim: the sandboxes' user
		// needs to reach the file.
		if err := os.Chmod(dir, 0o711); err != nil {
			return "", err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return agent.Compiled(ctx, dir, pythonKey(p.opts.RootFS), p.runCompiler)
}

// pythonKey identifies the interpreter the sandboxes find first on PATH
// (as the shim looks for it), so that a new one is compiled for anew.
func pythonKey(root string) string {
	if root == "" {
		root = "/"
	}
	for _, name := range []string{"usr/local/bin/python3", "usr/bin/python3", "bin/python3"} {
		st, err := os.Stat(filepath.Join(root, name))
		if err != nil || st.IsDir() {
			continue
		}
		key := fmt.Sprintf("%s %s %d %d", root, name, st.Size(), st.ModTime().UnixNano())
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			key += fmt.Sprintf(" %d %d", sys.Dev, sys.Ino)
		}
		return key
	}
	return root
}

// runCompiler runs agent.CompileCommand in a bare sandbox with the
// sandboxes' system directories, as their user, under their seccomp
// filter.
func (p *Provider) runCompiler(ctx context.Context, stdin []byte) ([]byte, error) {
	l := &launcher{p: p, spec: sandbox.Spec{}.WithDefaults()}
	sys, _, err := l.system()
	if err != nil {
		return nil, err
	}
	args := []string{"--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL"}
	if p.disableUserns {
		args = append(args, "--unshare-user", "--disable-userns")
	}
	args = append(args, sys...)
	args = append(args, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp",
		"--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin", "--seccomp", "3", "--")
	args = append(args, agent.CompileCommand()...)
	sec, err := dataFile(string(p.seccomp))
	if err != nil {
		return nil, fmt.Errorf("passing the seccomp filter: %w", err)
	}
	defer sec.Close()
	cmd := exec.CommandContext(ctx, p.opts.Bwrap, args...)
	cmd.Env = []string{}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if u := p.opts.RunAs; u != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.UID, Gid: u.GID}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	cmd.ExtraFiles = []*os.File{sec}
	cmd.Stdin = bytes.NewReader(stdin)
	out := &limitedBuffer{max: agent.MaxCompiled}
	cmd.Stdout = out
	stderr := &agent.TailBuffer{Max: 4 << 10}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%v (%s)", err, strings.TrimSpace(stderr.String()))
	}
	return out.Bytes(), nil
}

// limitedBuffer is a bytes.Buffer that refuses to grow beyond max.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > b.max {
		return 0, errors.New("output too large")
	}
	return b.Buffer.Write(p)
}
