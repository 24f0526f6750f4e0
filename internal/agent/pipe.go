package agent

import (
	"bytes"
	"errors"
	"os"
	"sync"
	"syscall"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// outPipe reads one of a one-shot run's output pipes. Every read of the
// pipe happens under mu, so drain, called when a display frame comes,
// takes everything the runner wrote into the pipe before it sent the
// frame (it flushes its streams first, and writes nothing more until the
// host's acknowledgement): output and rich outputs reach the caller in
// the order the code made them, as a session's agent forwards them.
type outPipe struct {
	stream sandbox.Stream
	rc     syscall.RawConn

	mu   sync.Mutex
	buf  []byte // read, not yet taken
	eof  bool
	room chan struct{} // (1) the main loop took buf

	ended bool // the main loop saw the end (its own)
}

const (
	pipeChunk = 64 << 10 // the reader stops reading past this much untaken
	pipeDrain = 1 << 20  // a drain reads at most this much
)

func newOutPipe(f *os.File, st sandbox.Stream) (*outPipe, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &outPipe{stream: st, rc: rc, room: make(chan struct{}, 1)}, nil
}

// readLocked reads once from fd, appending to buf. It reports false when
// the pipe was empty.
func (p *outPipe) readLocked(fd int) bool {
	if p.eof {
		return true
	}
	if cap(p.buf)-len(p.buf) < 4<<10 {
		p.buf = append(make([]byte, 0, max(2*cap(p.buf), 16<<10)), p.buf...)
	}
	for {
		n, err := syscall.Read(fd, p.buf[len(p.buf):cap(p.buf)])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EAGAIN):
			return false
		case n > 0:
			p.buf = p.buf[:len(p.buf)+n]
		default: // end of file, or an error: the pipe ends either way
			p.eof = true
		}
		return true
	}
}

// run reads the pipe until its end, telling ready after each read. It
// waits for the main loop to take what it holds past pipeChunk.
func (p *outPipe) run(ready chan<- struct{}, quit <-chan struct{}) {
	for {
		full := false
		err := p.rc.Read(func(fd uintptr) bool {
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.buf) >= pipeChunk {
				full = true
				return true
			}
			return p.readLocked(int(fd))
		})
		p.mu.Lock()
		if err != nil { // closed under us
			p.eof = true
		}
		eof := p.eof
		p.mu.Unlock()
		select {
		case ready <- struct{}{}:
		default: // the main loop has yet to look: it takes every pipe then
		}
		if eof {
			return
		}
		if full {
			select {
			case <-p.room:
			case <-quit:
				return
			}
		}
	}
}

// take returns a copy of what was read and not yet taken (the buffer is
// kept for the next reads), and whether the pipe ended.
func (p *outPipe) take() ([]byte, bool) {
	p.mu.Lock()
	b, eof := bytes.Clone(p.buf), p.eof
	p.buf = p.buf[:0]
	p.mu.Unlock()
	select {
	case p.room <- struct{}{}:
	default:
	}
	return b, eof
}

// drain reads what the pipe holds now (up to pipeDrain), then takes it.
func (p *outPipe) drain() ([]byte, bool) {
	_ = p.rc.Control(func(fd uintptr) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for start := len(p.buf); len(p.buf)-start < pipeDrain && !p.eof; {
			if !p.readLocked(int(fd)) {
				break
			}
		}
	})
	return p.take()
}
