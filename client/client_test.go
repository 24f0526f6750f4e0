package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// seen is what a test server received.
type seen struct {
	method, path string // path escaped, as sent
	query        url.Values
	header       http.Header
	body         []byte
	length       int64
}

// newClient starts a server answering with h and returns a client for it.
// Every request the server receives is sent on the returned channel.
func newClient(t *testing.T, h http.HandlerFunc, opts ...client.Option) (*client.Client, <-chan seen) {
	t.Helper()
	reqs := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reqs <- seen{r.Method, r.URL.EscapedPath(), r.URL.Query(), r.Header.Clone(), body, r.ContentLength}
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, opts...)
	if err != nil {
		t.Fatalf("New(%q) = %v", srv.URL, err)
	}
	return c, reqs
}

// reply answers with status and body, as JSON unless the test sets another
// Content-Type first.
func reply(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

const infoJSON = `{"id":"sb-0123456789abcdef","provider":"docker","status":"running","name":"warden-sb-0123456789abcdef",
	"image":"warden-runtime:latest","workspace":"/var/lib/warden/sb-0123456789abcdef","created_at":"2025-01-02T03:04:05Z",
	"last_used_at":"2025-01-02T03:05:00.5Z","idle_timeout_seconds":300,"executions":2,"busy":false,
	"spec":{"image":"warden-runtime:latest","memory_limit":268435456,"cpu_limit":0.5,"pids_limit":64,"enable_network":true,
	"environment_variables":{"A":"1"},"workspace_path":"/workspace"}}`

var wantInfo = api.Sandbox{
	ID: "sb-0123456789abcdef", Provider: "docker", Name: "warden-sb-0123456789abcdef",
	Workspace: "/var/lib/warden/sb-0123456789abcdef",
	Spec: api.Spec{Image: "warden-runtime:latest", MemoryLimit: 256 << 20, CPULimit: 0.5, PidsLimit: 64,
		EnableNetwork: true, EnvironmentVariables: map[string]string{"A": "1"}, WorkspacePath: "/workspace"},
	Status: "running", Image: "warden-runtime:latest",
	CreatedAt:          time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	LastUsedAt:         time.Date(2025, 1, 2, 3, 5, 0, 5e8, time.UTC),
	IdleTimeoutSeconds: 300, Executions: 2,
}

// TestEndpoints checks, for every endpoint, the request the client sends
// and its decoding of the documented answer.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	rv := "42"
	tests := []struct {
		name   string
		call   func(ctx context.Context, c *client.Client) (any, error)
		method string
		path   string
		query  url.Values
		ctype  string // request Content-Type; empty: no body
		accept string
		body   string // request body: JSON compared by value unless ctype is not JSON
		status int
		answer string
		want   any
	}{{
		name:   "Health",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Health(ctx) },
		method: "GET", path: "/health", accept: "application/json",
		status: 200, answer: `{"status":"ok","version":"0.3.0","uptime_seconds":12.5,"sandbox_mode":"docker","active_sandboxes":2}`,
		want: api.Health{Status: "ok", Version: "0.3.0", UptimeSeconds: 12.5, SandboxMode: api.ModeDocker, ActiveSandboxes: 2},
	}, {
		name:   "Status",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Status(ctx) },
		method: "GET", path: "/sandbox/status", accept: "application/json",
		status: 200, answer: `{"status":"mock","docker_available":false,"active_sandboxes":1,"provider":{"name":"local","isolation":"none"},"warning":"Running in MOCK mode - NO SECURITY ISOLATION"}`,
		want: api.Status{Status: api.ModeMock, ActiveSandboxes: 1,
			Provider: &api.ProviderInfo{Name: "local", Isolation: "none"}, Warning: "Running in MOCK mode - NO SECURITY ISOLATION"},
	}, {
		name:   "DockerInfo",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.DockerInfo(ctx) },
		method: "GET", path: "/sandbox/docker-info", accept: "application/json",
		status: 200, answer: `{"available":true,"status":"connected","version":"27.5.1","api_version":"1.47","message":"","containers_running":3,"os":"linux"}`,
		want: api.DockerInfo{Available: true, Status: "connected", Version: "27.5.1", APIVersion: "1.47",
			ContainersRunning: new(3), OS: "linux"},
	}, {
		name: "Create/zero options send an empty object",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Create(ctx, client.CreateOptions{})
		},
		method: "POST", path: "/sandbox/create", ctype: "application/json", accept: "application/json", body: `{}`,
		status: 201, answer: infoJSON, want: wantInfo,
	}, {
		name: "Create/every option",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Create(ctx, client.CreateOptions{
				Image: "python:3.12", MemoryLimit: "256m", CPULimit: 0.5, PidsLimit: 64,
				Timeout: 90 * time.Second, IdleTimeout: 1500 * time.Millisecond, EnableNetwork: new(true),
				EnvironmentVariables: map[string]string{"A": "1"},
				AdditionalReadDirs:   []string{"/data"}, AdditionalWriteDirs: []string{"/tmp/out"},
				WorkspacePath: "/home/me/project",
			})
		},
		method: "POST", path: "/sandbox/create", ctype: "application/json", accept: "application/json",
		body: `{"image":"python:3.12","memory_limit":"256m","cpu_limit":0.5,"pids_limit":64,"timeout":90,"idle_timeout":1.5,
			"enable_network":true,"environment_variables":{"A":"1"},"additional_read_dirs":["/data"],
			"additional_write_dirs":["/tmp/out"],"workspace_path":"/home/me/project"}`,
		status: 201, answer: infoJSON, want: wantInfo,
	}, {
		name: "Create/explicit false and memory in bytes",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Create(ctx, client.CreateOptions{EnableNetwork: new(false), MemoryLimit: "268435456"})
		},
		method: "POST", path: "/sandbox/create", ctype: "application/json", accept: "application/json",
		body:   `{"enable_network":false,"memory_limit":268435456}`,
		status: 201, answer: infoJSON, want: wantInfo,
	}, {
		name:   "List",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.List(ctx) },
		method: "GET", path: "/sandbox", accept: "application/json",
		status: 200, answer: `{"sandboxes":[` + infoJSON + `]}`, want: []api.Sandbox{wantInfo},
	}, {
		name:   "List/none",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.List(ctx) },
		method: "GET", path: "/sandbox", accept: "application/json",
		status: 200, answer: `{"sandboxes":[]}`, want: []api.Sandbox{},
	}, {
		name:   "Get",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Get(ctx, "sb-0123456789abcdef") },
		method: "GET", path: "/sandbox/sb-0123456789abcdef", accept: "application/json",
		status: 200, answer: infoJSON, want: wantInfo,
	}, {
		name:   "Get/id is path-escaped",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Get(ctx, "a/../b?c#d e") },
		method: "GET", path: "/sandbox/a%2F..%2Fb%3Fc%23d%20e", accept: "application/json",
		status: 200, answer: infoJSON, want: wantInfo,
	}, {
		name:   "Delete",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Delete(ctx, "sb-1") },
		method: "DELETE", path: "/sandbox/sb-1", accept: "application/json",
		status: 200, answer: `{"id":"sb-1","status":"destroyed"}`, want: nil,
	}, {
		name: "Execute/python",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Execute(ctx, "sb-1", client.ExecuteOptions{Language: api.Python, Code: "1/0\n", Timeout: 30 * time.Second, Workdir: "src"})
		},
		method: "POST", path: "/sandbox/sb-1/execute", ctype: "application/json", accept: "application/json",
		body:   `{"language":"python","code":"1/0\n","timeout":30,"workdir":"src"}`,
		status: 200,
		answer: `{"stdout":"hi\n","stderr":"","exit_code":1,"error":{"name":"ZeroDivisionError","value":"division by zero","traceback":"Traceback...","line":1},
			"error_traceback":"Traceback...","return_value":"42","timed_out":false,"oom_killed":false,"duration_ms":12.5,
			"truncated":true,"stdout_truncated":true,"stderr_truncated":false,"notes":["restarted"],"warning":"Executed in mock mode - no isolation!"}`,
		want: api.ExecResult{Stdout: "hi\n", ExitCode: 1,
			Error:          &api.ExecError{Name: "ZeroDivisionError", Value: "division by zero", Traceback: "Traceback...", Line: 1},
			ErrorTraceback: new("Traceback..."), ReturnValue: &rv, DurationMS: 12.5, Truncated: true, StdoutTruncated: true,
			Notes: []string{"restarted"}, Warning: "Executed in mock mode - no isolation!"},
	}, {
		name: "Execute/shell argv",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Execute(ctx, "sb-1", client.ExecuteOptions{Language: api.Shell, Command: []string{"ls", "-l"}})
		},
		method: "POST", path: "/sandbox/sb-1/execute", ctype: "application/json", accept: "application/json",
		body:   `{"language":"shell","command":["ls","-l"]}`,
		status: 200, answer: `{"stdout":"","stderr":"boom","exit_code":124,"error":null,"timed_out":true,"oom_killed":true,"duration_ms":1000}`,
		want: api.ExecResult{Stderr: "boom", ExitCode: 124, TimedOut: true, OOMKilled: true, DurationMS: 1000},
	}, {
		name: "Execute/empty python code is sent",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Execute(ctx, "sb-1", client.ExecuteOptions{Language: api.Python})
		},
		method: "POST", path: "/sandbox/sb-1/execute", ctype: "application/json", accept: "application/json",
		body:   `{"language":"python","code":""}`,
		status: 200, answer: `{"stdout":"","stderr":"","exit_code":0}`,
		want: api.ExecResult{},
	}, {
		name: "Run/every option",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Run(ctx, client.RunOptions{
				CreateOptions: client.CreateOptions{
					Image: "python:3.12", MemoryLimit: "256m", CPULimit: 0.5, PidsLimit: 64, Timeout: 90 * time.Second,
					EnableNetwork: new(false), EnvironmentVariables: map[string]string{"A": "1"},
					AdditionalReadDirs: []string{"/data"}, AdditionalWriteDirs: []string{"/tmp/out"},
					WorkspaceSize: "1g", WorkspaceMountPath: "/home/user",
				},
				ExecuteOptions: client.ExecuteOptions{Language: api.Shell, Command: []string{"ls", "|", "wc"}, ShellOperators: true,
					Timeout: 1500 * time.Millisecond, Workdir: "src"},
			})
		},
		method: "POST", path: "/sandbox/run", ctype: "application/json", accept: "application/json",
		body: `{"image":"python:3.12","memory_limit":"256m","cpu_limit":0.5,"pids_limit":64,"enable_network":false,
			"environment_variables":{"A":"1"},"additional_read_dirs":["/data"],"additional_write_dirs":["/tmp/out"],
			"workspace_size":"1g","workspace_mount_path":"/home/user",
			"language":"shell","command":["ls","|","wc"],"shell_operators":true,"timeout":1.5,"workdir":"src"}`,
		status: 200, answer: `{"stdout":"3\n","stderr":"","exit_code":0,"success":true}`,
		want: api.ExecResult{Stdout: "3\n", Success: true},
	}, {
		name: "Run/the sandbox's timeout bounds the execution",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Run(ctx, client.RunOptions{CreateOptions: client.CreateOptions{Timeout: time.Minute, WorkspacePath: "/srv/p"},
				ExecuteOptions: client.ExecuteOptions{Code: "x"}})
		},
		method: "POST", path: "/sandbox/run", ctype: "application/json", accept: "application/json",
		body:   `{"code":"x","timeout":60,"workspace_path":"/srv/p"}`,
		status: 200, answer: `{"stdout":"","stderr":"","exit_code":1,"error":{"name":"NameError","value":"name 'x' is not defined","traceback":"NameError"}}`,
		want: api.ExecResult{ExitCode: 1, Error: &api.ExecError{Name: "NameError", Value: "name 'x' is not defined", Traceback: "NameError"}},
	}, {
		name:   "Run/zero options send empty Python code",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Run(ctx, client.RunOptions{}) },
		method: "POST", path: "/sandbox/run", ctype: "application/json", accept: "application/json",
		body:   `{"code":""}`,
		status: 200, answer: `{"stdout":"","stderr":"","exit_code":0,"success":true}`,
		want: api.ExecResult{Success: true},
	}, {
		name:   "Env",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Env(ctx, "sb-1") },
		method: "GET", path: "/sandbox/sb-1/env", accept: "application/json",
		status: 200, answer: `{"environment_variables":{"A":"1","B":""}}`, want: map[string]string{"A": "1", "B": ""},
	}, {
		name: "SetEnv",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.SetEnv(ctx, "sb-1", map[string]string{"A": "2"})
		},
		method: "PUT", path: "/sandbox/sb-1/env", ctype: "application/json", accept: "application/json",
		body:   `{"environment_variables":{"A":"2"}}`,
		status: 200, answer: `{"environment_variables":{"A":"2"}}`, want: map[string]string{"A": "2"},
	}, {
		name:   "SetEnv/nil clears",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.SetEnv(ctx, "sb-1", nil) },
		method: "PUT", path: "/sandbox/sb-1/env", ctype: "application/json", accept: "application/json",
		body:   `{"environment_variables":{}}`,
		status: 200, answer: `{"environment_variables":{}}`, want: map[string]string{},
	}, {
		name: "UpdateEnv",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.UpdateEnv(ctx, "sb-1", map[string]string{"B": "2"}, []string{"A"})
		},
		method: "PATCH", path: "/sandbox/sb-1/env", ctype: "application/json", accept: "application/json",
		body:   `{"set":{"B":"2"},"unset":["A"]}`,
		status: 200, answer: `{"environment_variables":{"B":"2"}}`, want: map[string]string{"B": "2"},
	}, {
		name: "UpdateEnv/unset only",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.UpdateEnv(ctx, "sb-1", nil, []string{"A"})
		},
		method: "PATCH", path: "/sandbox/sb-1/env", ctype: "application/json", accept: "application/json",
		body:   `{"unset":["A"]}`,
		status: 200, answer: `{"environment_variables":null}`, want: map[string]string{},
	}, {
		name:   "UnsetEnv",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.UnsetEnv(ctx, "sb-1", "MY_VAR") },
		method: "DELETE", path: "/sandbox/sb-1/env/MY_VAR", accept: "application/json",
		status: 200, answer: `{"environment_variables":{"A":"1"}}`, want: map[string]string{"A": "1"},
	}, {
		name: "Upload",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Upload(ctx, "sb-1", "dir/a b&c=d.txt", strings.NewReader("raw\x00bytes"))
		},
		method: "PUT", path: "/sandbox/sb-1/files", query: url.Values{"path": {"dir/a b&c=d.txt"}},
		ctype: "application/octet-stream", accept: "application/json", body: "raw\x00bytes",
		status: 201, answer: `{"path":"dir/a b&c=d.txt","size":9}`, want: api.Upload{Path: "dir/a b&c=d.txt", Size: 9},
	}, {
		name: "Download",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			rc, err := c.Download(ctx, "sb-1", "out/r.bin")
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			return string(b), err
		},
		method: "GET", path: "/sandbox/sb-1/files", query: url.Values{"path": {"out/r.bin"}},
		status: 200, answer: "\x00\x01binary", want: "\x00\x01binary",
	}, {
		name:   "ListFiles",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.ListFiles(ctx, "sb-1", "src") },
		method: "GET", path: "/sandbox/sb-1/files/list", query: url.Values{"path": {"src"}}, accept: "application/json",
		status: 200,
		answer: `{"path":"src","entries":[{"name":"main.py","type":"file","size":12,"mode":"0644","mod_time":"2025-01-02T03:04:05Z"},
			{"name":"pkg","type":"dir","size":4096,"mode":493,"mod_time":"2025-01-02T03:04:05Z"},
			{"name":"link","type":"symlink","size":7,"mode":"0777","mod_time":"2025-01-02T03:04:05.5Z"}]}`,
		want: api.FileList{Path: "src", Entries: []api.FileEntry{
			{Name: "main.py", Type: api.FileTypeFile, Size: 12, Mode: 0o644, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
			{Name: "pkg", Type: api.FileTypeDir, Size: 4096, Mode: 0o755, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
			{Name: "link", Type: api.FileTypeSymlink, Size: 7, Mode: 0o777, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 5e8, time.UTC)},
		}},
	}, {
		name:   "ListFiles/workspace root sends no path",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.ListFiles(ctx, "sb-1", "") },
		method: "GET", path: "/sandbox/sb-1/files/list", accept: "application/json",
		status: 200, answer: `{"path":"","entries":[]}`, want: api.FileList{Entries: []api.FileEntry{}},
	}, {
		name: "ListFilesDepth",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.ListFilesDepth(ctx, "sb-1", "/workspace/src", 3)
		},
		method: "GET", path: "/sandbox/sb-1/files/list", query: url.Values{"path": {"/workspace/src"}, "depth": {"3"}},
		accept: "application/json", status: 200,
		answer: `{"path":"src","entries":[{"name":"pkg","path":"src/pkg","type":"dir","size":4096,"mode":"0755","mod_time":"2025-01-02T03:04:05Z"},
			{"name":"a.py","path":"src/pkg/a.py","type":"file","size":3,"mode":"0644","mod_time":"2025-01-02T03:04:05Z"},
			{"name":"up","path":"src/up","type":"symlink","size":2,"mode":"0777","mod_time":"2025-01-02T03:04:05Z","link_target":".."}]}`,
		want: api.FileList{Path: "src", Entries: []api.FileEntry{
			{Name: "pkg", Path: "src/pkg", Type: api.FileTypeDir, Size: 4096, Mode: 0o755, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
			{Name: "a.py", Path: "src/pkg/a.py", Type: api.FileTypeFile, Size: 3, Mode: 0o644, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
			{Name: "up", Path: "src/up", Type: api.FileTypeSymlink, Size: 2, Mode: 0o777, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), LinkTarget: ".."},
		}},
	}, {
		name:   "ListFilesDepth/workspace root sends only the depth",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.ListFilesDepth(ctx, "sb-1", "", 1) },
		method: "GET", path: "/sandbox/sb-1/files/list", query: url.Values{"depth": {"1"}}, accept: "application/json",
		status: 200, answer: `{"path":".","entries":[]}`, want: api.FileList{Path: ".", Entries: []api.FileEntry{}},
	}, {
		name:   "Stat",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Stat(ctx, "sb-1", "a b/link") },
		method: "GET", path: "/sandbox/sb-1/files/stat", query: url.Values{"path": {"a b/link"}}, accept: "application/json",
		status: 200,
		answer: `{"name":"link","path":"a b/link","type":"symlink","size":11,"mode":"0777","mod_time":"2025-01-02T03:04:05Z","link_target":"/etc/passwd"}`,
		want: api.FileEntry{Name: "link", Path: "a b/link", Type: api.FileTypeSymlink, Size: 11, Mode: 0o777,
			ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), LinkTarget: "/etc/passwd"},
	}, {
		name:   "Stat/workspace sends no path",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.Stat(ctx, "sb-1", "") },
		method: "GET", path: "/sandbox/sb-1/files/stat", accept: "application/json",
		status: 200, answer: `{"name":".","path":".","type":"dir","size":4096,"mode":"0755","mod_time":"2025-01-02T03:04:05Z"}`,
		want: api.FileEntry{Name: ".", Path: ".", Type: api.FileTypeDir, Size: 4096, Mode: 0o755, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
	}, {
		name:   "MakeDir",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return c.MakeDir(ctx, "sb-1", "new/deep") },
		method: "POST", path: "/sandbox/sb-1/files/mkdir", query: url.Values{"path": {"new/deep"}}, accept: "application/json",
		status: 201, answer: `{"name":"deep","path":"new/deep","type":"dir","size":4096,"mode":"0755","mod_time":"2025-01-02T03:04:05Z"}`,
		want: api.FileEntry{Name: "deep", Path: "new/deep", Type: api.FileTypeDir, Size: 4096, Mode: 0o755, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
	}, {
		name: "Move",
		call: func(ctx context.Context, c *client.Client) (any, error) {
			return c.Move(ctx, "sb-1", "a.txt", "/workspace/b/c.txt")
		},
		method: "POST", path: "/sandbox/sb-1/files/move", ctype: "application/json", accept: "application/json",
		body:   `{"source":"a.txt","destination":"/workspace/b/c.txt"}`,
		status: 200, answer: `{"name":"c.txt","path":"b/c.txt","type":"file","size":5,"mode":"0644","mod_time":"2025-01-02T03:04:05Z"}`,
		want: api.FileEntry{Name: "c.txt", Path: "b/c.txt", Type: api.FileTypeFile, Size: 5, Mode: 0o644, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)},
	}, {
		name:   "Remove",
		call:   func(ctx context.Context, c *client.Client) (any, error) { return nil, c.Remove(ctx, "sb-1", "old dir") },
		method: "DELETE", path: "/sandbox/sb-1/files", query: url.Values{"path": {"old dir"}}, accept: "application/json",
		status: 200, answer: `{"path":"old dir","status":"removed"}`, want: nil,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, reqs := newClient(t, reply(tt.status, tt.answer), client.WithAPIKey("k3y"), client.WithUserAgent("test/1"))
			got, err := tt.call(t.Context(), c)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if tt.want == nil {
				got = nil // Delete: nothing to compare
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v,\nwant %#v", tt.name, got, tt.want)
			}
			r := <-reqs
			if r.method != tt.method || r.path != tt.path {
				t.Errorf("request = %s %s, want %s %s", r.method, r.path, tt.method, tt.path)
			}
			if want := tt.query; !reflect.DeepEqual(r.query, want) && !(len(r.query) == 0 && len(want) == 0) {
				t.Errorf("query = %v, want %v", r.query, want)
			}
			for h, want := range map[string]string{
				"Authorization": "Bearer k3y", "User-Agent": "test/1", "Content-Type": tt.ctype, "Accept": tt.accept,
			} {
				if got := r.header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			switch {
			case tt.ctype == "application/json":
				var got, want any
				if err := json.Unmarshal(r.body, &got); err != nil {
					t.Fatalf("request body %q: %v", r.body, err)
				}
				if err := json.Unmarshal([]byte(tt.body), &want); err != nil {
					t.Fatalf("test body: %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("request body = %s, want %s", r.body, tt.body)
				}
			case string(r.body) != tt.body:
				t.Errorf("request body = %q, want %q", r.body, tt.body)
			}
		})
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"http://127.0.0.1:8000", "https://warden.example/", "http://[::1]:8000/prefix/"} {
		if _, err := client.New(u); err != nil {
			t.Errorf("New(%q) = %v, want nil", u, err)
		}
	}
	for _, u := range []string{
		"", "127.0.0.1:8000", "localhost:8000", "ftp://host", "http://", "http:///x", "http://host?x=1",
		"http://host/#f", "http://host?", "://bad", "http://host:port", "http://user:secret@host",
	} {
		c, err := client.New(u)
		if err == nil {
			t.Errorf("New(%q) = %v, nil; want an error", u, c)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("New(%q) = %v, which shows the password", u, err)
		}
	}
	for name, opt := range map[string]client.Option{
		"WithAPIKey newline":     client.WithAPIKey("k\r\nX-Evil: 1"),
		"WithAPIKey space":       client.WithAPIKey(" k"),
		"WithHTTPClient nil":     client.WithHTTPClient(nil),
		"WithUserAgent newline":  client.WithUserAgent("a\nb"),
		"WithUserAgent NUL byte": client.WithUserAgent("a\x00"),
	} {
		if _, err := client.New("http://host", opt); err == nil {
			t.Errorf("New with %s = nil error, want one", name)
		}
	}
}

