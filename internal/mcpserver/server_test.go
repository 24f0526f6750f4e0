package mcpserver_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/mcpserver"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// stack is a Warden service in this process: the real API handler and
// session manager over the local provider (real Python sessions, no
// isolation: the layer under test is the MCP adapter), with the MCP
// server reaching the API in process, as warden mcp does.
type stack struct {
	mgr *session.Manager
	srv *server.Server
	mcp *mcpserver.Server
}

func newStack(t *testing.T, mod func(*server.Options)) *stack {
	t.Helper()
	p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// The shell check on, as with the local provider by default: policy
	// refusals must come back as tool errors.
	cfg := config.Defaults()
	cfg.Sandbox.BypassShellSafety = config.SwitchOff
	cfg.Sandbox.PythonSafety = config.SwitchOff
	guarded := provider.Guard(p, cfg.Sandbox)
	mgr := session.New(guarded, session.Options{})
	t.Cleanup(func() {
		_ = mgr.Shutdown(context.Background())
		_ = p.Close(context.Background())
	})
	st := &stack{mgr: mgr}
	opts := server.Options{Manager: mgr, IdleTimeout: -1,
		MCP: func(rt http.RoundTripper) http.Handler {
			st.mcp = newMCP(t, rt)
			return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return st.mcp.MCP() }, nil)
		}}
	if mod != nil {
		mod(&opts)
	}
	st.srv = server.New(opts)
	return st
}

