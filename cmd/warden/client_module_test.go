package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/testutil"
)

// outsideProgram is a Go program in a module of its own, as a user would
// write it: it imports the public client and nothing else of Warden's.
const outsideProgram = `package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

func main() {
	ctx := context.Background()
	c, err := client.NewFromEnv()
	if err != nil {
		fail(err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		fail(err)
	}
	sb, err := c.Create(ctx, client.CreateOptions{MemoryLimit: "256m", EnvironmentVariables: map[string]string{"WHO": "outside"}})
	if err != nil {
		fail(err)
	}
	defer c.Delete(context.WithoutCancel(ctx), sb.ID)
	if _, err := c.Execute(ctx, sb.ID, client.ExecuteOptions{Code: "import os\nwho = os.environ['WHO']"}); err != nil {
		fail(err)
	}
	var streamed []string
	res, err := c.Execute(ctx, sb.ID, client.ExecuteOptions{Code: "print('hello from', who)\n6 * 7",
		OnOutput: func(s api.Stream, p []byte) { streamed = append(streamed, string(s)+":"+string(p)) }})
	if err != nil {
		fail(err)
	}
	_, getErr := c.Get(ctx, "sb-0000000000000000")
	out, _ := json.Marshal(map[string]any{
		"provider": sb.Provider, "docker_available": st.DockerAvailable, "stdout": res.Stdout,
		"value": *res.ReturnValue, "streamed": streamed, "not_found": errors.Is(getErr, client.ErrNotFound),
	})
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "outside:", err)
	os.Exit(1)
}
`

// TestClientFromAnotherModule builds a throwaway module outside this one
// that imports the public client, and runs it against a real warden serve
// on bubblewrap: the client is importable (no internal package in its
// API) and works as documented.
func TestClientFromAnotherModule(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds a module and runs the binary")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "warden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const key = "outside-module-key-0123456789"
	url, stop := startServe(t, bin, "API__KEYS="+key, "SANDBOX__PROVIDER=bubblewrap", "SANDBOX__PROVIDER_FALLBACK=false",
		"SANDBOX__IMAGE="+testutil.Image(), "SANDBOX__WORKSPACE_ROOT="+testutil.SharedDir(t), "SANDBOX__WARM_POOL_SIZE=0", "LOG__LEVEL=warn")
	defer stop()

	mod := t.TempDir()
	goMod := "module example.com/outside\n\ngo 1.26\n\nrequire github.com/warden-sandbox/warden v0.0.0\n\n" +
		"replace github.com/warden-sandbox/warden => " + root + "\n"
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"go.mod": goMod, "go.sum": string(sum), "main.go": outsideProgram} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "WARDEN_URL="+url, "WARDEN_API_KEY="+key, "GOFLAGS=-mod=mod")
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("go %s in the outside module: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
		}
		return string(out)
	}
	run("mod", "tidy")
	out := run("run", ".")
	var got struct {
		Provider        string   `json:"provider"`
		DockerAvailable bool     `json:"docker_available"`
		Stdout          string   `json:"stdout"`
		Value           string   `json:"value"`
		Streamed        []string `json:"streamed"`
		NotFound        bool     `json:"not_found"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("outside program printed %q: %v", out, err)
	}
	if got.Provider != "bubblewrap" || got.Stdout != "hello from outside\n" || got.Value != "42" ||
		strings.Join(got.Streamed, "") != "stdout:hello from outside\n" || !got.NotFound {
		t.Fatalf("outside program = %+v", got)
	}
	// Docker runs on this machine (the suite requires it), and the
	// service must say so though it uses bubblewrap.
	if testutil.Required("WARDEN_REQUIRE_DOCKER") && !got.DockerAvailable {
		t.Error("status says docker_available false beside a running Docker daemon")
	}
}
