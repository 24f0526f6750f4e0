package agent

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Source is the agent program. Providers start it as
// python3 -c Source agent, or from bytecode compiled once with
// [LoaderCommand].
//
//go:embed agent.py
var Source string

// Frame kinds.
const (
	kindRequest = 'q'
	kindCancel  = 'c'
	kindHello   = 'h'
	kindStdout  = 'o'
	kindStderr  = 'e'
	kindResult  = 'r'
	// kindDisplay carries one rich output of a Python execution (JSON,
	// see wireOutput), in order with the o and e frames around it.
	kindDisplay = 'm'
)

// Bounds on frames from the agent. The agent sends output in chunks of at
// most 64 KiB; anything larger is a protocol violation.
const (
	maxOutputFrame  = 1 << 20
	maxControlFrame = 4 << 20
	// maxDisplayFrame bounds one rich output; the agent drops larger ones.
	maxDisplayFrame = 4 << 20
	headerSize      = 5
)

// errProtocol marks a violation of the protocol by the sandbox side.
var errProtocol = errors.New("agent protocol violation")

type frame struct {
	kind    byte
	payload []byte
}

// writeFrame writes one frame in a single Write call.
func writeFrame(w io.Writer, kind byte, payload []byte) error {
	buf := make([]byte, headerSize+len(payload))
	buf[0] = kind
	binary.BigEndian.PutUint32(buf[1:], uint32(len(payload)))
	copy(buf[headerSize:], payload)
	_, err := w.Write(buf)
	return err
}

// readFrame reads one frame, refusing unknown kinds and oversized payloads
// before allocating them.
func readFrame(r io.Reader) (frame, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	kind := hdr[0]
	n := binary.BigEndian.Uint32(hdr[1:])
	var limit uint32
	switch kind {
	case kindStdout, kindStderr:
		limit = maxOutputFrame
	case kindHello, kindResult:
		limit = maxControlFrame
	case kindDisplay:
		limit = maxDisplayFrame
	case kindProcOutput:
		limit = maxOutputFrame
	case kindProcStarted, kindProcEnded:
		limit = 64 << 10
	default:
		return frame{}, fmt.Errorf("%w: unknown frame kind %q", errProtocol, kind)
	}
	if n > limit {
		return frame{}, fmt.Errorf("%w: %c frame of %d bytes exceeds %d", errProtocol, kind, n, limit)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return frame{}, err
	}
	return frame{kind: kind, payload: p}, nil
}

// BaseEnv is the environment an agent process starts with inside a
// sandbox whose workspace is at workspace. Sandbox environment variables
// are added per execution, never here, so they never appear on a command
// line or in the container's configuration.
func BaseEnv(workspace string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/tmp/home",
		"USER=sandbox",
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"TERM=dumb", // no colour codes in output meant for a model
		"TMPDIR=/tmp",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONPATH=" + workspace,
		"MPLBACKEND=Agg",
		"WARDEN_WORKSPACE=" + workspace,
	}
}

// Diagnoser is implemented by a Process that can say why it failed, for
// example with the tail of the agent's stderr.
type Diagnoser interface {
	Diagnostics() string
}

// isProcFrame reports whether kind belongs to a background process.
func isProcFrame(kind byte) bool {
	return kind == kindProcOutput || kind == kindProcStarted || kind == kindProcEnded
}
