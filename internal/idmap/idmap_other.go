//go:build !linux

package idmap

import (
	"errors"
	"fmt"
)

// ErrUnsupported says the kernel or the directory's file system cannot
// give an idmapped view.
var ErrUnsupported = errors.New("idmapped mounts are not supported")

// Stager creates idmapped views under Root. Only Linux has them.
type Stager struct {
	Root string
}

// Mount is an idmapped view of a directory.
type Mount struct {
	Path, Source string
	UID, GID     uint32
}

// Mount fails: only Linux has idmapped mounts.
func (s Stager) Mount(dir string, sandboxUID, sandboxGID uint32, readOnly bool) (*Mount, error) {
	return nil, fmt.Errorf("%s: %w on this system", dir, ErrUnsupported)
}

// Unmount does nothing.
func (m *Mount) Unmount() error { return nil }

// RemoveOrphans does nothing.
func (s Stager) RemoveOrphans() (int, error) { return 0, nil }
