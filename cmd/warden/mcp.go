package main

import (
	"context"
	"fmt"
	"io"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/mcpserver"
)

const mcpHelp = `Serves the Model Context Protocol over stdin and stdout, for desktop agents
and IDEs: tools to run Python (state kept between calls) and shell commands,
read, write and list files, and create, list and destroy sandboxes. The
session's default sandbox is removed when the client disconnects.`

// cmdMCP serves one MCP session over stdin and stdout: the sandboxes live
// in this process (as with `warden exec`), or in the warden serve named by
// --server.
func cmdMCP(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden mcp")
	server := fs.String("server", "", "use the sandboxes of this warden serve (URL) instead of running them here; the key comes from WARDEN_API_KEY")
	sf := newSettingFlags(e)
	sf.add(fs, "provider", "SANDBOX__PROVIDER", "isolation backend: auto, bubblewrap, docker, seatbelt, local, forkserver or kubernetes")
	sf.addBool(fs, "mock", "SANDBOX__MOCK_MODE", "allow the unisolated local provider")
	sf.add(fs, "image", "SANDBOX__IMAGE", "image sandboxes run")
	sf.add(fs, "memory", "SANDBOX__MEMORY_LIMIT", "memory per sandbox, e.g. 512m or 2g")
	sf.add(fs, "cpus", "SANDBOX__CPU_LIMIT", "CPUs per sandbox")
	sf.add(fs, "timeout", "SANDBOX__TIMEOUT", "default timeout of one execution")
	sf.addBool(fs, "network", "SANDBOX__ENABLE_NETWORK", "give sandboxes outbound network access")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	// stdout carries the protocol: nothing else may write to it.
	transport := &mcp.IOTransport{Reader: io.NopCloser(e.stdin), Writer: nopWriteCloser{e.stdout}}

	if *server != "" {
		c, err := client.New(*server, client.WithAPIKey(envLookup(e.environ, client.EnvAPIKey)),
			client.WithUserAgent("warden-mcp/"+version))
		if err != nil {
			return fmt.Errorf("--server: %w", err)
		}
		if _, err := c.Status(ctx); err != nil {
			return fmt.Errorf("reaching %s: %w", *server, err)
		}
		return mcpserver.New(mcpserver.Options{Client: c, Version: version}).Run(ctx, transport)
	}

	cfg, err := sf.load(e)
	if err != nil {
		return err
	}
	cfg.Sandbox.KubernetesReplicaID = "" // only warden serve is a replica
	log := logger(cfg, e.stderr)
	svc, err := startService(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer svc.closeDocker()
	if svc.backend == nil {
		return fmt.Errorf("no sandbox backend (%s)\n(run `warden doctor` for details and remedies)", svc.mode)
	}
	err = svc.mcp.Run(ctx, transport)
	sctx := context.WithoutCancel(ctx)
	if serr := svc.mgr.Shutdown(sctx); serr != nil && err == nil {
		err = serr
	}
	if cerr := svc.backend.Close(sctx); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
