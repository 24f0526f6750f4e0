package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/policy"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

func TestHealthAndStatus(t *testing.T) {
	t.Parallel()
	type status struct {
		Status          string `json:"status"`
		DockerAvailable bool   `json:"docker_available"`
		ActiveSandboxes int    `json:"active_sandboxes"`
		Provider        *struct {
			Name      string `json:"name"`
			Isolation string `json:"isolation"`
		} `json:"provider"`
		Warning *string `json:"warning"`
	}
	type health struct {
		Status          string   `json:"status"`
		Version         string   `json:"version"`
		UptimeSeconds   *float64 `json:"uptime_seconds"`
		SandboxMode     string   `json:"sandbox_mode"`
		ActiveSandboxes *int     `json:"active_sandboxes"`
	}
	tests := []struct {
		name         string
		setup        setup
		wantMode     string
		wantProvider string
		wantWarning  string
		wantDocker   bool
	}{
		{name: "fake is mock", setup: setup{}, wantMode: "mock", wantProvider: "fake", wantWarning: session.MockWarning},
		{name: "disabled", setup: setup{disabled: true}, wantMode: "disabled"},
		{name: "status func", wantMode: "docker", wantProvider: "docker", wantDocker: true, setup: setup{
			status: func(context.Context) server.StatusInfo {
				return server.StatusInfo{Mode: session.ModeDocker, Provider: "docker", Isolation: sandbox.IsolationContainer, DockerAvailable: true}
			},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, tt.setup)
			if !tt.setup.disabled {
				ts.create(t, nil)
			}
			wantActive := 1
			if tt.setup.disabled {
				wantActive = 0
			}

			resp := ts.do(t, "GET", "/health", nil)
			if resp.status != http.StatusOK {
				t.Fatalf("GET /health = %d %s, want 200", resp.status, resp.body)
			}
			h := decode[health](t, resp)
			if h.Status != "ok" || h.Version != "test-version" || h.UptimeSeconds == nil || h.SandboxMode != tt.wantMode ||
				h.ActiveSandboxes == nil || *h.ActiveSandboxes != wantActive {
				t.Errorf("GET /health = %s, want ok, test-version, mode %s, %d active", resp.body, tt.wantMode, wantActive)
			}

			resp = ts.do(t, "GET", "/sandbox/status", nil)
			if resp.status != http.StatusOK {
				t.Fatalf("GET /sandbox/status = %d %s, want 200", resp.status, resp.body)
			}
			s := decode[status](t, resp)
			if s.Status != tt.wantMode || s.ActiveSandboxes != wantActive || s.DockerAvailable != tt.wantDocker {
				t.Errorf("GET /sandbox/status = %s, want mode %s, %d active, docker_available %v", resp.body, tt.wantMode, wantActive, tt.wantDocker)
			}
			switch {
			case tt.wantProvider == "" && s.Provider != nil:
				t.Errorf("GET /sandbox/status provider = %+v, want null", *s.Provider)
			case tt.wantProvider != "" && (s.Provider == nil || s.Provider.Name != tt.wantProvider):
				t.Errorf("GET /sandbox/status = %s, want provider %s", resp.body, tt.wantProvider)
			}
			if got := ptrValue(s.Warning); got != tt.wantWarning {
				t.Errorf("GET /sandbox/status warning = %q, want %q", got, tt.wantWarning)
			}
			if tt.wantWarning == "" && strings.Contains(string(resp.body), "warning") {
				t.Errorf("GET /sandbox/status = %s, want no warning key", resp.body)
			}
		})
	}
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func TestDockerInfo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		info  func(context.Context) api.DockerInfo
		want  map[string]any
		extra []string
	}{
		{
			name: "not configured",
			want: map[string]any{"available": false, "status": "unavailable"},
		},
		{
			name: "connected",
			info: func(context.Context) api.DockerInfo {
				return api.DockerInfo{Available: true, Status: "connected", Version: "24.0.0", APIVersion: "1.43",
					Message: "Docker daemon is running", OS: "linux"}
			},
			want: map[string]any{"available": true, "status": "connected", "version": "24.0.0", "api_version": "1.43",
				"message": "Docker daemon is running", "os": "linux"},
		},
		{
			name: "unavailable is still 200",
			info: func(context.Context) api.DockerInfo {
				return api.DockerInfo{Status: "unavailable", Message: "Docker daemon is not available"}
			},
			want: map[string]any{"available": false, "status": "unavailable", "version": "", "api_version": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, setup{dockerInfo: tt.info})
			resp := ts.do(t, "GET", "/sandbox/docker-info", nil)
			if resp.status != http.StatusOK {
				t.Fatalf("GET /sandbox/docker-info = %d, want 200", resp.status)
			}
			got := decode[map[string]any](t, resp)
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("GET /sandbox/docker-info [%s] = %v, want %v", k, got[k], v)
				}
			}
			for _, k := range []string{"available", "status", "version", "api_version", "message"} {
				if _, ok := got[k]; !ok {
					t.Errorf("GET /sandbox/docker-info has no %q: %s", k, resp.body)
				}
			}
		})
	}
}

