package main

import (
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/docker"
)

func TestDockerReportText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    docker.Probe
		want []string
	}{
		{
			name: "unavailable",
			p: docker.Probe{
				Status: docker.StatusUnavailable, Attempts: 4, Elapsed: 1500 * time.Millisecond,
				Failure: docker.FailureUnreachable, Socket: docker.SocketMissing, Systemd: true, Dockerd: true,
				Checks: []docker.Check{
					{Name: "docker_cli", Detail: "docker CLI not found on PATH"},
					{Name: "socket", Detail: "socket /var/run/docker.sock does not exist"},
				},
			},
			want: []string{
				"Docker: unavailable after 4 attempts (1.5s)\n",
				"  ✗ docker_cli: docker CLI not found on PATH\n",
				"  ✗ socket: socket /var/run/docker.sock does not exist\n",
				"To fix:\n  - start the Docker daemon (as root): systemctl start docker\n",
			},
		},
		{
			name: "available",
			p: docker.Probe{
				Available: true, Status: docker.StatusAvailable, Host: "unix:///var/run/docker.sock", Version: "20.10.24", APIVersion: "1.41",
				Attempts: 1, Checks: []docker.Check{{Name: "daemon", OK: true, Detail: "answered"}}, Warnings: []string{"no swap limit"},
			},
			want: []string{
				"Docker: available: engine 20.10.24, API 1.41 at unix:///var/run/docker.sock (0s)\n",
				"  ✓ daemon: answered\n",
				"  ! daemon warning: no swap limit\n",
			},
		},
	}
	for _, tt := range tests {
		got := newDockerReport(&tt.p).text()
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: text() = %q, want it to contain %q", tt.name, got, w)
			}
		}
		if tt.p.Available && strings.Contains(got, "To fix") {
			t.Errorf("%s: text() = %q, want no remedies", tt.name, got)
		}
	}
}
