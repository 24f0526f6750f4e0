package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	mobyclient "github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// mcpClientDir holds client.mjs, which drives an MCP server with the
// official TypeScript MCP client, pinned by its package-lock.json.
const mcpClientDir = "testdata/mcpclient"

// TestMCPTypeScriptClient builds warden and drives `warden mcp` (stdio,
// bubblewrap) and `/mcp` of `warden serve` (streamable HTTP, Docker) with
// the unmodified official TypeScript MCP client: the scenarios are in
// testdata/mcpclient/client.mjs. Afterwards the session's default sandbox
// must be gone.
func TestMCPTypeScriptClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary, and Node.js")
	}
	node := requireMCPClient(t)
	bin := filepath.Join(t.TempDir(), "warden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("stdio", func(t *testing.T) {
		testutil.RequireBwrap(t)
		// The sandbox user (host uid 1000 under a root test run) must reach
		// the workspace root: t.TempDir's parent is private.
		root := testutil.SharedDir(t)
		t.Cleanup(func() { killProcesses(t, bin, "mcp") })
		start := time.Now()
		id := runMCPClient(t, node, []string{"--stdio", "--", bin, "mcp"},
			"SANDBOX__PROVIDER=bubblewrap", "SANDBOX__PROVIDER_FALLBACK=false", "SANDBOX__WORKSPACE_ROOT="+root,
			"SANDBOX__IMAGE="+testutil.Image(), "LOG__LEVEL=warn")
		t.Logf("client done in %s", time.Since(start).Round(time.Millisecond))

		// The client waits for the server to exit when it closes the
		// session, but allow a moment for the process table to catch up.
		deadline := time.Now().Add(5 * time.Second)
		for len(findProcesses(bin, "mcp")) > 0 && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if pids := findProcesses(bin, "mcp"); len(pids) > 0 {
			t.Errorf("warden mcp still running after the client closed the session: pids %v", pids)
		}
		// bwrap names a workspace bwrap-<id>-<random> under the root; hidden
		// entries (.rootfs, .init) are the provider's own and may stay.
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			switch {
			case strings.HasPrefix(e.Name(), "."):
			case strings.Contains(e.Name(), id):
				t.Errorf("the default sandbox's workspace %s survived the session", e.Name())
			default:
				t.Errorf("workspace root holds %s after the session ended", e.Name())
			}
		}
	})

	t.Run("http", func(t *testing.T) {
		testutil.RequireDocker(t)
		const key = "mcp-e2e-test-key-0123456789abcdef"
		url, stop := startServe(t, bin, "API__KEYS="+key, "SANDBOX__PROVIDER=docker", "SANDBOX__PROVIDER_FALLBACK=false",
			"SANDBOX__IMAGE="+testutil.Image(), "SANDBOX__WORKSPACE_ROOT="+t.TempDir(), "LOG__LEVEL=warn")
		defer stop()
		start := time.Now()
		id := runMCPClient(t, node, []string{"--http", url + "/mcp", "--key", key})
		t.Logf("client done in %s", time.Since(start).Round(time.Millisecond))

		ctx := t.Context()
		c, err := client.New(url, client.WithAPIKey(key))
		if err != nil {
			t.Fatal(err)
		}
		cli, err := mobyclient.New(mobyclient.FromEnv)
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		// The server may remove the sandbox after answering the DELETE
		// that ends the session.
		var getErr error
		containers := -1
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			_, getErr = c.Get(ctx, id)
			list, err := cli.ContainerList(ctx, mobyclient.ContainerListOptions{All: true,
				Filters: make(mobyclient.Filters).Add("label", docker.LabelSandbox+"="+id)})
			if err != nil {
				t.Fatal(err)
			}
			containers = len(list.Items)
			if (errors.Is(getErr, client.ErrNotFound) && containers == 0) || time.Now().After(deadline) {
				break
			}
		}
		if !errors.Is(getErr, client.ErrNotFound) {
			t.Errorf("GET /sandbox/%s after the MCP session ended = %v, want not found", id, getErr)
		}
		if containers != 0 {
			t.Errorf("%d containers of the default sandbox %s survived the MCP session", containers, id)
		}

		// /mcp is behind the same keys as the rest of the API.
		for _, tc := range []struct{ name, auth string }{{"no key", ""}, {"a wrong key", "Bearer wrong-key"}, {"the key", "Bearer " + key}} {
			auth := tc.auth
			body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"probe","version":"0"}}}`
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url+"/mcp", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			want := http.StatusUnauthorized
			if auth == "Bearer "+key {
				want = http.StatusOK // the control: the same request with the key is served
				if sid := resp.Header.Get("Mcp-Session-Id"); sid != "" {
					del, _ := http.NewRequestWithContext(ctx, http.MethodDelete, url+"/mcp", nil)
					del.Header.Set("Authorization", auth)
					del.Header.Set("Mcp-Session-Id", sid)
					if r, err := http.DefaultClient.Do(del); err == nil {
						_ = r.Body.Close()
					}
				}
			}
			if resp.StatusCode != want {
				t.Errorf("POST /mcp initialize with %s = %d, want %d", tc.name, resp.StatusCode, want)
			}
		}
	})
}

// requireMCPClient returns the path of node, after checking that the
// client's npm modules are installed (npm ci in testdata/mcpclient, as
// scripts/test.sh does). It skips the test when either is missing, or
// fails it when WARDEN_REQUIRE_NODE=1.
func requireMCPClient(t *testing.T) string {
	t.Helper()
	missing := func(reason string) {
		t.Helper()
		if testutil.Required("WARDEN_REQUIRE_NODE") {
			t.Fatalf("%s, and WARDEN_REQUIRE_NODE=1 requires it", reason)
		}
		t.Skip(reason)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed (Node.js 18 or newer runs the MCP client)")
		return ""
	}
	sdk := filepath.Join(mcpClientDir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")
	if _, err := os.Stat(sdk); err != nil {
		missing("the MCP client's npm modules are not installed: run npm ci in cmd/warden/" + mcpClientDir)
	}
	return node
}

// runMCPClient runs client.mjs with args and the extra environment, fails
// the test if it fails, and returns the default sandbox id it reports (or
// stops the test if it reports none).
func runMCPClient(t *testing.T, node string, args []string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{"client.mjs"}, args...)...)
	cmd.Dir = mcpClientDir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A stdio server inherits the client's stderr: do not wait for it
	// forever if the client is killed and leaves it behind.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	t.Logf("node client.mjs %s:\n%s", strings.Join(args, " "), stdout.String())
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, errors.New("the client did not finish within 3 minutes"))
		}
		// Carry on to the checks after the session when the client got
		// as far as naming the default sandbox.
		t.Errorf("the MCP client failed: %v\nstderr:\n%s", err, stderr.String())
	} else if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	var id string
	for line := range strings.Lines(stdout.String()) {
		var res struct {
			DefaultSandboxID string `json:"default_sandbox_id"`
		}
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &res) == nil {
			id = res.DefaultSandboxID
		}
	}
	if id == "" {
		t.Fatalf("the MCP client printed no default_sandbox_id:\n%s", stdout.String())
	}
	return id
}

// startServe runs `warden serve --port 0` with the extra environment and
// returns its URL and a function that stops it with SIGTERM.
func startServe(t *testing.T, bin string, env ...string) (string, func()) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--port", "0")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var logs bytes.Buffer
	lines := bufio.NewScanner(stderr)
	url := ""
	for url == "" && lines.Scan() {
		logs.WriteString(lines.Text() + "\n")
		if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
			url, _, _ = strings.Cut(rest, " ")
		}
	}
	if url == "" {
		t.Fatalf("no listening line:\n%s", logs.String())
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&logs, stderr); close(done) }()
	return url, func() {
		t.Helper()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			if err := cmd.Wait(); err != nil {
				t.Errorf("warden serve exited with %v after SIGTERM", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("warden serve still running 60s after SIGTERM")
		}
		if t.Failed() {
			t.Logf("warden serve's log:\n%s", logs.String())
		}
	}
}

// findProcesses returns the pids of the processes running bin with the
// first argument arg.
func findProcesses(bin, arg string) []int {
	var pids []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(string(b), "\x00")
		if len(argv) > 1 && argv[0] == bin && argv[1] == arg {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killProcesses kills what is left of the processes this test started.
func killProcesses(t *testing.T, bin, arg string) {
	for _, pid := range findProcesses(bin, arg) {
		t.Logf("killing leftover %s %s, pid %d", bin, arg, pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
