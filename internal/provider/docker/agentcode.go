package docker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/safedir"
)

// The agent's bytecode. Compiling the agent's source costs its
// interpreter about 25 ms at every start, and the source's compilation
// leaves memory behind in every sandbox. As on bubblewrap, the agent is
// compiled once per image by the image's own interpreter, and the result
// kept on the host under the workspace root (agent.Compiled). The daemon
// may be on another machine, so the file is not mounted: each agent start
// sends it on the agent's stdin first (agent.StdinLoaderCommand), and a
// sandbox's code can read what its agent runs but never change what a
// later agent runs.
//
// The compiler runs in a container about to become a sandbox, before the
// agent or any of the sandbox's code has run there: nothing of a
// sandbox's can reach the bytes every later sandbox runs.

// compileTimeout bounds one compilation.
const compileTimeout = 60 * time.Second

// agentCode returns the compiled agent for the image of the created,
// running container id, compiling it there the first time; nil when
// compiling failed (the agent then runs from its source, and the reason is
// logged once per image).
func (p *Provider) agentCode(ctx context.Context, image, id string) []byte {
	p.mu.Lock()
	key, known := p.imageIDs[image]
	b, ok := p.code[key]
	p.mu.Unlock()
	if ok || !known {
		return b
	}
	// One compilation per image at a time; later creates wait for it.
	p.compiling.Lock()
	defer p.compiling.Unlock()
	p.mu.Lock()
	b, ok = p.code[key]
	p.mu.Unlock()
	if ok {
		return b
	}
	b, err := p.compileAgent(ctx, key, id)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the next create tries again
		}
		p.log.Warn("the agent runs from its source in this image's sandboxes (slower start, more memory)", "image", image, "err", err)
	}
	p.mu.Lock()
	p.code[key] = b
	p.mu.Unlock()
	return b
}

// compileAgent returns the agent compiled by the interpreter of image key
// (an image ID), from the cache under the workspace root or by running
// agent.CompileCommand in container id.
func (p *Provider) compileAgent(ctx context.Context, key, id string) ([]byte, error) {
	dir := filepath.Join(p.opts.WorkspaceRoot, ".init")
	if err := safedir.Ensure(dir, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, compileTimeout)
	defer cancel()
	path, err := agent.Compiled(ctx, dir, "docker image "+key, func(ctx context.Context, stdin []byte) ([]byte, error) {
		return p.runCompiler(ctx, id, stdin)
	})
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return b, agent.CheckCompiled(b)
}

// runCompiler runs agent.CompileCommand in container id as the sandbox
// user, with stdin as its input, and returns its output.
func (p *Provider) runCompiler(ctx context.Context, id string, stdin []byte) ([]byte, error) {
	ex, err := p.cli.ExecCreate(ctx, id, client.ExecCreateOptions{
		User:         execUser,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		Env:          []string{"PATH=/usr/local/bin:/usr/bin:/bin"},
		WorkingDir:   "/",
		Cmd:          agent.CompileCommand(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the compiler's exec: %w", convert(err))
	}
	att, err := p.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("attaching to the compiler's exec: %w", convert(err))
	}
	defer att.Close()
	stop := context.AfterFunc(ctx, func() { att.Close() })
	defer stop()
	if _, err := att.Conn.Write(stdin); err != nil {
		return nil, fmt.Errorf("sending the agent's source: %w", err)
	}
	if err := att.CloseWrite(); err != nil {
		return nil, fmt.Errorf("closing the compiler's input: %w", err)
	}
	stderr := &agent.TailBuffer{Max: 4 << 10}
	out, err := io.ReadAll(io.LimitReader(&demuxReader{r: bufio.NewReader(att.Reader), stderr: stderr}, agent.MaxCompiled+1))
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("reading the compiled agent: %w", err)
	}
	ins, err := p.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("inspecting the compiler's exec: %w", convert(err))
	}
	if ins.ExitCode != 0 || len(out) > agent.MaxCompiled {
		return nil, fmt.Errorf("the compiler exited with %d after %d bytes: %s", ins.ExitCode, len(out), strings.TrimSpace(stderr.String()))
	}
	return bytes.Clone(out), nil
}
