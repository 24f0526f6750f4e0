package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// newProvider returns a Docker provider closed, with all its sandboxes,
// when tb ends. It skips tb without Docker (fails it with
// WARDEN_REQUIRE_DOCKER=1).
func newProvider(tb testing.TB) *docker.Provider {
	tb.Helper()
	testutil.RequireDocker(tb)
	p, err := docker.New(context.Background(), docker.Options{WorkspaceRoot: filepath.Join(os.TempDir(), "warden-bench-test")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := p.Close(context.Background()); err != nil {
			tb.Errorf("closing provider: %v", err)
		}
	})
	return p
}

// benchEnv is a provider plus a run ID whose containers are swept when b
// ends.
func benchEnv(b *testing.B) env {
	b.Helper()
	p := newProvider(b)
	e := env{p: p, image: testutil.Image(), runID: newRunID()}
	b.Cleanup(func() {
		if err := sweep(context.Background(), p.Client(), e.runID); err != nil {
			b.Error(err)
		}
	})
	return e
}

func requireCLI(b *testing.B, e env) *dockerCLI {
	b.Helper()
	d, err := newDockerCLI("", e.p.Client(), nil)
	if err != nil {
		b.Skipf("docker CLI: %v", err)
	}
	return d
}

func baseline(b *testing.B, e env) string {
	b.Helper()
	id, remove, err := startBaseline(b.Context(), e.p.Client(), e.image, e.runID)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(remove)
	return id
}

func loop(b *testing.B, o op) {
	b.Helper()
	for b.Loop() {
		if _, err := o.fn(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWardenExec is one `x = 1` through provider.Exec in a live
// sandbox.
func BenchmarkWardenExec(b *testing.B) {
	e := benchEnv(b)
	info, err := e.p.Create(b.Context(), e.spec())
	if err != nil {
		b.Fatal(err)
	}
	loop(b, wardenExec(e.p, info.ID, WardenExecPython, sandbox.ExecRequest{Language: sandbox.Python, Code: pyStatement}))
}

// BenchmarkWardenExecShell is one shell `true` through provider.Exec.
func BenchmarkWardenExecShell(b *testing.B) {
	e := benchEnv(b)
	info, err := e.p.Create(b.Context(), e.spec())
	if err != nil {
		b.Fatal(err)
	}
	loop(b, wardenExec(e.p, info.ID, WardenExecShell, sandbox.ExecRequest{Language: sandbox.Shell, Code: shellCommand}))
}

// BenchmarkDockerExecCLI is `docker exec C python3 -c 'x = 1'`.
func BenchmarkDockerExecCLI(b *testing.B) {
	e := benchEnv(b)
	d := requireCLI(b, e)
	loop(b, d.exec(DockerExecCLI, baseline(b, e), "python3", "-c", pyStatement))
}

// BenchmarkDockerExecSDK is the same exec through the Docker SDK.
func BenchmarkDockerExecSDK(b *testing.B) {
	e := benchEnv(b)
	loop(b, sdkExec(e.p.Client(), DockerExecSDK, baseline(b, e), "python3", "-c", pyStatement))
}

// BenchmarkWardenLifecycle is Create, Exec print(1), Destroy.
func BenchmarkWardenLifecycle(b *testing.B) {
	e := benchEnv(b)
	loop(b, wardenLifecycle(e.p, e.spec(), WardenLifecycle, WardenCreate, WardenFirstExec, WardenDestroy, nil))
}

// BenchmarkDockerRunCLI is `docker run --rm --network none IMG python3 -c
// 'print(1)'`.
func BenchmarkDockerRunCLI(b *testing.B) {
	e := benchEnv(b)
	d := requireCLI(b, e)
	loop(b, d.runOnce(e.image, e.runID))
}

// BenchmarkDockerRunSDK is the same run through the Docker SDK.
func BenchmarkDockerRunSDK(b *testing.B) {
	e := benchEnv(b)
	loop(b, sdkRun(e.p.Client(), e.image, e.runID))
}
