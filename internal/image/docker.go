package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

var (
	// errPullTimeout is the cause recorded when the registry stays silent.
	errPullTimeout = errors.New("registry did not answer in time")
	// errImportEnded stops the rootfs tar writer once the import is over.
	errImportEnded = errors.New("import ended")
)

// pull pulls ref, giving up if the registry has not started answering within
// timeout: without a registry (air-gapped hosts) the daemon may wait on DNS
// or TCP for much longer. Once data flows, only ctx bounds the pull.
func pull(ctx context.Context, api API, ref string, timeout time.Duration, w io.Writer) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := time.AfterFunc(timeout, func() { cancel(fmt.Errorf("%w (%s)", errPullTimeout, timeout)) })
	defer timer.Stop()

	resp, err := api.ImagePull(pctx, ref, client.ImagePullOptions{})
	if err != nil {
		return pullError(pctx, err)
	}
	defer resp.Close()
	if err := decodeStream(&firstRead{r: resp, f: func() { timer.Stop() }}, w); err != nil {
		return pullError(pctx, err)
	}
	return nil
}

// pullError prefers the timeout cause over the "context canceled" it causes.
func pullError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); errors.Is(cause, errPullTimeout) {
		return cause
	}
	return err
}

// firstRead calls f once, when the first bytes arrive.
type firstRead struct {
	r    io.Reader
	f    func()
	once sync.Once
}

func (fr *firstRead) Read(p []byte) (int, error) {
	n, err := fr.r.Read(p)
	if n > 0 {
		fr.once.Do(fr.f)
	}
	return n, err
}

// buildDockerfile builds dockerfile, alone in its build context, as o.Name
// with the classic builder (BuildKit needs buildx, which hosts may lack).
func buildDockerfile(ctx context.Context, api API, dockerfile string, o Options, w io.Writer) error {
	buildCtx, err := dockerfileContext(dockerfile)
	if err != nil {
		return fmt.Errorf("building image %s: %w", o.Name, err)
	}
	resp, err := api.ImageBuild(ctx, buildCtx, client.ImageBuildOptions{
		Tags:        []string{o.Name},
		Dockerfile:  "Dockerfile",
		NoCache:     o.NoCache,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("building image %s: %w", o.Name, err)
	}
	defer resp.Body.Close()
	layers := &layerTracker{w: w}
	if err := decodeStream(resp.Body, layers); err != nil {
		removeUntagged(ctx, api, layers.made)
		return fmt.Errorf("building image %s: %w", o.Name, err)
	}
	return nil
}

// dockerfileContext returns a tar build context holding only the Dockerfile.
func dockerfileContext(dockerfile string) (io.Reader, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := &tar.Header{
		Name:    "Dockerfile",
		Mode:    0o644,
		Size:    int64(len(dockerfile)),
		ModTime: time.Unix(0, 0),
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return nil, err
	}
	if _, err := io.WriteString(tw, dockerfile); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &buf, nil
}

// importTar streams the tar written by writeTar into the engine as image
// ref, with the given Dockerfile-style changes. writeTar runs in a goroutine
// owned by this call, which waits for it before returning.
func importTar(ctx context.Context, api API, ref string, changes []string, writeTar func(io.Writer) error, w io.Writer) error {
	pr, pw := io.Pipe()
	tarErr := make(chan error, 1)
	go func() {
		err := writeTar(pw)
		pw.CloseWithError(err)
		tarErr <- err
	}()

	err := func() error {
		resp, err := api.ImageImport(ctx, client.ImageImportSource{Source: pr, SourceName: "-"}, ref, client.ImageImportOptions{
			Changes: changes,
			Message: "imported by warden",
		})
		if err != nil {
			return err
		}
		defer resp.Close()
		return decodeStream(resp, w)
	}()
	// Unblock the writer if the engine stopped reading early.
	pr.CloseWithError(errImportEnded)
	if terr := <-tarErr; terr != nil && !errors.Is(terr, errImportEnded) {
		return fmt.Errorf("importing base image: writing rootfs tar: %w", terr)
	}
	if err != nil {
		return fmt.Errorf("importing base image: %w", err)
	}
	return nil
}
