package docker

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client/pkg/versions"
)

// TestDetectEngine probes the real daemon (DOCKER_HOST or the default
// socket). It skips when none is reachable, unless WARDEN_REQUIRE_DOCKER=1.
func TestDetectEngine(t *testing.T) {
	t.Parallel()
	p := Detect(t.Context(), DetectOptions{Retries: 2, Timeout: 30 * time.Second}) // generous: docker info is slow while other tests load the daemon
	if !p.Available {
		if os.Getenv("WARDEN_REQUIRE_DOCKER") == "1" {
			t.Fatalf("Detect() = unavailable with WARDEN_REQUIRE_DOCKER=1: %s: %+v", p.Error, p.Checks)
		}
		t.Skipf("no Docker daemon reachable (%s): %s", p.Status, p.Error)
	}
	if p.Status != "available" || p.Attempts < 1 || p.Error != "" {
		t.Errorf("Detect() = status %q, attempts %d, error %q, want available, >=1, none", p.Status, p.Attempts, p.Error)
	}
	for name, got := range map[string]string{
		"Version": p.Version, "APIVersion": p.APIVersion, "ClientAPIVersion": p.ClientAPIVersion,
		"MinAPIVersion": p.MinAPIVersion, "OS": p.OS, "Arch": p.Arch, "KernelVersion": p.KernelVersion,
		"CgroupDriver": p.CgroupDriver, "DefaultRuntime": p.DefaultRuntime,
	} {
		if got == "" {
			t.Errorf("Detect().%s = empty, want a value", name)
		}
	}
	if len(p.Runtimes) == 0 {
		t.Errorf("Detect().Runtimes = empty, want at least one")
	}
	if !versions.GreaterThanOrEqualTo(p.APIVersion, "1.40") {
		t.Errorf("Detect().APIVersion = %s, want >= 1.40", p.APIVersion)
	}
	if versions.GreaterThan(p.ClientAPIVersion, p.APIVersion) {
		t.Errorf("Detect().ClientAPIVersion = %s, want <= APIVersion %s", p.ClientAPIVersion, p.APIVersion)
	}
	detectTestCheckNames(t, p)
	for _, c := range p.Checks[1:] { // the CLI is optional
		if !c.OK {
			t.Errorf("Detect() check %s = ✗ %s, want ✓", c.Name, c.Detail)
		}
	}
	if d := p.Checks[2]; !d.OK || !strings.Contains(p.Checks[3].Detail, p.Version) {
		t.Errorf("Detect() checks = %+v, want a passed daemon check and the version %s", p.Checks, p.Version)
	}
}

