package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/security"
)

// Defaults for [DetectOptions]. They match the Agent Platform's documented
// docker_connection_timeout (5s) and docker_max_retries (3), which that
// system never applied.
const (
	detectDefaultTimeout = 5 * time.Second
	detectDefaultRetries = 3
	detectDefaultBackoff = 500 * time.Millisecond
	detectMaxBackoff     = 5 * time.Second

	// detectMaxCLIOutput bounds what is kept of `docker --version`.
	detectMaxCLIOutput = 1 << 10
	// detectCLIWaitDelay bounds how long Wait may block on inherited pipes
	// once `docker --version` has exited or been killed.
	detectCLIWaitDelay = 500 * time.Millisecond
)

// Status is the one word for what [Detect] found. The HTTP API says
// "connected" for [StatusAvailable] (the Agent Platform's word); that
// translation happens where the API answer is made, in cmd/warden.
type Status string

// Values of [Probe.Status].
const (
	// StatusAvailable: the daemon answered a ping with an API version
	// this client supports.
	StatusAvailable Status = "available"
	// StatusUnavailable: the daemon could not be reached.
	StatusUnavailable Status = "unavailable"
	// StatusError: the daemon could not be used for another reason (a
	// bad host setting, an API version that is too old, an unexpected
	// answer, or ctx ending before detection finished).
	StatusError Status = "error"
)

// Failure says what made the daemon check fail, for whoever advises the
// operator (warden doctor).
type Failure int

// Values of [Probe.Failure].
const (
	FailureNone        Failure = iota
	FailureHostSetting         // the host setting does not parse
	FailureUnreachable         // connection failed or no answer in time
	FailureTooOld              // the daemon's API is below client.MinAPIVersion
	FailureOther               // the daemon answered with an error
	FailureInterrupted         // ctx ended before detection finished
)

// SocketState says what the socket check found.
type SocketState int

// Values of [Probe.Socket].
const (
	SocketOK        SocketState = iota
	SocketNotUnix               // tcp or another transport: nothing to check
	SocketMissing               // no file at the path
	SocketDenied                // EACCES/EPERM on stat or connect
	SocketRefused               // a stale socket: nobody listens
	SocketNotSocket             // the path is not a socket
	SocketOther
)

// Names of the checks in [Probe.Checks], in the order they are reported.
const (
	detectCheckCLI      = "docker_cli"
	detectCheckSocket   = "socket"
	detectCheckDaemon   = "daemon"
	detectCheckVersions = "versions"
)

// DetectOptions configures [Detect]. The zero value probes the daemon named
// by DOCKER_HOST (or the platform's default socket) with the defaults below.
//
// Zero means "default" for every field, so a configuration that wants no
// retries must pass a negative Retries.
type DetectOptions struct {
	// Host is the daemon address, for example unix:///var/run/docker.sock or
	// tcp://10.0.0.5:2375. Empty means DOCKER_HOST, or the platform default
	// (unix:///var/run/docker.sock) when that is unset. DOCKER_API_VERSION,
	// DOCKER_CERT_PATH and DOCKER_TLS_VERIFY are honoured as the docker CLI
	// honours them.
	Host string
	// Timeout bounds each attempt to reach the daemon, each follow-up query
	// (version, info) and the run of `docker --version`. Zero or negative
	// means 5s.
	Timeout time.Duration
	// Retries is the number of attempts after the first, so Detect makes
	// Retries+1 attempts unless one succeeds, the daemon reports an API
	// version too old to use (retrying cannot change that), or ctx ends.
	// Zero means 3; a negative value means no retries (a single attempt).
	Retries int
	// Backoff is the wait before the second attempt; it doubles before each
	// further attempt, capped at 5s (or at Backoff itself when it is
	// larger). Zero means 500ms; a negative value means no wait.
	Backoff time.Duration
}

