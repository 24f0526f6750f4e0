package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

// rawExchange sends raw bytes on a new connection (then closes its
// sending side when halfClose) and reads the whole answer.
func rawExchange(t *testing.T, url, raw string, halfClose bool) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	if halfClose {
		if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to %.60q: %v", raw, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// wantJSONError checks an answer is the API's JSON error with status.
func wantJSONError(t *testing.T, what string, resp *http.Response, body []byte, status int, code, inMessage string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("X-Request-ID") == "" ||
		json.Unmarshal(body, &e) != nil || e.Error.Code != code || !strings.Contains(e.Error.Message, inMessage) {
		t.Errorf("%s: %d %q %s; want %d, JSON with code %s and %q", what, resp.StatusCode, resp.Header.Get("Content-Type"), body, status, code, inMessage)
	}
}

// TestNetHTTPErrorsAreJSON: the answers net/http gives by itself, before
// any handler, carry the API's JSON error too.
func TestNetHTTPErrorsAreJSON(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	for _, c := range []struct {
		name, raw  string
		status     int
		code, text string
	}{
		{"garbage request line", "GARBAGE\r\n\r\n", 400, "invalid", "Bad Request"},
		{"negative content length", "POST /sandbox/create HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "invalid", "Bad Request"},
		{"no host", "GET /health HTTP/1.1\r\n\r\n", 400, "invalid", "missing required Host header"},
		{"unknown transfer encoding", "POST /sandbox/create HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n", 501, "invalid", "Unsupported transfer encoding"},
		{"headers too large", "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", 431, "too_large", "Request Header Fields Too Large"},
	} {
		resp, body := rawExchange(t, ts.URL, c.raw, false)
		wantJSONError(t, c.name, resp, body, c.status, c.code, c.text)
	}
}

// TestPathsWithDotSegments: such a path is refused with a JSON 400 naming
// the clean one, not redirected (a redirected POST comes back a GET).
func TestPathsWithDotSegments(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	for _, p := range []string{"/sandbox/../health", "/sandbox/./status", "//health", "/sandbox//create"} {
		resp, body := rawExchange(t, ts.URL, "POST "+p+" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false)
		wantJSONError(t, p, resp, body, 400, "invalid", "dot segments or doubled slashes")
		if resp.Header.Get("Location") != "" {
			t.Errorf("%s: redirected to %s", p, resp.Header.Get("Location"))
		}
	}
}

// TestHalfClosedClient: a client that half-closes its connection after
// its request (its execution is cancelled: net/http cannot tell that from
// a hang-up) reads why, not an empty 200.
func TestHalfClosedClient(t *testing.T) {
	t.Parallel()
	fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		select {
		case <-ctx.Done():
			return sandbox.ExecResult{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return sandbox.ExecResult{Stdout: []byte("done")}, nil
		}
	}}
	ts := newServer(t, setup{fake: fake})
	id := ts.create(t, nil)
	body := `{"code":"import time; time.sleep(10)"}`
	raw := "POST /sandbox/" + string(id) + "/execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
		itoa(len(body)) + "\r\n\r\n" + body
	resp, b := rawExchange(t, ts.URL, raw, true)
	wantJSONError(t, "half-closed execute", resp, b, 400, "invalid", "closed the connection, or its sending side")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// TestWorkdirStaysInWorkspace: a relative workdir may not climb out of the
// workspace; an absolute one names the sandbox's own filesystem.
func TestWorkdirStaysInWorkspace(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	id := ts.create(t, nil)
	for _, wd := range []string{"../../etc", "..", "a/../../b"} {
		resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"language":"shell","code":"pwd","workdir":"`+wd+`"}`)
		e := wantError(t, "workdir "+wd, resp, http.StatusBadRequest, "invalid")
		if !strings.Contains(e.Error.Message, "leaves the workspace") {
			t.Errorf("workdir %s: %q", wd, e.Error.Message)
		}
	}
	for _, wd := range []string{"/etc", "sub/dir", "a/../b"} {
		if resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"language":"shell","code":"pwd","workdir":"`+wd+`"}`); resp.status != http.StatusOK {
			t.Errorf("workdir %s: %d %s", wd, resp.status, resp.body)
		}
	}
}

// TestMetrics499ForCutStreams: a streamed execution whose client goes away
// mid-stream counts as 499 (client closed), not as the 200 its header said.
func TestMetrics499ForCutStreams(t *testing.T) {
	t.Parallel()
	fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		req.OnOutput(sandbox.Stdout, []byte("first\n"))
		<-ctx.Done()
		return sandbox.ExecResult{}, ctx.Err()
	}}
	ts := newServer(t, setup{fake: fake})
	id := ts.create(t, nil)
	body := `{"language":"shell","code":"echo first; sleep 60"}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "POST /sandbox/"+string(id)+"/execute HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nContent-Length: "+
		itoa(len(body))+"\r\n\r\n"+body)
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(line, "first") {
			break
		}
	}
	conn.Close() // mid-stream
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		m := string(ts.do(t, "GET", "/metrics", nil).body)
		if strings.Contains(m, `warden_http_requests_total{route="POST /sandbox/{id}/execute",code="499"} 1`) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no 499 for the cut stream:\n%s", ts.do(t, "GET", "/metrics", nil).body)
}
