package image

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestDockerfilesGolden(t *testing.T) {
	tests := []struct {
		golden string
		got    string
	}{
		{"runtime.Dockerfile", RuntimeDockerfile(DefaultBaseName)},
		{"official.Dockerfile", OfficialDockerfile(DefaultOfficialBase)},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			path := filepath.Join("testdata", tt.golden)
			if *update {
				if err := os.WriteFile(path, []byte(tt.got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (run go test -update to create it): %v", err)
			}
			if tt.got != string(want) {
				t.Errorf("Dockerfile differs from %s (run go test -update if intended)\ngot:\n%s\nwant:\n%s", path, tt.got, want)
			}
		})
	}
}

// The providers rely on the user, workspace and environment: both recipes
// must end with exactly the same lines.
func TestDockerfilesShareRuntimeLayer(t *testing.T) {
	t.Parallel()
	layer := runtimeLayer()
	for name, df := range map[string]string{
		"runtime":  RuntimeDockerfile("base:x"),
		"official": OfficialDockerfile("python:x"),
	} {
		if !strings.HasSuffix(df, layer) {
			t.Errorf("%s Dockerfile does not end with the shared runtime layer:\n%s", name, df)
		}
	}
	for _, want := range []string{
		"useradd --uid 1000 --gid 1000",
		"chown 1000:1000 /workspace",
		"WORKDIR /workspace\n",
		"USER 1000:1000\n",
		"LANG=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
		"MPLBACKEND=Agg",
		`org.warden.runtime="1"`,
		`org.warden.runtime.version="` + RecipeVersion + `"`,
	} {
		if !strings.Contains(layer, want) {
			t.Errorf("runtimeLayer() lacks %q", want)
		}
	}
}

// Both recipes install the same tools.
func TestRecipesInstallSameTools(t *testing.T) {
	t.Parallel()
	official := OfficialDockerfile(DefaultOfficialBase)
	debian := debianPackages()
	for _, tool := range tools {
		if !strings.Contains(official, " "+tool+" ") {
			t.Errorf("OfficialDockerfile() does not install %s", tool)
		}
		if !slices.Contains(debian, tool) {
			t.Errorf("debianPackages() lacks %s", tool)
		}
	}
	for _, p := range pythonPackages {
		if !slices.Contains(debian, "python3-"+p) {
			t.Errorf("debianPackages() lacks python3-%s", p)
		}
	}
}
