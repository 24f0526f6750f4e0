package main

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	mobyclient "github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/session"
)

// dockerState answers "is Docker up" for /sandbox/status and
// /sandbox/docker-info, whichever provider the service uses: a live query
// of the daemon, cached so that status polling stays cheap (2 s after an
// answer, 10 s after a failure, which may have cost a timeout).
type dockerState struct {
	// client reaches the daemon; nil when Docker is not to be probed
	// (SANDBOX__DOCKER_AUTO_DETECT=false and another provider selected).
	client  *mobyclient.Client
	mode    session.Mode
	timeout time.Duration
	// why is the message when client is nil.
	why string

	mu      sync.Mutex
	checked time.Time
	info    api.DockerInfo
}

func (d *dockerState) get(ctx context.Context) api.DockerInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	ttl := 2 * time.Second
	if !d.info.Available {
		ttl = 10 * time.Second
	}
	if !d.checked.IsZero() && time.Since(d.checked) < ttl {
		return d.info
	}
	d.info = dockerInfo(ctx, d.client, d.mode, d.timeout, d.why)
	d.checked = time.Now()
	return d.info
}

// dockerAPIStatus says a daemon's status in the words of
// /sandbox/docker-info (the Agent Platform's): a daemon that is
// docker.StatusAvailable is "connected", whatever mode the service runs
// in; one that does not answer is reported in the words of the mode:
// "mock_mode" when the service runs unisolated code, "no_manager" when
// sandboxes are disabled, "unavailable" otherwise.
func dockerAPIStatus(s docker.Status, mode session.Mode) string {
	switch s {
	case docker.StatusAvailable:
		return api.DockerConnected
	case docker.StatusError:
		return api.DockerError
	}
	switch mode {
	case session.ModeMock:
		return api.DockerMockMode
	case session.ModeDisabled:
		return api.DockerNoManager
	}
	return api.DockerUnavailable
}

// dockerInfo asks the daemon behind c for the /sandbox/docker-info
// answer (see dockerAPIStatus).
func dockerInfo(ctx context.Context, c *mobyclient.Client, mode session.Mode, timeout time.Duration, why string) api.DockerInfo {
	down := func(msg string) api.DockerInfo {
		info := api.DockerInfo{Status: dockerAPIStatus(docker.StatusUnavailable, mode)}
		switch mode {
		case session.ModeMock:
			info.Message = "Running in mock mode - Docker not available: " + msg
		case session.ModeDisabled:
			info.Message = "No sandbox manager available; Docker daemon is not available: " + msg
		default:
			info.Message = "Docker daemon is not available: " + msg
		}
		if c != nil {
			info.Host = c.DaemonHost()
		}
		return info
	}
	if c == nil {
		return down(why)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ping, err := c.Ping(ctx, mobyclient.PingOptions{})
	if err != nil {
		return down(err.Error())
	}
	res, err := c.Info(ctx, mobyclient.InfoOptions{})
	if err != nil {
		return api.DockerInfo{Status: dockerAPIStatus(docker.StatusError, mode), Host: c.DaemonHost(),
			Message: "Docker daemon answers, but its information could not be read: " + err.Error()}
	}
	in := res.Info
	return api.DockerInfo{
		Available:         true,
		Status:            dockerAPIStatus(docker.StatusAvailable, mode),
		Version:           in.ServerVersion,
		APIVersion:        ping.APIVersion,
		Message:           "Docker daemon is running",
		ContainersRunning: &in.ContainersRunning,
		ImagesCount:       &in.Images,
		Host:              c.DaemonHost(),
		OS:                in.OSType,
		Arch:              in.Architecture,
		KernelVersion:     in.KernelVersion,
		Runtimes:          slices.Sorted(maps.Keys(in.Runtimes)),
		DefaultRuntime:    in.DefaultRuntime,
	}
}

// newDockerState prepares the Docker queries of a service running p: the
// provider's own client when it is Docker's, else a client of its own
// unless detection is switched off.
func newDockerState(sel provider.Selection, cfg config.Config) (*dockerState, func()) {
	d := &dockerState{mode: sel.Mode, timeout: cfg.Sandbox.DockerConnectionTimeout}
	if dp, ok := sel.Provider.(*docker.Provider); ok {
		d.client = dp.Client()
		return d, func() {}
	}
	if !cfg.Sandbox.DockerAutoDetect {
		d.why = "not probed: SANDBOX__DOCKER_AUTO_DETECT is false"
		return d, func() {}
	}
	c, err := docker.NewClient(cfg.Sandbox.DockerHost)
	if err != nil {
		d.why = "bad Docker host setting: " + err.Error()
		return d, func() {}
	}
	d.client = c
	return d, func() { _ = c.Close() }
}
