package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// fakeAPI is an in-memory engine: a set of image names, a scripted pull and
// a scripted build stream. It records the requests it gets.
type fakeAPI struct {
	mu          sync.Mutex
	images      map[string]bool
	pull        func(ctx context.Context, ref string) (io.ReadCloser, error)
	buildStream string

	inspects  []string
	pulls     []string
	builds    []string // Dockerfiles
	buildOpts []client.ImageBuildOptions
}

var _ API = (*fakeAPI)(nil)

func (f *fakeAPI) ImageInspect(_ context.Context, name string, _ ...client.ImageInspectOption) (client.ImageInspectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspects = append(f.inspects, name)
	if !f.images[name] {
		return client.ImageInspectResult{}, fmt.Errorf("no such image: %s: %w", name, cerrdefs.ErrNotFound)
	}
	return client.ImageInspectResult{}, nil
}

func (f *fakeAPI) ImagePull(ctx context.Context, ref string, _ client.ImagePullOptions) (client.ImagePullResponse, error) {
	f.mu.Lock()
	f.pulls = append(f.pulls, ref)
	f.mu.Unlock()
	if f.pull == nil {
		return nil, errors.New("dial tcp: lookup registry-1.docker.io: no such host")
	}
	rc, err := f.pull(ctx, ref)
	if err != nil {
		return nil, err
	}
	return pullResponse{rc}, nil
}

func (f *fakeAPI) ImageImport(context.Context, client.ImageImportSource, string, client.ImageImportOptions) (client.ImageImportResult, error) {
	return nil, errors.New("fakeAPI: import not expected")
}

func (f *fakeAPI) ImageBuild(_ context.Context, buildCtx io.Reader, opts client.ImageBuildOptions) (client.ImageBuildResult, error) {
	tr := tar.NewReader(buildCtx)
	hdr, err := tr.Next()
	if err != nil {
		return client.ImageBuildResult{}, err
	}
	if hdr.Name != opts.Dockerfile {
		return client.ImageBuildResult{}, fmt.Errorf("build context holds %q, want %q", hdr.Name, opts.Dockerfile)
	}
	df, err := io.ReadAll(tr)
	if err != nil {
		return client.ImageBuildResult{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.builds = append(f.builds, string(df))
	f.buildOpts = append(f.buildOpts, opts)
	stream := f.buildStream
	if stream == "" {
		stream = `{"stream":"Successfully tagged ` + opts.Tags[0] + `\n"}`
		f.images[opts.Tags[0]] = true
	}
	return client.ImageBuildResult{Body: io.NopCloser(strings.NewReader(stream))}, nil
}

type pullResponse struct{ io.ReadCloser }

func (pullResponse) JSONMessages(context.Context) iter.Seq2[jsonstream.Message, error] {
	return func(func(jsonstream.Message, error) bool) {}
}
func (pullResponse) Wait(context.Context) error { return nil }

func newFake(images ...string) *fakeAPI {
	f := &fakeAPI{images: map[string]bool{}}
	for _, i := range images {
		f.images[i] = true
	}
	return f
}

func TestEnsureReusesExistingImage(t *testing.T) {
	t.Parallel()
	f := newFake(DefaultName)
	built, err := Ensure(t.Context(), f, Options{}, nil)
	if err != nil || built {
		t.Fatalf("Ensure() = %v, %v, want false, nil", built, err)
	}
	if len(f.inspects) != 1 || len(f.builds) != 0 || len(f.pulls) != 0 {
		t.Errorf("Ensure() made %d inspects, %d builds, %d pulls; want 1, 0, 0", len(f.inspects), len(f.builds), len(f.pulls))
	}
}

func TestEnsureRebuildAndNoCache(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{{Rebuild: true}, {NoCache: true}} {
		f := newFake(DefaultName, DefaultOfficialBase)
		built, err := Ensure(t.Context(), f, opts, nil)
		if err != nil || !built {
			t.Fatalf("Ensure(%+v) = %v, %v, want true, nil", opts, built, err)
		}
		if got := f.buildOpts[0]; got.NoCache != opts.NoCache {
			t.Errorf("Ensure(%+v) built with NoCache %v", opts, got.NoCache)
		}
	}
}

func TestBuildOfficialWhenPresent(t *testing.T) {
	t.Parallel()
	f := newFake(DefaultOfficialBase)
	var progress strings.Builder
	built, err := Ensure(t.Context(), f, Options{Name: "warden-runtime:x"}, &progress)
	if err != nil || !built {
		t.Fatalf("Ensure() = %v, %v, want true, nil", built, err)
	}
	if len(f.builds) != 1 || f.builds[0] != OfficialDockerfile(DefaultOfficialBase) {
		t.Fatalf("built %q, want the official Dockerfile", f.builds)
	}
	o := f.buildOpts[0]
	if o.Version != build.BuilderV1 || len(o.Tags) != 1 || o.Tags[0] != "warden-runtime:x" || !o.Remove || !o.ForceRemove {
		t.Errorf("ImageBuild options = %+v, want classic builder, tag warden-runtime:x, intermediate containers removed", o)
	}
	if len(f.pulls) != 0 {
		t.Errorf("pulled %v, want no pull when the base is present", f.pulls)
	}
	for _, want := range []string{"==> building warden-runtime:x from python:3.11-slim\n", "Successfully tagged", "==> built warden-runtime:x in "} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

// With the Debian base present and the official one absent, Auto builds
// offline: no pull is attempted.
func TestBuildUsesLocalDebianBaseWithoutNetwork(t *testing.T) {
	t.Parallel()
	f := newFake(DefaultBaseName)
	if err := Build(t.Context(), f, Options{}, nil); err != nil {
		t.Fatalf("Build() = %v", err)
	}
	if len(f.pulls) != 0 {
		t.Errorf("pulled %v, want none", f.pulls)
	}
	if len(f.builds) != 1 || f.builds[0] != RuntimeDockerfile(DefaultBaseName) {
		t.Errorf("built %q, want RuntimeDockerfile(%s)", f.builds, DefaultBaseName)
	}
	if n := len(f.inspects); n != 2 {
		t.Errorf("Build() inspected %d images (%v), want 2", n, f.inspects)
	}
}

func TestChooseRecipe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		opts     Options
		images   []string
		want     recipe
		wantPull bool
	}{
		{"auto, official present", Options{}, []string{DefaultOfficialBase, DefaultBaseName}, officialRecipe, false},
		{"auto, base present", Options{}, []string{DefaultBaseName}, debianRecipe, false},
		{"auto, base present but RebuildBase", Options{RebuildBase: true}, []string{DefaultBaseName}, bootstrapRecipe, true},
		{"debian, official present", Options{Strategy: StrategyDebian}, []string{DefaultOfficialBase, DefaultBaseName}, debianRecipe, false},
		{"debian, nothing present", Options{Strategy: StrategyDebian}, nil, bootstrapRecipe, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(tt.images...)
			o, _ := tt.opts.withDefaults()
			got, err := chooseRecipe(t.Context(), f, o, io.Discard)
			if err != nil || got != tt.want {
				t.Errorf("chooseRecipe() = %v, %v, want %v", got, err, tt.want)
			}
			if pulled := len(f.pulls) > 0; pulled != tt.wantPull {
				t.Errorf("pulled %v, want a pull: %v", f.pulls, tt.wantPull)
			}
		})
	}
}

