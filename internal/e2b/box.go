package e2b

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"path"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/warden-sandbox/warden/client"
)

// box is a sandbox made through the E2B surface: what E2B knows of it and
// Warden does not. Fields below mu are guarded by Server.mu.
type box struct {
	id       string // E2B's ID: sb + 16 hex digits
	wardenID string // Warden's: sb- + 16 hex digits
	template string
	// image is what the template maps to; "" is Warden's configured one.
	image     string
	tokenHash [sha256.Size]byte
	token     string
	metadata  map[string]string
	network   bool
	cpus      int
	memoryMB  int
	startedAt time.Time
	// workspace is where Warden says the workspace is inside the sandbox:
	// home, except with the local provider, which cannot move it and
	// reports its host path.
	workspace string
	// executions counts the code interpreter's cells, for
	// number_of_executions.
	executions atomic.Int64

	end   time.Time
	timer *time.Timer
	// gen changes with every new end, so that a timer that fired just
	// before a reset does nothing.
	gen uint64
}

func (b *box) tokenOK(t string) bool {
	if t == "" {
		return false
	}
	h := sha256.Sum256([]byte(t))
	return subtle.ConstantTimeCompare(h[:], b.tokenHash[:]) == 1
}

// E2B's sandbox IDs are lower-case letters and digits; Warden's are "sb-"
// and 16 hex digits. The mapping drops or restores the dash.
var (
	wardenIDRE = regexp.MustCompile(`^sb-[0-9a-f]{16}$`)
	e2bIDRE    = regexp.MustCompile(`^sb[0-9a-f]{16}$`)
)

// e2bID returns the E2B form of a Warden sandbox ID, "" if it has none.
func e2bID(wardenID string) string {
	if !wardenIDRE.MatchString(wardenID) {
		return ""
	}
	return "sb" + wardenID[3:]
}

// wardenID returns the Warden form of an E2B sandbox ID, "" if it has
// none.
func wardenID(e2bID string) string {
	if !e2bIDRE.MatchString(e2bID) {
		return ""
	}
	return "sb-" + e2bID[2:]
}

// lookup returns the live sandbox with E2B ID id, nil if none.
func (s *Server) lookup(id string) *box {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.boxes[id]
}

// forget drops b from the table, if it is still there; it reports whether
// it was.
func (s *Server) forget(b *box) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.boxes[b.id] != b {
		return false
	}
	delete(s.boxes, b.id)
	b.timer.Stop()
	return true
}

// setEnd moves b's end of life to end and rearms its timer. It reports
// false if b is gone.
func (s *Server) setEnd(b *box, end time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.boxes[b.id] != b {
		return false
	}
	s.armLocked(b, end)
	return true
}

// armLocked sets b's end and (re)starts its timer. s.mu is held.
func (s *Server) armLocked(b *box, end time.Time) {
	b.end = end
	b.gen++
	gen := b.gen
	if b.timer != nil {
		b.timer.Stop()
	}
	if s.closed {
		return
	}
	b.timer = time.AfterFunc(max(0, end.Sub(s.now())), func() { s.expire(b, gen) })
}

// expire destroys b when its end of life has come, unless its end moved
// meanwhile.
func (s *Server) expire(b *box, gen uint64) {
	s.mu.Lock()
	if s.boxes[b.id] != b || b.gen != gen {
		s.mu.Unlock()
		return
	}
	delete(s.boxes, b.id)
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := s.c.Delete(ctx, b.wardenID)
	if err != nil && !errors.Is(err, client.ErrNotFound) {
		s.log.Warn("e2b sandbox timed out, but removing it failed", "sandbox_id", b.wardenID, "err", err)
		return
	}
	s.log.Info("e2b sandbox timed out and was removed", "sandbox_id", b.wardenID, "e2b_id", b.id)
}

// gone reports whether Warden no longer has b (destroyed through Warden's
// own API, reaped, or removed at shutdown), and forgets it if so. Callers
// ask after a not-found answer, to tell a missing file from a missing
// sandbox.
func (s *Server) gone(ctx context.Context, b *box) bool {
	_, err := s.c.Get(ctx, b.wardenID)
	if errors.Is(err, client.ErrNotFound) {
		s.forget(b)
		return true
	}
	return false
}

// errSandboxGone marks a data-plane call whose sandbox disappeared.
var errSandboxGone = errors.New("The sandbox was not found")

// errPathOutside is the class of paths outside the home directory.
var errPathOutside = errors.New("outside the sandbox's home directory")

// wardenPath maps a path as E2B's SDKs send it (absolute, or relative to
// /home/user) onto the workspace-relative path Warden's file API takes;
// "" is the workspace itself. Paths outside the home directory are
// refused: Warden's file API reaches only the workspace.
func (b *box) wardenPath(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", errorf(400, "path contains a NUL byte")
	}
	if p == "" || p == "~" {
		return "", nil
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		p = rest
	}
	if !path.IsAbs(p) {
		p = path.Join(home, p)
	}
	p = path.Clean(p)
	for _, root := range []string{home, b.workspace} {
		if root == "" {
			continue
		}
		if p == root {
			return "", nil
		}
		if rel, ok := strings.CutPrefix(p, root+"/"); ok {
			return rel, nil
		}
	}
	return "", &pathError{path: p}
}

// pathError refuses a path outside the home directory.
type pathError struct{ path string }

func (e *pathError) Error() string {
	return "path " + e.path + " is outside " + home + ": Warden's E2B surface reaches files only in the sandbox's home directory, its workspace"
}

func (e *pathError) Unwrap() error { return errPathOutside }

// e2bPath is the absolute path, as code in the sandbox sees it, of a
// workspace-relative path from Warden.
func e2bPath(rel string) string {
	if rel == "" || rel == "." {
		return home
	}
	return path.Join(home, rel)
}
