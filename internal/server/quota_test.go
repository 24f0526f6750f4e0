package server_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/quota"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestWorkspaceSize: workspace_size bounds a private workspace (on a
// provider that can), and an upload past it is 413, not a 500; a provider
// that cannot bound workspaces refuses the field.
func TestWorkspaceSize(t *testing.T) {
	testutil.RequireRoot(t)
	if err := quota.Supported(); err != nil {
		t.Skipf("quotas not supported here: %v", err)
	}
	t.Parallel()
	root := t.TempDir()
	p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	mgr := session.New(quota.Wrap(p, root, 0, 0, nil), session.Options{})
	hs := httptest.NewServer(server.New(server.Options{Manager: mgr, IdleTimeout: -1, MaxBodyBytes: 64 << 20}))
	t.Cleanup(func() {
		hs.Close()
		_ = mgr.Shutdown(context.Background())
	})
	c, _ := client.New(hs.URL)
	ctx := t.Context()
	sb, err := c.Create(ctx, client.CreateOptions{WorkspaceSize: "16m"})
	if err != nil {
		t.Fatal(err)
	}
	if sb.Spec.WorkspaceSize != 16<<20 || sb.Spec.WorkspaceDir != "" {
		t.Fatalf("spec = %+v", sb.Spec)
	}
	_, err = c.Upload(ctx, sb.ID, "big.bin", bytes.NewReader(make([]byte, 32<<20)))
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 413 || !strings.Contains(ae.Message, "workspace is full") {
		t.Fatalf("upload past the size = %v, want 413 workspace is full", err)
	}
	if _, err := c.Upload(ctx, sb.ID, "small.txt", strings.NewReader("ok")); err != nil {
		t.Fatalf("a small upload after the refused one: %v", err)
	}
	for _, bad := range []client.CreateOptions{{WorkspaceSize: "1m"}, {WorkspaceSize: "lots"}, {WorkspaceSize: "16m", WorkspacePath: t.TempDir()}} {
		if _, err := c.Create(ctx, bad); !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "workspace_size") {
			t.Errorf("Create(%+v) = %v, want invalid naming workspace_size", bad, err)
		}
	}

	// Without quotas below it, the field is refused, not ignored.
	plain := session.New(p, session.Options{})
	hs2 := httptest.NewServer(server.New(server.Options{Manager: plain, IdleTimeout: -1}))
	defer hs2.Close()
	c2, _ := client.New(hs2.URL)
	if _, err := c2.Create(ctx, client.CreateOptions{WorkspaceSize: "16m"}); !errors.Is(err, client.ErrInvalid) || !strings.Contains(err.Error(), "cannot enforce") {
		t.Fatalf("workspace_size without quotas = %v", err)
	}
}
