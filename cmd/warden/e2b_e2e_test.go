package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mobyclient "github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// e2bClientDir holds client.mjs, which drives Warden's E2B-compatible
// surface with the official E2B JS SDKs, pinned by its package-lock.json.
const e2bClientDir = "testdata/e2bclient"

// TestE2BJSSDK builds warden, starts `warden serve` on bubblewrap, on the
// fork server and on Docker, and points the unmodified official E2B SDKs (e2b and
// @e2b/code-interpreter) at it with E2B_API_URL and E2B_SANDBOX_URL: the
// scenarios are in testdata/e2bclient/client.mjs. Afterwards no sandbox
// may be left, by Warden's own API and by E2B's, and once the service has
// stopped no workspace or container either.
func TestE2BJSSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary, and Node.js")
	}
	node := requireNodeClient(t, e2bClientDir, "the E2B client", "e2b", "@e2b/code-interpreter")
	bin := filepath.Join(t.TempDir(), "warden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		provider string
		require  func(testing.TB)
		root     func(testing.TB) string
	}{
		// The sandbox user (host uid 1000 under a root test run) must reach
		// the workspace root: t.TempDir's parent is private.
		{"bubblewrap", testutil.RequireBwrap, testutil.SharedDir},
		{"forkserver", requireForkServer, testutil.SharedDir},
		{"docker", testutil.RequireDocker, func(t testing.TB) string { return t.TempDir() }},
	} {
		t.Run(tc.provider, func(t *testing.T) {
			tc.require(t)
			root := tc.root(t)
			key := newE2BKey(t)
			url, stop := startServe(t, bin, "API__KEYS="+key, "SANDBOX__PROVIDER="+tc.provider,
				"SANDBOX__PROVIDER_FALLBACK=false", "SANDBOX__IMAGE="+testutil.Image(),
				"SANDBOX__WORKSPACE_ROOT="+root, "LOG__LEVEL=warn")
			stopped := false
			defer func() {
				if !stopped {
					stop()
				}
			}()
			requireE2BSurface(t, url, key)

			start := time.Now()
			ids := runE2BClient(t, node, "E2B_API_URL="+url, "E2B_SANDBOX_URL="+url, "E2B_API_KEY="+key)
			t.Logf("client done in %s; it made %d sandboxes", time.Since(start).Round(time.Millisecond), len(ids))

			checkNoSandboxes(t, url, key)
			stop()
			stopped = true
			checkNoWorkspaces(t, tc.provider, root)
		})
	}
}

// newE2BKey returns a fresh API key in E2B's shape, e2b_ and 40 hex
// digits, which every SDK version accepts.
func newE2BKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "e2b_" + hex.EncodeToString(b)
}

// requireNodeClient returns the path of node, after checking that the npm
// modules pkgs of the client in dir are installed (npm ci there, as
// scripts/test.sh does). It skips the test when either is missing, or
// fails it when WARDEN_REQUIRE_NODE=1.
func requireNodeClient(t *testing.T, dir, what string, pkgs ...string) string {
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
		missing("node is not installed (Node.js 20.18.1 or newer runs " + what + ")")
		return ""
	}
	for _, p := range pkgs {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", filepath.FromSlash(p), "package.json")); err != nil {
			missing(what + "'s npm modules are not installed (no " + p + "): run npm ci in cmd/warden/" + dir)
		}
	}
	return node
}

// requireE2BSurface stops the test with a clear message unless the
// service answers E2B's list call, GET /v2/sandboxes with X-API-KEY,
// with a JSON array.
func requireE2BSurface(t *testing.T, url, key string) {
	t.Helper()
	list, status, body := e2bList(t, url, key)
	if status != http.StatusOK || list == nil {
		t.Fatalf("GET /v2/sandboxes with the key = %d %q: warden serve does not serve the E2B API", status, body)
	}
}

