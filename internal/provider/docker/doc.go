// Package docker is Warden's Docker provider: one long-lived, hardened
// container per sandbox, driven through the official Docker Engine Go SDK
// (never the docker CLI).
//
// Every container is created with the defaults of TinyAgent's
// DockerProvider, each enforced by the engine and verified from inside by
// this package's tests: code runs as uid 1000 with every capability
// dropped, no-new-privileges, Docker's default seccomp profile, a read-only
// root filesystem with a private writable /tmp (tmpfs) and a writable
// workspace, a pids limit, a memory limit without extra swap, a CPU limit,
// no network unless enabled, and an init process (docker-init) that reaps
// zombies. The container's own main process runs as nobody (65534), so
// sandboxed code, which runs as 1000, cannot signal it.
//
// Containers run under the daemon's default OCI runtime (runc), or the
// one Options.Runtime names (SANDBOX__DOCKER_RUNTIME), such as gVisor's
// runsc, checked against the daemon's list when the provider opens. Under
// gVisor everything above holds but for three things (see runtime.go and
// the README): Docker's seccomp profile is not applied inside (gVisor's
// kernel answers the system calls), the process limit is RLIMIT_NPROC
// kept by gVisor's kernel with a larger host pids limit for gVisor's own
// threads, and the memory limit holds for the whole sandbox, which ends
// when it goes past it.
//
// Executions go to Warden's in-sandbox agent (package agent), started with
// one `exec` whose stdin and stdout are hijacked: a trivial round trip
// costs 1 to 2 ms (see the README's benchmarks) instead of the 80 to 100 ms
// of an exec per call.
// Environment variables travel inside that channel, never in the container
// configuration or on a command line.
//
// Containers carry labels (org.warden.managed, org.warden.sandbox,
// org.warden.owner) so a new provider can find and remove those that a
// crashed or killed Warden process left behind, without touching the live
// sandboxes of another Warden process on the same host.
package docker
