//go:build !linux

// Package quota bounds what a sandbox's private workspace can hold; on this
// system it cannot (it needs Linux loop devices).
package quota

import (
	"context"
	"errors"
	"path/filepath"
)

// ImageSuffix is added to a workspace directory's path to name its image.
const ImageSuffix = ".quota.img"

// MinSize is the smallest size Mount accepts.
const MinSize = 8 << 20

var errUnsupported = errors.New("workspace quotas need Linux")

// Supported reports why quotas cannot be enforced here.
func Supported() error { return errUnsupported }

// Image returns the image file of workspace dir.
func Image(dir string) string { return filepath.Clean(dir) + ImageSuffix }

// Mount fails: quotas need Linux.
func Mount(ctx context.Context, dir string, size int64, uid, gid int) error { return errUnsupported }

// Unmount has nothing to undo here.
func Unmount(dir string) error { return nil }

// Mounted reports false: nothing is mounted by this package here.
func Mounted(dir string) bool { return false }
