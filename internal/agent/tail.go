package agent

import (
	"bytes"
	"sync"
)

// TailBuffer keeps the last Max bytes written to it, for diagnostics such
// as an agent's stderr. It is safe for concurrent use.
type TailBuffer struct {
	Max int
	mu  sync.Mutex
	b   []byte
}

func (t *TailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.Max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.Max:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of what is kept.
func (t *TailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.b)
}

// String returns what is kept.
func (t *TailBuffer) String() string { return string(t.Bytes()) }