func TestCreateSandbox(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	ro, rw := t.TempDir(), t.TempDir()
	defaults := sandbox.Spec{Image: "configured:image", Env: map[string]string{"FROM_CONFIG": "1"}}.WithDefaults()
	tests := []struct {
		name     string
		query    string
		body     any
		wantIdle float64
		check    func(t *testing.T, s sandbox.Spec)
	}{
		{
			name: "empty body takes the defaults",
			check: func(t *testing.T, s sandbox.Spec) {
				if s.Image != "configured:image" || s.MemoryLimit != sandbox.DefaultMemoryLimit || s.Env["FROM_CONFIG"] != "1" {
					t.Errorf("spec = %+v, want the configured defaults", s)
				}
			},
		},
		{
			name: "every JSON field",
			body: map[string]any{
				"image": "other:1", "memory_limit": "256m", "cpu_limit": 0.5, "pids_limit": 64, "timeout": 30,
				"idle_timeout": 90, "enable_network": true, "environment_variables": map[string]string{"A": "x"},
				"additional_read_dirs": []string{ro}, "additional_write_dirs": []string{rw}, "workspace_path": ws,
			},
			wantIdle: 90,
			check: func(t *testing.T, s sandbox.Spec) {
				want := sandbox.Spec{
					Image: "other:1", MemoryLimit: 256 << 20, CPULimit: 0.5, PidsLimit: 64, Timeout: 30 * time.Second,
					Network: true, WorkspaceDir: ws,
				}
				got := sandbox.Spec{Image: s.Image, MemoryLimit: s.MemoryLimit, CPULimit: s.CPULimit, PidsLimit: s.PidsLimit,
					Timeout: s.Timeout, Network: s.Network, WorkspaceDir: s.WorkspaceDir}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("spec = %+v, want %+v", got, want)
				}
				if s.Env["A"] != "x" || s.Env["FROM_CONFIG"] != "1" {
					t.Errorf("spec env = %v, want A=x on top of FROM_CONFIG=1", s.Env)
				}
				wantMounts := []sandbox.Mount{{Source: ro, Target: ro, ReadOnly: true}, {Source: rw, Target: rw}}
				if !slices.Equal(s.Mounts, wantMounts) {
					t.Errorf("spec mounts = %+v, want %+v", s.Mounts, wantMounts)
				}
			},
		},
		{
			name: "memory_limit in bytes",
			body: map[string]any{"memory_limit": 64 << 20},
			check: func(t *testing.T, s sandbox.Spec) {
				if s.MemoryLimit != 64<<20 {
					t.Errorf("spec memory_limit = %d, want %d", s.MemoryLimit, 64<<20)
				}
			},
		},
		{
			name:     "query form",
			query:    "?" + url.Values{"workspace_path": {ws}, "memory_limit": {"128m"}, "enable_network": {"true"}, "environment_variables": {"B=y=z"}, "idle_timeout": {"5.5"}, "additional_read_dirs": {ro}}.Encode(),
			wantIdle: 5.5,
			check: func(t *testing.T, s sandbox.Spec) {
				if s.WorkspaceDir != ws || s.MemoryLimit != 128<<20 || !s.Network || s.Env["B"] != "y=z" ||
					!slices.Equal(s.Mounts, []sandbox.Mount{{Source: ro, Target: ro, ReadOnly: true}}) {
					t.Errorf("spec = %+v, want the query's settings", s)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newServer(t, setup{defaults: defaults, provider: capableProvider{&sandboxtest.Fake{}}})
			resp := ts.do(t, "POST", "/sandbox/create"+tt.query, tt.body)
			if resp.status != http.StatusCreated {
				t.Fatalf("POST /sandbox/create = %d %s, want 201", resp.status, resp.body)
			}
			info := decode[session.Info](t, resp)
			if err := sandbox.ValidateID(string(info.ID)); err != nil || info.Provider != "fake" || info.Status != "running" {
				t.Errorf("POST /sandbox/create = %s, want a valid id, provider fake, status running", resp.body)
			}
			if loc := resp.header.Get("Location"); loc != "/sandbox/"+string(info.ID) {
				t.Errorf("Location = %q, want /sandbox/%s", loc, info.ID)
			}
			if info.IdleTimeoutSeconds != tt.wantIdle {
				t.Errorf("idle_timeout_seconds = %v, want %v", info.IdleTimeoutSeconds, tt.wantIdle)
			}
			// Environment values stay out of descriptions; /env has them.
			if strings.Contains(string(resp.body), "FROM_CONFIG") {
				t.Errorf("POST /sandbox/create = %s, leaks environment variables", resp.body)
			}
			env := decode[struct {
				Env map[string]string `json:"environment_variables"`
			}](t, ts.do(t, "GET", "/sandbox/"+string(info.ID)+"/env", nil))
			info.Spec.Env = env.Env
			tt.check(t, info.Spec)
			for _, key := range []string{`"id"`, `"provider"`, `"status"`, `"image"`, `"created_at"`, `"last_used_at"`,
				`"idle_timeout_seconds"`, `"executions"`, `"busy"`, `"spec"`} {
				if !strings.Contains(string(resp.body), key) {
					t.Errorf("POST /sandbox/create = %s, want key %s", resp.body, key)
				}
			}
		})
	}
}

