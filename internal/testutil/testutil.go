// Package testutil holds test helpers shared by Warden's packages: gates
// that skip a test when a backend is missing, with the reason, or fail it
// when the environment says the backend must be there (as CI does).
package testutil

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Required reports whether the environment variable name is set to 1,
// meaning that a missing backend is a test failure rather than a skip.
func Required(name string) bool { return os.Getenv(name) == "1" }

// skipOrFail skips t with reason, or fails it when env says the backend
// is required.
func skipOrFail(t testing.TB, env, reason string) {
	t.Helper()
	if Required(env) {
		t.Fatalf("%s, and %s=1 requires it", reason, env)
	}
	t.Skip(reason)
}

// RequireDocker skips t unless a Docker daemon answers on the default
// socket (or DOCKER_HOST). With WARDEN_REQUIRE_DOCKER=1 it fails instead.
func RequireDocker(t testing.TB) {
	t.Helper()
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		host = "unix:///var/run/docker.sock"
	}
	network, addr, ok := strings.Cut(host, "://")
	if !ok {
		skipOrFail(t, "WARDEN_REQUIRE_DOCKER", "unparsable DOCKER_HOST "+host)
		return
	}
	d := net.Dialer{Timeout: 2 * time.Second}
	c, err := d.DialContext(context.Background(), network, addr)
	if err != nil {
		skipOrFail(t, "WARDEN_REQUIRE_DOCKER", "no Docker daemon at "+host+": "+err.Error())
		return
	}
	c.Close()
}

// RequireBwrap skips t unless bubblewrap is installed. With
// WARDEN_REQUIRE_BWRAP=1 it fails instead.
func RequireBwrap(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("bwrap"); err != nil {
		skipOrFail(t, "WARDEN_REQUIRE_BWRAP", "bwrap is not installed")
	}
}

// RequireSlirp4netns skips t unless slirp4netns, which gives bubblewrap
// sandboxes their network, is installed. With WARDEN_REQUIRE_BWRAP=1 it
// fails instead.
func RequireSlirp4netns(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		skipOrFail(t, "WARDEN_REQUIRE_BWRAP", "slirp4netns is not installed")
	}
}

// RequireRoot skips t unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// Image is the runtime image integration tests use: WARDEN_TEST_IMAGE, or
// warden-runtime:latest.
func Image() string {
	if s := os.Getenv("WARDEN_TEST_IMAGE"); s != "" {
		return s
	}
	return "warden-runtime:latest"
}

// SharedDir returns a new temporary directory that other users may
// traverse and read (mode 0755, and its parent too): an unprivileged
// sandbox user, such as bubblewrap's host uid 1000 under a root test
// run, must be able to reach directories it binds. t.TempDir's own
// parent is private to the test's user.
func SharedDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	for _, p := range []string{filepath.Dir(d), d} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}