// TestDetectUnreachable covers daemons that cannot be used, without an engine.
func TestDetectUnreachable(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name        string
		host        func(t *testing.T) string
		retries     int
		wantStatus  Status
		wantSocket  string // substring of the socket check's detail
		wantSockOK  bool
		wantDaemon  string // substring of the daemon check's detail
		wantState   SocketState
		wantFailure Failure
		minDuration time.Duration
	}{
		{
			name:        "missing unix socket",
			host:        func(t *testing.T) string { return "unix://" + filepath.Join(t.TempDir(), "missing.sock") },
			retries:     2,
			wantStatus:  "unavailable",
			wantSocket:  "missing.sock does not exist",
			wantDaemon:  "after 3 attempts",
			wantState:   SocketMissing,
			wantFailure: FailureUnreachable,
		},
		{
			name:        "unix socket that never answers",
			host:        func(t *testing.T) string { return "unix://" + detectTestSilentListener(t, "unix") },
			retries:     2,
			wantStatus:  "unavailable",
			wantSocket:  "accepts connections",
			wantSockOK:  true,
			wantDaemon:  "no answer within 300ms",
			wantState:   SocketOK,
			wantFailure: FailureUnreachable,
			minDuration: 3 * timeout,
		},
		{
			name:        "tcp host that never answers",
			host:        func(t *testing.T) string { return "tcp://" + detectTestSilentListener(t, "tcp") },
			retries:     1,
			wantStatus:  "unavailable",
			wantSocket:  "is not a unix socket",
			wantSockOK:  true,
			wantDaemon:  "no answer within 300ms",
			wantState:   SocketNotUnix,
			wantFailure: FailureUnreachable,
			minDuration: 2 * timeout,
		},
		{
			name:        "stale socket",
			host:        func(t *testing.T) string { return "unix://" + detectTestStaleSocket(t) },
			retries:     1,
			wantStatus:  "unavailable",
			wantSocket:  "nothing listens on it",
			wantDaemon:  "after 2 attempts",
			wantState:   SocketRefused,
			wantFailure: FailureUnreachable,
		},
		{
			name: "regular file instead of a socket",
			host: func(t *testing.T) string {
				path := filepath.Join(t.TempDir(), "file.sock")
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return "unix://" + path
			},
			retries:    -1,
			wantStatus: "unavailable",
			wantSocket: "is not a socket",
			wantDaemon: "after 1 attempt ",
			wantState:  SocketNotSocket,
		},
		{
			name:        "unparsable host",
			host:        func(*testing.T) string { return "not-a-url" },
			retries:     2,
			wantStatus:  "error",
			wantSocket:  "not checked",
			wantDaemon:  "unable to parse docker host",
			wantFailure: FailureHostSetting,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := DetectOptions{Host: tt.host(t), Timeout: timeout, Retries: tt.retries, Backoff: 10 * time.Millisecond}
			p := Detect(t.Context(), opts)

			wantAttempts := max(tt.retries, 0) + 1
			if tt.wantStatus == "error" {
				wantAttempts = 0
			}
			if p.Available || p.Status != tt.wantStatus || p.Attempts != wantAttempts {
				t.Errorf("Detect(%+v) = available %v, status %q, attempts %d, want false, %q, %d",
					opts, p.Available, p.Status, p.Attempts, tt.wantStatus, wantAttempts)
			}
			if p.Error == "" {
				t.Errorf("Detect(%+v).Error = empty, want the last error", opts)
			}
			detectTestCheckNames(t, p)
			if sock := p.Checks[1]; sock.OK != tt.wantSockOK || !strings.Contains(sock.Detail, tt.wantSocket) {
				t.Errorf("Detect(%+v) socket check = %+v, want ok %v and %q", opts, sock, tt.wantSockOK, tt.wantSocket)
			}
			if d := p.Checks[2]; d.OK || !strings.Contains(d.Detail, tt.wantDaemon) {
				t.Errorf("Detect(%+v) daemon check = %+v, want ✗ and %q", opts, d, tt.wantDaemon)
			}
			if p.Checks[3].OK {
				t.Errorf("Detect(%+v) versions check = ✓, want ✗", opts)
			}
			if (tt.wantFailure != FailureNone && p.Failure != tt.wantFailure) || p.Socket != tt.wantState {
				t.Errorf("Detect(%+v) = failure %v, socket %v, want %v, %v", opts, p.Failure, p.Socket, tt.wantFailure, tt.wantState)
			}
			// Every attempt waits at most Timeout: the total is bounded by the
			// attempts, the backoff and some scheduling slack.
			maxDuration := time.Duration(wantAttempts)*timeout + 1500*time.Millisecond
			if p.Elapsed < tt.minDuration || p.Elapsed > maxDuration {
				t.Errorf("Detect(%+v).Elapsed = %v, want between %v and %v", opts, p.Elapsed, tt.minDuration, maxDuration)
			}
		})
	}
}

