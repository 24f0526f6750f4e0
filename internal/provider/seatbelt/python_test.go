package seatbelt

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseProbe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	for _, d := range []string{"real/bin", "real/lib/python3.12", "site", "ssl/lib"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(real, "bin", "python3.12")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ssl", "cert.pem"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "opt")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	answer := `{"executable": "` + link + `/bin/python3.12", "version": [3, 12],
		"prefixes": ["` + link + `", "` + link + `", "` + link + `", "` + link + `"],
		"path": ["", "relative", "` + real + `/lib/python3.12", "` + dir + `/site/", "` + dir + `/missing"],
		"images": ["/usr/lib/libSystem.B.dylib", "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation", "` + dir + `/ssl/lib/libssl.3.dylib"],
		"verify": ["` + dir + `/ssl/cert.pem", "` + dir + `/ssl/certs"]}`
	got, err := parseProbe([]byte(answer), "/usr/bin/python3")
	if err != nil {
		t.Fatal(err)
	}
	if got.Executable != link+"/bin/python3.12" {
		t.Errorf("Executable = %q", got.Executable)
	}
	if want := []string{link + "/bin/python3.12", exe}; !slices.Equal(got.Files, want) {
		t.Errorf("Files = %q, want %q (reported and resolved)", got.Files, want)
	}
	// System libraries are left out; missing certificate paths too.
	if want := []string{link, real, real + "/lib/python3.12", dir + "/site", dir + "/ssl/cert.pem", dir + "/ssl/lib"}; !slices.Equal(got.Dirs, want) {
		t.Errorf("Dirs = %q, want %q", got.Dirs, want)
	}

	for _, bad := range []string{`not json`, `{"executable": "/x", "version": [3, 7]}`, `{"executable": "/x", "version": [2, 7]}`, `{"executable": "/x"}`} {
		if _, err := parseProbe([]byte(bad), exe); err == nil {
			t.Errorf("parseProbe(%q) succeeded", bad)
		}
	}
	// A missing sys.executable falls back to the interpreter that ran.
	got, err = parseProbe([]byte(`{"executable": "", "version": [3, 9]}`), exe)
	if err != nil || got.Executable != exe {
		t.Errorf("parseProbe without executable = %+v, %v; want the fallback", got, err)
	}
}

// TestFindPython runs the host's interpreter, as New does on macOS.
func TestFindPython(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	inst, err := findPython(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(inst.Executable) || len(inst.Files) == 0 || len(inst.Dirs) == 0 {
		t.Fatalf("findPython = %+v", inst)
	}
	for _, d := range inst.Dirs {
		if !filepath.IsAbs(d) || strings.Contains(d, "/.local/") {
			t.Errorf("dir %q: relative, or the user's site-packages (the probe runs with -I)", d)
		}
	}
	// What it found makes a valid profile.
	o := ProfileOptions{Workspace: "/w", TmpDir: "/t", Python: inst.Files[0], PythonDirs: slices.Concat(inst.Files[1:], inst.Dirs)}
	if _, err := Profile(o); err != nil {
		t.Errorf("Profile with the host interpreter: %v", err)
	}
	if _, err := findPython(t.Context(), "/nonexistent/python3"); err == nil {
		t.Error("findPython(/nonexistent/python3) succeeded")
	}
}