// Check is the outcome of one step of [Detect].
type Check struct {
	// Name identifies the step: docker_cli, socket, daemon or versions.
	Name string `json:"name"`
	// OK reports whether the step passed. The docker_cli step is
	// informational: the SDK does not need the CLI, so its failure never
	// makes Docker unavailable.
	OK bool `json:"ok"`
	// Detail is a one-line, human-readable account of what was found.
	Detail string `json:"detail"`
}

// Probe is the result of [Detect]: whether a Docker daemon is usable, what it
// runs, and, when it is not usable, why. Advice and rendering are the
// caller's (warden doctor).
type Probe struct {
	// Available reports whether the daemon answered a ping with an API
	// version this client supports.
	Available bool `json:"available"`
	// Status is "available", "unavailable" (the daemon could not be
	// reached) or "error" (it could not be used for another reason: a bad
	// host setting, an API version that is too old, an unexpected answer,
	// or ctx ending before detection finished).
	Status Status `json:"status"`
	// Host is the daemon address that was probed.
	Host string `json:"host,omitempty"`

	// Version is the engine version, for example 20.10.24.
	Version string `json:"version,omitempty"`
	// APIVersion is the highest API version the daemon supports.
	APIVersion string `json:"api_version,omitempty"`
	// ClientAPIVersion is the API version negotiated for this client.
	ClientAPIVersion string `json:"client_api_version,omitempty"`
	// MinAPIVersion is the lowest API version the daemon accepts.
	MinAPIVersion string `json:"min_api_version,omitempty"`
	// OS and Arch are the daemon's platform, for example linux and amd64.
	OS   string `json:"os,omitempty"`
	Arch string `json:"arch,omitempty"`
	// OperatingSystem is the host's distribution, for example
	// "Debian GNU/Linux 12 (bookworm)".
	OperatingSystem string `json:"operating_system,omitempty"`
	// KernelVersion is the daemon host's kernel release.
	KernelVersion string `json:"kernel_version,omitempty"`
	// CgroupVersion ("1" or "2") and CgroupDriver (cgroupfs or systemd).
	CgroupVersion string `json:"cgroup_version,omitempty"`
	CgroupDriver  string `json:"cgroup_driver,omitempty"`
	// Runtimes lists the OCI runtimes the daemon knows, sorted, for
	// example runc and runsc; DefaultRuntime is the one used when a
	// container names none.
	Runtimes       []string `json:"runtimes,omitempty"`
	DefaultRuntime string   `json:"default_runtime,omitempty"`
	// InitBinary is the init the daemon injects with --init.
	InitBinary string `json:"init_binary,omitempty"`
	// SecurityOptions are the daemon's security options as it reports
	// them, for example "name=seccomp,profile=builtin". The booleans below
	// summarise the ones that change how sandboxes are isolated.
	SecurityOptions []string `json:"security_options,omitempty"`
	Seccomp         bool     `json:"seccomp"`
	AppArmor        bool     `json:"apparmor"`
	UserNS          bool     `json:"userns"`
	Rootless        bool     `json:"rootless"`
	// Warnings are the daemon's own warnings from /info, such as missing
	// swap-limit support.
	Warnings []string `json:"warnings,omitempty"`

	// Attempts is the number of pings made.
	Attempts int `json:"attempts"`
	// Error is the last error met, empty when everything succeeded.
	Error string `json:"error,omitempty"`
	// Elapsed is how long Detect took, in nanoseconds in JSON.
	Elapsed time.Duration `json:"elapsed_ns"`

	// Checks holds the steps in order: docker_cli, socket, daemon, versions.
	Checks []Check `json:"checks"`

	// Failure and Socket classify what failed; Systemd and Dockerd say,
	// when the daemon is not available, whether the host boots with
	// systemd and has the daemon installed.
	Failure Failure     `json:"-"`
	Socket  SocketState `json:"-"`
	Systemd bool        `json:"-"`
	Dockerd bool        `json:"-"`
}

