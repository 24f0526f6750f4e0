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

// readFrame reads one frame of a session, refusing unknown kinds and
// oversized payloads before allocating them.
func readFrame(r io.Reader) (frame, error) {
	return readFrameOf(r, sessionFrameLimit)
}

// sessionFrameLimit bounds each kind of frame an agent sends; 0: not a
// kind it sends.
func sessionFrameLimit(kind byte) uint32 {
	switch kind {
	case kindStdout, kindStderr, kindProcOutput:
		return maxOutputFrame
	case kindHello, kindResult:
		return maxControlFrame
	case kindDisplay:
		return maxDisplayFrame
	case kindProcStarted, kindProcEnded:
		return 64 << 10
	}
	return 0
}

// readFrameOf reads one frame whose kind limit bounds (0: unknown kind),
// refusing the rest before allocating it.
func readFrameOf(r io.Reader, limit func(kind byte) uint32) (frame, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return frame{}, err
	}
	kind := hdr[0]
	n := binary.BigEndian.Uint32(hdr[1:])
	most := limit(kind)
	if most == 0 {
		return frame{}, fmt.Errorf("%w: unknown frame kind %q", errProtocol, kind)
	}
	if n > most {
		return frame{}, fmt.Errorf("%w: %c frame of %d bytes exceeds %d", errProtocol, kind, n, most)
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