// e2bList calls E2B's GET /v2/sandboxes and returns the ids listed (nil
// unless the answer is a JSON array), the status and the body.
func e2bList(t *testing.T, url, key string) ([]string, int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url+"/v2/sandboxes", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-KEY", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	var list []struct {
		SandboxID string `json:"sandboxID"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(buf.Bytes(), &list) != nil || list == nil {
		return nil, resp.StatusCode, buf.String()
	}
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.SandboxID
	}
	return ids, resp.StatusCode, buf.String()
}

// runE2BClient runs client.mjs with the extra environment, fails the test
// if it fails, and returns the ids of the sandboxes it reports making.
func runE2BClient(t *testing.T, node string, env ...string) []string {
	t.Helper()
	const limit = 8 * time.Minute
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.mjs")
	cmd.Dir = e2bClientDir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	t.Logf("node client.mjs:\n%s", stdout.String())
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, errors.New("the client did not finish within "+limit.String()))
		}
		// Carry on to the checks for leftovers.
		t.Errorf("the E2B client failed: %v\nstderr:\n%s", err, stderr.String())
	} else if stderr.Len() > 0 {
		t.Logf("stderr:\n%s", stderr.String())
	}
	var res struct {
		SandboxIDs []string `json:"sandbox_ids"`
		Left       []string `json:"left"`
	}
	found := false
	for line := range strings.Lines(stdout.String()) {
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &res) == nil && res.SandboxIDs != nil {
			found = true
		}
	}
	if !found {
		t.Errorf("the E2B client printed no sandbox_ids line")
	}
	if len(res.Left) > 0 {
		t.Errorf("E2B's list still showed %v after the client killed them", res.Left)
	}
	return res.SandboxIDs
}

// checkNoSandboxes checks, through Warden's own API and E2B's list, that
// the service holds no sandbox (warm-pool sandboxes are not listed). A
// sandbox may take a moment to go after the kill that ended it.
func checkNoSandboxes(t *testing.T, url, key string) {
	t.Helper()
	c, err := client.New(url, client.WithAPIKey(key))
	if err != nil {
		t.Fatal(err)
	}
	var (
		list    []api.Sandbox
		e2bIDs  []string
		listErr error
		status  int
		body    string
	)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		list, listErr = c.List(t.Context())
		e2bIDs, status, body = e2bList(t, url, key)
		if (listErr == nil && len(list) == 0 && e2bIDs != nil && len(e2bIDs) == 0) || time.Now().After(deadline) {
			break
		}
	}
	if listErr != nil {
		t.Errorf("GET /sandbox: %v", listErr)
	}
	for _, s := range list {
		t.Errorf("sandbox %s (%s, created %s, %d executions) is left after the E2B client ended",
			s.ID, s.Image, s.CreatedAt.Format(time.RFC3339), s.Executions)
	}
	switch {
	case e2bIDs == nil:
		t.Errorf("GET /v2/sandboxes = %d %q", status, body)
	case len(e2bIDs) > 0:
		t.Errorf("E2B's list shows %v after the E2B client ended", e2bIDs)
	}
}

// checkNoWorkspaces checks, once the service has stopped, that no
// sandbox's workspace is left under root, and for Docker that no
// container with a workspace there is left.
func checkNoWorkspaces(t *testing.T, provider, root string) {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		// Hidden entries (bubblewrap's .rootfs, .init) are the provider's
		// own and may stay.
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("workspace root holds %s after warden serve stopped", e.Name())
		}
	}
	if provider != "docker" {
		return
	}
	cli, err := mobyclient.New(mobyclient.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.ContainerList(context.WithoutCancel(t.Context()), mobyclient.ContainerListOptions{All: true,
		Filters: make(mobyclient.Filters).Add("label", docker.LabelWorkspace)})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range list.Items {
		if ws := c.Labels[docker.LabelWorkspace]; ws == root || strings.HasPrefix(ws, root+string(filepath.Separator)) {
			t.Errorf("container %s (sandbox %s, workspace %s) is left after warden serve stopped",
				c.ID[:12], c.Labels[docker.LabelSandbox], ws)
		}
	}
}
