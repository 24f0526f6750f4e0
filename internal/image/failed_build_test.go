package image

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
)

// TestFailedBuildLeavesNothing: the layers a failed build made are
// removed with it; the image it started from is kept.
func TestFailedBuildLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds on the real engine; skipped with -short")
	}
	cli := requireDocker(t)
	ctx := t.Context()
	base := DefaultName
	if ok, err := Exists(ctx, cli, base); err != nil || !ok {
		t.Skipf("no %s to build on (%v)", base, err)
	}
	token := make([]byte, 8)
	_, _ = rand.Read(token)
	df := "FROM " + base + "\nRUN echo " + hex.EncodeToString(token) + " > /tmp/layer\nRUN exit 3\n"
	var out bytes.Buffer
	layers := &layerTracker{w: &out}
	err := buildDockerfile(ctx, cli, df, Options{Name: "warden-test-failed-build:" + hex.EncodeToString(token), NoCache: true}, layers)
	if err == nil {
		t.Fatalf("build succeeded:\n%s", out.String())
	}
	// The tracker saw the layer of the first RUN, the last one made.
	if layers.last == "" {
		t.Fatalf("no layer in the build output:\n%s", out.String())
	}
	if _, err := cli.ImageInspect(ctx, layers.last); !cerrdefs.IsNotFound(err) {
		t.Errorf("layer %s of the failed build: inspect = %v, want not found", layers.last, err)
	}
	if ok, err := Exists(ctx, cli, base); err != nil || !ok {
		t.Errorf("base image %s after the failed build: %v %v", base, ok, err)
	}
}
