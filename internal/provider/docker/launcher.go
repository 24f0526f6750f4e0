package docker

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/agent"
)

// execUser is the user sandboxed code runs as.
const execUser = "1000:1000"

// initUser runs the container's main process (docker-init and sleep), so
// that `kill -9 -1` by the sandbox user, used to reset a sandbox, cannot
// stop the container.
const initUser = "65534:65534"

// launcher starts agents in one container. It implements agent.Launcher.
type launcher struct {
	cli         *client.Client
	containerID string
	workspace   string
	code        []byte // the compiled agent (agentCode); nil: run from source

	mu  sync.Mutex
	cur *execProc // the agent last started
}

func (l *launcher) Start(ctx context.Context) (agent.Process, error) {
	cmd := []string{"python3", "-c", agent.Source, "agent"}
	if l.code != nil {
		cmd = agent.StdinLoaderCommand()
	}
	ex, err := l.cli.ExecCreate(ctx, l.containerID, client.ExecCreateOptions{
		User:         execUser,
		AttachStdin:  true,
		AttachStdout: true,
		AttachStderr: true,
		Env:          agent.BaseEnv(l.workspace),
		WorkingDir:   l.workspace,
		Cmd:          cmd,
	})
	if err != nil {
		return nil, fmt.Errorf("creating agent exec: %w", convert(err))
	}
	att, err := l.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return nil, fmt.Errorf("attaching to agent exec: %w", convert(err))
	}
	if l.code != nil {
		if _, err := att.Conn.Write(agent.StdinPayload(l.code)); err != nil {
			att.Close()
			return nil, fmt.Errorf("sending the compiled agent: %w", err)
		}
	}
	p := &execProc{resp: att.HijackedResponse, stderr: &agent.TailBuffer{Max: 16 << 10}}
	p.demux = &demuxReader{r: att.Reader, stderr: p.stderr}
	l.mu.Lock()
	l.cur = p
	l.mu.Unlock()
	return p, nil
}

// drop closes the connection to the agent last started, so that whoever
// waits for it gets an error at once: the container stopped, and runsc
// leaves the connections of its execs open when it does.
func (l *launcher) drop() {
	l.mu.Lock()
	p := l.cur
	l.mu.Unlock()
	if p != nil {
		_ = p.Close()
	}
}

// Reset kills every process of the sandbox user. kill(-1) spares the
// caller and the container's init; the main process runs as another user.
func (l *launcher) Reset(ctx context.Context) error {
	ex, err := l.cli.ExecCreate(ctx, l.containerID, client.ExecCreateOptions{
		User:         execUser,
		AttachStdout: true,
		AttachStderr: true,
		Cmd:          []string{"python3", "-c", "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"},
	})
	if err != nil {
		return fmt.Errorf("creating reset exec: %w", convert(err))
	}
	att, err := l.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("running reset exec: %w", convert(err))
	}
	defer att.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, att.Reader)
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		att.Close()
		<-done
		return ctx.Err()
	}
}

// execProc is an agent reached through a hijacked exec connection.
type execProc struct {
	resp   client.HijackedResponse
	demux  *demuxReader
	stderr *agent.TailBuffer
	once   sync.Once
}

func (p *execProc) Read(b []byte) (int, error)  { return p.demux.Read(b) }
func (p *execProc) Write(b []byte) (int, error) { return p.resp.Conn.Write(b) }
func (p *execProc) Close() error {
	p.once.Do(p.resp.Close)
	return nil
}
func (p *execProc) Diagnostics() string { return p.stderr.String() }

// demuxReader returns the stdout part of Docker's multiplexed attach
// stream (8-byte headers: stream, 3 zero bytes, big-endian length) and
// sends the stderr part to stderr. Unlike stdcopy it needs no goroutine.
type demuxReader struct {
	r      *bufio.Reader
	stderr io.Writer
	left   int
	hdr    [8]byte
}

func (d *demuxReader) Read(p []byte) (int, error) {
	for d.left == 0 {
		if _, err := io.ReadFull(d.r, d.hdr[:]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint32(d.hdr[4:]))
		switch d.hdr[0] {
		case 1:
			d.left = n
		case 2:
			if _, err := io.CopyN(d.stderr, d.r, int64(n)); err != nil {
				return 0, err
			}
		case 0:
			if _, err := io.CopyN(io.Discard, d.r, int64(n)); err != nil {
				return 0, err
			}
		default:
			return 0, fmt.Errorf("docker attach stream: bad stream id %d", d.hdr[0])
		}
	}
	if len(p) > d.left {
		p = p[:d.left]
	}
	n, err := d.r.Read(p)
	d.left -= n
	return n, err
}