// TestDetectFakeDaemon runs Detect against a minimal Engine API served on a
// unix socket, to check the success path and version parsing without Docker.
func TestDetectFakeDaemon(t *testing.T) {
	t.Parallel()
	const info = `{"ServerVersion":"28.0.1","KernelVersion":"6.1.0-test","OperatingSystem":"Debian GNU/Linux 12 (bookworm)",
		"OSType":"linux","Architecture":"x86_64","CgroupDriver":"systemd","CgroupVersion":"2",
		"Runtimes":{"runsc":{"path":"/usr/bin/runsc"},"runc":{"path":"runc"}},"DefaultRuntime":"runc",
		"InitBinary":"docker-init","SecurityOptions":["name=seccomp,profile=builtin","name=apparmor","name=rootless","name=cgroupns"],
		"Warnings":["WARNING: test warning"]}`
	const version = `{"Version":"28.0.1","ApiVersion":"1.48","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}`

	tests := []struct {
		name        string
		pingAPI     string
		wantStatus  Status
		want        Probe // compared on the fields set below
		wantFailure Failure
	}{
		{
			name:       "current engine",
			pingAPI:    "1.48",
			wantStatus: "available",
			want: Probe{
				Available: true, Version: "28.0.1", APIVersion: "1.48", ClientAPIVersion: "1.48", MinAPIVersion: "1.24",
				OS: "linux", Arch: "amd64", KernelVersion: "6.1.0-test", CgroupVersion: "2", CgroupDriver: "systemd",
				Runtimes: []string{"runc", "runsc"}, DefaultRuntime: "runc", InitBinary: "docker-init",
				Seccomp: true, AppArmor: true, Rootless: true, Attempts: 1,
			},
		},
		{
			name:        "engine too old",
			pingAPI:     "1.24",
			wantStatus:  "error",
			want:        Probe{APIVersion: "1.24", Attempts: 1}, // too old is final: no retries
			wantFailure: FailureTooOld,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mux := http.NewServeMux()
			mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Api-Version", tt.pingAPI)
				w.Header().Set("Ostype", "linux")
				_, _ = w.Write([]byte("OK"))
			})
			mux.HandleFunc("GET /{v}/version", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(version)) })
			mux.HandleFunc("GET /{v}/info", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(info)) })
			host := "unix://" + detectTestServe(t, mux)

			opts := DetectOptions{Host: host, Timeout: 2 * time.Second, Retries: 3, Backoff: 10 * time.Millisecond}
			p := Detect(t.Context(), opts)

			got := Probe{
				Available: p.Available, Version: p.Version, APIVersion: p.APIVersion, ClientAPIVersion: p.ClientAPIVersion,
				MinAPIVersion: p.MinAPIVersion, OS: p.OS, Arch: p.Arch, KernelVersion: p.KernelVersion,
				CgroupVersion: p.CgroupVersion, CgroupDriver: p.CgroupDriver, Runtimes: p.Runtimes,
				DefaultRuntime: p.DefaultRuntime, InitBinary: p.InitBinary, Seccomp: p.Seccomp, AppArmor: p.AppArmor,
				UserNS: p.UserNS, Rootless: p.Rootless, Attempts: p.Attempts,
			}
			gotJSON, _ := json.Marshal(got)
			wantJSON, _ := json.Marshal(tt.want)
			if p.Status != tt.wantStatus || string(gotJSON) != string(wantJSON) {
				t.Errorf("Detect(%+v) = status %q, %s, want %q, %s", opts, p.Status, gotJSON, tt.wantStatus, wantJSON)
			}
			detectTestCheckNames(t, p)
			if p.Failure != tt.wantFailure {
				t.Errorf("Detect(%+v).Failure = %v, want %v", opts, p.Failure, tt.wantFailure)
			}
			if tt.wantFailure == FailureNone {
				if p.Error != "" {
					t.Errorf("Detect(%+v).Error = %q, want none", opts, p.Error)
				}
				if v := p.Checks[3]; !v.OK || !strings.Contains(v.Detail, "engine 28.0.1, API 1.48 (min 1.24, client 1.48)") ||
					!strings.Contains(v.Detail, "seccomp(profile=builtin) apparmor rootless cgroupns") ||
					!slices.Contains(p.Warnings, "WARNING: test warning") {
					t.Errorf("Detect() versions check = %+v, warnings %q, want the versions line, security options and warning", v, p.Warnings)
				}
			}
		})
	}
}

