package provider

import (
	"fmt"

	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/provider/docker"
)

// Remedies for a Docker daemon that is not usable.
const (
	remedyDockerHost    = "fix the Docker host setting (DOCKER_HOST or the configured host): it must look like unix:///var/run/docker.sock or tcp://HOST:2375"
	remedyDockerGroup   = "add your user to the docker group: sudo usermod -aG docker $USER, then log in again (or run warden as root)"
	remedyDockerInstall = "install Docker (Debian/Ubuntu, as root): apt-get install -y docker.io"
	remedyDockerStartSd = "start the Docker daemon (as root): systemctl start docker"
	remedyDockerStartBg = "start the Docker daemon (as root; this system does not run systemd): dockerd &"
	remedyDockerHungSd  = "the daemon accepts connections but does not answer: inspect it with systemctl status docker and journalctl -u docker, then restart it (as root): systemctl restart docker"
	remedyDockerHungBg  = "the daemon accepts connections but does not answer: check its log, then restart it (as root; this system does not run systemd): stop dockerd and run dockerd &"
)

// DockerRemedies lists what the operator should do about a failed Docker
// probe: nothing when Docker is available or the probe was interrupted.
// `warden doctor` prints them, and a selection that requires Docker says
// them in its error.
func DockerRemedies(p docker.Probe) []string {
	if p.Available || p.Failure == docker.FailureInterrupted {
		return nil
	}
	switch {
	case p.Failure == docker.FailureHostSetting:
		return []string{remedyDockerHost}
	case p.Failure == docker.FailureTooOld:
		return []string{fmt.Sprintf("upgrade Docker Engine: it speaks API %s and warden needs at least %s (Docker 19.03 or later); on Debian/Ubuntu, as root: apt-get install -y docker.io", p.APIVersion, client.MinAPIVersion)}
	case p.Socket == docker.SocketDenied:
		return []string{remedyDockerGroup}
	case p.Socket == docker.SocketMissing || p.Socket == docker.SocketRefused:
		var r []string
		if !p.Dockerd {
			r = append(r, remedyDockerInstall)
		}
		if p.Systemd {
			return append(r, remedyDockerStartSd)
		}
		return append(r, remedyDockerStartBg)
	case p.Socket == docker.SocketNotSocket:
		return []string{"the daemon address is not a socket: point DOCKER_HOST (or the configured host) at the daemon's socket, or remove the file and restart the daemon"}
	case p.Socket == docker.SocketOK && p.Failure == docker.FailureUnreachable:
		if p.Systemd {
			return []string{remedyDockerHungSd}
		}
		return []string{remedyDockerHungBg}
	case p.Socket == docker.SocketNotUnix && p.Failure == docker.FailureUnreachable:
		return []string{fmt.Sprintf("check that a Docker daemon listens at %s and that DOCKER_HOST (or the configured host) is right", p.Host)}
	default:
		return []string{fmt.Sprintf("check the Docker daemon at %s: %s", p.Host, p.Error)}
	}
}
