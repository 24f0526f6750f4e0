package provider

import (
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/docker"
)

// TestDockerRemedies checks the advice derived from what
// docker.Detect found.
func TestDockerRemedies(t *testing.T) {
	t.Parallel()
	down := func(f docker.Failure, s docker.SocketState) docker.Probe {
		return docker.Probe{Status: docker.StatusUnavailable, Host: "tcp://10.0.0.5:2375", Error: "boom", Failure: f, Socket: s}
	}
	withHost := func(p docker.Probe, systemd, dockerd bool) docker.Probe {
		p.Systemd, p.Dockerd = systemd, dockerd
		return p
	}
	tests := []struct {
		name string
		p    docker.Probe
		want []string // substrings, one remedy each, in order; nil: no remedy
	}{
		{"available", docker.Probe{Available: true, Status: docker.StatusAvailable}, nil},
		{"interrupted", down(docker.FailureInterrupted, docker.SocketOK), nil},
		{"bad host", down(docker.FailureHostSetting, docker.SocketOK), []string{"fix the Docker host setting"}},
		{"too old", docker.Probe{Status: docker.StatusError, APIVersion: "1.24", Failure: docker.FailureTooOld}, []string{"upgrade Docker Engine: it speaks API 1.24"}},
		{"denied", down(docker.FailureUnreachable, docker.SocketDenied), []string{"add your user to the docker group: sudo usermod -aG docker $USER, then log in again"}},
		{"missing, systemd, installed", withHost(down(docker.FailureUnreachable, docker.SocketMissing), true, true), []string{"start the Docker daemon (as root): systemctl start docker"}},
		{"refused, no systemd, not installed", withHost(down(docker.FailureUnreachable, docker.SocketRefused), false, false), []string{"install Docker", "dockerd &"}},
		{"not a socket", down(docker.FailureUnreachable, docker.SocketNotSocket), []string{"is not a socket"}},
		{"hung, systemd", withHost(down(docker.FailureUnreachable, docker.SocketOK), true, true), []string{"does not answer: inspect it with systemctl status docker"}},
		{"hung, no systemd", down(docker.FailureUnreachable, docker.SocketOK), []string{"does not answer: check its log"}},
		{"tcp", down(docker.FailureUnreachable, docker.SocketNotUnix), []string{"check that a Docker daemon listens at tcp://10.0.0.5:2375"}},
		{"other", down(docker.FailureOther, docker.SocketOK), []string{"check the Docker daemon at tcp://10.0.0.5:2375: boom"}},
	}
	for _, tt := range tests {
		got := DockerRemedies(tt.p)
		if len(got) != len(tt.want) {
			t.Errorf("%s: DockerRemedies = %q, want %d containing %q", tt.name, got, len(tt.want), tt.want)
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%s: DockerRemedies[%d] = %q, want it to contain %q", tt.name, i, got[i], w)
			}
		}
	}
}
