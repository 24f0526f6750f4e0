package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/load"
)

const loadHelp = `Drives a Warden service with concurrent clients, each in a sandbox of its
own, running a mix of executions (Python keeping state, shell, large and
truncated outputs, exceptions) and checking every result; reports errors,
latencies per kind, throughput, and the server's memory, goroutines and
descriptors over time (docs/load.md). The exit code is 1 when any check
failed.

Without --server it starts its own warden serve on a free loopback port
(--binary, default this program) with --provider, raising
SANDBOX__MAX_SANDBOXES to the number of clients unless it is set, and
stops it at the end.`

func cmdLoad(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden load")
	server := fs.String("server", "", "`URL` of a running service; empty starts one")
	key := fs.String("key", lookupEnv(e.environ, client.EnvAPIKey), "API `key` of the service ($"+client.EnvAPIKey+")")
	binary := fs.String("binary", "", "warden `executable` for the service the suite starts (default: this program)")
	providerName := fs.String("provider", "", "sandbox `backend` of the service the suite starts: bubblewrap, docker, ... (default SANDBOX__PROVIDER)")
	serverLog := fs.String("server-log", "", "append the standard error of the service the suite starts to `file`")
	clients := fs.Int("clients", 50, "concurrent clients, each with a sandbox of its own")
	executions := fs.Int("executions", 200, "executions per client; in a soak, per sandbox before the client replaces it")
	soak := fs.Duration("soak", 0, "run for this `duration` instead of a fixed number of executions")
	interval := fs.Duration("interval", 10*time.Second, "how often to sample /metrics and report progress")
	faultName := fs.String("fault", "none", "fault `mode`: none, disconnect, kill-agent, kill-server (needs a service the suite starts)")
	timeout := fs.Duration("timeout", time.Minute, "timeout of each execution")
	format := fs.String("format", "text", "report format: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fault, err := load.ParseFault(*faultName)
	if err != nil {
		return usageErrorf("--fault: %v", err)
	}
	switch {
	case *clients < 1 || *clients > 10000:
		return usageErrorf("--clients %d: want 1 to 10000", *clients)
	case *executions < 1:
		return usageErrorf("--executions %d: want at least 1", *executions)
	case *soak < 0 || *interval <= 0 || *timeout <= 0:
		return usageErrorf("--soak, --interval and --timeout must be positive")
	case *format != "text" && *format != "json":
		return usageErrorf("--format %q: want text or json", *format)
	case *server != "" && fault == load.FaultKillServer:
		return usageErrorf("--fault kill-server kills the service, so only one the suite starts itself (no --server)")
	case *server != "" && (*binary != "" || *providerName != "" || *serverLog != ""):
		return usageErrorf("--binary, --provider and --server-log are for the service the suite starts, not with --server")
	}

	opts := load.Options{
		URL:        *server,
		APIKey:     *key,
		Clients:    *clients,
		Executions: *executions,
		Soak:       *soak,
		Interval:   *interval,
		Fault:      fault,
		Timeout:    *timeout,
		Log:        e.stderr,
	}
	if *server == "" {
		srv, err := startLoadServer(ctx, e, *binary, *providerName, *serverLog, *clients)
		if err != nil {
			return err
		}
		defer func() {
			if err := srv.Stop(30 * time.Second); err != nil {
				fmt.Fprintln(e.stderr, "warden load:", err)
			}
		}()
		opts.URL, opts.Server = srv.URL(), srv
		fmt.Fprintf(e.stderr, "warden load: started warden serve at %s (pid %d)\n", srv.URL(), srv.PID())
	}

	rep, err := load.Run(ctx, opts)
	if rep == nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprint(e.stdout, rep.Text())
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return exitError{code: 1}
	}
	return nil
}

// startLoadServer starts warden serve for the suite: the caller's
// environment, the provider, room for every client's sandbox.
func startLoadServer(ctx context.Context, e env, binary, providerName, logFile string, clients int) (*load.Server, error) {
	if binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("finding this program to run warden serve (give --binary): %w", err)
		}
		binary = exe
	}
	environ := append([]string(nil), e.environ...)
	if providerName != "" {
		environ = append(environ, "SANDBOX__PROVIDER="+providerName, "SANDBOX__PROVIDER_FALLBACK=false")
	}
	if s := lookupEnv(environ, "SANDBOX__MAX_SANDBOXES"); s == "" {
		// The clients' sandboxes, and room for a few more, such as those a
		// killed server's clients create while the old ones are counted.
		environ = append(environ, "SANDBOX__MAX_SANDBOXES="+strconv.Itoa(clients+8))
	} else if n, err := strconv.Atoi(s); err == nil && n < clients {
		fmt.Fprintf(e.stderr, "warden load: warning: SANDBOX__MAX_SANDBOXES=%d is below --clients %d: creations will fail with 429\n", n, clients)
	}
	var log io.Writer
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		// Closed at exit: the server's log goroutine may write until it stops.
		log = f
	}
	return load.StartServer(ctx, load.ServerOptions{Binary: binary, Env: environ, Log: log})
}

// lookupEnv returns the last value of name in environ, or "".
func lookupEnv(environ []string, name string) string {
	v := ""
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && k == name {
			v = val
		}
	}
	return v
}
