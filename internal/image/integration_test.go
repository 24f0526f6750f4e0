package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// requireDocker returns a client for the local engine, or skips the test
// when the engine is unreachable (fails instead if WARDEN_REQUIRE_DOCKER=1).
func requireDocker(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err != nil {
			cli.Close()
		}
	}
	if err != nil {
		if os.Getenv("WARDEN_REQUIRE_DOCKER") == "1" {
			t.Fatalf("Docker engine unreachable and WARDEN_REQUIRE_DOCKER=1: %v", err)
		}
		t.Skipf("Docker engine unreachable (set WARDEN_REQUIRE_DOCKER=1 to fail instead): %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestBuildIntegration builds the runtime image on the real engine and checks
// it from inside a container. The Debian base image is kept and reused
// across runs because bootstrapping it takes minutes; the runtime image gets
// a test-only tag and is removed.
func TestBuildIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a real image; skipped with -short")
	}
	cli := requireDocker(t)
	ctx := t.Context()

	haveBase, err := Exists(ctx, cli, DefaultBaseName)
	if err != nil {
		t.Fatal(err)
	}
	haveOfficial, err := Exists(ctx, cli, DefaultOfficialBase)
	if err != nil {
		t.Fatal(err)
	}
	if !haveBase && !haveOfficial && os.Geteuid() != 0 {
		t.Skipf("neither %s nor %s is present and bootstrapping the base needs root", DefaultBaseName, DefaultOfficialBase)
	}

	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := "warden-runtime:test-" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// PruneChildren removes the untagged build layers too; it stops at
		// the tagged base image.
		if _, err := cli.ImageRemove(ctx, name, client.ImageRemoveOptions{PruneChildren: true}); err != nil {
			t.Errorf("removing %s: %v", name, err)
		}
	})

	opts := Options{Name: name}
	start := time.Now()
	built, err := Ensure(ctx, cli, opts, t.Output())
	if err != nil {
		t.Fatalf("Ensure() = %v", err)
	}
	if !built {
		t.Fatalf("Ensure() built = false for the new image %s", name)
	}
	t.Logf("built %s in %s (base image present before: %v)", name, time.Since(start).Round(time.Second), haveBase)

	if built, err := Ensure(ctx, cli, opts, t.Output()); err != nil || built {
		t.Errorf("second Ensure() = %v, %v, want false, nil (reuse)", built, err)
	}

	inspect, err := cli.ImageInspect(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := inspect.Config
	if cfg.User != User || cfg.WorkingDir != Workspace || cfg.Labels[LabelRuntime] != "1" || cfg.Labels[LabelVersion] != RecipeVersion {
		t.Errorf("image config: User %q, WorkingDir %q, Labels %v; want %q, %q, %s=1 and %s=%s",
			cfg.User, cfg.WorkingDir, cfg.Labels, User, Workspace, LabelRuntime, LabelVersion, RecipeVersion)
	}

	const script = `
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "user=$(id -un)"
echo "pwd=$(pwd)"
echo "owner=$(stat -c %u:%g /workspace)"
touch /workspace/probe && rm /workspace/probe && echo "writable=yes"
python3 -c 'import cloudpickle, numpy, pandas, requests, matplotlib' && echo "imports=ok"
python3 -c 'import matplotlib.pyplot as plt; plt.plot([1, 2]); plt.savefig("/tmp/p.png")' && echo "plot=ok"
for tool in sleep bash ps file tree rg git curl; do command -v "$tool" >/dev/null || echo "missing=$tool"; done
test -s /etc/ssl/certs/ca-certificates.crt && echo "certs=ok"
echo "env=$LANG,$PYTHONDONTWRITEBYTECODE,$MPLBACKEND"
`
	stdout, stderr := runInImage(t, cli, name, script)
	got := map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			if old, dup := got[k]; dup {
				v = old + " " + v
			}
			got[k] = v
		}
	}
	want := map[string]string{
		"uid": "1000", "gid": "1000", "user": UserName, "pwd": Workspace, "owner": "1000:1000",
		"writable": "yes", "imports": "ok", "plot": "ok", "certs": "ok", "missing": "",
		"env": "C.UTF-8,1,Agg",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("in the container, %s = %q, want %q", k, got[k], v)
		}
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// runInImage runs script with bash in a container of image, as the image's
// user and without network, and returns its output. The container carries
// the label org.warden.test=1 and is removed.
func runInImage(t *testing.T, cli *client.Client, image, script string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:  image,
			Cmd:    []string{"bash", "-c", script},
			Labels: map[string]string{"org.warden.test": "1"},
		},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		t.Fatalf("creating container: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := cli.ContainerRemove(ctx, created.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Errorf("removing container: %v", err)
		}
	})
	wait := cli.ContainerWait(ctx, created.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting container: %v", err)
	}
	select {
	case res := <-wait.Result:
		if res.StatusCode != 0 {
			t.Errorf("container exited with %d", res.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatalf("waiting for container: %v", err)
	}
	logs, err := cli.ContainerLogs(ctx, created.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("reading container logs: %v", err)
	}
	defer logs.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, logs); err != nil {
		t.Fatalf("demultiplexing container logs: %v", err)
	}
	return out.String(), errOut.String()
}