func TestCreateSandboxInvalid(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{provider: capableProvider{&sandboxtest.Fake{}}})
	tests := []struct {
		name  string
		query string
		body  string
		want  []string // substrings of the message
	}{
		{name: "bad JSON", body: `{"image":`, want: []string{"JSON"}},
		{name: "syntax error", body: `{"image" "x"}`, want: []string{"invalid JSON"}},
		{name: "not an object", body: `[1]`, want: []string{"JSON object"}},
		{name: "unknown field", body: `{"imagee":"x"}`, want: []string{`"imagee"`}},
		{name: "wrong type", body: `{"cpu_limit":"lots"}`, want: []string{"cpu_limit", "number"}},
		{name: "two values", body: `{} {}`, want: []string{"more than one"}},
		{name: "bad memory", body: `{"memory_limit":"lots"}`, want: []string{"memory_limit"}},
		{name: "fractional memory", body: `{"memory_limit":1.5}`, want: []string{"memory_limit"}},
		{name: "memory too small", body: `{"memory_limit":"1k"}`, want: []string{"memory_limit"}},
		{name: "timeout zero", body: `{"timeout":0}`, want: []string{"timeout"}},
		{name: "timeout too long", body: `{"timeout":3601}`, want: []string{"timeout"}},
		{name: "idle negative", body: `{"idle_timeout":-1}`, want: []string{"idle_timeout"}},
		{name: "relative workspace", body: `{"workspace_path":"rel/dir"}`, want: []string{"workspace_dir"}},
		{name: "mount over /etc", body: `{"additional_read_dirs":["/etc"]}`, want: []string{"/etc"}},
		{name: "bad env name", body: `{"environment_variables":{"1X":"v"}}`, want: []string{"1X"}},
		{
			name: "every problem at once",
			body: `{"cpu_limit":0,"pids_limit":1,"timeout":-3,"memory_limit":"x"}`,
			want: []string{"cpu_limit", "pids_limit", "timeout", "memory_limit"},
		},
		{name: "query and body", query: "?image=x", body: `{"image":"y"}`, want: []string{"both"}},
		{name: "unknown query parameter", query: "?imag=x", want: []string{`"imag"`}},
		{name: "bad query number", query: "?cpu_limit=abc&pids_limit=x", want: []string{"cpu_limit", "pids_limit"}},
		{name: "query env without =", query: "?environment_variables=A", want: []string{"NAME=value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp := ts.do(t, "POST", "/sandbox/create"+tt.query, tt.body)
			e := wantError(t, "POST /sandbox/create "+tt.query+" "+tt.body, resp, http.StatusBadRequest, "invalid")
			for _, w := range tt.want {
				if !strings.Contains(e.Error.Message, w) {
					t.Errorf("POST /sandbox/create %s%s message = %q, want it to mention %q", tt.query, tt.body, e.Error.Message, w)
				}
			}
		})
	}
	if n := ts.mgr.Active(); n != 0 {
		t.Errorf("Active() = %d after invalid creates, want 0", n)
	}
}

