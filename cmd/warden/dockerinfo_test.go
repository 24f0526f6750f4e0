package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	mobyclient "github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/session"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestDockerInfoTellsTheTruth asks the real engine: a daemon that answers
// is "connected" in every mode, with its version and counts (the defect
// was "available": false beside a running daemon when bubblewrap was
// selected); one that does not answer is described in the mode's words.
func TestDockerInfoTellsTheTruth(t *testing.T) {
	testutil.RequireDocker(t)
	t.Parallel()
	up, err := mobyclient.New(mobyclient.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	for _, mode := range []session.Mode{session.ModeBubblewrap, session.ModeDocker, session.ModeMock, session.ModeDisabled} {
		info := dockerInfo(t.Context(), up, mode, 5*time.Second, "")
		if !info.Available || info.Status != api.DockerConnected || info.Version == "" || info.APIVersion == "" ||
			info.ContainersRunning == nil || info.ImagesCount == nil || *info.ImagesCount < 1 || info.Message != "Docker daemon is running" {
			t.Errorf("mode %s, daemon up: %+v", mode, info)
		}
	}

	down, err := mobyclient.New(mobyclient.WithHost("unix://" + filepath.Join(t.TempDir(), "no.sock")))
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	for mode, want := range map[session.Mode]string{
		session.ModeBubblewrap: api.DockerUnavailable, session.ModeMock: api.DockerMockMode, session.ModeDisabled: api.DockerNoManager,
	} {
		info := dockerInfo(t.Context(), down, mode, 2*time.Second, "")
		if info.Available || info.Status != want || !strings.Contains(info.Message, "not available") {
			t.Errorf("mode %s, daemon down: %+v, want status %s", mode, info, want)
		}
	}
	if info := dockerInfo(t.Context(), nil, session.ModeBubblewrap, time.Second, "not probed: SANDBOX__DOCKER_AUTO_DETECT is false"); info.Available ||
		info.Status != api.DockerUnavailable || !strings.Contains(info.Message, "AUTO_DETECT") {
		t.Errorf("detection off: %+v", info)
	}
}