func TestBuildStreamErrorFailsBuild(t *testing.T) {
	t.Parallel()
	f := newFake(DefaultOfficialBase)
	f.buildStream = `{"stream":"Step 3/7 : RUN pip install numpy\n"}
{"errorDetail":{"message":"The command '/bin/sh -c pip install numpy' returned a non-zero code: 1"}}`
	err := Build(t.Context(), f, Options{}, nil)
	if err == nil || !strings.Contains(err.Error(), "building image warden-runtime:latest: The command") {
		t.Errorf("Build() = %v, want the error from the stream", err)
	}
}

func TestChooseRecipeFallsBackWhenPullFails(t *testing.T) {
	t.Parallel()
	f := newFake()
	o, _ := Options{}.withDefaults()
	var progress strings.Builder
	r, err := chooseRecipe(t.Context(), f, o, &progress)
	if err != nil || r != bootstrapRecipe {
		t.Fatalf("chooseRecipe() = %v, %v, want bootstrapRecipe, nil", r, err)
	}
	if len(f.pulls) != 1 {
		t.Errorf("pulls = %v, want one attempt", f.pulls)
	}
	if !strings.Contains(progress.String(), "falling back") {
		t.Errorf("progress does not announce the fallback:\n%s", progress.String())
	}
}

func TestChooseRecipeAfterPull(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.pull = func(context.Context, string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(`{"status":"Pulling from library/python","id":"3.11-slim"}
{"status":"Status: Downloaded newer image for python:3.11-slim"}`)), nil
	}
	o, _ := Options{}.withDefaults()
	r, err := chooseRecipe(t.Context(), f, o, io.Discard)
	if err != nil || r != officialRecipe {
		t.Fatalf("chooseRecipe() = %v, %v, want officialRecipe, nil", r, err)
	}
}

// A registry that never answers must not hang the build.
func TestPullTimeoutIsBounded(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.pull = func(ctx context.Context, _ string) (io.ReadCloser, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	start := time.Now()
	err := Build(t.Context(), f, Options{Strategy: StrategyOfficial, PullTimeout: 50 * time.Millisecond}, nil)
	if !errors.Is(err, errPullTimeout) {
		t.Errorf("Build() = %v, want a pull timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Build() took %s with a 50ms pull timeout", d)
	}
}

// A pull that has started is not cut by the pull timeout.
func TestPullTimeoutOnlyUntilFirstData(t *testing.T) {
	t.Parallel()
	f := newFake()
	f.pull = func(ctx context.Context, _ string) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			io.WriteString(pw, `{"status":"Pulling from library/python","id":"3.11-slim"}`+"\n")
			select {
			case <-time.After(200 * time.Millisecond):
				io.WriteString(pw, `{"status":"Downloaded"}`)
				pw.Close()
			case <-ctx.Done():
				pw.CloseWithError(ctx.Err())
			}
		}()
		return pr, nil
	}
	if err := pull(t.Context(), f, "python:3.11-slim", 50*time.Millisecond, io.Discard); err != nil {
		t.Errorf("pull() = %v, want nil", err)
	}
}

func TestOfficialStrategyReportsPullError(t *testing.T) {
	t.Parallel()
	err := Build(t.Context(), newFake(), Options{Strategy: StrategyOfficial}, nil)
	if err == nil || !strings.Contains(err.Error(), "pulling python:3.11-slim: dial tcp") {
		t.Errorf("Build() = %v, want the pull error", err)
	}
}