// A provider that cannot enforce a setting refuses it instead of dropping
// it silently.
func TestCreateSandboxUnsupported(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{provider: limitedProvider{&sandboxtest.Fake{}}})
	for _, body := range []string{`{"memory_limit":"1g"}`, `{"enable_network":false}`, `{"additional_read_dirs":["/data"]}`, `{"image":"x"}`} {
		resp := ts.do(t, "POST", "/sandbox/create", body)
		e := wantError(t, "POST /sandbox/create "+body, resp, http.StatusBadRequest, "invalid")
		if !strings.Contains(e.Error.Message, "cannot enforce") {
			t.Errorf("POST /sandbox/create %s message = %q, want it to say the provider cannot enforce it", body, e.Error.Message)
		}
	}
	// What it can do still works, and naming the default image is not
	// asking for anything.
	ts.create(t, `{"image":"`+sandbox.DefaultImage+`"}`)
}

// capableProvider claims to enforce every setting.
type capableProvider struct{ *sandboxtest.Fake }

func (capableProvider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Isolation: sandbox.IsolationContainer, NetworkToggle: true, MemoryLimit: true,
		CPULimit: true, PidsLimit: true, Mounts: true, Images: true}
}

// limitedProvider promises nothing beyond running code.
type limitedProvider struct{ *sandboxtest.Fake }

func (limitedProvider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{Isolation: sandbox.IsolationNamespace}
}

func TestListGetDelete(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	a := ts.create(t, nil)
	b := ts.create(t, nil)

	resp := ts.do(t, "GET", "/sandbox", nil)
	if resp.status != http.StatusOK {
		t.Fatalf("GET /sandbox = %d, want 200", resp.status)
	}
	list := decode[struct {
		Sandboxes []session.Info `json:"sandboxes"`
	}](t, resp)
	var ids []sandbox.ID
	for _, s := range list.Sandboxes {
		ids = append(ids, s.ID)
	}
	if !slices.Equal(ids, []sandbox.ID{a, b}) {
		t.Errorf("GET /sandbox ids = %v, want %v", ids, []sandbox.ID{a, b})
	}

	resp = ts.do(t, "GET", "/sandbox/"+string(a), nil)
	if got := decode[session.Info](t, resp); resp.status != http.StatusOK || got.ID != a {
		t.Errorf("GET /sandbox/%s = %d %s, want 200 with that id", a, resp.status, resp.body)
	}

	resp = ts.do(t, "DELETE", "/sandbox/"+string(a), nil)
	if resp.status != http.StatusOK {
		t.Fatalf("DELETE /sandbox/%s = %d %s, want 200", a, resp.status, resp.body)
	}
	if got := decode[map[string]string](t, resp); got["id"] != string(a) || got["status"] != "destroyed" {
		t.Errorf("DELETE /sandbox/%s = %s, want id and status destroyed", a, resp.body)
	}
	for _, req := range []string{"GET /sandbox/" + string(a), "DELETE /sandbox/" + string(a)} {
		method, path, _ := strings.Cut(req, " ")
		wantError(t, req+" after delete", ts.do(t, method, path, nil), http.StatusNotFound, "not_found")
	}
	resp = ts.do(t, "GET", "/sandbox", nil)
	if n := len(decode[map[string][]any](t, resp)["sandboxes"]); n != 1 {
		t.Errorf("GET /sandbox after a delete lists %d sandboxes, want 1", n)
	}

	// An empty list is [] rather than null.
	ts.do(t, "DELETE", "/sandbox/"+string(b), nil)
	if resp := ts.do(t, "GET", "/sandbox", nil); !strings.Contains(string(resp.body), `"sandboxes":[]`) {
		t.Errorf("GET /sandbox with none = %s, want an empty array", resp.body)
	}
}

