// Package mcpserver exposes Warden to Model Context Protocol clients
// (desktop agents, IDEs): tools that run Python with state kept between
// calls, run shell commands, move files, and manage sandboxes.
//
// It is an adapter over the public Go client: every tool call is a call of
// Warden's HTTP API, through the same handlers, keys, limits, checks and
// mount policy as any other client. `warden mcp` serves it over stdio with
// an in-process API; `warden serve` mounts it at /mcp (streamable HTTP),
// where the MCP request itself must carry an accepted key.
//
// Each MCP session gets a default sandbox, made on its first use, so an
// agent has a persistent Python session without handling ids; every tool
// also takes an optional sandbox_id to address another one. The default
// sandbox is destroyed when the session ends.
package mcpserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-sandbox/warden/client"
)

// Options configure a [Server].
type Options struct {
	// Client reaches the Warden API. Required.
	Client *client.Client
	// Version is reported to clients as the server's version.
	Version string
	// Defaults are the settings of each session's default sandbox; the
	// zero value takes the service's configured defaults.
	Defaults client.CreateOptions
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
}

// Server is an MCP server whose tools drive Warden. It is safe for
// concurrent use by any number of MCP sessions.
type Server struct {
	mcp  *mcp.Server
	c    *client.Client
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	defaults map[*mcp.ServerSession]*defaultBox
	closed   bool
	cleanups sync.WaitGroup
}

// defaultBox is a session's default sandbox, made on first use. mu is held
// while it is made, so that two concurrent first calls make one.
type defaultBox struct {
	mu sync.Mutex
	id string
}

// New returns a Server with every tool registered.
func New(opts Options) *Server {
	if opts.Client == nil {
		panic("mcpserver: Options.Client is nil")
	}
	s := &Server{c: opts.Client, opts: opts, log: opts.Log, defaults: map[*mcp.ServerSession]*defaultBox{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mcp = mcp.NewServer(&mcp.Implementation{Name: "warden", Title: "Warden sandboxes", Version: opts.Version},
		&mcp.ServerOptions{
			Instructions: instructions,
			Capabilities: &mcp.ServerCapabilities{Tools: &mcp.ToolCapabilities{}},
		})
	s.addTools()
	return s
}

const instructions = `Warden runs Python and shell commands in isolated sandboxes (no network unless asked for, limited memory and CPU).
Each session has a default sandbox: run_python keeps variables, imports and functions between calls, like a notebook, and run_shell and the file tools see the same /workspace directory.
Use create_sandbox only when you need a second, separate environment, and pass its sandbox_id to the other tools.
matplotlib figures come back as images; numpy and pandas are installed.`

// MCP returns the underlying MCP server, to run over a transport of the
// caller's choice.
func (s *Server) MCP() *mcp.Server { return s.mcp }

// Run serves one MCP session over t (such as stdin and stdout) until the
// client disconnects or ctx ends, then destroys the session's default
// sandbox before returning. A client that hangs up, or ctx ending, is a
// normal end, not an error.
func (s *Server) Run(ctx context.Context, t mcp.Transport) error {
	err := s.mcp.Run(ctx, t)
	s.Close(context.WithoutCancel(ctx))
	if ctx.Err() != nil || errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// Close ends every session and destroys the default sandboxes that
// remain, waiting for their removal. Later sessions get no default
// sandbox.
func (s *Server) Close(ctx context.Context) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	for ss := range s.mcp.Sessions() {
		_ = ss.Close()
	}
	done := make(chan struct{})
	go func() { s.cleanups.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// sandboxFor returns the sandbox a tool call addresses: id when given,
// else the session's default sandbox, made now if the session has none.
func (s *Server) sandboxFor(ctx context.Context, ss *mcp.ServerSession, id string) (string, error) {
	if id != "" {
		return id, nil
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", errors.New("the server is shutting down")
	}
	b := s.defaults[ss]
	if b == nil {
		b = &defaultBox{}
		s.defaults[ss] = b
		s.cleanups.Add(1)
		go s.cleanupAfter(ss, b)
	}
	s.mu.Unlock()

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.id != "" {
		return b.id, nil
	}
	sb, err := s.c.Create(ctx, s.opts.Defaults)
	if err != nil {
		return "", err
	}
	b.id = sb.ID
	s.log.Info("mcp session's default sandbox created", "sandbox_id", sb.ID, "session", ss.ID())
	return sb.ID, nil
}

// defaultOf returns the session's default sandbox, "" if none yet.
func (s *Server) defaultOf(ss *mcp.ServerSession) string {
	s.mu.Lock()
	b := s.defaults[ss]
	s.mu.Unlock()
	if b == nil {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.id
}

// forgetDefault drops the session's default sandbox if it is id (it was
// destroyed through a tool): the next call makes a new one.
func (s *Server) forgetDefault(ss *mcp.ServerSession, id string) {
	s.mu.Lock()
	b := s.defaults[ss]
	s.mu.Unlock()
	if b == nil {
		return
	}
	b.mu.Lock()
	if b.id == id {
		b.id = ""
	}
	b.mu.Unlock()
}

// cleanupAfter waits for the session to end and destroys its default
// sandbox.
func (s *Server) cleanupAfter(ss *mcp.ServerSession, b *defaultBox) {
	defer s.cleanups.Done()
	_ = ss.Wait()
	s.mu.Lock()
	delete(s.defaults, ss)
	s.mu.Unlock()
	b.mu.Lock() // waits for a creation in flight
	id := b.id
	b.id = ""
	b.mu.Unlock()
	if id == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.c.Delete(ctx, id); err != nil && !errors.Is(err, client.ErrNotFound) {
		s.log.Warn("destroying an mcp session's default sandbox", "sandbox_id", id, "err", err)
		return
	}
	s.log.Info("mcp session ended; its default sandbox destroyed", "sandbox_id", id, "session", ss.ID())
}
