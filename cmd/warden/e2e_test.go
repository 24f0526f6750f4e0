package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mobyclient "github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestServeEndToEnd builds warden, runs `warden serve` as a process on a
// free port, drives it over HTTP, then stops it with SIGTERM while an
// execution runs and checks that every container it made is gone.
func TestServeEndToEnd(t *testing.T) {
	testutil.RequireDocker(t)
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "warden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const key = "e2e-test-key-0123456789abcdef"
	cmd := exec.Command(bin, "serve", "--port", "0")
	cmd.Env = append(os.Environ(), "API__KEYS="+key, "SANDBOX__IMAGE="+testutil.Image(),
		"SANDBOX__PROVIDER=docker", "SANDBOX__BYPASS_SHELL_SAFETY=false", "SANDBOX__PYTHON_SAFETY=true",
		"SANDBOX__WORKSPACE_ROOT="+t.TempDir(), "LOG__LEVEL=warn")
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

	ctx := t.Context()
	anon, _ := client.New(url)
	if h, err := anon.Health(ctx); err != nil || h.Status != "ok" || h.SandboxMode != "docker" {
		t.Fatalf("health without a key = %+v, %v", h, err)
	}
	if _, err := anon.List(ctx); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("list without a key = %v, want unauthorized", err)
	}
	c, _ := client.New(url, client.WithAPIKey(key))
	info, err := c.Create(ctx, client.CreateOptions{MemoryLimit: "256m"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Python, Code: "x = 20"}); err != nil {
		t.Fatal(err)
	}
	var streamed bytes.Buffer
	r, err := c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Python, Code: "print('streamed'); x * 2",
		OnOutput: func(_ api.Stream, p []byte) { streamed.Write(p) }})
	if err != nil || r.ReturnValue == nil || *r.ReturnValue != "40" || streamed.String() != "streamed\n" {
		t.Fatalf("execute = %+v %q, %v", r, streamed.String(), err)
	}
	// The policies, switched on for this service, refuse before anything
	// runs: 403 with the rule and the reason, and no process started.
	if _, err := c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Shell, Code: "echo ok > marker"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Shell, Code: "ls; FOO=1 rm -f marker"})
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.StatusCode != 403 || ae.Rule != "shell_command" ||
		!strings.Contains(ae.Message, "Command rejected for security reasons: ") || !strings.Contains(ae.Reason, "rm") {
		t.Fatalf("refused shell command = %v, want a 403 naming rule shell_command and rm", err)
	}
	_, err = c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Python, Code: "getattr(__builtins__, 'exec')('import os')"})
	if ae, ok := errors.AsType[*client.APIError](err); !ok || ae.StatusCode != 403 || !strings.HasPrefix(ae.Rule, "python_") ||
		!strings.Contains(ae.Message, "SECURITY VIOLATION: ") {
		t.Fatalf("refused Python = %v, want a 403 with a python_ rule", err)
	}
	if r, err := c.Execute(ctx, info.ID, client.ExecuteOptions{Language: api.Shell, Code: "cat marker"}); err != nil || string(r.Stdout) != "ok\n" {
		t.Fatalf("after the refusal: %+v, %v; want the marker untouched", r, err)
	}
	// The CLI reports a refusal with exit 1 and the reason.
	{
		var out, errb bytes.Buffer
		code := run(ctx, []string{"exec", "--server", url, "--shell", "rm -rf /workspace"},
			env{environ: []string{"WARDEN_API_KEY=" + key}, stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
		if code != 1 || !strings.Contains(errb.String(), "Command rejected for security reasons: ") {
			t.Fatalf("warden exec --server of a refused command = %d, %q, %q", code, out.String(), errb.String())
		}
	}

	if _, err := c.Get(ctx, "sb-0000000000000000"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("unknown sandbox = %v", err)
	}

	// The CLI against the service.
	var out, errb bytes.Buffer
	code := run(ctx, []string{"exec", "--server", url, "--python", "y = 2", "--python", "y + 1"},
		env{environ: []string{"WARDEN_API_KEY=" + key}, stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
	if code != 0 || out.String() != "3\n" {
		t.Fatalf("warden exec --server = %d, %q, %q", code, out.String(), errb.String())
	}

	// SIGTERM while an execution runs: it is cancelled after the grace
	// period, and every container goes.
	running := make(chan error, 1)
	go func() {
		_, err := c.Execute(context.Background(), info.ID, client.ExecuteOptions{Language: api.Python, Code: "import time; time.sleep(120)"})
		running <- err
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { <-done; waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("warden serve exited with %v after SIGTERM:\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("warden serve still running 60s after SIGTERM:\n%s", logs.String())
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	if err := <-running; err == nil {
		t.Error("the running execution was not interrupted by the shutdown")
	}
	if !strings.Contains(logs.String(), "all sandboxes removed") {
		t.Errorf("no clean-shutdown line:\n%s", logs.String())
	}
	cli, err := mobyclient.New(mobyclient.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	list, err := cli.ContainerList(ctx, mobyclient.ContainerListOptions{All: true,
		Filters: make(mobyclient.Filters).Add("label", docker.LabelManaged+"=1")})
	if err != nil {
		t.Fatal(err)
	}
	for _, ctr := range list.Items {
		if strings.Contains(ctr.Labels[docker.LabelOwner], fmt.Sprintf("/%d/", cmd.Process.Pid)) {
			t.Errorf("container %v of the stopped server survived", ctr.Names)
		}
	}
}
