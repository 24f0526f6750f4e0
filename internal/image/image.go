package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Names and identities shared by both recipes. Providers use [User] and
// [Workspace] when they create containers from the image.
const (
	// DefaultName is the runtime image built when [Options.Name] is empty.
	DefaultName = "warden-runtime:latest"
	// DefaultBaseName is the image the Debian recipe imports its rootfs as.
	DefaultBaseName = "warden-base:" + Suite
	// DefaultOfficialBase is the official Python image of the first recipe.
	DefaultOfficialBase = "python:3.11-slim"
	// DefaultMirror is the Debian mirror used when none is configured and
	// none is found in the host's apt sources.
	DefaultMirror = "http://deb.debian.org/debian"
	// DefaultPullTimeout bounds the attempt to pull [DefaultOfficialBase].
	DefaultPullTimeout = 20 * time.Second

	// Suite is the Debian release the base image is bootstrapped from. The
	// package names in the recipe are those of this release.
	Suite = "bookworm"

	// UID and GID are the numeric identity code runs as inside the image.
	UID = 1000
	GID = 1000
	// UserName is the name of [UID] in the image's /etc/passwd.
	UserName = "sandbox"
	// User is [UID]:[GID] in the form Docker's Config.User expects.
	User = "1000:1000"
	// Workspace is the working directory, owned by [UID]:[GID].
	Workspace = "/workspace"

	// LabelRuntime marks images built by this package (value "1").
	LabelRuntime = "org.warden.runtime"
	// LabelVersion holds [RecipeVersion] of the recipe that built the image.
	LabelVersion = "org.warden.runtime.version"
	// RecipeVersion is raised whenever the recipe changes what the image
	// holds, so that callers can tell an image built by an older recipe.
	RecipeVersion = "1"
)

// API is the part of the Docker Engine client this package uses. A
// *client.Client from github.com/moby/moby/client satisfies it.
type API interface {
	ImageInspect(ctx context.Context, image string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImagePull(ctx context.Context, ref string, opts client.ImagePullOptions) (client.ImagePullResponse, error)
	ImageImport(ctx context.Context, src client.ImageImportSource, ref string, opts client.ImageImportOptions) (client.ImageImportResult, error)
	ImageBuild(ctx context.Context, buildContext io.Reader, opts client.ImageBuildOptions) (client.ImageBuildResult, error)
}

var _ API = (*client.Client)(nil)

// Strategy selects the recipe [Build] uses.
type Strategy string

const (
	// StrategyAuto uses the official Python image if it is present, else the
	// Debian base image if it is present, else tries to pull the official
	// image and falls back to bootstrapping the Debian base. With either base
	// present locally no registry is contacted; the official recipe still
	// needs PyPI for its pip install.
	StrategyAuto Strategy = "auto"
	// StrategyOfficial always uses the official Python image and fails if it
	// cannot be pulled. Its Dockerfile runs apt-get and pip, so it needs
	// access to a Debian mirror and to PyPI.
	StrategyOfficial Strategy = "official"
	// StrategyDebian always uses the Debian base image, bootstrapping it if
	// missing. It never contacts a container registry or PyPI.
	StrategyDebian Strategy = "debian"
)

// Options configures [Build] and [Ensure]. The zero value builds
// [DefaultName] with [StrategyAuto].
type Options struct {
	// Name is the runtime image to build or find. Default [DefaultName].
	Name string
	// BaseName is the Debian base image imported by the fallback recipe and
	// reused while it exists. Default [DefaultBaseName].
	BaseName string
	// OfficialBase is the official Python image of the first recipe; point it
	// at a local registry mirror if you have one. Default [DefaultOfficialBase].
	OfficialBase string
	// Strategy picks the recipe. Default [StrategyAuto].
	Strategy Strategy
	// Mirror is the Debian mirror (http or https) for debootstrap and apt-get.
	// Default: the first Debian entry of the host's apt sources, see
	// [HostMirror], else [DefaultMirror].
	Mirror string
	// PullTimeout bounds the wait for the registry to start sending the
	// official image. Default [DefaultPullTimeout].
	PullTimeout time.Duration
	// Rebuild makes [Ensure] build even when the image exists.
	Rebuild bool
	// NoCache builds without the Docker build cache; it implies Rebuild.
	NoCache bool
	// RebuildBase bootstraps the Debian base image again even if it exists.
	RebuildBase bool
	// TempDir is where the temporary rootfs (about 600 MB) is bootstrapped;
	// it must allow device nodes and executables. Default [os.TempDir].
	TempDir string
	// Env is extra environment for debootstrap and apt-get, for example
	// "http_proxy=http://proxy:3128". Nothing else from the host environment
	// reaches them.
	Env []string
}

// withDefaults fills in defaults and checks the result. It does not resolve
// the mirror: that reads host files and only the Debian recipe needs it.
func (o Options) withDefaults() (Options, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.BaseName == "" {
		o.BaseName = DefaultBaseName
	}
	if o.OfficialBase == "" {
		o.OfficialBase = DefaultOfficialBase
	}
	if o.Strategy == "" {
		o.Strategy = StrategyAuto
	}
	if o.PullTimeout <= 0 {
		o.PullTimeout = DefaultPullTimeout
	}
	var errs []error
	switch o.Strategy {
	case StrategyAuto, StrategyOfficial, StrategyDebian:
	default:
		errs = append(errs, fmt.Errorf("unknown strategy %q (want %s, %s or %s)", o.Strategy, StrategyAuto, StrategyOfficial, StrategyDebian))
	}
	if o.Mirror != "" {
		if err := checkMirror(o.Mirror); err != nil {
			errs = append(errs, err)
		}
	}
	return o, errors.Join(errs...)
}

// checkMirror accepts http and https URLs only: the mirror is also written
// into the chroot's sources.list, where a file: path of the host would not
// resolve.
func checkMirror(mirror string) error {
	u, err := url.Parse(mirror)
	if err != nil {
		return fmt.Errorf("mirror %q: %w", mirror, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("mirror %q: want an http or https URL (serve a local mirror over HTTP)", mirror)
	}
	return nil
}

// Exists reports whether the image name is present on the engine. It returns
// an error only when the engine could not answer.
func Exists(ctx context.Context, api API, name string) (bool, error) {
	_, err := api.ImageInspect(ctx, name)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("inspecting image %s: %w", name, err)
	}
}

// Ensure makes sure the runtime image exists: it inspects it once and calls
// [Build] only if it is missing, or always when opts.Rebuild or opts.NoCache
// is set. It reports whether it built. An existing image is never checked
// against [RecipeVersion]; set Rebuild to replace it.
func Ensure(ctx context.Context, api API, opts Options, progress io.Writer) (built bool, err error) {
	o, err := opts.withDefaults()
	if err != nil {
		return false, err
	}
	if !o.Rebuild && !o.NoCache {
		ok, err := Exists(ctx, api, o.Name)
		if err != nil {
			return false, err
		}
		if ok {
			return false, nil
		}
	}
	if err := Build(ctx, api, o, progress); err != nil {
		return false, err
	}
	return true, nil
}

// Build builds the runtime image as opts.Name, replacing the tag if it
// exists, and writes human-readable progress to progress (nil discards it).
// See the package documentation for the recipes. The Debian recipe runs
// debootstrap and chroot, so it needs root on a Linux host; if debootstrap
// is missing it is installed with apt-get when running as root.
//
// Cancelling ctx stops child processes and Docker requests; the temporary
// rootfs is removed in every case. Build is not safe to run concurrently
// with another Build of the same image names.
func Build(ctx context.Context, api API, opts Options, progress io.Writer) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	w := progress
	if w == nil {
		w = io.Discard
	}
	start := time.Now()

	r, err := chooseRecipe(ctx, api, o, w)
	if err != nil {
		return err
	}
	switch r {
	case officialRecipe:
		phasef(w, "building %s from %s", o.Name, o.OfficialBase)
		err = buildDockerfile(ctx, api, OfficialDockerfile(o.OfficialBase), o, w)
	case bootstrapRecipe:
		if err := bootstrapBase(ctx, api, o, w); err != nil {
			return fmt.Errorf("building base image %s: %w", o.BaseName, err)
		}
		fallthrough
	case debianRecipe:
		phasef(w, "building %s from %s", o.Name, o.BaseName)
		err = buildDockerfile(ctx, api, RuntimeDockerfile(o.BaseName), o, w)
	}
	if err != nil {
		return err
	}
	phasef(w, "built %s in %s", o.Name, time.Since(start).Round(time.Second))
	return nil
}

