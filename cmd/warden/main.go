// Command warden runs AI-agent code (Python and shell) in isolated
// sandboxes. See `warden help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/warden-sandbox/warden/internal/provider/bwrap"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	bwrap.Init() // in a bubblewrap sandbox, becomes its shim and never returns
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		// The first signal cancels the command, which cleans up and exits
		// 128+N; the cause tells run which signal it was.
		if s, ok := (<-sigs).(syscall.Signal); ok {
			cancel(signalError{sig: s})
		}
	}()
	code := run(ctx, os.Args[1:], env{
		environ: os.Environ(),
		stdin:   os.Stdin,
		stdout:  os.Stdout,
		stderr:  os.Stderr,
	})
	signal.Stop(sigs)
	cancel(nil)
	os.Exit(code)
}
