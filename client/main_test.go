package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// exampleKey is the API key of the server the examples talk to.
const exampleKey = "example-key-0123456789"

// TestMain serves Warden's real HTTP API in this process, on the local
// provider (real Python sessions, no isolation: fine for the examples'
// own code), and points WARDEN_URL and WARDEN_API_KEY at it, so that the
// examples run exactly as a user would write them.
func TestMain(m *testing.M) {
	os.Exit(runWithWarden(m))
}

func runWithWarden(m *testing.M) int {
	root, err := os.MkdirTemp("", "warden-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: root})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr := session.New(p, session.Options{})
	srv := httptest.NewServer(server.New(server.Options{Manager: mgr, Keys: []string{exampleKey}, IdleTimeout: -1}))
	defer srv.Close()
	defer mgr.Shutdown(context.Background())
	os.Setenv(client.EnvURL, srv.URL)
	os.Setenv(client.EnvAPIKey, exampleKey)
	return m.Run()
}