func TestDefaultHeaders(t *testing.T) {
	t.Parallel()
	c, reqs := newClient(t, reply(200, `{}`), client.WithAPIKey(""), client.WithUserAgent(""))
	if _, err := c.Health(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := <-reqs
	if got := r.header.Get("Authorization"); got != "" {
		t.Errorf("Authorization = %q without a key, want none", got)
	}
	if got := r.header.Get("User-Agent"); got != client.DefaultUserAgent {
		t.Errorf("User-Agent = %q, want %q", got, client.DefaultUserAgent)
	}
}

func TestBaseURLPrefix(t *testing.T) {
	t.Parallel()
	var path atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path.Store(r.URL.EscapedPath())
		reply(200, `{"environment_variables":{}}`)(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL + "/my%20warden/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Env(t.Context(), "sb-1"); err != nil {
		t.Fatal(err)
	}
	if got, want := path.Load(), "/my%20warden/sandbox/sb-1/env"; got != want {
		t.Errorf("path = %v, want %v", got, want)
	}
}

// roundTripper is a fake transport.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestWithHTTPClient(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return &http.Response{
			StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(`{"status":"ok"}`)), Request: r,
		}, nil
	})}
	c, err := client.New("http://warden.invalid", client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(t.Context())
	if err != nil || h.Status != "ok" || calls.Load() != 1 {
		t.Errorf("Health() = %+v, %v after %d calls of the transport; want ok through it", h, err, calls.Load())
	}
	if hc.CheckRedirect != nil {
		t.Error("WithHTTPClient modified the caller's http.Client")
	}
}