// TestDetectCancel checks that cancelling ctx stops Detect at once, whether
// it is waiting between attempts or inside one.
func TestDetectCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		host         func(t *testing.T) string
		cancelAfter  time.Duration // < 0: cancelled before Detect starts
		wantAttempts int
	}{
		{
			name:         "before the first attempt",
			host:         func(t *testing.T) string { return "unix://" + filepath.Join(t.TempDir(), "missing.sock") },
			cancelAfter:  -1,
			wantAttempts: 0,
		},
		{
			name: "during backoff",
			host: func(t *testing.T) string { return "unix://" + filepath.Join(t.TempDir(), "missing.sock") },
			// Long enough for the first attempt (and `docker --version`
			// before it) on a loaded machine; the backoff is a minute.
			cancelAfter:  2 * time.Second,
			wantAttempts: 1,
		},
		{
			name:         "during an attempt",
			host:         func(t *testing.T) string { return "unix://" + detectTestSilentListener(t, "unix") },
			cancelAfter:  2 * time.Second,
			wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			if tt.cancelAfter < 0 {
				cancel()
			} else {
				time.AfterFunc(tt.cancelAfter, cancel)
			}
			// Without the cancellation this would take minutes.
			opts := DetectOptions{Host: tt.host(t), Timeout: time.Minute, Retries: 10, Backoff: time.Minute}
			start := time.Now()
			p := Detect(ctx, opts)
			elapsed := time.Since(start)

			if p.Available || p.Status != "error" || p.Attempts != tt.wantAttempts {
				t.Errorf("Detect(%+v) = available %v, status %q, attempts %d, want false, error, %d",
					opts, p.Available, p.Status, p.Attempts, tt.wantAttempts)
			}
			if !strings.Contains(p.Error, context.Canceled.Error()) {
				t.Errorf("Detect(%+v).Error = %q, want it to mention %q", opts, p.Error, context.Canceled)
			}
			if p.Failure != FailureInterrupted {
				t.Errorf("Detect(%+v).Failure = %v, want FailureInterrupted (no advice after cancellation)", opts, p.Failure)
			}
			// Generous: the first attempt also runs `docker --version`, slow under
			// load; without cancellation this would take minutes.
			if limit := max(tt.cancelAfter, 0) + 10*time.Second; elapsed > limit {
				t.Errorf("Detect(%+v) took %v, want under %v", opts, elapsed, limit)
			}
		})
	}
}

// TestDetectSocketPermission checks the EACCES diagnosis. Root
// bypasses file permissions, so it only runs as an unprivileged user.
func TestDetectSocketPermission(t *testing.T) {
	t.Parallel()
	if os.Geteuid() == 0 {
		t.Skip("running as root, which may connect to any socket regardless of its mode; run as an unprivileged user to cover EACCES")
	}
	path := detectTestSilentListener(t, "unix")
	if err := os.Chmod(path, 0); err != nil {
		t.Fatal(err)
	}
	opts := DetectOptions{Host: "unix://" + path, Timeout: 300 * time.Millisecond, Retries: 1, Backoff: 10 * time.Millisecond}
	p := Detect(t.Context(), opts)
	if p.Available || p.Status != "unavailable" || p.Attempts != 2 {
		t.Errorf("Detect(%+v) = available %v, status %q, attempts %d, want false, unavailable, 2", opts, p.Available, p.Status, p.Attempts)
	}
	detectTestCheckNames(t, p)
	if sock := p.Checks[1]; sock.OK || !strings.Contains(sock.Detail, "permission denied") {
		t.Errorf("Detect(%+v) socket check = %+v, want ✗ and permission denied", opts, sock)
	}
	if p.Socket != SocketDenied {
		t.Errorf("Detect(%+v).Socket = %v, want SocketDenied", opts, p.Socket)
	}
}

// TestDetectHostFromEnv checks that an empty Host means DOCKER_HOST. It sets
// the environment, so it cannot run in parallel.
func TestDetectHostFromEnv(t *testing.T) {
	host := "unix://" + filepath.Join(t.TempDir(), "env.sock")
	t.Setenv("DOCKER_HOST", host)
	p := Detect(t.Context(), DetectOptions{Retries: -1, Timeout: 300 * time.Millisecond})
	if p.Host != host || p.Attempts != 1 || p.Status != "unavailable" {
		t.Errorf("Detect({}) with DOCKER_HOST=%s = host %q, attempts %d, status %q, want %q, 1, unavailable",
			host, p.Host, p.Attempts, p.Status, host)
	}
}