func TestErrorStatuses(t *testing.T) {
	t.Parallel()
	denied := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		return sandbox.ExecResult{}, fmt.Errorf("checking code: %w", &policy.PolicyError{Rule: "no-rm-rf", Reason: "deletes the workspace"})
	}}
	broken := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		return sandbox.ExecResult{}, fmt.Errorf("talking to the agent: secret-internal-detail")
	}}
	const unknown = "/sandbox/sb-0000000000000000"
	exec := `{"language":"python","code":"1"}`
	tests := []struct {
		name       string
		setup      setup
		create     bool // create a sandbox first; "{id}" in path names it
		method     string
		path       string
		body       string
		header     []string
		wantStatus int
		wantCode   string
	}{
		{name: "bad JSON", create: true, method: "POST", path: "/sandbox/{id}/execute", body: `{"code":`, wantStatus: 400, wantCode: "invalid"},
		{name: "empty execute body", create: true, method: "POST", path: "/sandbox/{id}/execute", wantStatus: 400, wantCode: "invalid"},
		{name: "bad sandbox id", method: "GET", path: "/sandbox/-bad", wantStatus: 400, wantCode: "invalid"},
		{name: "missing key", setup: setup{keys: []string{"k1"}}, method: "GET", path: "/sandbox", wantStatus: 401, wantCode: "unauthorized"},
		{name: "wrong key", setup: setup{keys: []string{"k1"}}, method: "GET", path: "/sandbox", header: []string{"Authorization", "Bearer k2"}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "not bearer", setup: setup{keys: []string{"k1"}}, method: "GET", path: "/sandbox", header: []string{"Authorization", "Basic k1"}, wantStatus: 401, wantCode: "unauthorized"},
		{name: "key on unknown route", setup: setup{keys: []string{"k1"}}, method: "GET", path: "/nope", wantStatus: 401, wantCode: "unauthorized"},
		{name: "policy", setup: setup{fake: denied}, create: true, method: "POST", path: "/sandbox/{id}/execute", body: exec, wantStatus: 403, wantCode: "denied"},
		{name: "unknown sandbox", method: "GET", path: unknown, wantStatus: 404, wantCode: "not_found"},
		{name: "delete unknown sandbox", method: "DELETE", path: unknown, wantStatus: 404, wantCode: "not_found"},
		{name: "execute unknown sandbox", method: "POST", path: unknown + "/execute", body: exec, wantStatus: 404, wantCode: "not_found"},
		{name: "env of unknown sandbox", method: "GET", path: unknown + "/env", wantStatus: 404, wantCode: "not_found"},
		{name: "files of unknown sandbox", method: "GET", path: unknown + "/files/list", wantStatus: 404, wantCode: "not_found"},
		{name: "unknown route", method: "GET", path: "/nope", wantStatus: 404, wantCode: "not_found"},
		{name: "trailing slash", method: "GET", path: "/sandbox/", wantStatus: 404, wantCode: "not_found"},
		{name: "wrong method", method: "PUT", path: "/health", wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "wrong method on a sandbox", method: "POST", path: unknown, wantStatus: 405, wantCode: "method_not_allowed"},
		{name: "too large", setup: setup{maxBody: 64}, method: "POST", path: "/sandbox/create", body: `{"image":"` + strings.Repeat("x", 100) + `"}`, wantStatus: 413, wantCode: "too_large"},
		{name: "too large upload", setup: setup{maxBody: 64, fake: &sandboxtest.Fake{Workspace: "/nonexistent"}}, create: true, method: "PUT", path: "/sandbox/{id}/files?path=a", body: strings.Repeat("x", 100), wantStatus: 413, wantCode: "too_large"},
		{name: "limit", setup: setup{maxSandboxes: 1}, create: true, method: "POST", path: "/sandbox/create", wantStatus: 429, wantCode: "limit"},
		{name: "disabled", setup: setup{disabled: true}, method: "POST", path: "/sandbox/create", wantStatus: 503, wantCode: "unavailable"},
		{name: "internal", setup: setup{fake: broken}, create: true, method: "POST", path: "/sandbox/{id}/execute", body: exec, wantStatus: 500, wantCode: "internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.name == "too large upload" {
				tt.setup.fake.Workspace = t.TempDir()
			}
			ts := newServer(t, tt.setup)
			path := tt.path
			if tt.create {
				path = strings.ReplaceAll(path, "{id}", string(ts.create(t, nil)))
			}
			var body any
			if tt.body != "" {
				body = tt.body
			}
			resp := ts.do(t, tt.method, path, body, tt.header...)
			e := wantError(t, tt.method+" "+path, resp, tt.wantStatus, tt.wantCode)
			switch tt.wantStatus {
			case 401:
				if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want Bearer", resp.header.Get("WWW-Authenticate"))
				}
			case 403:
				if e.Error.Rule != "no-rm-rf" || e.Error.Reason != "deletes the workspace" {
					t.Errorf("403 error = %+v, want rule no-rm-rf and its reason", e.Error)
				}
			case 405:
				if resp.header.Get("Allow") == "" {
					t.Errorf("405 without an Allow header")
				}
			case 500:
				if e.Error.Message != "internal error" {
					t.Errorf("500 message = %q, want %q", e.Error.Message, "internal error")
				}
				if !strings.Contains(ts.logs.String(), "secret-internal-detail") {
					t.Errorf("the log lacks the detail of the internal error:\n%s", ts.logs)
				}
			}
			if tt.wantStatus != 500 && strings.Contains(string(resp.body), "secret-internal-detail") {
				t.Errorf("body %s leaks an internal detail", resp.body)
			}
		})
	}
}

