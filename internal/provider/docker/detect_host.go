package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
)

// detectSocketResult is what detectSocket found.
type detectSocketResult struct {
	check Check
	state SocketState
	path  string
}

// detectSocket checks that a unix daemon socket exists and that this process
// may connect to it. Connecting (and closing at once) is the only reliable
// permission test: it is what the SDK will do, and access(2) ignores
// supplementary groups set up after login.
func detectSocket(ctx context.Context, host string, timeout time.Duration) detectSocketResult {
	r := detectSocketResult{check: Check{Name: detectCheckSocket}}
	u, err := client.ParseHostURL(host)
	if err != nil || u.Scheme != "unix" {
		r.state = SocketNotUnix
		r.check.OK = true
		r.check.Detail = fmt.Sprintf("%s is not a unix socket; the daemon check below tests it", host)
		return r
	}
	r.path = u.Host

	mode := "abstract socket"
	if !strings.HasPrefix(r.path, "@") {
		fi, err := os.Stat(r.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			r.state = SocketMissing
			r.check.Detail = fmt.Sprintf("socket %s does not exist", r.path)
			return r
		case errors.Is(err, fs.ErrPermission):
			r.state = SocketDenied
			r.check.Detail = fmt.Sprintf("socket %s cannot be reached as uid %d: a parent directory denies access", r.path, os.Geteuid())
			return r
		case err != nil:
			r.state = SocketOther
			r.check.Detail = fmt.Sprintf("socket %s: %v", r.path, err)
			return r
		case fi.Mode().Type() != fs.ModeSocket:
			r.state = SocketNotSocket
			r.check.Detail = fmt.Sprintf("%s exists but is not a socket (%v)", r.path, fi.Mode())
			return r
		}
		mode = fi.Mode().String()
	}

	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "unix", r.path)
	switch {
	case err == nil:
		_ = conn.Close()
		r.state = SocketOK
		r.check.OK = true
		r.check.Detail = fmt.Sprintf("socket %s (%s) accepts connections", r.path, mode)
	case errors.Is(err, fs.ErrPermission):
		r.state = SocketDenied
		r.check.Detail = fmt.Sprintf("socket %s (%s) exists but uid %d may not connect to it: permission denied", r.path, mode, os.Geteuid())
	case errors.Is(err, syscall.ECONNREFUSED):
		r.state = SocketRefused
		r.check.Detail = fmt.Sprintf("socket %s exists but nothing listens on it: the daemon is not running", r.path)
	default:
		r.state = SocketOther
		r.check.Detail = fmt.Sprintf("connecting to socket %s: %v", r.path, err)
	}
	return r
}

// detectCLI looks for the docker CLI and runs `docker --version`, bounded by
// timeout. The CLI is optional: warden talks to the Engine API directly.
func detectCLI(ctx context.Context, timeout time.Duration) Check {
	check := Check{Name: detectCheckCLI}
	path, err := exec.LookPath("docker")
	if err != nil {
		check.Detail = "docker CLI not found on PATH (optional: warden uses the Engine API directly)"
		return check
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// `docker --version` starts no children of its own, so killing the
	// process (the CommandContext default) is enough; WaitDelay stops a
	// wrapper script's leftover children from holding Wait on our pipe.
	//nolint:gosec // G204: the docker binary found on PATH, with a constant argument
	cmd := exec.CommandContext(cctx, path, "--version")
	// A fixed environment gives stable output; the CLI needs nothing from ours.
	cmd.Env = []string{"LC_ALL=C"}
	cmd.WaitDelay = detectCLIWaitDelay
	out := &detectLimitedBuffer{max: detectMaxCLIOutput}
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	first, _, _ := strings.Cut(strings.TrimSpace(out.buf.String()), "\n")
	switch {
	case err == nil:
		check.OK = true
		check.Detail = fmt.Sprintf("%s: %s", path, first)
	case errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		check.Detail = fmt.Sprintf("%s: docker --version did not finish within %v (optional: warden uses the Engine API directly)", path, timeout)
	default:
		check.Detail = fmt.Sprintf("%s: docker --version failed: %v", path, err)
		if first != "" {
			check.Detail += ": " + first
		}
	}
	return check
}

// detectLimitedBuffer keeps the first max bytes written to it and discards
// the rest, so a misbehaving binary cannot exhaust memory.
type detectLimitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *detectLimitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// hasSystemd reports whether the system was booted with systemd, using
// the same test as sd_booted(3).
func hasSystemd() bool {
	fi, err := os.Stat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// hasDockerd reports whether the daemon binary is installed. An
// unprivileged PATH often lacks /usr/sbin, so the usual places are tried too.
func hasDockerd() bool {
	if _, err := exec.LookPath("dockerd"); err == nil {
		return true
	}
	for _, p := range []string{"/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/local/bin/dockerd"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}
