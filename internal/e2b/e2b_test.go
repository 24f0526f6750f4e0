package e2b_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/e2b"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// stack is warden serve in this process: the real API handler and session
// manager over the local provider (real Python, no isolation: the layer
// under test is the E2B adapter), the E2B surface in front of it on a real
// listener, and a Warden client that bypasses the surface.
type stack struct {
	url    string
	warden *client.Client
	e2b    *e2b.Server
}

type stackOptions struct {
	keys       []string
	templates  map[string]string
	maxBody    int64
	shellCheck bool
	now        func() time.Time
}

func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	p, err := local.New(local.Options{Enabled: true, WorkspaceRoot: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Sandbox.PythonSafety = config.SwitchOff
	cfg.Sandbox.BypassShellSafety = config.SwitchOn
	if o.shellCheck {
		cfg.Sandbox.BypassShellSafety = config.SwitchOff
	}
	mgr := session.New(provider.Guard(p, cfg.Sandbox), session.Options{})
	t.Cleanup(func() {
		_ = mgr.Shutdown(context.Background())
		_ = p.Close(context.Background())
	})
	if o.maxBody == 0 {
		o.maxBody = 1 << 20
	}
	srv := server.New(server.Options{Manager: mgr, IdleTimeout: -1, MaxBodyBytes: o.maxBody, Keys: o.keys})
	c, err := client.New("http://warden.invalid", client.WithHTTPClient(&http.Client{Transport: srv.InProcess()}))
	if err != nil {
		t.Fatal(err)
	}
	es := e2b.New(e2b.Options{Client: c, Keys: o.keys, Templates: o.templates, MaxBodyBytes: o.maxBody, Now: o.now,
		KeepaliveInterval: 200 * time.Millisecond})
	ts := httptest.NewServer(es.Handler(srv))
	t.Cleanup(func() {
		ts.Close()
		es.Close()
	})
	return &stack{url: ts.URL, warden: c, e2b: es}
}

// response is an answer, read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("answer %d %s: %v", r.status, r.body, err)
	}
}