// Sandboxes disabled: everything that needs a sandbox answers 503, while
// health and status still answer.
func TestDisabled(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{disabled: true})
	for _, path := range []string{"/health", "/sandbox/status", "/sandbox/docker-info", "/sandbox", "/metrics", "/openapi.json"} {
		if resp := ts.do(t, "GET", path, nil); resp.status != http.StatusOK {
			t.Errorf("GET %s when disabled = %d, want 200", path, resp.status)
		}
	}
	wantError(t, "POST /sandbox/create", ts.do(t, "POST", "/sandbox/create", `{"image":"x"}`), http.StatusServiceUnavailable, "unavailable")
	wantError(t, "POST /sandbox/create?workspace_path", ts.do(t, "POST", "/sandbox/create?workspace_path=/tmp", nil), http.StatusServiceUnavailable, "unavailable")
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{keys: []string{"first-key", "second-key"}})
	tests := []struct {
		method, path string
		auth         string
		want         int
	}{
		{"GET", "/health", "", 200},
		{"GET", "/health", "Bearer wrong", 200},
		{"GET", "/sandbox/status", "", 401},
		{"GET", "/sandbox/status", "Bearer first-key", 200},
		{"GET", "/sandbox/status", "bearer second-key", 200},
		{"GET", "/sandbox/status", "Bearer first-ke", 401},
		{"GET", "/sandbox/status", "Bearer first-keyy", 401},
		{"GET", "/sandbox/status", "Bearer ", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/openapi.json", "", 401},
		{"GET", "/sandbox/docker-info", "", 401},
		{"POST", "/sandbox/create", "", 401},
		{"POST", "/sandbox/create", "Bearer second-key", 201},
	}
	for _, tt := range tests {
		var h []string
		if tt.auth != "" {
			h = []string{"Authorization", tt.auth}
		}
		resp := ts.do(t, tt.method, tt.path, nil, h...)
		if resp.status != tt.want {
			t.Errorf("%s %s with %q = %d, want %d", tt.method, tt.path, tt.auth, resp.status, tt.want)
		}
	}
	if logs := ts.logs.String(); strings.Contains(logs, "first-key") || strings.Contains(logs, "second-key") {
		t.Errorf("the log contains an API key:\n%s", logs)
	}
}