// TestLocalValidation checks the arguments refused before any request:
// those that would address another resource.
func TestLocalValidation(t *testing.T) {
	t.Parallel()
	c, reqs := newClient(t, reply(200, `{}`))
	ctx := t.Context()
	for _, id := range []string{"", ".", ".."} {
		checks := map[string]error{}
		_, checks["Get"] = c.Get(ctx, id)
		checks["Delete"] = c.Delete(ctx, id)
		_, checks["Execute"] = c.Execute(ctx, id, client.ExecuteOptions{Language: api.Shell, Code: "true"})
		_, checks["Env"] = c.Env(ctx, id)
		_, checks["SetEnv"] = c.SetEnv(ctx, id, nil)
		_, checks["UpdateEnv"] = c.UpdateEnv(ctx, id, nil, nil)
		_, checks["UnsetEnv"] = c.UnsetEnv(ctx, id, "A")
		_, checks["Upload"] = c.Upload(ctx, id, "f", strings.NewReader(""))
		_, checks["Download"] = c.Download(ctx, id, "f")
		_, checks["ListFiles"] = c.ListFiles(ctx, id, "")
		_, checks["ListFilesDepth"] = c.ListFilesDepth(ctx, id, "", 2)
		_, checks["Stat"] = c.Stat(ctx, id, "f")
		_, checks["MakeDir"] = c.MakeDir(ctx, id, "d")
		_, checks["Move"] = c.Move(ctx, id, "a", "b")
		checks["Remove"] = c.Remove(ctx, id, "f")
		for name, err := range checks {
			if !errors.Is(err, client.ErrInvalid) {
				t.Errorf("%s(%q) = %v, want ErrInvalid", name, id, err)
			}
		}
	}
	if _, err := c.Run(ctx, client.RunOptions{CreateOptions: client.CreateOptions{IdleTimeout: time.Minute}}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Run with an idle timeout = %v, want ErrInvalid", err)
	}
	if _, err := c.UnsetEnv(ctx, "sb-1", ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("UnsetEnv with an empty name = %v, want ErrInvalid", err)
	}
	if _, err := c.Upload(ctx, "sb-1", "", strings.NewReader("")); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Upload with an empty path = %v, want ErrInvalid", err)
	}
	if _, err := c.Download(ctx, "sb-1", ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Download with an empty path = %v, want ErrInvalid", err)
	}
	if _, err := c.MakeDir(ctx, "sb-1", ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("MakeDir with an empty path = %v, want ErrInvalid", err)
	}
	if err := c.Remove(ctx, "sb-1", ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Remove with an empty path = %v, want ErrInvalid", err)
	}
	for _, p := range [][2]string{{"", "b"}, {"a", ""}} {
		if _, err := c.Move(ctx, "sb-1", p[0], p[1]); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("Move(%q, %q) = %v, want ErrInvalid", p[0], p[1], err)
		}
	}
	for _, d := range []int{0, -1} {
		if _, err := c.ListFilesDepth(ctx, "sb-1", "", d); !errors.Is(err, client.ErrInvalid) {
			t.Errorf("ListFilesDepth with depth %d = %v, want ErrInvalid", d, err)
		}
	}
	select {
	case r := <-reqs:
		t.Errorf("server received %s %s, want no request", r.method, r.path)
	default:
	}
}

