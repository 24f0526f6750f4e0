package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// Agent frameworks a per-framework image can hold. [FrameworkNone] is the
// runtime image itself, with no framework packages.
const (
	FrameworkNone         = "none"
	FrameworkMagentic     = "magentic"
	FrameworkOpenAIAgents = "openai-agents"
	FrameworkAutogen      = "autogen"
	FrameworkLangGraph    = "langgraph"
	FrameworkCrewAI       = "crewai"
)

// frameworkPins are the pip requirements of each framework, pinned so
// that an image built today and one built next month hold the same
// framework. Only the framework's own packages (and openai, which several
// share) are pinned; their transitive dependencies are resolved by pip at
// build time. For a fully reproducible image, build from a wheel directory
// (FrameworkOptions.WheelDir).
//
// The versions come from the seed system's compiled requirements.txt
// (SafeAgents, November 2025: autogen 0.5.1, langgraph 0.6.11 with
// langchain-core 0.3.79 and langchain-openai 0.3.35, openai-agents 0.4.2,
// openai 2.6.0, playwright 1.51.0), where one resolution held all of them.
// The seed had no crewai set; crewai 1.7.2 is our choice, a 1.x release
// that supports Python 3.10 to 3.13, and it is left to choose its own
// openai version. "magentic" is autogen's Magentic-One team, as in the
// seed; it needs playwright, whose browsers are not downloaded (that
// needs network at build time: run `playwright install chromium` in a
// derived image if the web surfer is used).
var frameworkPins = map[string][]string{
	FrameworkNone: nil,
	FrameworkMagentic: {
		"autogen-agentchat==0.5.1",
		"autogen-core==0.5.1",
		"autogen-ext[magentic-one,openai]==0.5.1",
		"openai==2.6.0",
		"playwright==1.51.0",
	},
	FrameworkOpenAIAgents: {
		"openai-agents==0.4.2",
		"openai==2.6.0",
	},
	FrameworkAutogen: {
		"autogen-agentchat==0.5.1",
		"autogen-core==0.5.1",
		"autogen-ext[openai]==0.5.1",
		"openai==2.6.0",
	},
	FrameworkLangGraph: {
		"langgraph==0.6.11",
		"langchain-core==0.3.79",
		"langchain-openai==0.3.35",
		"openai==2.6.0",
	},
	FrameworkCrewAI: {
		"crewai==1.7.2",
	},
}

// Image-building constants of the per-framework images.
const (
	// LabelFramework holds the framework of an image built by
	// [BuildFramework].
	LabelFramework = "org.warden.framework"
	// LabelPackages holds the pip requirements installed on top of the
	// runtime image, space-separated.
	LabelPackages = "org.warden.framework.packages"
	// DebianPython is the Python version of the Debian recipe's runtime
	// image (the python3 of [Suite]).
	DebianPython = "3.11"
	// PackageIndex is the index pip downloads from when no wheel directory
	// is given.
	PackageIndex = "https://pypi.org/simple/"
	// WheelsPath is where a wheel directory is copied inside the image.
	WheelsPath = "/wheels"
	// netTimeout bounds each network operation of apt-get and pip in the
	// build, in seconds: without it a build on a host that cannot reach
	// the index waits for TCP timeouts and retries, for minutes.
	netTimeout = 15
)

// Errors of [BuildFramework], matched with errors.Is.
var (
	// ErrNoPackageIndex: the build could not reach [PackageIndex]. Build
	// from a wheel directory instead.
	ErrNoPackageIndex = errors.New("no package index reachable")
	// ErrNoMirror: the base image has no pip and apt-get could not install
	// Debian's python3-pip, usually because no Debian mirror is reachable.
	ErrNoMirror = errors.New("cannot install pip from the Debian mirror")
	// ErrPackageNotFound: pip found no distribution of a requirement (in the
	// wheel directory, or on the index).
	ErrPackageNotFound = errors.New("package not found")
)