func TestRequestID(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{keys: []string{"k"}})
	tests := []struct {
		name, sent string
		echoed     bool
	}{
		{"absent", "", false},
		{"sane", "req-1.A_b", true},
		{"128 chars", strings.Repeat("a", 128), true},
		{"too long", strings.Repeat("a", 129), false},
		{"space", "a b", false},
		{"newline escape", "a%0d%0ab", false},
		{"quote", `a"b`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, path := range []string{"/health", "/sandbox", "/nope"} { // 200, 401, 401
				var h []string
				if tt.sent != "" {
					h = []string{"X-Request-ID", tt.sent}
				}
				got := ts.do(t, "GET", path, nil, h...).header.Get("X-Request-ID")
				switch {
				case tt.echoed && got != tt.sent:
					t.Errorf("GET %s with X-Request-ID %q: X-Request-ID = %q, want it echoed", path, tt.sent, got)
				case !tt.echoed && (got == "" || got == tt.sent || len(got) > 128):
					t.Errorf("GET %s with X-Request-ID %q: X-Request-ID = %q, want a fresh one", path, tt.sent, got)
				}
			}
		})
	}
	a := ts.do(t, "GET", "/health", nil).header.Get("X-Request-ID")
	b := ts.do(t, "GET", "/health", nil).header.Get("X-Request-ID")
	if a == b {
		t.Errorf("two requests got the same generated X-Request-ID %q", a)
	}
}

