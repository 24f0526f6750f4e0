package image

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
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
	if len(layers.made) != 1 || layers.made[0] != layers.last {
		t.Errorf("the build made %q, want only %s", layers.made, layers.last)
	}
	if _, err := cli.ImageInspect(ctx, layers.last); !cerrdefs.IsNotFound(err) {
		t.Errorf("layer %s of the failed build: inspect = %v, want not found", layers.last, err)
	}
	if ok, err := Exists(ctx, cli, base); err != nil || !ok {
		t.Errorf("base image %s after the failed build: %v %v", base, ok, err)
	}
}

// fakeImages is an engine that knows which images are tagged and records
// the removals.
type fakeImages struct {
	API
	tagged  map[string]bool
	removed []string
	opts    []client.ImageRemoveOptions
}

func (f *fakeImages) ImageInspect(_ context.Context, id string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	var r client.ImageInspectResult
	if f.tagged[id] {
		r.RepoTags = []string{"x:latest"}
	}
	return r, nil
}

func (f *fakeImages) ImageRemove(_ context.Context, id string, o client.ImageRemoveOptions) (client.ImageRemoveResult, error) {
	f.removed = append(f.removed, id)
	f.opts = append(f.opts, o)
	return client.ImageRemoveResult{}, nil
}

// TestFailedBuildRemovesOnlyItsOwn: of a failed build's images, only
// those it made are removed, newest first, without their parents: not
// the image it started from, nor the layers it took from the cache,
// which a build beside it may be using.
func TestFailedBuildRemovesOnlyItsOwn(t *testing.T) {
	var out bytes.Buffer
	layers := &layerTracker{w: &out}
	for _, chunk := range []string{
		"Step 1/5 : FROM warden-runtime:latest\n ---> 1f235b4d93e8\n",
		"Step 2/5 : USER root\n ---> Using cache\n ---> 308a7e1da11a\n",
		"Step 3/5 : RUN apt-get update\n ---> Running in 9d1c2b3a4f5e\nHit:1 http://deb.debian.org bookworm InRelease\n",
		"Removing intermediate container 9d1c2b3a4f5e\n ---> aaaaaaaaaaaa\n",
		"Step 4/5 : RUN echo ' ---> Using cache'\n ---> Running in 0123456789ab\n ---> Using cache\n",
		" ---> bbbbbbbbbbbb\nStep 5/5 : RUN exit 3\n ---> Running in cccccccccccc\n",
	} {
		if _, err := layers.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	// The echo's output is a line of its own, " ---> Using cache", which
	// makes the next image look cached: it is kept (left, not lost).
	if got := strings.Join(layers.made, " "); got != "aaaaaaaaaaaa" || layers.last != "bbbbbbbbbbbb" {
		t.Fatalf("made %q, last %q", got, layers.last)
	}
	layers.made = append(layers.made, "bbbbbbbbbbbb", "dddddddddddd")
	api := &fakeImages{tagged: map[string]bool{"dddddddddddd": true}}
	removeUntagged(t.Context(), api, layers.made)
	if got := strings.Join(api.removed, " "); got != "bbbbbbbbbbbb aaaaaaaaaaaa" {
		t.Errorf("removed %q, want the build's own untagged images, newest first", got)
	}
	for _, o := range api.opts {
		if o.PruneChildren {
			t.Error("a removal pruned the image's parents")
		}
	}
	if !strings.Contains(out.String(), "Step 5/5 : RUN exit 3") {
		t.Error("the build's output was not passed on")
	}
}