// Detect probes the Docker daemon described by opts and reports what it
// found. It never returns an error: failures are described in the Probe.
//
// It looks for the docker CLI (informational only), checks that a unix
// socket exists and can be connected to, pings the daemon with a timeout per
// attempt and retries with backoff, then reads the engine's version and
// configuration.
//
// When ctx ends, Detect stops at once, whether it is waiting between attempts
// or inside one, and reports status "error". Detect is safe for concurrent
// use; it changes no process state and waits for the one child process it
// starts (`docker --version`).
func Detect(ctx context.Context, opts DetectOptions) (p Probe) {
	start := time.Now()
	defer func() { p.Elapsed = time.Since(start) }()
	opts = opts.withDefaults()
	p.Status = StatusUnavailable

	cliCheck := detectCLI(ctx, opts.Timeout)

	c, err := newClient(opts.Host)
	if err != nil {
		p.Status = StatusError
		p.Failure = FailureHostSetting
		p.Host = opts.Host
		p.Error = fmt.Sprintf("creating docker client: %v", err)
		p.Checks = []Check{
			cliCheck,
			{Name: detectCheckSocket, Detail: "not checked: the host setting is invalid"},
			{Name: detectCheckDaemon, Detail: "not contacted: " + p.Error},
			{Name: detectCheckVersions, Detail: "not queried"},
		}
		return p
	}
	defer func() { _ = c.Close() }() // only closes idle connections; never fails
	p.Host = c.DaemonHost()

	sock := detectSocket(ctx, p.Host, opts.Timeout)

	var last pingResult
	p.Attempts, last = connect(ctx, c, opts.Timeout, opts.Retries, opts.Backoff)

	daemonCheck := Check{Name: detectCheckDaemon}
	versionsCheck := Check{Name: detectCheckVersions, Detail: "not queried: the daemon is not usable"}
	switch {
	case p.Attempts > 0 && last.err == nil:
		p.Available = true
		p.Status = StatusAvailable
		p.ClientAPIVersion = c.ClientVersion()
		daemonCheck.OK = true
		daemonCheck.Detail = fmt.Sprintf("%s answered on attempt %d of %d", p.Host, p.Attempts, opts.Retries+1)
		versionsCheck = p.readVersions(ctx, c, opts.Timeout)
		if !sock.check.OK {
			// The daemon came up while we were retrying; report the
			// socket as it is now.
			sock = detectSocket(ctx, p.Host, opts.Timeout)
		}
	case ctx.Err() != nil:
		p.Status = StatusError
		p.Failure = FailureInterrupted
		p.Error = fmt.Sprintf("detection stopped after %s: %v", detectAttempts(p.Attempts), context.Cause(ctx))
		if last.err != nil && !errors.Is(last.err, ctx.Err()) {
			p.Error += fmt.Sprintf(" (last attempt: %v)", last.err)
		}
		daemonCheck.Detail = p.Error
	default:
		p.Error = last.err.Error()
		p.Failure = last.failure
		if last.failure != FailureUnreachable {
			p.Status = StatusError
		}
		if last.failure == FailureTooOld {
			p.APIVersion = last.apiVersion
			daemonCheck.Detail = fmt.Sprintf("%s answered, but %v", p.Host, last.err)
		} else {
			daemonCheck.Detail = fmt.Sprintf("%s not usable after %s (timeout %v each): %v", p.Host, detectAttempts(p.Attempts), opts.Timeout, last.err)
		}
	}

	p.Checks = []Check{cliCheck, sock.check, daemonCheck, versionsCheck}
	p.Socket = sock.state
	if !p.Available {
		p.Systemd, p.Dockerd = hasSystemd(), hasDockerd()
	}
	return p
}