// The server's log has the request, but never a key, an environment
// value, a body or a query string.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	ts := newServer(t, setup{keys: []string{"the-api-key"}, fake: &sandboxtest.Fake{Workspace: ws}})
	ts.key = "the-api-key"
	id := ts.create(t, `{"environment_variables":{"TOKEN":"env-secret-1"}}`)
	ts.do(t, "PATCH", "/sandbox/"+string(id)+"/env", `{"set":{"OTHER":"env-secret-2"}}`)
	ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"code":"print('body-secret')"}`)
	ts.do(t, "PUT", "/sandbox/"+string(id)+"/files?path=query-secret.txt", "file-secret")
	ts.do(t, "POST", "/sandbox/create?environment_variables=T=query-env-secret", nil)
	logs := ts.logs.String()
	if !strings.Contains(logs, "POST /sandbox/{id}/execute") {
		t.Errorf("the log lacks the request log lines:\n%s", logs)
	}
	for _, secret := range []string{"the-api-key", "env-secret", "body-secret", "query-secret", "file-secret", "query-env-secret"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log contains %q:\n%s", secret, logs)
		}
	}
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		panic("handler bug")
	}}
	ts := newServer(t, setup{fake: fake})
	id := ts.create(t, nil)
	resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"code":"1"}`)
	e := wantError(t, "execute that panics", resp, http.StatusInternalServerError, "internal")
	if e.Error.Message != "internal error" {
		t.Errorf("message = %q, want internal error", e.Error.Message)
	}
	if !strings.Contains(ts.logs.String(), "handler bug") {
		t.Errorf("the log lacks the panic:\n%s", ts.logs)
	}
	// The server still serves.
	if resp := ts.do(t, "GET", "/health", nil); resp.status != http.StatusOK {
		t.Errorf("GET /health after a panic = %d, want 200", resp.status)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	metrics := func() string {
		t.Helper()
		resp := ts.do(t, "GET", "/metrics", nil)
		if resp.status != http.StatusOK || !strings.HasPrefix(resp.header.Get("Content-Type"), "text/plain") {
			t.Fatalf("GET /metrics = %d %s", resp.status, resp.header.Get("Content-Type"))
		}
		return string(resp.body)
	}
	before := metrics()
	for _, want := range []string{
		"# TYPE warden_sandboxes_live gauge", "# HELP warden_sandboxes_live ", "# TYPE warden_sandboxes_removing gauge", "warden_sandboxes_removing 0",
		"# TYPE warden_sandboxes_created_total counter", "# TYPE warden_sandboxes_destroyed_total counter",
		"# TYPE warden_executions_total counter", "# TYPE warden_execution_duration_seconds histogram",
		"# TYPE warden_http_requests_total counter", "# TYPE warden_http_request_duration_seconds histogram",
		`warden_executions_total{language="python",outcome="ok"} 0`,
		`warden_sandboxes_destroyed_total{reason="idle"} 0`,
	} {
		if !strings.Contains(before, want) {
			t.Errorf("GET /metrics lacks %q:\n%s", want, before)
		}
	}

	id := ts.create(t, nil)
	ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"code":"print(1)"}`)
	ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", `{"language":"shell","command":["exit","3"]}`)
	ts.do(t, "GET", "/sandbox/"+string(id)+"/no/such/route", nil)
	after := metrics()
	for _, want := range []string{
		"warden_sandboxes_live 1",
		"warden_sandboxes_created_total 1",
		`warden_executions_total{language="python",outcome="ok"} 1`,
		`warden_executions_total{language="shell",outcome="error"} 1`,
		`warden_execution_duration_seconds_count{language="python"} 1`,
		`warden_execution_duration_seconds_bucket{language="python",le="+Inf"} 1`,
		`warden_http_requests_total{route="POST /sandbox/{id}/execute",code="200"} 2`,
		`warden_http_requests_total{route="POST /sandbox/create",code="201"} 1`,
		`warden_http_requests_total{route="unmatched",code="404"} 1`,
		`warden_http_request_duration_seconds_count{route="POST /sandbox/{id}/execute"} 2`,
	} {
		if !strings.Contains(after, want) {
			t.Errorf("GET /metrics after an execution lacks %q:\n%s", want, after)
		}
	}
	if strings.Contains(after, string(id)) {
		t.Errorf("GET /metrics has a raw path with the sandbox id (unbounded label):\n%s", after)
	}

	ts.do(t, "DELETE", "/sandbox/"+string(id), nil)
	if after := metrics(); !strings.Contains(after, `warden_sandboxes_destroyed_total{reason="deleted"} 1`) || !strings.Contains(after, "warden_sandboxes_live 0") {
		t.Errorf("GET /metrics after a delete:\n%s", after)
	}
}

// Executions in one sandbox never overlap, however many requests arrive
// at once; executions in different sandboxes may.
func TestConcurrentExecutionsDoNotInterleave(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	running := map[sandbox.ID]int{}
	maxRunning, total := 0, 0
	fake := &sandboxtest.Fake{ExecFunc: func(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
		mu.Lock()
		running[id]++
		total++
		maxRunning = max(maxRunning, running[id])
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		running[id]--
		mu.Unlock()
		return sandbox.ExecResult{Stdout: []byte(req.Code)}, nil
	}}
	ts := newServer(t, setup{fake: fake})
	ids := []sandbox.ID{ts.create(t, nil), ts.create(t, nil)}
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := ids[i%len(ids)]
			resp := ts.do(t, "POST", "/sandbox/"+string(id)+"/execute", fmt.Sprintf(`{"code":"%d"}`, i))
			if resp.status != http.StatusOK || decode[map[string]any](t, resp)["stdout"] != fmt.Sprint(i) {
				t.Errorf("POST /sandbox/%s/execute #%d = %d %s, want 200 with its own stdout", id, i, resp.status, resp.body)
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if total != n {
		t.Errorf("executions = %d, want %d", total, n)
	}
	if maxRunning != 1 {
		t.Errorf("up to %d executions ran at once in one sandbox, want 1", maxRunning)
	}
}

// TestAgentPlatformFields: the fields the Agent Platform's clients read
// are there, beside Warden's own.
func TestAgentPlatformFields(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	resp := ts.do(t, "POST", "/sandbox/create", nil)
	info := decode[map[string]any](t, resp)
	if info["sandbox_id"] == nil || info["sandbox_id"] != info["id"] {
		t.Errorf("create answered %v, want sandbox_id equal to id", info)
	}
	list := decode[map[string][]map[string]any](t, ts.do(t, "GET", "/sandbox", nil))
	if len(list["sandboxes"]) != 1 || list["sandboxes"][0]["sandbox_id"] != info["id"] {
		t.Errorf("list = %v, want sandbox_id on each", list)
	}
	health := decode[map[string]any](t, ts.do(t, "GET", "/health", nil))
	if _, ok := health["uptime"].(float64); !ok || health["uptime"] != health["uptime_seconds"] {
		t.Errorf("health = %v, want uptime beside uptime_seconds", health)
	}
	status := decode[map[string]any](t, ts.do(t, "GET", "/sandbox/status", nil))
	if status["enabled"] != true || status["mock_mode"] != true {
		t.Errorf("status = %v, want enabled and mock_mode (the fake isolates nothing)", status)
	}
}
