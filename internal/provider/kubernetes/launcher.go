package kubernetes

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// bootProgram starts the agent from its source, read from stdin as a
// 4-byte big-endian length and the source: Kubernetes' exec takes its
// command in the URL, too small a place for 90 KB. It reads with os.read,
// so not a byte of the frames after the source is buffered away from the
// agent, which reads fd 0 itself.
const bootProgram = `import os, sys
def _r(n):
    b = b""
    while len(b) < n:
        c = os.read(0, n - len(b))
        if not c:
            os._exit(1)
        b += c
    return b
_n = int.from_bytes(_r(4), "big")
_c = compile(_r(_n).decode("utf-8"), "<warden-agent>", "exec")
del _r, _n
exec(_c)
`

// agentCommand starts an agent in a sandbox's pod; sys.argv is
// ["-c", "agent"], as with the Docker provider's python3 -c Source agent.
var agentCommand = []string{"python3", "-c", bootProgram, "agent"}

// resetCommand kills every process of the sandbox user but itself and
// the container's init (PID 1, which kill(-1) spares).
var resetCommand = []string{"python3", "-c", "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"}

// bootPayload is what the agent's stdin starts with.
func bootPayload() []byte {
	b := make([]byte, 4, 4+len(agent.Source))
	binary.BigEndian.PutUint32(b, uint32(len(agent.Source)))
	return append(b, agent.Source...)
}

// launcher starts agents in one pod. It implements agent.Launcher.
type launcher struct {
	p   *Provider
	pod string
}

// Start starts an agent with an exec whose streams outlive ctx: they end
// with the returned process's Close.
func (l *launcher) Start(ctx context.Context) (agent.Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if l.p.rep != nil {
		// Another replica may have adopted the pod while this one could
		// not renew its Lease: never run a second agent beside its.
		pod, err := l.p.cs.CoreV1().Pods(l.p.opts.Namespace).Get(ctx, l.pod, metav1.GetOptions{})
		if err == nil && (pod.Annotations[annotationOwner] != l.p.owner || pod.Annotations[annotationReplica] != l.p.rep.opts.ID) {
			return nil, fmt.Errorf("pod %s was taken over by replica %s: %w", l.pod, pod.Annotations[annotationReplica], sandbox.ErrConflict)
		}
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	proc := &execProc{in: inW, out: outR, cancel: cancel, stderr: &agent.TailBuffer{Max: 16 << 10}, done: make(chan struct{})}
	stdin := io.MultiReader(bytes.NewReader(bootPayload()), inR)
	go func() {
		defer close(proc.done)
		err := l.p.exec(sctx, l.pod, agentCommand, stdin, outW, proc.stderr)
		if err == nil {
			err = io.EOF
		}
		_ = outW.CloseWithError(err)
		// EOF for the copy of stdin, if it still runs; writes fail.
		_ = inW.Close()
	}()
	return proc, nil
}

// Reset implements agent.Launcher.
func (l *launcher) Reset(ctx context.Context) error {
	err := l.p.exec(ctx, l.pod, resetCommand, nil, io.Discard, io.Discard)
	var code interface{ ExitStatus() int }
	if errors.As(err, &code) {
		return nil // killed, with its own exec: the command's exit status says nothing
	}
	return err
}

// execProc is an agent reached through an exec's streams.
type execProc struct {
	in     *io.PipeWriter
	out    *io.PipeReader
	cancel context.CancelFunc
	stderr *agent.TailBuffer
	done   chan struct{} // closed when the exec ended
	once   sync.Once
}

func (e *execProc) Read(b []byte) (int, error)  { return e.out.Read(b) }
func (e *execProc) Write(b []byte) (int, error) { return e.in.Write(b) }

// closeGrace is how long Close lets the agent end its exec itself.
const closeGrace = time.Second

// Close ends the exec: the agent reads EOF and exits, which ends the exec
// cleanly (cutting the connection makes client-go log errors), and after
// closeGrace the connection is cut anyway. Reset kills whatever is left.
func (e *execProc) Close() error {
	e.once.Do(func() {
		_ = e.in.Close()
		_ = e.out.CloseWithError(io.ErrClosedPipe)
		select {
		case <-e.done:
		case <-time.After(closeGrace):
		}
		e.cancel()
	})
	return nil
}

func (e *execProc) Diagnostics() string { return e.stderr.String() }
