package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/session"
)

// A silent execution's stream gets keepalive comments; once the stream
// has begun, a failure arrives as an error event.
func TestExecuteStreamKeepalive(t *testing.T) {
	t.Parallel()
	fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		time.Sleep(100 * time.Millisecond)
		return sandbox.ExecResult{}, fmt.Errorf("the sandbox vanished: %w", sandbox.ErrNotFound)
	}}
	mgr := session.New(fake, session.Options{})
	info, err := mgr.Create(t.Context(), sandbox.Spec{}.WithDefaults(), 0)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{Manager: mgr})
	s.keepalive = 10 * time.Millisecond
	srv := httptest.NewServer(s)
	defer srv.Close()

	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/sandbox/"+string(info.ID)+"/execute", strings.NewReader(`{"code":"x"}`))
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("streamed execute = %d %s, want 200", resp.StatusCode, body)
	}
	if !strings.HasPrefix(string(body), ": keepalive\n\n") {
		t.Errorf("stream = %q, want it to begin with a keepalive comment", body)
	}
	if want := "event: error\ndata: {\"error\":{\"code\":\"not_found\","; !strings.Contains(string(body), want) {
		t.Errorf("stream = %q, want an error event with code not_found", body)
	}
	if strings.Contains(string(body), "event: result") {
		t.Errorf("stream = %q, want no result event", body)
	}
}
