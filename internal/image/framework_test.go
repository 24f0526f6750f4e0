package image

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// One golden Dockerfile per framework, plus the variants with extra
// packages and a wheel directory.
func TestFrameworkDockerfileGolden(t *testing.T) {
	type variant struct {
		golden    string
		framework string
		extra     []string
		wheels    bool
	}
	var tests []variant
	for _, f := range Frameworks() {
		tests = append(tests, variant{golden: "framework-" + f + ".golden", framework: f})
	}
	tests = append(tests,
		variant{golden: "framework-langgraph-extra.golden", framework: FrameworkLangGraph, extra: []string{"pandas", "requests==2.32.3"}},
		variant{golden: "framework-none-wheels.golden", framework: FrameworkNone, extra: []string{"wardenprobe==1.0"}, wheels: true},
		variant{golden: "framework-autogen-wheels.golden", framework: FrameworkAutogen, wheels: true},
	)
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got, err := FrameworkDockerfile(tt.framework, DefaultName, tt.extra, tt.wheels)
			if err != nil {
				t.Fatalf("FrameworkDockerfile(%q) = %v", tt.framework, err)
			}
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run go test -update to create it): %v", err)
			}
			if got != string(want) {
				t.Errorf("Dockerfile differs from %s (run go test -update if intended)\ngot:\n%s\nwant:\n%s", path, got, want)
			}
		})
	}
}

// The images really differ: each framework installs its own pinned set,
// every requirement is pinned to one version, and only "none" installs
// nothing.
func TestFrameworkPins(t *testing.T) {
	t.Parallel()
	want := []string{"autogen", "crewai", "langgraph", "magentic", "none", "openai-agents"}
	if got := Frameworks(); !slices.Equal(got, want) {
		t.Fatalf("Frameworks() = %v, want %v", got, want)
	}
	seen := map[string]string{}
	for _, f := range Frameworks() {
		pins, err := FrameworkPackages(f)
		if err != nil {
			t.Fatal(err)
		}
		if (f == FrameworkNone) != (len(pins) == 0) {
			t.Errorf("FrameworkPackages(%q) = %v", f, pins)
		}
		for _, p := range pins {
			if err := ValidatePackage(p); err != nil || strings.Count(p, "==") != 1 {
				t.Errorf("FrameworkPackages(%q): %q is not pinned to one version (%v)", f, p, err)
			}
		}
		key := strings.Join(pins, " ")
		if other, dup := seen[key]; dup {
			t.Errorf("frameworks %s and %s have the same packages", f, other)
		}
		seen[key] = f
		df, _ := FrameworkDockerfile(f, "base:x", nil, false)
		for _, p := range pins {
			if !strings.Contains(df, "'"+p+"'") {
				t.Errorf("Dockerfile of %s does not install %s", f, p)
			}
		}
	}
	// The versions the seed system pinned.
	for f, p := range map[string]string{
		FrameworkAutogen:      "autogen-agentchat==0.5.1",
		FrameworkMagentic:     "autogen-ext[magentic-one,openai]==0.5.1",
		FrameworkLangGraph:    "langgraph==0.6.11",
		FrameworkOpenAIAgents: "openai-agents==0.4.2",
	} {
		pins, _ := FrameworkPackages(f)
		if !slices.Contains(pins, p) {
			t.Errorf("FrameworkPackages(%q) = %v, want it to contain %s", f, pins, p)
		}
	}
	// FrameworkPackages returns a copy.
	a, _ := FrameworkPackages(FrameworkLangGraph)
	a[0] = "changed"
	if b, _ := FrameworkPackages(FrameworkLangGraph); b[0] == "changed" {
		t.Error("FrameworkPackages returned the package table itself")
	}
}

func TestFrameworkDockerfileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		framework string
		extra     []string
		want      []string
	}{
		{"unknown framework", "smolagents", nil, []string{`unknown framework "smolagents"`, "autogen, crewai, langgraph, magentic, none, openai-agents"}},
		{"empty framework", "", nil, []string{`unknown framework ""`}},
		{"shell in package", FrameworkNone, []string{"x; rm -rf /"}, []string{`"x; rm -rf /"`}},
		{"quote in package", FrameworkNone, []string{"a'b"}, []string{`"a'b"`}},
		{"option as package", FrameworkNone, []string{"--index-url=http://evil"}, []string{"--index-url"}},
		{"url as package", FrameworkNone, []string{"https://x/y.whl"}, []string{"https://x/y.whl"}},
		{"all bad packages reported", FrameworkNone, []string{"ok", "$(id)", "a b"}, []string{"$(id)", `"a b"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := FrameworkDockerfile(tt.framework, DefaultName, tt.extra, false)
			if err == nil {
				t.Fatalf("FrameworkDockerfile(%q, %q) = nil error", tt.framework, tt.extra)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidatePackage(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"pandas", "requests==2.32.3", "autogen-ext[magentic-one,openai]==0.5.1", "a.b_c-d>=1,<2", "x~=1.4", "y!=2.0.*", "z===1.0"} {
		if err := ValidatePackage(p); err != nil {
			t.Errorf("ValidatePackage(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"", "-e .", "pkg @ https://x", "pkg==", "pkg[", "pkg;python_version<'3'", "../x.whl", "pkg==1 ", "pkg\n", "-r req.txt"} {
		if err := ValidatePackage(p); err == nil {
			t.Errorf("ValidatePackage(%q) = nil, want an error", p)
		}
	}
}

func TestFrameworkImageName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		framework, python string
		extra             []string
		want              string
	}{
		{"langgraph", "", nil, "warden-runtime-langgraph:latest"},
		{"none", "3.11", nil, "warden-runtime-none:latest"},
		{"crewai", "3.12", nil, "warden-runtime-crewai:py3.12"},
	}
	for _, tt := range tests {
		if got := FrameworkImageName(tt.framework, tt.python, tt.extra); got != tt.want {
			t.Errorf("FrameworkImageName(%q, %q, %v) = %q, want %q", tt.framework, tt.python, tt.extra, got, tt.want)
		}
	}
	a := FrameworkImageName("none", "", []string{"pandas", "numpy"})
	b := FrameworkImageName("none", "", []string{"numpy", "pandas"})
	c := FrameworkImageName("none", "", []string{"numpy"})
	if a != b || a == c || !strings.HasPrefix(a, "warden-runtime-none:") || a == "warden-runtime-none:latest" {
		t.Errorf("names with extra packages: %q, %q, %q; want the first two equal, the third different", a, b, c)
	}
	if got := RuntimeImageName("3.12"); got != "warden-runtime:py3.12" {
		t.Errorf("RuntimeImageName(3.12) = %q", got)
	}
	if o := RuntimeOptions(Options{}, "3.12"); o.OfficialBase != "python:3.12-slim" || o.Strategy != StrategyOfficial || o.Name != "warden-runtime:py3.12" {
		t.Errorf("RuntimeOptions(3.12) = %+v", o)
	}
	if o := RuntimeOptions(Options{Name: "x"}, DebianPython); o.Name != "x" || o.Strategy != "" {
		t.Errorf("RuntimeOptions(%s) = %+v, want the options unchanged", DebianPython, o)
	}
}

func TestClassifyBuildError(t *testing.T) {
	t.Parallel()
	engine := errors.New("The command '/bin/sh -c python3 -m pip install' returned a non-zero code: 1")
	tests := []struct {
		name   string
		output string
		wheels string
		is     error
		want   string
	}{
		{"no index", "Step 5/7 : RUN x || { echo '" + markerNoMirror + "'; }\n\x1b[91m" + markerNoIndex + "\n\x1b[0mRemoving", "", ErrNoPackageIndex, "https://pypi.org/simple/"},
		{"no mirror", "W: Failed to fetch\n" + markerNoMirror + "\n", "", ErrNoMirror, "python3-pip"},
		{"markers only in echoed instructions", "Step 3/7 : RUN a || { echo '" + markerNoMirror + "' >&2; exit 1; }\nStep 4/7 : RUN b || { echo '" + markerNoIndex + "' >&2; }\nboom\n", "", nil, "returned a non-zero code"},
		{"missing wheel", "ERROR: Could not find a version that satisfies the requirement foo==1 (from versions: none)\nERROR: No matching distribution found for foo==1\n", "/w", ErrPackageNotFound, "foo==1 is not in the wheel directory /w"},
		{"missing on index", "ERROR: No matching distribution found for nosuchpkg\n", "", ErrPackageNotFound, "nosuchpkg has no matching distribution"},
		{"other", "something else\n", "", nil, "returned a non-zero code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := classifyBuildError(engine, tt.output, FrameworkOptions{Framework: FrameworkOpenAIAgents, WheelDir: tt.wheels, Base: DefaultName})
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("classifyBuildError() = %v, want it to wrap %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("classifyBuildError() = %q, want it to mention %q", err, tt.want)
			}
		})
	}
	// The no-index error names what could not be downloaded.
	err := classifyBuildError(engine, markerNoIndex, FrameworkOptions{Framework: FrameworkOpenAIAgents, Packages: []string{"pandas"}})
	if !strings.Contains(err.Error(), "openai-agents==0.4.2 openai==2.6.0 pandas") {
		t.Errorf("no-index error %q does not list the packages", err)
	}
}

func TestFrameworkContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a-1.0-py3-none-any.whl"), []byte("wheel a"), 0o644)
	os.WriteFile(filepath.Join(dir, "b-2.0-py3-none-any.whl"), []byte("wheel b"), 0o600)
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "c.whl"), []byte("nested"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link.whl"))

	var buf bytes.Buffer
	if err := writeFrameworkContext(&buf, "FROM x\n", dir); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
	}
	want := map[string]string{
		"Dockerfile":                    "FROM x\n",
		"wheels/":                       "",
		"wheels/a-1.0-py3-none-any.whl": "wheel a",
		"wheels/b-2.0-py3-none-any.whl": "wheel b",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("build context = %v, want %v (top-level regular files only)", got, want)
	}
}

func TestFrameworkOptionsErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, o := range []FrameworkOptions{
		{Framework: "nope"},
		{Framework: FrameworkNone, PythonVersion: "2.7"},
		{Framework: FrameworkNone, PythonVersion: "3.12; rm"},
		{Framework: FrameworkNone, WheelDir: filepath.Join(t.TempDir(), "missing")},
	} {
		if err := BuildFramework(ctx, nil, o, nil); err == nil {
			t.Errorf("BuildFramework(%+v) = nil, want an error before contacting the engine", o)
		}
	}
}

// buildMu lets one test build a framework image at a time: the builds
// share cached layers (FROM warden-runtime, USER root), and a failed
// build removes its untagged layers (removeUntagged), which may be those.
var buildMu sync.Mutex

// buildsOneAtATime holds buildMu until the test and its clean-ups end.
func buildsOneAtATime(t *testing.T) {
	buildMu.Lock()
	t.Cleanup(buildMu.Unlock)
}

// testImageName returns a unique test tag for the framework image and
// removes it when the test ends. Its untagged parents stay: tests build
// in parallel on the same cached layers (FROM warden-runtime, USER root),
// and pruning them under another test's build made that build fail with
// "No such image" (CI); the next run reuses them.
func testImageName(t *testing.T, cli *client.Client, framework string) string {
	t.Helper()
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := "warden-runtime-" + framework + ":test-" + hex.EncodeToString(suffix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cli.ImageRemove(ctx, name, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("removing %s: %v", name, err)
		}
	})
	return name
}

func requireRuntimeImage(t *testing.T, cli *client.Client) {
	t.Helper()
	ok, err := Exists(t.Context(), cli, DefaultName)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Skipf("runtime image %s is not built (warden image build)", DefaultName)
	}
}

// The framework-less image builds with no network at all.
func TestBuildFrameworkNone(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a real image; skipped with -short")
	}
	t.Parallel()
	buildsOneAtATime(t)
	cli := requireDocker(t)
	requireRuntimeImage(t, cli)
	name := testImageName(t, cli, FrameworkNone)

	builtName, built, err := EnsureFramework(t.Context(), cli, FrameworkOptions{Framework: FrameworkNone, Name: name}, t.Output())
	if err != nil || !built || builtName != name {
		t.Fatalf("EnsureFramework(none) = %q, %v, %v; want %q, true, nil", builtName, built, err, name)
	}
	if _, built, err := EnsureFramework(t.Context(), cli, FrameworkOptions{Framework: FrameworkNone, Name: name}, nil); err != nil || built {
		t.Errorf("second EnsureFramework(none) built = %v, %v; want false, nil", built, err)
	}
	inspect, err := cli.ImageInspect(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if l := inspect.Config.Labels; l[LabelFramework] != FrameworkNone || l[LabelRuntime] != "1" || inspect.Config.User != User {
		t.Errorf("image labels %v, user %q; want %s=none, %s=1, user %s", l, inspect.Config.User, LabelFramework, LabelRuntime, User)
	}
	stdout, _ := runInImage(t, cli, name, `python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])'; id -u`)
	if want := DebianPython + "\n1000\n"; stdout != want {
		t.Errorf("in the image: %q, want %q", stdout, want)
	}
}