// closeTracker is a reader that records whether it was closed, as an
// *os.File would be by net/http.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error { c.closed.Store(true); return nil }

func TestUploadStreamsAndLeavesReaderOpen(t *testing.T) {
	t.Parallel()
	c, reqs := newClient(t, reply(201, `{"path":"big.bin","size":300000}`))
	data := bytes.Repeat([]byte("0123456789"), 30000)
	r := &closeTracker{Reader: bytes.NewReader(data)}
	res, err := c.Upload(t.Context(), "sb-1", "big.bin", r)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(data)) {
		t.Errorf("Upload() = %+v, want size %d", res, len(data))
	}
	got := <-reqs
	if !bytes.Equal(got.body, data) || got.length != -1 {
		t.Errorf("server got %d bytes with Content-Length %d, want %d bytes chunked", len(got.body), got.length, len(data))
	}
	if r.closed.Load() {
		t.Error("Upload closed the caller's reader")
	}

	if _, err := c.Upload(t.Context(), "sb-1", "small", bytes.NewReader(data[:5])); err != nil {
		t.Fatal(err)
	}
	if got := <-reqs; got.length != 5 {
		t.Errorf("Content-Length = %d for a *bytes.Reader, want 5", got.length)
	}
}

func TestDownloadError(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, reply(404, `{"error":{"code":"not_found","message":"file out.txt: not found"}}`))
	rc, err := c.Download(t.Context(), "sb-1", "out.txt")
	if !errors.Is(err, client.ErrNotFound) || rc != nil {
		t.Errorf("Download() = %v, %v; want nil, ErrNotFound", rc, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html>captive portal</html>")
	})
	if _, err := c.Health(t.Context()); err == nil || !strings.Contains(err.Error(), "decoding GET /health response") {
		t.Errorf("Health() with an HTML 200 = %v, want a decoding error", err)
	}
	if _, err := c.Execute(t.Context(), "sb-1", client.ExecuteOptions{Language: api.Python, Code: "1"}); err == nil {
		t.Error("Execute() with an HTML 200 = nil error, want one")
	}
	if _, err := c.ListFiles(t.Context(), "sb-1", "x"); err == nil {
		t.Error("ListFiles() with an HTML 200 = nil error, want one")
	}
}