// recipe is what [Build] decided to do.
type recipe int

const (
	officialRecipe  recipe = iota // build on the official image, present or just pulled
	debianRecipe                  // build on the Debian base image, which exists
	bootstrapRecipe               // bootstrap the Debian base image, then build on it
)

// chooseRecipe applies o.Strategy, pulling the official image if that is
// the way forward. It fails only if the engine cannot answer, ctx ends, or
// the strategy is official and the pull failed.
func chooseRecipe(ctx context.Context, api API, o Options, w io.Writer) (recipe, error) {
	haveBase := func() (recipe, error) {
		if o.RebuildBase {
			return bootstrapRecipe, nil
		}
		ok, err := Exists(ctx, api, o.BaseName)
		if err != nil || !ok {
			return bootstrapRecipe, err
		}
		phasef(w, "reusing base image %s (warden image build --rebuild-base bootstraps it again)", o.BaseName)
		return debianRecipe, nil
	}
	if o.Strategy == StrategyDebian {
		return haveBase()
	}
	ok, err := Exists(ctx, api, o.OfficialBase)
	if err != nil || ok {
		return officialRecipe, err
	}
	if o.Strategy == StrategyAuto {
		if r, err := haveBase(); err != nil || r == debianRecipe {
			return r, err
		}
	}
	phasef(w, "pulling %s (giving up if the registry does not answer within %s)", o.OfficialBase, o.PullTimeout)
	err = pull(ctx, api, o.OfficialBase, o.PullTimeout, w)
	switch {
	case err == nil:
		return officialRecipe, nil
	case ctx.Err() != nil:
		return 0, fmt.Errorf("pulling %s: %w", o.OfficialBase, ctx.Err())
	case o.Strategy == StrategyOfficial:
		return 0, fmt.Errorf("pulling %s: %w", o.OfficialBase, err)
	}
	phasef(w, "cannot pull %s (%v); falling back to a base image built from Debian packages", o.OfficialBase, err)
	return bootstrapRecipe, nil
}

// PhasePrefix begins the progress lines that mark a phase of a build;
// the other lines are the output of the tools the build runs.
const PhasePrefix = "==> "

// phasef writes one phase line.
func phasef(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, PhasePrefix+format+"\n", args...)
}