// makeWheel writes a minimal pure-Python wheel of package name, version
// 1.0, whose module defines VALUE.
func makeWheel(t *testing.T, dir, name, value string) {
	t.Helper()
	files := []struct{ name, body string }{
		{name + "/__init__.py", fmt.Sprintf("VALUE = %q\n", value)},
		{name + "-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: " + name + "\nVersion: 1.0\nSummary: warden test wheel\n"},
		{name + "-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: warden-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var record strings.Builder
	for _, f := range files {
		w, err := zw.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, f.body)
		sum := sha256.Sum256([]byte(f.body))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", f.name, base64.RawURLEncoding.EncodeToString(sum[:]), len(f.body))
	}
	record.WriteString(name + "-1.0.dist-info/RECORD,,\n")
	w, err := zw.Create(name + "-1.0.dist-info/RECORD")
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, record.String())
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+"-1.0-py3-none-any.whl"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Packages from a local wheel directory install without any index. The
// runtime image has no pip, so the build installs Debian's python3-pip,
// which needs the Debian mirror: without one the test is skipped.
func TestBuildFrameworkWheelDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a real image; skipped with -short")
	}
	t.Parallel()
	buildsOneAtATime(t)
	cli := requireDocker(t)
	requireRuntimeImage(t, cli)
	name := testImageName(t, cli, FrameworkNone)
	wheels := t.TempDir()
	makeWheel(t, wheels, "wardenprobe", "from-wheel")

	opts := FrameworkOptions{Framework: FrameworkNone, Name: name, Packages: []string{"wardenprobe==1.0"}, WheelDir: wheels}
	err := BuildFramework(t.Context(), cli, opts, t.Output())
	if errors.Is(err, ErrNoMirror) {
		t.Skipf("no Debian mirror for python3-pip: %v", err)
	}
	if err != nil {
		t.Fatalf("BuildFramework() = %v", err)
	}
	stdout, stderr := runInImage(t, cli, name, `python3 -c 'import wardenprobe; print(wardenprobe.VALUE)'; python3 -m pip --version >/dev/null && echo pip=ok`)
	if want := "from-wheel\npip=ok\n"; stdout != want {
		t.Errorf("in the image: stdout %q, want %q; stderr %q", stdout, want, stderr)
	}
	inspect, err := cli.ImageInspect(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	if got := inspect.Config.Labels[LabelPackages]; got != "wardenprobe==1.0" {
		t.Errorf("label %s = %q, want wardenprobe==1.0", LabelPackages, got)
	}

	// A package missing from the wheel directory is named, not a hang.
	opts.Packages = []string{"notinthedir==2.0"}
	opts.Name = testImageName(t, cli, FrameworkNone)
	err = BuildFramework(t.Context(), cli, opts, nil)
	if !errors.Is(err, ErrPackageNotFound) || !strings.Contains(err.Error(), "notinthedir==2.0") {
		t.Errorf("BuildFramework(missing wheel) = %v, want ErrPackageNotFound naming notinthedir==2.0", err)
	}
}

