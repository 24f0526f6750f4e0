package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// apiCase measures what the HTTP service adds to an execution: the same
// trivial statement in one sandbox, through provider.Exec (the Go library)
// and through warden serve's handler over loopback HTTP with the Go client.
func apiCase(ctx context.Context, e env, n, warmup int) (_ []Stats, err error) {
	mgr := session.New(e.p, session.Options{})
	info, err := mgr.Create(ctx, e.spec(), 0)
	if err != nil {
		return nil, fmt.Errorf("creating sandbox: %w", err)
	}
	defer func() {
		if derr := mgr.Destroy(context.WithoutCancel(ctx), info.ID); derr != nil {
			err = errors.Join(err, fmt.Errorf("destroying sandbox: %w", derr))
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: server.New(server.Options{Manager: mgr, Version: "bench"}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	c, err := client.New("http://" + ln.Addr().String())
	if err != nil {
		return nil, err
	}
	req := sandbox.ExecRequest{Language: sandbox.Python, Code: pyStatement}
	ops := []op{
		wardenExec(e.p, info.ID, WardenExecLibrary, req),
		{name: WardenExecHTTP, fn: func(ctx context.Context) ([]time.Duration, error) {
			res, err := c.Execute(ctx, string(info.ID), client.ExecuteOptions{Language: api.Language(req.Language), Code: req.Code})
			if err != nil {
				return nil, err
			}
			if !res.Success {
				return nil, fmt.Errorf("exit code %d, timed out %t: %s", res.ExitCode, res.TimedOut, tail([]byte(res.Stderr)))
			}
			return nil, nil
		}},
	}
	return measure(ctx, e, CaseAPI, ops, n, warmup, execBlock, execTimeout)
}