func newMCP(t *testing.T, rt http.RoundTripper) *mcpserver.Server {
	t.Helper()
	c, err := client.New("http://warden.invalid", client.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	return mcpserver.New(mcpserver.Options{Client: c, Version: "test"})
}

// connect opens an MCP session to the stack over in-memory transports.
func (st *stack) connect(t *testing.T) *mcp.ClientSession {
	t.Helper()
	ct, srvT := mcp.NewInMemoryTransports()
	if _, err := st.mcp.MCP().Connect(t.Context(), srvT, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(t.Context(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func call(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s(%v): protocol error %v", tool, args, err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func structured(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("structured content %s: %v", b, err)
	}
	return m
}

func TestTools(t *testing.T) {
	t.Parallel()
	cs := newStack(t, nil).connect(t)
	res, err := cs.ListTools(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"run_python": {"code"}, "run_shell": {"command"}, "write_file": {"path"}, "read_file": {"path"},
		"list_files": nil, "create_sandbox": nil, "list_sandboxes": nil, "destroy_sandbox": {"sandbox_id"},
	}
	for _, tool := range res.Tools {
		req, ok := want[tool.Name]
		if !ok {
			t.Errorf("unexpected tool %q", tool.Name)
			continue
		}
		delete(want, tool.Name)
		if len(tool.Description) < 40 {
			t.Errorf("%s: description %q is too thin", tool.Name, tool.Description)
		}
		schema, _ := json.Marshal(tool.InputSchema)
		var s struct {
			Type       string         `json:"type"`
			Required   []string       `json:"required"`
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(schema, &s); err != nil || s.Type != "object" {
			t.Errorf("%s: input schema %s", tool.Name, schema)
		}
		if strings.Join(s.Required, ",") != strings.Join(req, ",") {
			t.Errorf("%s: required %v, want %v", tool.Name, s.Required, req)
		}
		if _, ok := s.Properties["sandbox_id"]; !ok && tool.Name != "create_sandbox" && tool.Name != "list_sandboxes" {
			t.Errorf("%s takes no sandbox_id", tool.Name)
		}
	}
	for name := range want {
		t.Errorf("tool %q missing", name)
	}
}

func TestPythonSession(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	cs := st.connect(t)
	if res := call(t, cs, "run_python", map[string]any{"code": "x = 41"}); res.IsError {
		t.Fatalf("x = 41: %s", text(res))
	}
	res := call(t, cs, "run_python", map[string]any{"code": "print('hello')\nx + 1"})
	out := structured(t, res)
	if res.IsError || out["return_value"] != "42" || out["stdout"] != "hello\n" || text(res) != "hello\n42\n" {
		t.Fatalf("x + 1 = %q %v (error %v)", text(res), out, res.IsError)
	}
	id, _ := out["sandbox_id"].(string)
	if !strings.HasPrefix(id, "sb-") {
		t.Fatalf("sandbox_id %q", id)
	}

	res = call(t, cs, "run_python", map[string]any{"code": "y = 2\n1 / 0"})
	out = structured(t, res)
	errObj, _ := out["error"].(map[string]any)
	if !res.IsError || errObj["name"] != "ZeroDivisionError" || !strings.Contains(text(res), "ZeroDivisionError: division by zero") ||
		strings.Count(text(res), "ZeroDivisionError: division by zero") != 1 {
		t.Fatalf("1/0 = %q %v", text(res), out)
	}
	if res := call(t, cs, "run_python", map[string]any{"code": "x, y"}); text(res) != "(41, 2)\n" {
		t.Fatalf("state after the exception: %q", text(res))
	}
	res = call(t, cs, "run_python", map[string]any{"code": "import time; time.sleep(5)", "timeout": 0.5})
	if out := structured(t, res); !res.IsError || out["timed_out"] != true || !strings.Contains(text(res), "timed out") {
		t.Fatalf("timeout: %q %v", text(res), out)
	}
	if n := st.mgr.Active(); n != 1 {
		t.Fatalf("%d sandboxes live, want the one default sandbox", n)
	}
}

func TestShell(t *testing.T) {
	t.Parallel()
	cs := newStack(t, nil).connect(t)
	res := call(t, cs, "run_shell", map[string]any{"command": "echo hi; echo oops >&2; exit 3"})
	out := structured(t, res)
	if !res.IsError || out["exit_code"] != 3.0 || out["stdout"] != "hi\n" || out["stderr"] != "oops\n" ||
		text(res) != "hi\n\n[stderr]\noops\n[exit code 3]\n" {
		t.Fatalf("shell = %q %v", text(res), out)
	}
	call(t, cs, "write_file", map[string]any{"path": "sub/f.txt", "content": ""})
	if res := call(t, cs, "run_shell", map[string]any{"command": "ls", "workdir": "sub"}); res.IsError || text(res) != "f.txt\n" {
		t.Fatalf("workdir: %q", text(res))
	}
	// The shell check runs in front of the provider: a refusal is a tool
	// error with the reason, and nothing ran.
	res = call(t, cs, "run_shell", map[string]any{"command": "echo x > marker; rm -rf /"})
	if !res.IsError || !strings.Contains(text(res), "denied") || !strings.Contains(text(res), "Unsafe command: rm") {
		t.Fatalf("refused command = %q", text(res))
	}
	if res := call(t, cs, "list_files", map[string]any{}); strings.Contains(text(res), "marker") {
		t.Fatalf("the refused command ran: %s", text(res))
	}
}

func TestFiles(t *testing.T) {
	t.Parallel()
	cs := newStack(t, nil).connect(t)
	res := call(t, cs, "write_file", map[string]any{"path": "notes/a.txt", "content": "hello file"})
	if out := structured(t, res); res.IsError || out["size"] != 10.0 || out["path"] != "notes/a.txt" {
		t.Fatalf("write_file = %q %v", text(res), out)
	}
	if res := call(t, cs, "read_file", map[string]any{"path": "notes/a.txt"}); text(res) != "hello file" {
		t.Fatalf("read_file = %q (%v)", text(res), res.Content)
	}
	res = call(t, cs, "list_files", map[string]any{"path": "notes"})
	entries, _ := structured(t, res)["entries"].([]any)
	if len(entries) != 1 || entries[0].(map[string]any)["name"] != "a.txt" || entries[0].(map[string]any)["type"] != "file" {
		t.Fatalf("list_files = %v", structured(t, res))
	}
	if res := call(t, cs, "run_python", map[string]any{"code": "open('notes/a.txt').read()"}); structured(t, res)["return_value"] != "'hello file'" {
		t.Fatalf("Python sees %v", structured(t, res))
	}

	bin := []byte{0, 1, 2, 255}
	call(t, cs, "write_file", map[string]any{"path": "b.bin", "content_base64": base64.StdEncoding.EncodeToString(bin)})
	if res := call(t, cs, "run_python", map[string]any{"code": "list(open('b.bin','rb').read())"}); structured(t, res)["return_value"] != "[0, 1, 2, 255]" {
		t.Fatalf("binary file = %v", structured(t, res))
	}
	res = call(t, cs, "read_file", map[string]any{"path": "b.bin"})
	if er, ok := res.Content[0].(*mcp.EmbeddedResource); !ok || !bytes.Equal(er.Resource.Blob, bin) || !strings.HasPrefix(er.Resource.URI, "sandbox://") {
		t.Fatalf("read_file of binary = %#v", res.Content[0])
	}
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89")
	call(t, cs, "write_file", map[string]any{"path": "p.png", "content_base64": base64.StdEncoding.EncodeToString(png)})
	res = call(t, cs, "read_file", map[string]any{"path": "p.png"})
	if img, ok := res.Content[0].(*mcp.ImageContent); !ok || img.MIMEType != "image/png" || !bytes.Equal(img.Data, png) {
		t.Fatalf("read_file of a PNG = %#v", res.Content[0])
	}

	for _, bad := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"write_file", map[string]any{"path": "x"}, "content or content_base64"},
		{"write_file", map[string]any{"path": "x", "content": "a", "content_base64": "YQ=="}, "not both"},
		{"write_file", map[string]any{"path": "x", "content_base64": "%%%"}, "base64"},
		{"write_file", map[string]any{"path": "../escape", "content": "a"}, "leaves the workspace"},
		{"read_file", map[string]any{"path": "/etc/passwd"}, "outside the workspace"},
		{"read_file", map[string]any{"path": "missing.txt"}, "not_found"},
		{"read_file", map[string]any{"path": "notes"}, "directory"},
		{"list_files", map[string]any{"path": "nope"}, "not_found"},
	} {
		res := call(t, cs, bad.tool, bad.args)
		if !res.IsError || !strings.Contains(text(res), bad.want) {
			t.Errorf("%s(%v) = %q (error %v), want an error mentioning %q", bad.tool, bad.args, text(res), res.IsError, bad.want)
		}
	}
}

func TestBadArguments(t *testing.T) {
	t.Parallel()
	cs := newStack(t, nil).connect(t)
	for _, bad := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"run_python", map[string]any{}, "code"},
		{"run_python", map[string]any{"code": 42}, "code"},
		{"run_python", map[string]any{"code": "1", "timeout": -1}, "timeout"},
		{"run_python", map[string]any{"code": "1", "timeout": 99999}, "timeout"},
		{"run_python", map[string]any{"code": "1", "sandbox_id": "nope-123"}, "not found"},
		{"run_python", map[string]any{"code": "1", "sandbox_id": "../x"}, "sandbox"},
		{"run_shell", map[string]any{"command": "  "}, "command"},
		{"run_shell", map[string]any{"cmd": "ls"}, "cmd"},
		{"destroy_sandbox", map[string]any{}, "sandbox_id"},
		{"destroy_sandbox", map[string]any{"sandbox_id": "sb-0000000000000000"}, "not found"},
		{"create_sandbox", map[string]any{"memory_limit": "lots"}, "memory_limit"},
		{"create_sandbox", map[string]any{"memory_limit": "1m"}, "memory_limit"},
	} {
		res := call(t, cs, bad.tool, bad.args)
		if !res.IsError || !strings.Contains(text(res), bad.want) {
			t.Errorf("%s(%v) = %q (error %v), want an error mentioning %q", bad.tool, bad.args, text(res), res.IsError, bad.want)
		}
	}
}

func TestSandboxes(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	cs := st.connect(t)
	def := structured(t, call(t, cs, "run_python", map[string]any{"code": "x = 1"}))["sandbox_id"].(string)
	res := call(t, cs, "create_sandbox", map[string]any{"environment_variables": map[string]any{"GREETING": "hi"}})
	other, _ := structured(t, res)["sandbox_id"].(string)
	if res.IsError || other == "" || other == def {
		t.Fatalf("create_sandbox = %q %v", text(res), structured(t, res))
	}
	if res := call(t, cs, "run_python", map[string]any{"code": "import os; y = os.environ['GREETING']; y", "sandbox_id": other}); structured(t, res)["return_value"] != "'hi'" {
		t.Fatalf("in the new sandbox: %q", text(res))
	}
	if res := call(t, cs, "run_python", map[string]any{"code": "'y' in globals(), x"}); structured(t, res)["return_value"] != "(False, 1)" {
		t.Fatalf("the sandboxes are not separate: %q", text(res))
	}
	list, _ := structured(t, call(t, cs, "list_sandboxes", map[string]any{}))["sandboxes"].([]any)
	seen := map[string]bool{}
	for _, s := range list {
		m := s.(map[string]any)
		seen[m["sandbox_id"].(string)] = m["default"].(bool)
	}
	if len(seen) != 2 || !seen[def] || seen[other] {
		t.Fatalf("list_sandboxes = %v", list)
	}
	if res := call(t, cs, "destroy_sandbox", map[string]any{"sandbox_id": other}); res.IsError || structured(t, res)["status"] != "destroyed" {
		t.Fatalf("destroy_sandbox = %q", text(res))
	}
	// Destroying the default sandbox is allowed; the next call makes a
	// fresh one.
	call(t, cs, "destroy_sandbox", map[string]any{"sandbox_id": def})
	res = call(t, cs, "run_python", map[string]any{"code": "'x' in globals()"})
	if out := structured(t, res); out["return_value"] != "False" || out["sandbox_id"] == def {
		t.Fatalf("after destroying the default: %v", out)
	}
	if n := st.mgr.Active(); n != 1 {
		t.Fatalf("%d sandboxes live, want 1", n)
	}
}

// TestDefaultSandboxEndsWithSession: closing the session destroys its
// default sandbox and nothing else; two sessions have separate defaults.
func TestDefaultSandboxEndsWithSession(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	a, b := st.connect(t), st.connect(t)
	idA := structured(t, call(t, a, "run_python", map[string]any{"code": "who = 'a'"}))["sandbox_id"]
	idB := structured(t, call(t, b, "run_python", map[string]any{"code": "'who' in globals()"}))
	if idB["return_value"] != "False" || idB["sandbox_id"] == idA {
		t.Fatalf("sessions share a sandbox: %v %v", idA, idB)
	}
	kept := structured(t, call(t, a, "create_sandbox", map[string]any{}))["sandbox_id"].(string)
	_ = a.Close()
	deadline := time.Now().Add(20 * time.Second)
	for st.mgr.Active() != 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	live := map[string]bool{}
	for _, info := range st.mgr.List() {
		live[string(info.ID)] = true
	}
	if live[idA.(string)] || !live[kept] || !live[idB["sandbox_id"].(string)] || len(live) != 2 {
		t.Fatalf("after session a ended, live: %v (a's default %v, a's explicit %s, b's %v)", live, idA, kept, idB["sandbox_id"])
	}
}

// TestConcurrentFirstCalls: calls racing to be a session's first make one
// default sandbox.
func TestConcurrentFirstCalls(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	cs := st.connect(t)
	var wg sync.WaitGroup
	ids := make([]string, 6)
	for i := range ids {
		wg.Go(func() {
			res, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "run_shell", Arguments: map[string]any{"command": "true"}})
			if err == nil && res.StructuredContent != nil {
				b, _ := json.Marshal(res.StructuredContent)
				var m struct {
					SandboxID string `json:"sandbox_id"`
				}
				_ = json.Unmarshal(b, &m)
				ids[i] = m.SandboxID
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("first calls used sandboxes %v", ids)
		}
	}
	if n := st.mgr.Active(); n != 1 {
		t.Fatalf("%d sandboxes live, want 1", n)
	}
}

// TestCancelStopsExecution: a client that cancels a call stops the
// execution in the sandbox; the session goes on.
func TestCancelStopsExecution(t *testing.T) {
	t.Parallel()
	st := newStack(t, nil)
	cs := st.connect(t)
	call(t, cs, "run_python", map[string]any{"code": "n = 1"})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_python",
			Arguments: map[string]any{"code": "import time\nfor i in range(600): time.sleep(0.1)", "timeout": 120}})
		done <- err
	}()
	// Wait until it runs, then cancel.
	deadline := time.Now().Add(10 * time.Second)
	for !busy(st.mgr) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("cancelled call returned no error")
	}
	deadline = time.Now().Add(10 * time.Second)
	for busy(st.mgr) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if busy(st.mgr) {
		t.Fatal("the execution still runs 10 s after its call was cancelled")
	}
	if res := call(t, cs, "run_python", map[string]any{"code": "n"}); text(res) != "1\n" {
		t.Fatalf("session after the cancel: %q %v", text(res), res.StructuredContent)
	}
}