// Without access to PyPI, a framework build fails fast with
// ErrNoPackageIndex instead of waiting on the network.
func TestBuildFrameworkNoIndexFailsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a real image; skipped with -short")
	}
	t.Parallel()
	buildsOneAtATime(t)
	cli := requireDocker(t)
	requireRuntimeImage(t, cli)
	if c, err := net.DialTimeout("tcp", "pypi.org:443", 3*time.Second); err == nil {
		c.Close()
		t.Skip("pypi.org is reachable here; this test checks the failure without it")
	}
	name := testImageName(t, cli, FrameworkOpenAIAgents)
	start := time.Now()
	err := BuildFramework(t.Context(), cli, FrameworkOptions{Framework: FrameworkOpenAIAgents, Name: name}, t.Output())
	elapsed := time.Since(start)
	if errors.Is(err, ErrNoMirror) {
		t.Skipf("no Debian mirror for python3-pip: %v", err)
	}
	if !errors.Is(err, ErrNoPackageIndex) {
		t.Fatalf("BuildFramework(openai-agents) = %v, want ErrNoPackageIndex", err)
	}
	for _, want := range []string{"https://pypi.org/simple/", "openai-agents==0.4.2", "--wheels DIR"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// apt-get for pip (when not cached) plus one bounded probe.
	if elapsed > 2*time.Minute {
		t.Errorf("failing took %s, want well under 2m", elapsed)
	}
	t.Logf("failed after %s: %v", elapsed.Round(time.Millisecond), err)
}

// An accepted package can be single-quoted in a RUN line and is not a pip
// option, a path or a URL.
func FuzzValidatePackage(f *testing.F) {
	for _, s := range []string{"pandas", "a[b,c]==1.0", "x>=1,<2", "-e .", "a'b", "a b", "$(id)", "https://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePackage(p) != nil {
			return
		}
		if strings.HasPrefix(p, "-") || strings.ContainsAny(p, "'\"\\$`;&|(){} \t\r\n/:@#%") {
			t.Fatalf("ValidatePackage(%q) accepted it", p)
		}
		if _, err := FrameworkDockerfile(FrameworkNone, "b", []string{p}, false); err != nil {
			t.Fatalf("FrameworkDockerfile refused an accepted package %q: %v", p, err)
		}
	})
}
