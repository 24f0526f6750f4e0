package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/safedir"
)

// ExportAPI is what [ExportRootFS] needs of a Docker client.
type ExportAPI interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ContainerCreate(ctx context.Context, opts client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerExport(ctx context.Context, id string, opts client.ContainerExportOptions) (client.ContainerExportResult, error)
	ContainerRemove(ctx context.Context, id string, opts client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
}

var _ ExportAPI = (*client.Client)(nil)

// ExportRootFS returns a directory holding the root filesystem of image,
// extracted under cacheDir the first time (a directory named after the
// image's ID, so a rebuilt image is extracted anew) and reused afterwards.
// It lets a provider without images, such as bubblewrap, run the same
// system the Docker sandboxes run. Device files are skipped, set-ID bits
// dropped; owners are kept when the caller is root. progress, if set, gets one line when an
// extraction starts.
func ExportRootFS(ctx context.Context, api ExportAPI, image, cacheDir string, progress io.Writer) (string, error) {
	ins, err := api.ImageInspect(ctx, image)
	if err != nil {
		return "", fmt.Errorf("inspecting %s: %w", image, err)
	}
	id := strings.TrimPrefix(ins.ID, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	// What is found here runs in sandboxes: only a directory no one else
	// could have written to is reused.
	if err := safedir.Ensure(cacheDir, 0o755); err != nil {
		return "", err
	}
	dir := filepath.Join(cacheDir, "rootfs-"+id)
	if err := safedir.Check(dir); err == nil {
		if st, err := os.Stat(filepath.Join(dir, "usr")); err == nil && st.IsDir() {
			return dir, nil
		}
	}
	if progress != nil {
		fmt.Fprintf(progress, "warden: extracting the root filesystem of %s for bubblewrap sandboxes (once per image)\n", image)
	}
	created, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Cmd: []string{"true"}, Labels: map[string]string{"org.warden.managed": "1", "org.warden.export": "1"}},
	})
	if err != nil {
		return "", fmt.Errorf("creating a container of %s to export: %w", image, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		_, _ = api.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true})
	}()
	rc, err := api.ContainerExport(ctx, created.ID, client.ContainerExportOptions{})
	if err != nil {
		return "", fmt.Errorf("exporting %s: %w", image, err)
	}
	defer rc.Close()
	tmp, err := os.MkdirTemp(cacheDir, ".rootfs-"+id+"-")
	if err != nil {
		return "", err
	}
	if err := untar(rc, tmp); err != nil {
		_ = removeTree(tmp)
		return "", fmt.Errorf("extracting %s: %w", image, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = removeTree(tmp)
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = removeTree(tmp)
		if st, serr := os.Stat(filepath.Join(dir, "usr")); serr == nil && st.IsDir() && safedir.Check(dir) == nil {
			return dir, nil // another process extracted it meanwhile
		}
		return "", err
	}
	return dir, nil
}

// untar extracts a container export into dir: regular files, directories,
// symbolic and hard links, with their modes, times and (as root) owners.
// Device files, FIFOs and anything that would land outside dir are
// skipped; set-ID bits are dropped.
func untar(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirs []dirTime
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(strings.TrimPrefix(h.Name, "/"))
		if name == "." || name == ".." || strings.HasPrefix(name, "../") {
			continue
		}
		// Set-user-ID and set-group-ID bits are dropped: sandboxes run with
		// no_new_privs anyway, and on the host a second copy of su or
		// passwd owned by root must not be executable with privileges.
		mode := os.FileMode(h.Mode).Perm()
		if h.Mode&0o1000 != 0 {
			mode |= os.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{name, h.ModTime})
		case tar.TypeReg:
			if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			f, err := root.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			_ = root.Remove(name)
			if err := root.Symlink(h.Linkname, name); err != nil {
				return err
			}
		case tar.TypeLink:
			target := filepath.Clean(strings.TrimPrefix(h.Linkname, "/"))
			if target == ".." || strings.HasPrefix(target, "../") {
				continue
			}
			_ = root.Remove(name)
			if err := root.Link(target, name); err != nil {
				return err
			}
		default:
			continue // devices, FIFOs: the sandbox gets its own /dev
		}
		if h.Typeflag != tar.TypeSymlink && h.Typeflag != tar.TypeLink {
			if os.Geteuid() == 0 {
				if err := root.Lchown(name, h.Uid, h.Gid); err != nil {
					return err
				}
			}
			// After chown, which clears set-id bits.
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
			if h.Typeflag == tar.TypeReg {
				_ = root.Chtimes(name, h.ModTime, h.ModTime)
			}
		} else if os.Geteuid() == 0 {
			_ = root.Lchown(name, h.Uid, h.Gid)
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = root.Chtimes(dirs[i].name, dirs[i].t, dirs[i].t)
	}
	return nil
}