// TestDetectCLI runs detectCLI against stand-in docker binaries. It sets
// PATH, so it cannot run in parallel.
func TestDetectCLI(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name     string
		script   string // "" means no docker on PATH
		wantOK   bool
		wantText string
	}{
		{"missing", "", false, "not found on PATH (optional"},
		{"works", "echo 'Docker version 99.0.0, build test'", true, "Docker version 99.0.0, build test"},
		{"fails", "echo 'boom' >&2; exit 3", false, "docker --version failed: exit status 3: boom"},
		// The shell's child keeps the output pipe open after the shell is
		// killed: WaitDelay must still bound the wait. The orphaned sleep
		// is short so the test leaves nothing running for long.
		{"hangs", "/bin/sleep 3; echo late", false, "did not finish within 300ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.script != "" {
				if err := os.WriteFile(filepath.Join(dir, "docker"), []byte("#!/bin/sh\n"+tt.script+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("PATH", dir)
			start := time.Now()
			got := detectCLI(t.Context(), timeout)
			elapsed := time.Since(start)
			if got.Name != "docker_cli" || got.OK != tt.wantOK || !strings.Contains(got.Detail, tt.wantText) {
				t.Errorf("detectCLI() = %+v, want ok %v and %q", got, tt.wantOK, tt.wantText)
			}
			if limit := timeout + detectCLIWaitDelay + time.Second; elapsed > limit {
				t.Errorf("detectCLI() took %v, want under %v", elapsed, limit)
			}
		})
	}
}

func TestDetectOptionsDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want DetectOptions
	}{
		{DetectOptions{}, DetectOptions{Timeout: 5 * time.Second, Retries: 3, Backoff: 500 * time.Millisecond}},
		{DetectOptions{Timeout: -1, Retries: -1, Backoff: -1}, DetectOptions{Timeout: 5 * time.Second, Retries: 0, Backoff: 0}},
		{DetectOptions{Host: "tcp://h:1", Timeout: time.Second, Retries: 10, Backoff: time.Millisecond},
			DetectOptions{Host: "tcp://h:1", Timeout: time.Second, Retries: 10, Backoff: time.Millisecond}},
	}
	for _, tt := range tests {
		if got := tt.in.withDefaults(); got != tt.want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestDetectBackoff(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		base time.Duration
		n    int
		want time.Duration
	}{
		{500 * ms, 1, 500 * ms},
		{500 * ms, 2, time.Second},
		{500 * ms, 3, 2 * time.Second},
		{500 * ms, 4, 4 * time.Second},
		{500 * ms, 5, 5 * time.Second},
		{500 * ms, 1000, 5 * time.Second},
		{0, 3, 0},
		{8 * time.Second, 3, 8 * time.Second}, // a base above the cap is kept
	}
	for _, tt := range tests {
		if got := detectBackoff(tt.base, tt.n); got != tt.want {
			t.Errorf("detectBackoff(%v, %d) = %v, want %v", tt.base, tt.n, got, tt.want)
		}
	}
}

func TestDetectLimitedBuffer(t *testing.T) {
	t.Parallel()
	b := &detectLimitedBuffer{max: 4}
	for _, s := range []string{"ab", "cdef", "gh"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Errorf("Write(%q) = %d, %v, want %d, nil", s, n, err, len(s))
		}
	}
	if got := b.buf.String(); got != "abcd" {
		t.Errorf("detectLimitedBuffer after writes = %q, want %q", got, "abcd")
	}
}

// detectTestCheckNames fails unless p reports the four checks in order.
func detectTestCheckNames(t *testing.T, p Probe) {
	t.Helper()
	want := []string{"docker_cli", "socket", "daemon", "versions"}
	var got []string
	for _, c := range p.Checks {
		got = append(got, c.Name)
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Detect().Checks names = %q, want %q", got, want)
	}
}

// detectTestSilentListener listens on network ("unix" or "tcp"), accepts
// connections and never answers them. It returns the socket path or the
// host:port. Everything is closed when the test ends.
func detectTestSilentListener(t *testing.T, network string) string {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "silent.sock")
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return // the listener was closed
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// detectTestStaleSocket leaves a socket file behind with nobody listening,
// as a daemon that died without cleaning up does.
func detectTestStaleSocket(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stale.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// detectTestServe serves h on a unix socket until the test ends and returns
// the socket path.
func detectTestServe(t *testing.T, h http.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serving fake daemon: %v", err)
		}
	})
	return path
}