func busy(m *session.Manager) bool {
	for _, info := range m.List() {
		if info.Busy {
			return true
		}
	}
	return false
}

// TestHTTPBehindKeys serves /mcp over real HTTP with keys: without the
// key nothing reaches the MCP server; with it the tools work, through the
// same API as everything else.
func TestHTTPBehindKeys(t *testing.T) {
	t.Parallel()
	const key = "mcp-test-key-0123456789"
	st := newStack(t, func(o *server.Options) {
		o.Keys = []string{key}
		o.MaxBodyBytes = 64 << 10
	})
	hs := httptest.NewServer(st.srv)
	t.Cleanup(hs.Close)

	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	resp, err := http.Post(hs.URL+"/mcp", "application/json", strings.NewReader(init))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/mcp without a key = %d, want 401", resp.StatusCode)
	}

	hc := &http.Client{Transport: bearer{key}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "t", Version: "1"}, nil).Connect(t.Context(),
		&mcp.StreamableClientTransport{Endpoint: hs.URL + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := call(t, cs, "run_python", map[string]any{"code": "21 * 2"})
	if text(res) != "42\n" {
		t.Fatalf("over HTTP: %q", text(res))
	}
	// The body limit holds for /mcp too: a huge call is refused, and the
	// session goes on.
	big := strings.Repeat("x", 100<<10)
	if _, err := cs.CallTool(t.Context(), &mcp.CallToolParams{Name: "run_python", Arguments: map[string]any{"code": "'" + big + "'"}}); err == nil {
		t.Fatal("a call over the body limit went through")
	}
	id := structured(t, res)["sandbox_id"].(string)
	_ = cs.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := st.mgr.Get(sandbox.ID(id)); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("default sandbox %s still live after the HTTP session ended", id)
}

type bearer struct{ key string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMountPolicy: create_sandbox goes through the API's host-directory
// policy like any client: a directory outside SANDBOX__ALLOWED_HOST_DIRS
// is refused with the rule, one inside is mounted.
func TestMountPolicy(t *testing.T) {
	t.Parallel()
	allowed, other := t.TempDir(), t.TempDir()
	st := newStack(t, func(o *server.Options) { o.AllowedHostDirs = []string{allowed} })
	cs := st.connect(t)
	res := call(t, cs, "create_sandbox", map[string]any{"workspace_path": other})
	if !res.IsError || !strings.Contains(text(res), "denied") || !strings.Contains(text(res), "SANDBOX__ALLOWED_HOST_DIRS") {
		t.Fatalf("workspace outside the allowed dirs = %q", text(res))
	}
	if n := st.mgr.Active(); n != 0 {
		t.Fatalf("%d sandboxes were made by refused calls", n)
	}
	res = call(t, cs, "create_sandbox", map[string]any{"workspace_path": allowed})
	if res.IsError {
		t.Fatalf("workspace inside the allowed dirs = %q", text(res))
	}
	id := structured(t, res)["sandbox_id"].(string)
	call(t, cs, "write_file", map[string]any{"path": "mounted.txt", "content": "yes", "sandbox_id": id})
	if b, err := os.ReadFile(filepath.Join(allowed, "mounted.txt")); err != nil || string(b) != "yes" {
		t.Fatalf("file in the mounted workspace: %q, %v", b, err)
	}
}
