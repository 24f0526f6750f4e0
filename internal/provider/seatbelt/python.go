package seatbelt

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/kit/hostproc"
)

// probeTimeout bounds asking the interpreter about itself.
const probeTimeout = 20 * time.Second

// probeScript prints what the profile needs to know about the interpreter:
// its executable, version, prefixes and sys.path; the shared libraries
// that its extension modules load from outside the system (a Homebrew
// Python's _ssl links Homebrew's OpenSSL, for example), listed through
// dyld on macOS and left empty elsewhere; and OpenSSL's default
// certificate locations. It runs with -I: neither the environment, nor
// the working directory, nor the user's site-packages change the answer.
const probeScript = `import json, sys
for m in ("_bz2", "_ctypes", "_decimal", "_hashlib", "_lzma", "_sqlite3", "_ssl", "_uuid", "pyexpat", "zlib"):
    try:
        __import__(m)
    except Exception:
        pass
images = []
try:
    import ctypes
    libc = ctypes.CDLL(None)
    name = libc._dyld_get_image_name
    name.restype, name.argtypes = ctypes.c_char_p, [ctypes.c_uint32]
    images = [name(i).decode() for i in range(1, libc._dyld_image_count())]
except Exception:
    pass
verify = []
try:
    import ssl
    v = ssl.get_default_verify_paths()
    verify = [p for p in (v.cafile, v.capath, v.openssl_cafile, v.openssl_capath) if p]
except Exception:
    pass
print(json.dumps({"executable": sys.executable, "version": list(sys.version_info[:2]),
    "prefixes": [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix],
    "path": sys.path, "images": images, "verify": verify}))`

// pythonInstall is an interpreter and the files it needs to run.
type pythonInstall struct {
	// Executable is the interpreter's own sys.executable, absolute.
	Executable string
	// Files are the executable and, when it is a symlink, its target.
	Files []string
	// Dirs are its prefixes, the existing entries of its sys.path, the
	// directories of the libraries its extension modules load from outside
	// the system, and OpenSSL's certificate locations; each as reported
	// and, if different, with symlinks resolved.
	Dirs []string
}

// probeAnswer is probeScript's output.
type probeAnswer struct {
	Executable string   `json:"executable"`
	Version    []int    `json:"version"`
	Prefixes   []string `json:"prefixes"`
	Path       []string `json:"path"`
	Images     []string `json:"images"`
	Verify     []string `json:"verify"`
}

// findPython resolves the interpreter: want (a path or a name on PATH),
// else python3 on PATH, else /usr/bin/python3. (On macOS /usr/bin/python3
// is a stub that runs the Command Line Tools' interpreter, or offers to
// install them, so an operator's python3 comes first.) It runs the
// interpreter once, outside any sandbox, to learn its real executable and
// installation.
func findPython(ctx context.Context, want string) (pythonInstall, error) {
	cand := want
	if cand == "" {
		cand = "python3"
	}
	p, err := exec.LookPath(cand)
	if err != nil && want == "" {
		p, err = exec.LookPath("/usr/bin/python3")
	}
	if err != nil {
		return pythonInstall{}, fmt.Errorf("python interpreter %q: %w", cand, err)
	}
	if p, err = filepath.Abs(p); err != nil {
		return pythonInstall{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	out, msg, err := hostproc.Run(ctx, []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8"}, p, "-I", "-c", probeScript)
	if err != nil {
		return pythonInstall{}, fmt.Errorf("python interpreter %s does not run: %v: %s", p, err, msg)
	}
	inst, err := parseProbe(out, p)
	if err != nil {
		return pythonInstall{}, fmt.Errorf("python interpreter %s: %w", p, err)
	}
	return inst, nil
}

// parseProbe turns probeScript's output into a pythonInstall. fallback is
// the interpreter that was run, used when sys.executable is unusable.
// Relative and missing sys.path entries are dropped; symlinks are resolved
// in addition to, not instead of, the reported paths.
func parseProbe(out []byte, fallback string) (pythonInstall, error) {
	var a probeAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		return pythonInstall{}, fmt.Errorf("unexpected answer %.200q: %v", out, err)
	}
	if len(a.Version) < 2 || a.Version[0] < 3 || a.Version[0] == 3 && a.Version[1] < 8 {
		return pythonInstall{}, fmt.Errorf("version %v; the agent needs 3.8 or later", a.Version)
	}
	exe := a.Executable
	if !filepath.IsAbs(exe) || !isExecutable(exe) {
		exe = fallback
	}
	inst := pythonInstall{Executable: exe}
	add := func(list *[]string, p string) {
		if !filepath.IsAbs(p) {
			return
		}
		p = filepath.Clean(p)
		if _, err := os.Stat(p); err != nil {
			return
		}
		for _, q := range []string{p, resolve(p)} {
			if q != "" && !slices.Contains(*list, q) {
				*list = append(*list, q)
			}
		}
	}
	add(&inst.Files, exe)
	if len(inst.Files) == 0 {
		return pythonInstall{}, fmt.Errorf("executable %q does not exist", exe)
	}
	for _, p := range slices.Concat(a.Prefixes, a.Path, a.Verify) {
		add(&inst.Dirs, p)
	}
	for _, img := range a.Images {
		// System libraries are readable anyway (and mostly live only in
		// the dyld shared cache, not as files).
		if d := filepath.Dir(img); !strings.HasPrefix(d, "/usr/lib") && !strings.HasPrefix(d, "/System/") && d != "/" {
			add(&inst.Dirs, d)
		}
	}
	return inst, nil
}

// resolve returns p with every symlink resolved, or "" if that fails.
func resolve(p string) string {
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return ""
	}
	return r
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