// Frameworks returns the known framework names, sorted.
func Frameworks() []string {
	names := make([]string, 0, len(frameworkPins))
	for k := range frameworkPins {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// FrameworkPackages returns a copy of the pinned pip requirements of
// framework; none for [FrameworkNone]. An unknown framework is an error
// listing the known ones.
func FrameworkPackages(framework string) ([]string, error) {
	pins, ok := frameworkPins[framework]
	if !ok {
		return nil, fmt.Errorf("unknown framework %q (want one of %s)", framework, strings.Join(Frameworks(), ", "))
	}
	return slices.Clone(pins), nil
}

// requirement is the subset of pip's requirement syntax accepted for extra
// packages: a name, optional extras, optional version clauses. Anything
// else (URLs, paths, options, shell syntax) is refused, because the
// requirement ends up in a RUN line.
var requirement = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?(\[[A-Za-z0-9._-]+(,[A-Za-z0-9._-]+)*\])?((===?|~=|!=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+(,(===?|~=|!=|<=|>=|<|>)[A-Za-z0-9.*+!_-]+)*)?$`)

// ValidatePackage checks one extra pip requirement, such as "pandas",
// "requests==2.32.3" or "autogen-ext[openai]>=0.5,<0.6".
func ValidatePackage(p string) error {
	if !requirement.MatchString(p) {
		return fmt.Errorf("package %q is not a requirement of the form NAME[EXTRAS][==VERSION]", p)
	}
	return nil
}

var pythonVersion = regexp.MustCompile(`^3\.[0-9]{1,2}$`)

// ValidatePythonVersion checks a Python version of the form 3.N.
func ValidatePythonVersion(v string) error {
	if !pythonVersion.MatchString(v) {
		return fmt.Errorf("python version %q: want 3.N, e.g. %s", v, DebianPython)
	}
	return nil
}

// FrameworkDockerfile returns the Dockerfile of a per-framework image: base
// (a runtime image) plus the framework's pinned packages and extra ones.
// With wheelDir set, the build context holds the wheel directory as
// "wheels", and pip installs from it only (--no-index), needing no network.
// The wheels stay in the image at [WheelsPath]: the classic builder cannot
// mount them for one step only. Otherwise pip downloads from
// [PackageIndex]; the Dockerfile checks first
// that the index answers, so that a build without access fails at once
// with a message [BuildFramework] recognises.
//
// When the base has no pip (the Debian runtime image has none), Debian's
// python3-pip is installed with apt-get, which needs the Debian mirror.
// Packages go to /usr/local, beside Debian's own, as the sandbox's python3
// is the system one. The image ends as [User], like the runtime image.
func FrameworkDockerfile(framework, base string, extra []string, wheelDir bool) (string, error) {
	pins, err := FrameworkPackages(framework)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, p := range extra {
		if err := ValidatePackage(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	pkgs := append(pins, extra...)

	var b strings.Builder
	if framework == FrameworkNone {
		fmt.Fprintf(&b, "# Warden runtime image without an agent framework.\n")
	} else {
		fmt.Fprintf(&b, "# Warden runtime image with the %s agent framework.\n", framework)
	}
	fmt.Fprintf(&b, "FROM %s\n", base)
	if len(pkgs) > 0 {
		apt := fmt.Sprintf("apt-get -o Acquire::Retries=0 -o Acquire::http::Timeout=%d", netTimeout)
		fmt.Fprintf(&b, "USER root\n")
		fmt.Fprintf(&b, "# pip, from Debian's python3-pip when the base has none (needs the Debian mirror).\n")
		fmt.Fprintf(&b, "RUN python3 -m pip --version >/dev/null 2>&1 || { \\\n")
		fmt.Fprintf(&b, "      %s update \\\n", apt)
		fmt.Fprintf(&b, "      && %s install -y --no-install-recommends python3-pip \\\n", apt)
		fmt.Fprintf(&b, "      && rm -rf /var/lib/apt/lists/*; \\\n")
		fmt.Fprintf(&b, "    } || { echo '%s' >&2; exit 1; }\n", markerNoMirror)
		if wheelDir {
			fmt.Fprintf(&b, "COPY wheels %s\n", WheelsPath)
		}
		fmt.Fprintf(&b, "# Packages: pinned framework set, then extra packages.\n")
		if wheelDir {
			fmt.Fprintf(&b, "RUN PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install \\\n")
		} else {
			fmt.Fprintf(&b, "RUN python3 -c \"import urllib.request; urllib.request.urlopen('%spip/', timeout=%d)\" >/dev/null 2>&1 \\\n", PackageIndex, netTimeout)
			fmt.Fprintf(&b, "      || { echo '%s' >&2; exit 1; }; \\\n", markerNoIndex)
			fmt.Fprintf(&b, "    PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore python3 -m pip install \\\n")
		}
		fmt.Fprintf(&b, "      --no-cache-dir --disable-pip-version-check --no-input --progress-bar off \\\n")
		fmt.Fprintf(&b, "      --timeout %d --retries 0 \\\n", netTimeout)
		if wheelDir {
			fmt.Fprintf(&b, "      --no-index --find-links %s \\\n", WheelsPath)
		}
		for i, p := range pkgs {
			sep := " \\"
			if i == len(pkgs)-1 {
				sep = ""
			}
			fmt.Fprintf(&b, "      '%s'%s\n", p, sep)
		}
	}
	fmt.Fprintf(&b, "LABEL %s=%q \\\n", LabelFramework, framework)
	fmt.Fprintf(&b, "      %s=%q\n", LabelPackages, strings.Join(pkgs, " "))
	if len(pkgs) > 0 {
		fmt.Fprintf(&b, "USER %s\n", User)
	}
	return b.String(), nil
}

// Markers the Dockerfile prints before failing, so that BuildFramework can
// say what went wrong instead of relaying "returned a non-zero code: 1".
const (
	markerNoMirror = "warden: apt-get could not install python3-pip; is the Debian mirror reachable?"
	markerNoIndex  = "warden: the package index " + PackageIndex + " is not reachable from the build"
)

// FrameworkImageName returns the name of the image of framework:
// warden-runtime-<framework>:latest, or with another tag when the Python
// version is not the Debian one ("py3.12") or extra packages are added
// (a hash of them), so that different contents never share a name.
func FrameworkImageName(framework, python string, extra []string) string {
	var tag []string
	if python != "" && python != DebianPython {
		tag = append(tag, "py"+python)
	}
	if len(extra) > 0 {
		sorted := slices.Clone(extra)
		slices.Sort(sorted)
		sum := sha256.Sum256([]byte(strings.Join(sorted, "\n")))
		tag = append(tag, hex.EncodeToString(sum[:4]))
	}
	if len(tag) == 0 {
		tag = []string{"latest"}
	}
	return "warden-runtime-" + framework + ":" + strings.Join(tag, "-")
}

// RuntimeImageName returns the runtime image with the given Python
// version: [DefaultName] for "" and [DebianPython], else
// warden-runtime:py<version>, built from the official python:<version>-slim
// image (see [RuntimeOptions]).
func RuntimeImageName(python string) string {
	if python == "" || python == DebianPython {
		return DefaultName
	}
	return "warden-runtime:py" + python
}

// RuntimeOptions returns the [Options] that build the runtime image of a
// Python version: base as given for "" and [DebianPython], else the
// official recipe on python:<version>-slim (which needs a registry).
func RuntimeOptions(base Options, python string) Options {
	if python == "" || python == DebianPython {
		return base
	}
	base.Name = RuntimeImageName(python)
	base.OfficialBase = "python:" + python + "-slim"
	base.Strategy = StrategyOfficial
	return base
}

// FrameworkOptions configure [BuildFramework] and [EnsureFramework].
type FrameworkOptions struct {
	// Framework is one of [Frameworks]. Required.
	Framework string
	// Packages are extra pip requirements installed after the framework's.
	Packages []string
	// WheelDir, if set, is a host directory of wheels (*.whl, top level
	// only) from which every package is installed, without any index.
	WheelDir string
	// PythonVersion selects the runtime image to build on (see
	// [RuntimeImageName]). Default [DebianPython].
	PythonVersion string
	// Name is the image to build. Default [FrameworkImageName].
	Name string
	// Base is the runtime image to build on. Default
	// [RuntimeImageName](PythonVersion).
	Base string
	// Runtime configures the build of Base by [EnsureFramework] when it is
	// missing; its Name is replaced by Base.
	Runtime Options
	// NoCache builds without the build cache; it implies Rebuild.
	NoCache bool
	// Rebuild makes [EnsureFramework] build even when the image exists.
	Rebuild bool
}

func (o FrameworkOptions) withDefaults() (FrameworkOptions, error) {
	if _, err := FrameworkPackages(o.Framework); err != nil {
		return o, err
	}
	if o.PythonVersion != "" {
		if err := ValidatePythonVersion(o.PythonVersion); err != nil {
			return o, err
		}
	}
	if o.Base == "" {
		o.Base = RuntimeImageName(o.PythonVersion)
	}
	if o.Name == "" {
		o.Name = FrameworkImageName(o.Framework, o.PythonVersion, o.Packages)
	}
	if o.WheelDir != "" {
		abs, err := filepath.Abs(o.WheelDir)
		if err != nil {
			return o, fmt.Errorf("wheel directory: %w", err)
		}
		if st, err := os.Stat(abs); err != nil || !st.IsDir() {
			return o, fmt.Errorf("wheel directory %s is not a directory", o.WheelDir)
		}
		o.WheelDir = abs
	}
	return o, nil
}

// EnsureFramework makes sure the framework image exists: it builds the
// runtime image it is based on if that is missing (with [Ensure] and
// opts.Runtime), then the framework image if it is missing or
// opts.Rebuild or opts.NoCache is set. It returns the image name and
// whether it built the framework image.
func EnsureFramework(ctx context.Context, api API, opts FrameworkOptions, progress io.Writer) (name string, built bool, err error) {
	o, err := opts.withDefaults()
	if err != nil {
		return "", false, err
	}
	if !o.Rebuild && !o.NoCache {
		ok, err := Exists(ctx, api, o.Name)
		if err != nil {
			return o.Name, false, err
		}
		if ok {
			return o.Name, false, nil
		}
	}
	ropts := RuntimeOptions(o.Runtime, o.PythonVersion)
	ropts.Name = o.Base
	ropts.Rebuild, ropts.NoCache = false, false
	if _, err := Ensure(ctx, api, ropts, progress); err != nil {
		return o.Name, false, fmt.Errorf("runtime image %s: %w", o.Base, err)
	}
	if err := BuildFramework(ctx, api, o, progress); err != nil {
		return o.Name, false, err
	}
	return o.Name, true, nil
}

// BuildFramework builds the image of opts.Framework on its runtime image,
// which must exist (see [EnsureFramework]), and writes the build's output
// to progress (nil discards it). Every network step of the build is
// bounded (15 s per attempt, no retries), so a host without access to the
// package index fails within seconds, with an error wrapping
// [ErrNoPackageIndex]; [ErrNoMirror] and [ErrPackageNotFound] likewise
// name the other usual failures.
func BuildFramework(ctx context.Context, api API, opts FrameworkOptions, progress io.Writer) error {
	o, err := opts.withDefaults()
	if err != nil {
		return err
	}
	w := progress
	if w == nil {
		w = io.Discard
	}
	ok, err := Exists(ctx, api, o.Base)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("runtime image %s is missing: build it first (`warden image build`)", o.Base)
	}
	df, err := FrameworkDockerfile(o.Framework, o.Base, o.Packages, o.WheelDir != "")
	if err != nil {
		return err
	}
	start := time.Now()
	phasef(w, "building %s (framework %s) from %s", o.Name, o.Framework, o.Base)

	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Go(func() { pw.CloseWithError(writeFrameworkContext(pw, df, o.WheelDir)) })
	defer wg.Wait()
	defer pr.Close() // unblocks the writer if the engine stopped reading

	resp, err := api.ImageBuild(ctx, pr, client.ImageBuildOptions{
		Tags:        []string{o.Name},
		Dockerfile:  "Dockerfile",
		NoCache:     o.NoCache,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("building image %s: %w", o.Name, err)
	}
	defer resp.Body.Close()
	layers := &layerTracker{w: w}
	tail := &tailWriter{w: layers, max: 64 << 10}
	if err := decodeStream(resp.Body, tail); err != nil {
		removeUntagged(ctx, api, layers.made)
		return fmt.Errorf("building image %s: %w", o.Name, classifyBuildError(err, tail.String(), o))
	}
	phasef(w, "built %s in %s", o.Name, time.Since(start).Round(time.Second))
	return nil
}

// classifyBuildError turns the engine's "returned a non-zero code" into
// what the build output says went wrong.
func classifyBuildError(err error, output string, o FrameworkOptions) error {
	switch {
	case hasLine(output, markerNoMirror):
		return fmt.Errorf("%w: the runtime image %s has no pip and apt-get could not install python3-pip (is the Debian mirror reachable from Docker builds?): %v", ErrNoMirror, o.Base, err)
	case hasLine(output, markerNoIndex):
		return fmt.Errorf("%w: pip cannot reach %s to download %s; put the wheels of every package and dependency in a directory and build from it (`--wheels DIR`)",
			ErrNoPackageIndex, PackageIndex, strings.Join(installed(o), " "))
	}
	if _, rest, ok := strings.Cut(output, "No matching distribution found for "); ok {
		pkg, _, _ := strings.Cut(rest, "\n")
		pkg = strings.TrimSpace(pkg)
		if o.WheelDir != "" {
			return fmt.Errorf("%w: %s is not in the wheel directory %s (pip ran with --no-index)", ErrPackageNotFound, pkg, o.WheelDir)
		}
		return fmt.Errorf("%w: %s has no matching distribution on %s", ErrPackageNotFound, pkg, PackageIndex)
	}
	return err
}

// hasLine reports whether output has a line that is marker, ignoring
// surrounding space and the colour codes the engine wraps stderr in. The
// marker also appears inside the echoed RUN instruction, which must not
// count.
func hasLine(output, marker string) bool {
	for line := range strings.Lines(output) {
		if strings.TrimSpace(ansi.ReplaceAllString(line, "")) == marker {
			return true
		}
	}
	return false
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func installed(o FrameworkOptions) []string {
	pins, _ := FrameworkPackages(o.Framework)
	return append(pins, o.Packages...)
}

// writeFrameworkContext writes the build context: the Dockerfile and,
// when wheelDir is set, its regular top-level files under wheels/.
func writeFrameworkContext(w io.Writer, dockerfile, wheelDir string) error {
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), ModTime: epoch}); err != nil {
		return err
	}
	if _, err := io.WriteString(tw, dockerfile); err != nil {
		return err
	}
	if wheelDir != "" {
		if err := tw.WriteHeader(&tar.Header{Name: "wheels/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
		entries, err := os.ReadDir(wheelDir)
		if err != nil {
			return fmt.Errorf("reading wheel directory: %w", err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue
			}
			if err := addFile(tw, filepath.Join(wheelDir, e.Name()), "wheels/"+e.Name(), epoch); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, path, name string, mtime time.Time) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), ModTime: mtime}); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, st.Size())
	return err
}

// tailWriter passes writes on to w and keeps the last max bytes.
type tailWriter struct {
	w   io.Writer
	max int
	buf bytes.Buffer
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf.Write(p)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return t.w.Write(p)
}

func (t *tailWriter) String() string { return t.buf.String() }
