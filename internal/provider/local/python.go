package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/internal/provider/kit/hostproc"
)

// systemPython is preferred when no interpreter is configured: the first
// python3 on an operator's PATH is often a pyenv shim or a virtualenv that
// happened to be active when Warden started.
const systemPython = "/usr/bin/python3"

// probeTimeout bounds the start-up work of New: asking the interpreter
// about itself and removing orphans.
const probeTimeout = 20 * time.Second

// probeScript prints the interpreter's real path and version.
const probeScript = "import sys; print(sys.executable); print('%d.%d' % sys.version_info[:2])"

// findPython resolves the interpreter that runs the agent: want (a path or
// a name on PATH), else /usr/bin/python3, else python3 on PATH. The result
// is the interpreter's own sys.executable, an absolute path, so a shim is
// resolved once, here.
func findPython(ctx context.Context, want string) (string, error) {
	var cand string
	switch {
	case want != "":
		p, err := exec.LookPath(want)
		if err != nil {
			return "", fmt.Errorf("python interpreter %q: %w", want, err)
		}
		cand = p
	case isExecutable(systemPython):
		cand = systemPython
	default:
		p, err := exec.LookPath("python3")
		if err != nil {
			return "", fmt.Errorf("no python3 at %s or on PATH: install python3 (Debian: apt-get install -y python3)", systemPython)
		}
		cand = p
	}
	cand, err := filepath.Abs(cand)
	if err != nil {
		return "", err
	}

	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	// -I: neither the environment nor the working directory may change
	// what the probe runs.
	env := []string{"PATH=" + filepath.Dir(cand) + ":/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	out, msg, err := hostproc.Run(ctx, env, cand, "-I", "-c", probeScript)
	if err != nil {
		if msg != "" {
			return "", fmt.Errorf("python interpreter %s does not run: %v: %s", cand, err, msg)
		}
		return "", fmt.Errorf("python interpreter %s does not run: %w", cand, err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		return "", fmt.Errorf("python interpreter %s: unexpected answer %.200q", cand, out)
	}
	exe, ver := lines[0], lines[1]
	major, minor, _ := strings.Cut(ver, ".")
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(minor)
	if err := errors.Join(err1, err2); err != nil || ma < 3 || ma == 3 && mi < 8 {
		return "", fmt.Errorf("python interpreter %s is version %s; the agent needs 3.8 or later", cand, ver)
	}
	if filepath.IsAbs(exe) && isExecutable(exe) {
		return exe, nil
	}
	return cand, nil
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}
