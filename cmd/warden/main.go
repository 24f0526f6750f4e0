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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{
		environ: os.Environ(),
		stdin:   os.Stdin,
		stdout:  os.Stdout,
		stderr:  os.Stderr,
	})
	stop()
	os.Exit(code)
}
