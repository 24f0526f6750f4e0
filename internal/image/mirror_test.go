package image

import (
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func TestHostMirror(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dir  string
		want string
	}{
		// This host's layout: deb822 debian.sources after a vendor repository.
		{"deb822", "http://deb.debian.org/debian"},
		// One-line format: deb-src, cdrom, security and vendor lines are
		// skipped; options in brackets and the trailing slash are handled.
		{"oneline", "http://mirror.example.org/debian"},
		// A security stanza comes first; a multi-line Signed-By follows.
		{"security-first", "http://apt.internal:8080/debian"},
		// Disabled, deb-src only, mirror+file: and Ubuntu stanzas: nothing.
		{"disabled", DefaultMirror},
		// Only a vendor repository, and a Debian entry in a file apt ignores.
		{"none", DefaultMirror},
		// sources.list is read before sources.list.d.
		{"precedence", "http://first.example.org/debian"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			t.Parallel()
			got := HostMirror(os.DirFS(filepath.Join("testdata", "apt", tt.dir)))
			if got != tt.want {
				t.Errorf("HostMirror(testdata/apt/%s) = %q, want %q", tt.dir, got, tt.want)
			}
		})
	}
}

func TestHostMirrorMissingDir(t *testing.T) {
	t.Parallel()
	if got := HostMirror(fstest.MapFS{}); got != DefaultMirror {
		t.Errorf("HostMirror(empty) = %q, want %q", got, DefaultMirror)
	}
}

func TestDebianSuite(t *testing.T) {
	t.Parallel()
	for s, want := range map[string]bool{
		"bookworm":           true,
		"bookworm-updates":   true,
		"bookworm-backports": true,
		"stable":             true,
		"trixie":             true,
		"bookworm-security":  false,
		"buster/updates":     false,
		"jammy":              false,
		"nodistro":           false,
		"cloud-sdk-bookworm": false,
	} {
		if got := debianSuite(s); got != want {
			t.Errorf("debianSuite(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    Options
		wantErr bool
	}{
		{"zero value", Options{}, false},
		{"https mirror", Options{Mirror: "https://mirror.example.org/debian"}, false},
		{"file mirror", Options{Mirror: "file:///srv/debian"}, true},
		{"not a URL", Options{Mirror: "deb.debian.org/debian"}, true},
		{"unknown strategy", Options{Strategy: "fast"}, true},
		{"debian strategy", Options{Strategy: StrategyDebian}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := tt.opts.withDefaults()
			if (err != nil) != tt.wantErr {
				t.Fatalf("withDefaults() error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && (o.Name != DefaultName || o.BaseName != DefaultBaseName || o.PullTimeout != DefaultPullTimeout) {
				t.Errorf("withDefaults() = %+v, want defaults filled in", o)
			}
		})
	}
}
