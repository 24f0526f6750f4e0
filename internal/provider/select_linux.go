//go:build linux

package provider

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/image"
	"github.com/warden-sandbox/warden/internal/provider/bwrap"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// openBubblewrap opens the bubblewrap provider, which runs a trial
// sandbox first.
func (s *selector) openBubblewrap(ctx context.Context) (sandbox.Provider, string, error) {
	root, rootDesc, err := s.bwrapRoot(ctx)
	if err != nil {
		return nil, "", err
	}
	p, err := bwrap.New(ctx, bwrap.Options{WorkspaceRoot: s.cfg.WorkspaceRoot, RootFS: root, Log: s.log})
	if err != nil {
		return nil, "", err
	}
	return p, describeBwrap(p) + "; root: " + rootDesc, nil
}

// bwrapRoot resolves SANDBOX__BWRAP_ROOT: the root filesystem bubblewrap
// sandboxes get ("" for the host's) and a description of it. With auto,
// the default image may fall back to the host's /usr (as documented);
// an image asked for by name, even the default's name, never does: bubblewrap then cannot run, and
// the error says why.
func (s *selector) bwrapRoot(ctx context.Context) (string, string, error) {
	switch v := s.cfg.BwrapRoot; v {
	case "host":
		return "", "the host's /usr", nil
	case "", "auto":
	default:
		return v, v, nil
	}
	host := "the host's /usr"
	chosen := s.imageNamed || s.cfg.Image != config.Defaults().Sandbox.Image
	fallBack := func(why string) (string, string, error) {
		if chosen {
			return "", "", fmt.Errorf("cannot run image %s: %s (bubblewrap and the fork server run the root filesystem of the image, taken from Docker; set SANDBOX__BWRAP_ROOT=host to run on the host's /usr instead): %w",
				s.cfg.Image, why, sandbox.ErrUnavailable)
		}
		return "", host + " (" + why + ")", nil
	}
	if !s.cfg.DockerAutoDetect {
		return fallBack("SANDBOX__DOCKER_AUTO_DETECT is false, so the image was not looked for")
	}
	opts := []client.Opt{client.FromEnv}
	if s.cfg.DockerHost != "" {
		opts = append(opts, client.WithHost(s.cfg.DockerHost))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return fallBack("Docker: " + oneLine(err.Error()))
	}
	defer cli.Close()
	ictx, cancel := context.WithTimeout(ctx, s.cfg.DockerConnectionTimeout)
	_, err = cli.ImageInspect(ictx, s.cfg.Image)
	cancel()
	switch {
	case cerrdefs.IsNotFound(err):
		return fallBack("no image " + s.cfg.Image + " in Docker; build it with `warden image build` or load it with `docker load`")
	case err != nil:
		return fallBack("Docker could not be asked for it: " + oneLine(err.Error()))
	}
	dir, err := image.ExportRootFS(ctx, cli, s.cfg.Image, filepath.Join(s.cfg.WorkspaceRoot, ".rootfs"), &logWriter{s.log})
	if err != nil {
		if !chosen {
			s.log.Warn("bubblewrap sandboxes fall back to the host's /usr", "err", err)
		}
		return fallBack("extracting it failed: " + oneLine(err.Error()))
	}
	return dir, "the root filesystem of " + s.cfg.Image, nil
}

// logWriter turns progress lines into log records.
type logWriter struct{ log *slog.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(strings.TrimPrefix(string(p), "warden: ")))
	return len(p), nil
}

func (s *selector) probeBubblewrap(ctx context.Context) (bool, string) {
	p, err := bwrap.New(ctx, bwrap.Options{WorkspaceRoot: s.cfg.WorkspaceRoot, Log: s.log})
	if err != nil {
		return false, oneLine(err.Error())
	}
	_ = p.Close(context.WithoutCancel(ctx))
	return true, "available, not selected: " + describeBwrap(p)
}

// describeBwrap says what the bubblewrap provider enforces here.
func describeBwrap(p *bwrap.Provider) string {
	e := p.Enforcement()
	parts := []string{"Linux namespaces with bubblewrap"}
	if e.Seccomp {
		parts = append(parts, "seccomp")
	}
	if e.LandlockABI > 0 {
		parts = append(parts, fmt.Sprintf("Landlock ABI %d", e.LandlockABI))
	}
	parts = append(parts, "limits: "+string(e.Limits))
	if e.Network == "slirp4netns" {
		parts = append(parts, "network when enabled: slirp4netns")
	} else {
		parts = append(parts, "no network (slirp4netns is not installed)")
	}
	switch {
	case e.Init == "":
	case strings.Contains(filepath.Base(e.Init), bwrap.InitName) || strings.Contains(e.Init, "/.init/"):
		parts = append(parts, "sandbox init: "+bwrap.InitName)
	default:
		parts = append(parts, "sandbox init: this program (no "+bwrap.InitName+" beside it, so each sandbox start pays this program's start-up)")
	}
	s := strings.Join(parts, ", ")
	if e.Note != "" {
		s += " (" + e.Note + ")"
	}
	return s
}
