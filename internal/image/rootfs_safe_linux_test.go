package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/safedir"
)

// refuseExport is an ExportAPI that knows one image and fails the export:
// a test that reaches ContainerCreate did not reuse the cache.
type refuseExport struct{ created bool }

var errCreate = errors.New("container create called")

func (f *refuseExport) ImageInspect(context.Context, string, ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	return client.ImageInspectResult{InspectResponse: image.InspectResponse{ID: "sha256:0123456789abcdef"}}, nil
}

func (f *refuseExport) ContainerCreate(context.Context, client.ContainerCreateOptions) (client.ContainerCreateResult, error) {
	f.created = true
	return client.ContainerCreateResult{}, errCreate
}

func (f *refuseExport) ContainerExport(context.Context, string, client.ContainerExportOptions) (client.ContainerExportResult, error) {
	return nil, errCreate
}

func (f *refuseExport) ContainerRemove(context.Context, string, client.ContainerRemoveOptions) (client.ContainerRemoveResult, error) {
	return client.ContainerRemoveResult{}, nil
}

// TestExportRootFSCache: an extracted root is reused only from a cache no
// other user could have written to; it is what sandboxes run.
func TestExportRootFSCache(t *testing.T) {
	t.Parallel()
	cache := filepath.Join(t.TempDir(), "rootfs")
	root := filepath.Join(cache, "rootfs-0123456789ab")
	if err := os.MkdirAll(filepath.Join(root, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	api := &refuseExport{}
	if dir, err := ExportRootFS(t.Context(), api, "img", cache, nil); err != nil || dir != root || api.created {
		t.Fatalf("a safe cache: %q, %v (created %v), want %q reused", dir, err, api.created, root)
	}
	// Writable by others: extracted anew, not reused.
	if err := os.Chmod(root, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := ExportRootFS(t.Context(), api, "img", cache, nil); !errors.Is(err, errCreate) {
		t.Errorf("a root others may change: %v, want a new extraction", err)
	}
	if err := os.Chmod(cache, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := ExportRootFS(t.Context(), api, "img", cache, nil); !errors.Is(err, safedir.ErrUnsafe) {
		t.Errorf("a cache others may write to: %v, want ErrUnsafe", err)
	}
}
