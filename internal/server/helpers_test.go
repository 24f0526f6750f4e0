package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// setup describes the server under test; the zero value is a Fake
// provider, no keys and no limits.
type setup struct {
	fake         *sandboxtest.Fake // nil: a fresh Fake
	provider     sandbox.Provider  // overrides fake when set
	disabled     bool              // no provider at all
	keys         []string
	maxBody      int64
	maxSandboxes int
	defaults     sandbox.Spec
	status       func(context.Context) server.StatusInfo
	dockerInfo   func(context.Context) api.DockerInfo
	allowedDirs  []string
}

type testServer struct {
	URL     string
	fake    *sandboxtest.Fake
	mgr     *session.Manager
	metrics *server.Metrics
	logs    *syncBuffer
	key     string // sent by the helpers when set
}

// newServer starts a real HTTP server around server.New with a session
// Manager in front of a provider (by default a sandboxtest.Fake).
func newServer(t *testing.T, c setup) *testServer {
	t.Helper()
	ts := &testServer{logs: &syncBuffer{}, metrics: server.NewMetrics()}
	var p sandbox.Provider
	switch {
	case c.disabled:
	case c.provider != nil:
		p = c.provider
	default:
		ts.fake = c.fake
		if ts.fake == nil {
			ts.fake = &sandboxtest.Fake{}
		}
		p = ts.fake
	}
	log := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts.mgr = session.New(p, session.Options{MaxSandboxes: c.maxSandboxes, Observer: ts.metrics, Log: log})
	if c.defaults.Image == "" {
		c.defaults = c.defaults.WithDefaults()
	}
	srv := httptest.NewUnstartedServer(server.New(server.Options{
		Manager:         ts.mgr,
		Status:          c.status,
		DockerInfo:      c.dockerInfo,
		Defaults:        c.defaults,
		IdleTimeout:     -1,
		Keys:            c.keys,
		MaxBodyBytes:    c.maxBody,
		AllowedHostDirs: c.allowedDirs,
		Version:         "test-version",
		Log:             log,
		Metrics:         ts.metrics,
	}))
	srv.Listener = server.Listener(srv.Listener) // as warden serve does
	srv.Start()
	ts.URL = srv.URL
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 30*time.Second)
		defer cancel()
		if err := ts.mgr.Shutdown(ctx); err != nil {
			t.Errorf("Manager.Shutdown() = %v", err)
		}
	})
	return ts
}

// response is a finished HTTP exchange.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request. body may be nil, a string or []byte (sent as is), or
// any other value (sent as JSON).
func (ts *testServer) do(t *testing.T, method, path string, body any, header ...string) response {
	t.Helper()
	req := ts.request(t, method, path, body, header...)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (ts *testServer) request(t *testing.T, method, path string, body any, header ...string) *http.Request {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, ts.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if ts.key != "" {
		req.Header.Set("Authorization", "Bearer "+ts.key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// decode decodes the body of resp into v, failing the test if it is not
// JSON of that shape.
func decode[T any](t *testing.T, resp response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(resp.body, &v); err != nil {
		t.Fatalf("decoding %s as %T: %v", resp.body, v, err)
	}
	return v
}

// errorJSON is the error envelope of docs/api.md.
type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Rule    string `json:"rule"`
		Reason  string `json:"reason"`
	} `json:"error"`
}

// wantError checks that resp is an error answer with status and code.
func wantError(t *testing.T, what string, resp response, status int, code string) errorJSON {
	t.Helper()
	if resp.status != status {
		t.Errorf("%s: status = %d, want %d (body %s)", what, resp.status, status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type = %q, want application/json", what, ct)
	}
	e := decode[errorJSON](t, resp)
	if e.Error.Code != code || e.Error.Message == "" {
		t.Errorf("%s: error = %+v, want code %q and a message", what, e.Error, code)
	}
	if resp.header.Get("X-Request-ID") == "" {
		t.Errorf("%s: no X-Request-ID", what)
	}
	return e
}

// create creates a sandbox and returns its ID.
func (ts *testServer) create(t *testing.T, body any) sandbox.ID {
	t.Helper()
	resp := ts.do(t, "POST", "/sandbox/create", body)
	if resp.status != http.StatusCreated {
		t.Fatalf("POST /sandbox/create = %d %s, want 201", resp.status, resp.body)
	}
	return decode[session.Info](t, resp).ID
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// client returns the public Go client for the server, with its key.
func (ts *testServer) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(ts.URL, client.WithAPIKey(ts.key))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
