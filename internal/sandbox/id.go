package sandbox

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// ID identifies a sandbox. Valid IDs match [ValidateID].
type ID string

// MaxIDLength bounds IDs so they fit in container names and paths.
const MaxIDLength = 64

// NewID returns a fresh random ID of the form "sb-" followed by 16 hex digits.
func NewID() ID {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("sandbox: crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	return ID("sb-" + hex.EncodeToString(b[:]))
}

// ValidateID reports whether s is a usable sandbox ID: 1 to 64 characters
// from [A-Za-z0-9_.-], starting with a letter or digit. Such an ID contains
// no path separator and cannot be "." or "..", so it is safe as a path
// component, a container name and a cgroup name.
func ValidateID(s string) error {
	if s == "" {
		return fmt.Errorf("sandbox id is empty: %w", ErrInvalid)
	}
	if len(s) > MaxIDLength {
		return fmt.Errorf("sandbox id is longer than %d characters: %w", MaxIDLength, ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("sandbox id %q must start with a letter or digit: %w", s, ErrInvalid)
		}
		if !alnum && c != '_' && c != '.' && c != '-' {
			return fmt.Errorf("sandbox id %q contains %q: %w", s, c, ErrInvalid)
		}
	}
	return nil
}