// withDefaults replaces zero fields with their defaults and negative ones
// with their "none" meaning.
func (o DetectOptions) withDefaults() DetectOptions {
	if o.Timeout <= 0 {
		o.Timeout = detectDefaultTimeout
	}
	switch {
	case o.Retries == 0:
		o.Retries = detectDefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	switch {
	case o.Backoff == 0:
		o.Backoff = detectDefaultBackoff
	case o.Backoff < 0:
		o.Backoff = 0
	}
	return o
}

// readVersions fills the version fields of p from /version and /info and
// returns the versions check.
func (p *Probe) readVersions(ctx context.Context, c *client.Client, timeout time.Duration) Check {
	check := Check{Name: detectCheckVersions}
	var errs []string

	vctx, cancel := context.WithTimeout(ctx, timeout)
	sv, err := c.ServerVersion(vctx, client.ServerVersionOptions{})
	cancel()
	if err != nil {
		errs = append(errs, fmt.Sprintf("reading engine version: %v", err))
	} else {
		p.Version, p.APIVersion, p.MinAPIVersion = sv.Version, sv.APIVersion, sv.MinAPIVersion
		p.OS, p.Arch = sv.Os, sv.Arch
	}

	ictx, cancel := context.WithTimeout(ctx, timeout)
	res, err := c.Info(ictx, client.InfoOptions{})
	cancel()
	if err != nil {
		errs = append(errs, fmt.Sprintf("reading engine info: %v", err))
	} else {
		info := res.Info
		if p.Version == "" {
			p.Version = info.ServerVersion
		}
		if p.OS == "" {
			p.OS = info.OSType
		}
		if p.Arch == "" {
			p.Arch = info.Architecture
		}
		p.OperatingSystem = info.OperatingSystem
		p.KernelVersion = info.KernelVersion
		p.CgroupVersion, p.CgroupDriver = info.CgroupVersion, info.CgroupDriver
		for name := range info.Runtimes {
			p.Runtimes = append(p.Runtimes, name)
		}
		slices.Sort(p.Runtimes)
		p.DefaultRuntime = info.DefaultRuntime
		p.InitBinary = info.InitBinary
		p.SecurityOptions = info.SecurityOptions
		for _, o := range security.DecodeOptions(info.SecurityOptions) {
			switch o.Name {
			case "seccomp":
				p.Seccomp = true
			case "apparmor":
				p.AppArmor = true
			case "userns":
				p.UserNS = true
			case "rootless":
				p.Rootless = true
			}
		}
		p.Warnings = info.Warnings
	}

	if len(errs) > 0 {
		p.Error = strings.Join(errs, "; ")
		check.Detail = p.Error
		return check
	}
	check.OK = true
	check.Detail = p.versionsDetail()
	return check
}

// versionsDetail renders the version fields on one line.
func (p *Probe) versionsDetail() string {
	var b strings.Builder
	fmt.Fprintf(&b, "engine %s, API %s (min %s, client %s), %s/%s",
		detectOr(p.Version), detectOr(p.APIVersion), detectOr(p.MinAPIVersion),
		detectOr(p.ClientAPIVersion), detectOr(p.OS), detectOr(p.Arch))
	if p.KernelVersion != "" {
		fmt.Fprintf(&b, ", kernel %s", p.KernelVersion)
	}
	if p.CgroupVersion != "" || p.CgroupDriver != "" {
		fmt.Fprintf(&b, ", cgroup v%s (%s)", detectOr(p.CgroupVersion), detectOr(p.CgroupDriver))
	}
	if len(p.Runtimes) > 0 {
		fmt.Fprintf(&b, ", runtimes %s (default %s)", strings.Join(p.Runtimes, " "), detectOr(p.DefaultRuntime))
	}
	if p.InitBinary != "" {
		fmt.Fprintf(&b, ", init %s", p.InitBinary)
	}
	b.WriteString(", security:")
	opts := security.DecodeOptions(p.SecurityOptions)
	if len(opts) == 0 {
		b.WriteString(" none")
	}
	for _, o := range opts {
		b.WriteString(" " + o.Name)
		for _, kv := range o.Options {
			fmt.Fprintf(&b, "(%s=%s)", kv.Key, kv.Value)
		}
	}
	return b.String()
}

// detectAttempts renders n as "1 attempt" or "n attempts".
func detectAttempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func detectOr(s string) string {
	if s == "" {
		return "?"
	}
	return s
}
