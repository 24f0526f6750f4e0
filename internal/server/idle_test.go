package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestIdleSandboxIsReaped: a sandbox created with an idle timeout over
// HTTP disappears once unused that long, and its metrics say why.
func TestIdleSandboxIsReaped(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	keep := ts.create(t, map[string]any{})                     // default: never reaped here
	gone := ts.create(t, map[string]any{"idle_timeout": 0.05}) // 50 ms
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go ts.mgr.Run(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for ts.do(t, http.MethodGet, "/sandbox/"+string(gone), nil).status != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("the idle sandbox was not reaped within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if r := ts.do(t, http.MethodGet, "/sandbox/"+string(keep), nil); r.status != http.StatusOK {
		t.Fatalf("the sandbox without idle timeout: GET = %d", r.status)
	}
	m := ts.do(t, http.MethodGet, "/metrics", nil)
	if !strings.Contains(string(m.body), `warden_sandboxes_destroyed_total{reason="idle"} 1`) {
		t.Errorf("metrics do not count the idle destruction:\n%s", m.body)
	}
}