// do sends a request; headers come in pairs.
func (st *stack) do(t *testing.T, method, path string, body any, header ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	case io.Reader:
		rd = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, st.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// e2bError checks an answer in E2B's error shape.
func e2bError(t *testing.T, what string, r response, status int, contains ...string) {
	t.Helper()
	var e struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if r.status != status || json.Unmarshal(r.body, &e) != nil || e.Code != status || e.Message == "" {
		t.Errorf("%s = %d %s, want %d and {code: %d, message}", what, r.status, r.body, status, status)
		return
	}
	for _, c := range contains {
		if !strings.Contains(e.Message, c) {
			t.Errorf("%s message %q, want it to mention %q", what, e.Message, c)
		}
	}
}

// sandbox is the answer of create.
type sandbox struct {
	SandboxID          string  `json:"sandboxID"`
	TemplateID         string  `json:"templateID"`
	Alias              string  `json:"alias"`
	ClientID           string  `json:"clientID"`
	EnvdVersion        string  `json:"envdVersion"`
	EnvdAccessToken    string  `json:"envdAccessToken"`
	TrafficAccessToken string  `json:"trafficAccessToken"`
	Domain             *string `json:"domain"`
}

func (st *stack) create(t *testing.T, body any, header ...string) sandbox {
	t.Helper()
	if body == nil {
		body = map[string]any{"templateID": "base"}
	}
	r := st.do(t, "POST", "/v2/sandboxes", body, header...)
	if r.status != http.StatusCreated {
		t.Fatalf("create = %d %s, want 201", r.status, r.body)
	}
	var sb sandbox
	r.json(t, &sb)
	return sb
}

// sbx returns the data-plane headers of sb on port.
func (sb sandbox) headers(port string) []string {
	return []string{"E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", port, "X-Access-Token", sb.EnvdAccessToken}
}

var idRE = regexp.MustCompile(`^[a-z0-9]+$`)

func TestRouting(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	// Warden's own API is behind the surface, untouched.
	if r := st.do(t, "GET", "/health", nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"status":"ok"`)) {
		t.Errorf("GET /health = %d %s, want Warden's health", r.status, r.body)
	}
	if r := st.do(t, "GET", "/sandbox", nil); r.status != 200 || !bytes.Contains(r.body, []byte(`"sandboxes"`)) {
		t.Errorf("GET /sandbox = %d %s, want Warden's list", r.status, r.body)
	}
	// The data plane answers for unknown sandboxes as E2B's proxy does.
	for _, port := range []string{"49983", "49999", "8080"} {
		r := st.do(t, "GET", "/health", nil, "E2b-Sandbox-Id", "sbnothere", "E2b-Sandbox-Port", port)
		var body map[string]any
		r.json(t, &body)
		if r.status != 502 || body["sandboxId"] != "sbnothere" || body["code"] != 502.0 || body["message"] != "The sandbox was not found" {
			t.Errorf("unknown sandbox on port %s = %d %s", port, r.status, r.body)
		}
	}
	sb := st.create(t, nil)
	r := st.do(t, "GET", "/health", nil, "E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "8080")
	if r.status != 502 || !bytes.Contains(r.body, []byte(`"port":"8080"`)) || !bytes.Contains(r.body, []byte(`port is not open`)) {
		t.Errorf("closed port = %d %s, want 502 port not open", r.status, r.body)
	}
	if r := st.do(t, "GET", "/health", nil, sb.headers("49983")...); r.status != 204 {
		t.Errorf("envd /health = %d %s, want 204", r.status, r.body)
	}
	if r := st.do(t, "GET", "/health", nil, "E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49999"); r.status != 200 || string(r.body) != "\"OK\"\n" {
		t.Errorf("interpreter /health = %d %q, want 200 \"OK\"", r.status, r.body)
	}
	e2bError(t, "unknown envd route", st.do(t, "GET", "/nope", nil, sb.headers("49983")...), 404)
	e2bError(t, "unknown interpreter route", st.do(t, "GET", "/nope", nil, sb.headers("49999")...), 404)
	e2bError(t, "unknown control route", st.do(t, "GET", "/sandboxes/x/y/z", nil), 404)
	e2bError(t, "pause", st.do(t, "POST", "/sandboxes/"+sb.SandboxID+"/pause", nil), 501, "not supported")
	for _, p := range []string{"/snapshots", "/templates/t1/tags", "/volumes", "/secrets/s1"} {
		e2bError(t, p, st.do(t, "GET", p, nil), 501, "not supported")
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	const key = "e2b_0123456789abcdef0123456789abcdef01234567"
	st := newStack(t, stackOptions{keys: []string{"e2b_other", key}})
	body := map[string]any{"templateID": "base"}
	e2bError(t, "create without a key", st.do(t, "POST", "/v2/sandboxes", body), 401, "X-API-KEY")
	e2bError(t, "create with a wrong key", st.do(t, "POST", "/v2/sandboxes", body, "X-API-KEY", "e2b_wrong"), 401, "invalid")
	e2bError(t, "list with a wrong key", st.do(t, "GET", "/v2/sandboxes", nil, "X-API-KEY", key+"0"), 401)
	e2bError(t, "unknown sandbox without a key", st.do(t, "GET", "/sandboxes/sb0123456789abcdef", nil), 401)
	sb := st.create(t, body, "X-API-KEY", key)
	if r := st.do(t, "GET", "/sandboxes/"+sb.SandboxID, nil, "Authorization", "Bearer "+key); r.status != 200 {
		t.Errorf("get with a bearer key = %d %s", r.status, r.body)
	}
	// Warden's API keeps its own keys.
	if r := st.do(t, "GET", "/sandbox", nil, "X-API-KEY", key); r.status != 401 {
		t.Errorf("Warden's API with X-API-KEY only = %d, want 401", r.status)
	}
	// The data plane wants the sandbox's token, not the key.
	e2bError(t, "files without a token", st.do(t, "GET", "/files?path=a", nil, "E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49983"), 401)
	e2bError(t, "files with the key", st.do(t, "GET", "/files?path=a", nil, "E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49983", "X-Access-Token", key), 401)
	e2bError(t, "envd with the traffic header", st.do(t, "GET", "/files?path=a", nil, "E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49983",
		"E2B-Traffic-Access-Token", sb.TrafficAccessToken), 401)
	e2bError(t, "execute without a token", st.do(t, "POST", "/execute", `{"code":"1"}`, "E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49999"), 401)
	// The code interpreter's context routes send only the traffic token.
	if r := st.do(t, "GET", "/contexts", nil, "E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49999", "E2B-Traffic-Access-Token", sb.TrafficAccessToken); r.status != 200 {
		t.Errorf("contexts with the traffic token = %d %s", r.status, r.body)
	}
	other := st.create(t, body, "X-API-KEY", key)
	e2bError(t, "another sandbox's token", st.do(t, "GET", "/files?path=a", nil, "E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49983",
		"X-Access-Token", other.EnvdAccessToken), 401)
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	before := time.Now().Add(-time.Second)
	for _, path := range []string{"/v2/sandboxes", "/sandboxes"} {
		r := st.do(t, "POST", path, map[string]any{"templateID": "code-interpreter-v1", "timeout": 120,
			"metadata": map[string]string{"user": "ann"}, "envVars": map[string]string{"FOO": "bar"}})
		var sb sandbox
		r.json(t, &sb)
		if r.status != 201 || !idRE.MatchString(sb.SandboxID) || sb.TemplateID != "code-interpreter-v1" || sb.ClientID == "" ||
			sb.EnvdVersion != e2b.EnvdVersion || sb.EnvdAccessToken == "" || sb.TrafficAccessToken != sb.EnvdAccessToken ||
			!bytes.Contains(r.body, []byte(`"domain":null`)) {
			t.Fatalf("POST %s = %d %s", path, r.status, r.body)
		}
		// The ID is Warden's without its dash.
		info, err := st.warden.Get(t.Context(), "sb-"+strings.TrimPrefix(sb.SandboxID, "sb"))
		if err != nil || info.Spec.WorkspacePath == "" {
			t.Fatalf("Warden's sandbox for %s: %+v, %v", sb.SandboxID, info, err)
		}
		env, err := st.warden.Env(t.Context(), info.ID)
		if err != nil || env["FOO"] != "bar" || env["HOME"] == "" {
			t.Errorf("environment = %v, %v; want FOO=bar and HOME", env, err)
		}

		var d map[string]any
		r = st.do(t, "GET", "/sandboxes/"+sb.SandboxID, nil)
		r.json(t, &d)
		started, _ := time.Parse(time.RFC3339Nano, d["startedAt"].(string))
		end, _ := time.Parse(time.RFC3339Nano, d["endAt"].(string))
		if r.status != 200 || d["sandboxID"] != sb.SandboxID || d["state"] != "running" || d["envdVersion"] != e2b.EnvdVersion ||
			started.Before(before) || end.Sub(started).Round(time.Second) != 120*time.Second ||
			d["metadata"].(map[string]any)["user"] != "ann" || d["cpuCount"] == nil || d["memoryMB"] == nil {
			t.Errorf("GET /sandboxes/%s = %d %s", sb.SandboxID, r.status, r.body)
		}

		if r := st.do(t, "POST", "/sandboxes/"+sb.SandboxID+"/timeout", map[string]any{"timeout": 30}); r.status != 204 {
			t.Errorf("set timeout = %d %s", r.status, r.body)
		}
		st.do(t, "GET", "/sandboxes/"+sb.SandboxID, nil).json(t, &d)
		if end2, _ := time.Parse(time.RFC3339Nano, d["endAt"].(string)); end2.After(end) || time.Until(end2) > 31*time.Second {
			t.Errorf("endAt after setTimeout(30) = %v, want about 30 s from now, sooner than %v", end2, end)
		}
		for _, c := range []string{"/v2/sandboxes/" + sb.SandboxID + "/connect", "/sandboxes/" + sb.SandboxID + "/connect"} {
			r := st.do(t, "POST", c, map[string]any{"timeout": 600})
			var again sandbox
			r.json(t, &again)
			if r.status != 200 || again != sb {
				t.Errorf("POST %s = %d %s, want create's answer", c, r.status, r.body)
			}
		}
		st.do(t, "GET", "/sandboxes/"+sb.SandboxID, nil).json(t, &d)
		if end3, _ := time.Parse(time.RFC3339Nano, d["endAt"].(string)); time.Until(end3) < 590*time.Second {
			t.Errorf("endAt after connect(600) = %v, want it extended", end3)
		}
		// connect with a shorter timeout does not shorten the life.
		st.do(t, "POST", "/v2/sandboxes/"+sb.SandboxID+"/connect", map[string]any{"timeout": 5})
		st.do(t, "GET", "/sandboxes/"+sb.SandboxID, nil).json(t, &d)
		if end4, _ := time.Parse(time.RFC3339Nano, d["endAt"].(string)); time.Until(end4) < 580*time.Second {
			t.Errorf("endAt after connect(5) = %v, want it kept", end4)
		}

		for _, list := range []string{"/v2/sandboxes", "/sandboxes", "/v2/sandboxes?state=running", "/v2/sandboxes?metadata=user%3Dann"} {
			var items []map[string]any
			r := st.do(t, "GET", list, nil)
			r.json(t, &items)
			found := false
			for _, it := range items {
				found = found || it["sandboxID"] == sb.SandboxID
				if it["envdAccessToken"] != nil {
					t.Errorf("GET %s lists a token: %s", list, r.body)
				}
			}
			if r.status != 200 || !found {
				t.Errorf("GET %s = %d %s, want %s in it", list, r.status, r.body, sb.SandboxID)
			}
		}
		for _, list := range []string{"/v2/sandboxes?state=paused", "/v2/sandboxes?metadata=user%3Dbob", "/v2/sandboxes?template=base"} {
			if r := st.do(t, "GET", list, nil); r.status != 200 || strings.Contains(string(r.body), sb.SandboxID) {
				t.Errorf("GET %s = %d %s, want no %s", list, r.status, r.body, sb.SandboxID)
			}
		}

		if r := st.do(t, "DELETE", "/sandboxes/"+sb.SandboxID, nil); r.status != 204 {
			t.Errorf("kill = %d %s", r.status, r.body)
		}
		if _, err := st.warden.Get(t.Context(), info.ID); !errors.Is(err, client.ErrNotFound) {
			t.Errorf("Warden's sandbox after kill: %v, want not found", err)
		}
		e2bError(t, "kill again", st.do(t, "DELETE", "/sandboxes/"+sb.SandboxID, nil), 404)
		e2bError(t, "get after kill", st.do(t, "GET", "/sandboxes/"+sb.SandboxID, nil), 404)
		e2bError(t, "timeout after kill", st.do(t, "POST", "/sandboxes/"+sb.SandboxID+"/timeout", `{"timeout":5}`), 404)
		e2bError(t, "connect after kill", st.do(t, "POST", "/v2/sandboxes/"+sb.SandboxID+"/connect", `{}`), 404)
		r = st.do(t, "POST", "/execute", `{"code":"1"}`, sb.headers("49999")...)
		if r.status != 502 || !bytes.Contains(r.body, []byte("The sandbox was not found")) {
			t.Errorf("execute after kill = %d %s, want 502", r.status, r.body)
		}
	}
}

// A sandbox removed behind the surface's back (Warden's own API, its idle
// reaper) is not found on the control plane and not running on the data
// plane.
func TestSandboxRemovedInWarden(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	if err := st.warden.Delete(t.Context(), "sb-"+sb.SandboxID[2:]); err != nil {
		t.Fatal(err)
	}
	// The SDK's isRunning asks envd's /health: 502 is "not running".
	for _, port := range []string{"49983", "49999"} {
		if r := st.do(t, "GET", "/health", nil, sb.headers(port)...); r.status != 502 {
			t.Errorf("health on %s of a removed sandbox = %d %s, want 502", port, r.status, r.body)
		}
	}
	r := st.do(t, "GET", "/files?path=a.txt", nil, sb.headers("49983")...)
	if r.status != 502 || !bytes.Contains(r.body, []byte(`"sandboxId":"`+sb.SandboxID+`"`)) {
		t.Errorf("files of a removed sandbox = %d %s, want 502", r.status, r.body)
	}
	e2bError(t, "get of a removed sandbox", st.do(t, "GET", "/sandboxes/"+sb.SandboxID, nil), 404)
	if r := st.do(t, "GET", "/v2/sandboxes", nil); strings.Contains(string(r.body), sb.SandboxID) {
		t.Errorf("list = %s, want no removed sandbox", r.body)
	}
}

func TestTimeoutKills(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	short := st.create(t, map[string]any{"templateID": "base", "timeout": 1})
	kept := st.create(t, map[string]any{"templateID": "base", "timeout": 1})
	if r := st.do(t, "POST", "/sandboxes/"+kept.SandboxID+"/timeout", `{"timeout":60}`); r.status != 204 {
		t.Fatalf("set timeout = %d %s", r.status, r.body)
	}
	connected := st.create(t, map[string]any{"templateID": "base", "timeout": 1})
	if r := st.do(t, "POST", "/v2/sandboxes/"+connected.SandboxID+"/connect", `{"timeout":60}`); r.status != 200 {
		t.Fatalf("connect = %d %s", r.status, r.body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := st.warden.Get(t.Context(), "sb-"+short.SandboxID[2:])
		if errors.Is(err, client.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox with a 1 s timeout is still there after 10 s (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e2bError(t, "get after the timeout", st.do(t, "GET", "/sandboxes/"+short.SandboxID, nil), 404)
	for _, sb := range []sandbox{kept, connected} {
		if _, err := st.warden.Get(t.Context(), "sb-"+sb.SandboxID[2:]); err != nil {
			t.Errorf("the sandbox whose timeout was extended: %v", err)
		}
	}
	// A timeout of 0 ends the sandbox at once.
	if r := st.do(t, "POST", "/sandboxes/"+kept.SandboxID+"/timeout", `{"timeout":0}`); r.status != 204 {
		t.Fatalf("set timeout 0 = %d %s", r.status, r.body)
	}
	for deadline := time.Now().Add(10 * time.Second); st.do(t, "GET", "/sandboxes/"+kept.SandboxID, nil).status != 404; {
		if time.Now().After(deadline) {
			t.Fatal("the sandbox with timeout 0 is still there after 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCreateBadInput(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{maxBody: 4 << 10, templates: map[string]string{"data": "registry.local/data:1"}})
	for _, tt := range []struct {
		body   string
		status int
		want   []string
	}{
		{`{"templateID":`, 400, []string{"JSON"}},
		{`[1]`, 400, []string{"JSON object"}},
		{`{"templateID":"base"} {}`, 400, []string{"more than one"}},
		{`{"templateID":7}`, 400, []string{"templateID"}},
		{`{}`, 400, []string{"templateID is required"}},
		{`{"templateID":"base","timeout":-1}`, 400, []string{"timeout"}},
		{`{"templateID":"base","timeout":86401}`, 400, []string{"timeout"}},
		{`{"templateID":"base","timeout":"5"}`, 400, []string{"timeout"}},
		{`{"templateID":"base","autoPause":true}`, 400, []string{"pausing"}},
		{`{"templateID":"base","volumeMounts":[{"name":"v","path":"/data"}]}`, 400, []string{"volume"}},
		{`{"templateID":"base","network":{"denyOut":["0.0.0.0/0"]}}`, 400, []string{"network"}},
		{`{"templateID":"base","mcp":{"x":{}}}`, 400, []string{"mcp"}},
		{`{"templateID":"base","envVars":{"1BAD":"x"}}`, 400, []string{"1BAD"}},
		{`{"templateID":"nope"}`, 404, []string{`"nope"`, "base", "code-interpreter-v1", "data"}},
		// The template's image reaches Warden, which refuses another image
		// on the local provider.
		{`{"templateID":"data"}`, 400, []string{"image"}},
		{`{"templateID":"base","envVars":{"A":"` + strings.Repeat("x", 80<<10) + `"}}`, 413, []string{"larger"}},
	} {
		e2bError(t, "create "+tt.body[:min(len(tt.body), 60)], st.do(t, "POST", "/v2/sandboxes", tt.body), tt.status, tt.want...)
	}
	for _, tt := range []struct{ path, body string }{
		{"/timeout", `{"timeout":-5}`}, {"/timeout", `{}`}, {"/timeout", ``}, {"/timeout", `{"timeout":`},
		{"/connect", `{"timeout":1e9}`}, {"/connect", `"x"`},
	} {
		sb := st.create(t, nil)
		e2bError(t, tt.path+" "+tt.body, st.do(t, "POST", "/sandboxes/"+sb.SandboxID+tt.path, tt.body), 400)
	}
	for _, q := range []string{"state=gone", "limit=0", "limit=x", "nextToken=-1", "order=up", "metadata=a%3Db%25zz", "startedAfter=yesterday"} {
		e2bError(t, "list "+q, st.do(t, "GET", "/v2/sandboxes?"+q, nil), 400)
	}
	if n := len(st.list(t, "")); n != 6 {
		t.Errorf("%d sandboxes live, want only the 6 made for the timeout and connect cases", n)
	}
}

func (st *stack) list(t *testing.T, query string) []map[string]any {
	t.Helper()
	var items []map[string]any
	r := st.do(t, "GET", "/v2/sandboxes"+query, nil)
	if r.status != 200 {
		t.Fatalf("list%s = %d %s", query, r.status, r.body)
	}
	r.json(t, &items)
	return items
}

func TestListPages(t *testing.T) {
	t.Parallel()
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	st := newStack(t, stackOptions{now: func() time.Time { return time.Unix(0, clock.Add(int64(time.Second))) }})
	var ids []string
	for range 3 {
		ids = append(ids, st.create(t, nil).SandboxID)
	}
	r := st.do(t, "GET", "/v2/sandboxes?limit=2", nil)
	var page []map[string]any
	r.json(t, &page)
	next := r.header.Get("X-Next-Token")
	if len(page) != 2 || page[0]["sandboxID"] != ids[0] || page[1]["sandboxID"] != ids[1] || next == "" {
		t.Fatalf("first page = %s, next %q", r.body, next)
	}
	r = st.do(t, "GET", "/v2/sandboxes?limit=2&nextToken="+next, nil)
	r.json(t, &page)
	if len(page) != 1 || page[0]["sandboxID"] != ids[2] || r.header.Get("X-Next-Token") != "" {
		t.Fatalf("second page = %s, next %q", r.body, r.header.Get("X-Next-Token"))
	}
	if got := st.list(t, "?order=desc"); len(got) != 3 || got[0]["sandboxID"] != ids[2] {
		t.Errorf("desc = %v", got)
	}
}

// multipartBody builds a form with a "file" part per path.
func multipartBody(t *testing.T, files map[string]string, order ...string) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range order {
		fw, err := mw.CreateFormFile("file", p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write([]byte(files[p]))
	}
	_ = mw.Close()
	return mw.FormDataContentType(), &buf
}

func TestFilesREST(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{maxBody: 64 << 10})
	sb := st.create(t, nil)
	h := sb.headers("49983")
	with := func(extra ...string) []string { return append(append([]string{}, h...), extra...) }

	// multipart, the SDK's default: the file name is the whole path.
	ct, body := multipartBody(t, map[string]string{"/home/user/dir/a.txt": "hello file"}, "/home/user/dir/a.txt")
	r := st.do(t, "POST", "/files?path=%2Fhome%2Fuser%2Fdir%2Fa.txt", body, with("Content-Type", ct)...)
	if r.status != 200 || string(r.body) != `[{"path":"/home/user/dir/a.txt","name":"a.txt","type":"file"}]`+"\n" {
		t.Fatalf("POST /files (multipart) = %d %s", r.status, r.body)
	}
	if r := st.do(t, "GET", "/files?path=%2Fhome%2Fuser%2Fdir%2Fa.txt", nil, h...); r.status != 200 || string(r.body) != "hello file" ||
		r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("GET /files = %d %q %v", r.status, r.body, r.header)
	}
	// Relative paths are relative to the home directory, where Python
	// runs: the SDK's files are the code's.
	if r := st.do(t, "GET", "/files?path=dir/a.txt", nil, h...); string(r.body) != "hello file" {
		t.Errorf("GET relative = %d %q", r.status, r.body)
	}
	if got := st.execute(t, sb, `{"code":"open('dir/a.txt').read()"}`); !strings.Contains(got, `"text":"hello file"`) {
		t.Errorf("code reading the SDK's file: %s", got)
	}
	// several files without a query path; then octet-stream and gzip.
	ct, body = multipartBody(t, map[string]string{"b.txt": "B", "/home/user/c/d.txt": "D"}, "b.txt", "/home/user/c/d.txt")
	r = st.do(t, "POST", "/files", body, with("Content-Type", ct)...)
	if r.status != 200 || string(r.body) != `[{"path":"/home/user/b.txt","name":"b.txt","type":"file"},{"path":"/home/user/c/d.txt","name":"d.txt","type":"file"}]`+"\n" {
		t.Errorf("POST /files with two files = %d %s", r.status, r.body)
	}
	r = st.do(t, "POST", "/files?path=raw.bin", []byte{0, 1, 2, 255}, with("Content-Type", "application/octet-stream")...)
	if r.status != 200 || !bytes.Contains(r.body, []byte(`"path":"/home/user/raw.bin"`)) {
		t.Errorf("POST /files octet-stream = %d %s", r.status, r.body)
	}
	if r := st.do(t, "GET", "/files?path=raw.bin", nil, h...); !bytes.Equal(r.body, []byte{0, 1, 2, 255}) {
		t.Errorf("GET raw.bin = %v", r.body)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("zipped"))
	_ = zw.Close()
	r = st.do(t, "POST", "/files?path=z.txt", gz.Bytes(), with("Content-Type", "application/octet-stream", "Content-Encoding", "gzip")...)
	if got := st.do(t, "GET", "/files?path=z.txt", nil, h...); r.status != 200 || string(got.body) != "zipped" {
		t.Errorf("gzip upload = %d %s, read back %q", r.status, r.body, got.body)
	}
	if r := st.do(t, "GET", "/files?path=empty", nil, h...); r.status != 404 {
		t.Errorf("GET missing = %d", r.status)
	}
	st.do(t, "POST", "/files?path=empty", "", with("Content-Type", "application/octet-stream")...)
	if r := st.do(t, "GET", "/files?path=empty", nil, h...); r.status != 200 || len(r.body) != 0 {
		t.Errorf("GET empty file = %d %q", r.status, r.body)
	}

	for _, tt := range []struct {
		name, method, path string
		body               any
		header             []string
		status             int
		want               string
	}{
		{"missing file", "GET", "/files?path=nope.txt", nil, h, 404, "/home/user/nope.txt"},
		{"a directory", "GET", "/files?path=dir", nil, h, 400, "directory"},
		{"the home directory", "GET", "/files?path=%2Fhome%2Fuser", nil, h, 400, "directory"},
		{"no path", "GET", "/files", nil, h, 400, "path"},
		{"outside home", "GET", "/files?path=%2Fetc%2Fpasswd", nil, h, 400, "outside /home/user"},
		{"dot-dot", "GET", "/files?path=..%2F..%2Fetc%2Fpasswd", nil, h, 400, "outside"},
		{"another user", "GET", "/files?path=a&username=root", nil, h, 400, "root"},
		{"write outside", "POST", "/files?path=%2Ftmp%2Fx", "x", with("Content-Type", "application/octet-stream"), 400, "outside"},
		{"write over a directory", "POST", "/files?path=dir", "x", with("Content-Type", "application/octet-stream"), 400, "dir"},
		{"octet-stream without path", "POST", "/files", "x", with("Content-Type", "application/octet-stream"), 400, "path"},
		{"no content type", "POST", "/files?path=x", "x", with("Content-Type", ""), 400, "Content-Type"},
		{"text/plain", "POST", "/files?path=x", "x", with("Content-Type", "text/plain"), 400, "Content-Type"},
		{"bad gzip", "POST", "/files?path=x", "not gzip", with("Content-Type", "application/octet-stream", "Content-Encoding", "gzip"), 400, "gzip"},
		{"brotli", "POST", "/files?path=x", "x", with("Content-Type", "application/octet-stream", "Content-Encoding", "br"), 400, "br"},
		{"metadata", "POST", "/files?path=x", "x", with("Content-Type", "application/octet-stream", "X-Metadata-Owner", "me"), 400, "metadata"},
		{"broken multipart", "POST", "/files?path=x", "--zz\r\nnot a part", with("Content-Type", "multipart/form-data; boundary=zz"), 400, "multipart"},
		{"multipart without boundary", "POST", "/files?path=x", "x", with("Content-Type", "multipart/form-data"), 400, "multipart"},
		{"huge octet-stream", "POST", "/files?path=big", strings.Repeat("x", 200<<10), with("Content-Type", "application/octet-stream"), 413, "larger"},
	} {
		e2bError(t, tt.name, st.do(t, tt.method, tt.path, tt.body, tt.header...), tt.status, tt.want)
	}
	ct, body = multipartBody(t, map[string]string{"x": "1", "y": "2"}, "x", "y")
	e2bError(t, "two files and a query path", st.do(t, "POST", "/files?path=x", body, with("Content-Type", ct)...), 400, "one file")
	var empty bytes.Buffer
	mw := multipart.NewWriter(&empty)
	_ = mw.WriteField("other", "v")
	_ = mw.Close()
	e2bError(t, "no file part", st.do(t, "POST", "/files?path=x", &empty, with("Content-Type", mw.FormDataContentType())...), 400, "no \"file\" part")
	ct, body = multipartBody(t, map[string]string{"big": strings.Repeat("y", 200<<10)}, "big")
	e2bError(t, "huge multipart", st.do(t, "POST", "/files", body, with("Content-Type", ct)...), 413)
}

// execute runs /execute and returns the NDJSON answer.
func (st *stack) execute(t *testing.T, sb sandbox, body string) string {
	t.Helper()
	r := st.do(t, "POST", "/execute", body, sb.headers("49999")...)
	if r.status != 200 {
		t.Fatalf("execute %s = %d %s", body, r.status, r.body)
	}
	return string(r.body)
}

// lines splits an NDJSON answer, checking that each line is an object with
// a type.
func lines(t *testing.T, body string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil || m["type"] == nil {
			t.Fatalf("line %q of %s: %v", sc.Text(), body, err)
		}
		out = append(out, m)
	}
	return out
}

func types(ls []map[string]any) string {
	var ts []string
	for _, l := range ls {
		ts = append(ts, l["type"].(string))
	}
	return strings.Join(ts, ",")
}

func TestExecute(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, map[string]any{"templateID": "code-interpreter-v1", "envVars": map[string]string{"GREETING": "hi"}})

	ls := lines(t, st.execute(t, sb, `{"code":"x = 40\nprint('out')\nimport sys; print('err', file=sys.stderr)\nx + 2"}`))
	if types(ls) != "number_of_executions,stdout,stderr,result,end_of_execution" {
		t.Fatalf("lines %s: %v", types(ls), ls)
	}
	if ls[0]["execution_count"] != 1.0 || ls[1]["text"] != "out\n" || ls[2]["text"] != "err\n" || ls[1]["timestamp"] == nil ||
		ls[3]["text"] != "42" || ls[3]["is_main_result"] != true {
		t.Errorf("lines = %v", ls)
	}
	// State persists; a str's repr loses its quotes, as in E2B; the
	// environment is the sandbox's.
	ls = lines(t, st.execute(t, sb, `{"code":"import os\nstr(x) + os.environ['GREETING'] + os.environ['HOME'][:1]","context_id":"default"}`))
	if ls[0]["execution_count"] != 2.0 || ls[1]["text"] != "40hi/" {
		t.Errorf("second cell = %v", ls)
	}
	// An exception: its traceback is on stderr too, as Warden's Python
	// prints it.
	ls = lines(t, st.execute(t, sb, `{"code":"y = 1\n1/0","language":"python"}`))
	if l := ls[len(ls)-2]; !strings.HasSuffix(types(ls), ",error,end_of_execution") || l["name"] != "ZeroDivisionError" ||
		l["value"] != "division by zero" || !strings.Contains(l["traceback"].(string), "ZeroDivisionError") {
		t.Errorf("exception = %v", ls)
	}
	// Rich outputs: a display() and a final expression with a rich form.
	code := `class R:
    def _repr_html_(self): return "<b>r</b>"
    def _repr_json_(self): return {"k": [1, 2]}
    def _repr_png_(self): return b"\x89PNG"
    def __repr__(self): return "R()"
display(R())
R()`
	body, _ := json.Marshal(map[string]string{"code": code})
	ls = lines(t, st.execute(t, sb, string(body)))
	if types(ls) != "number_of_executions,result,result,end_of_execution" {
		t.Fatalf("rich lines %s: %v", types(ls), ls)
	}
	for i, main := range []bool{false, true} {
		l := ls[1+i]
		if l["is_main_result"] != main || l["html"] != "<b>r</b>" || l["text"] != "R()" || l["png"] != "iVBORw==" {
			t.Errorf("result %d = %v", i, l)
		}
		if j, _ := json.Marshal(l["json"]); string(j) != `{"k":[1,2]}` {
			t.Errorf("result %d json = %s, want an object", i, j)
		}
	}
	ls = lines(t, st.execute(t, sb, `{"code":"import sys; sys.exit(3)"}`))
	if types(ls) != "number_of_executions,error,end_of_execution" || ls[1]["name"] != "SystemExit" {
		t.Errorf("sys.exit(3) = %v", ls)
	}

	// bash: a command, stateless, with per-command variables.
	ls = lines(t, st.execute(t, sb, `{"code":"echo $GREETING $ONE; exit 2","language":"bash","env_vars":{"ONE":"1"}}`))
	if types(ls) != "number_of_executions,stdout,error,end_of_execution" || !strings.HasPrefix(ls[1]["text"].(string), "hi 1\n") ||
		ls[2]["name"] != "CommandExitError" {
		t.Errorf("bash = %v", ls)
	}

	for _, tt := range []struct {
		body   string
		status int
		want   string
	}{
		{`{"code":"1","context_id":"default","language":"python"}`, 400, "not both"},
		{`{"code":"1","context_id":"ctx2"}`, 404, "ctx2"},
		{`{"code":"1","language":"r"}`, 400, `"r"`},
		{`{"code":"1","env_vars":{"A":"1"}}`, 400, "env_vars"},
		{`{"context_id":"default"}`, 400, "code"},
		{`{"code":`, 400, "JSON"},
		{``, 400, "empty"},
		{`{"code":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "larger"},
	} {
		e2bError(t, "execute "+tt.body[:min(len(tt.body), 50)], st.do(t, "POST", "/execute", tt.body, sb.headers("49999")...), tt.status, tt.want)
	}
}

func TestExecutePolicyRefusal(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{shellCheck: true})
	sb := st.create(t, nil)
	e2bError(t, "refused shell", st.do(t, "POST", "/execute", `{"code":"rm -rf /","language":"bash"}`, sb.headers("49999")...), 403, "rm")
	e2bError(t, "refused variable", st.do(t, "POST", "/v2/sandboxes", `{"templateID":"base","envVars":{"LD_PRELOAD":"/x.so"}}`), 403, "LD_PRELOAD")
}

// A client that leaves stops its execution: the next one runs at once
// instead of waiting behind it.
func TestExecuteDisconnect(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", st.url+"/execute", strings.NewReader(`{"code":"print('going', flush=True)\nimport time\ntime.sleep(60)"}`))
	for i := 0; i < 6; i += 2 {
		req.Header.Set(sb.headers("49999")[i], sb.headers("49999")[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	if !strings.Contains(line, "number_of_executions") {
		t.Fatalf("first line %q", line)
	}
	cancel()
	resp.Body.Close()
	start := time.Now()
	ls := lines(t, st.execute(t, sb, `{"code":"'after'"}`))
	if d := time.Since(start); d > 20*time.Second || ls[1]["text"] != "after" {
		t.Errorf("the next execution took %v: %v", d, ls)
	}
}

func TestContexts(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	traffic := []string{"E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49999", "E2B-Traffic-Access-Token", sb.TrafficAccessToken}
	r := st.do(t, "GET", "/contexts", nil, traffic...)
	if r.status != 200 || string(r.body) != `[{"id":"default","language":"python","cwd":"/home/user"}]`+"\n" {
		t.Errorf("GET /contexts = %d %s", r.status, r.body)
	}
	e2bError(t, "new context", st.do(t, "POST", "/contexts", `{"language":"python","cwd":"/home/user"}`, traffic...), 501, "one Python session")
	e2bError(t, "new context, bad JSON", st.do(t, "POST", "/contexts", `{`, traffic...), 400)
	e2bError(t, "remove default", st.do(t, "DELETE", "/contexts/default", nil, traffic...), 501)
	e2bError(t, "restart default", st.do(t, "POST", "/contexts/default/restart", nil, traffic...), 501)
	e2bError(t, "remove unknown", st.do(t, "DELETE", "/contexts/nope", nil, traffic...), 404)
	e2bError(t, "restart unknown", st.do(t, "POST", "/contexts/nope/restart", nil, traffic...), 404)
}
