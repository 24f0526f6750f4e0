//go:build !linux

package image

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// bootstrapBase needs debootstrap and chroot, which only Linux hosts have.
func bootstrapBase(ctx context.Context, api API, o Options, w io.Writer) error {
	return fmt.Errorf("bootstrapping a Debian base needs a Linux host (import %s built elsewhere): %w", o.BaseName, errors.ErrUnsupported)
}
