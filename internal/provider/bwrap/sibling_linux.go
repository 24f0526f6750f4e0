package bwrap

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// InitName is the file name of Warden's sandbox init (cmd/warden-init):
// a program of a few megabytes whose main only calls [Init]. The
// provider prefers it, beside the running executable, to the running
// executable itself, whose start-up (a large binary, and every package's
// initialisation, client-go's included) each sandbox start would pay.
const InitName = "warden-init"

// siblingInit returns InitName beside this program's executable when it
// is there and speaks this package's shim protocol, else "".
func siblingInit(ctx context.Context) string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	if exe, err = filepath.EvalSymlinks(exe); err != nil {
		return ""
	}
	return usableInit(ctx, filepath.Join(filepath.Dir(exe), InitName))
}

// usableInit returns path if it is an executable file answering
// protocolMarker with this package's protocolLine, else "": a missing
// init, another build's of another protocol, or anything else is not
// used.
func usableInit(ctx context.Context, path string) string {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, protocolMarker)
	cmd.Env = []string{}
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != protocolLine {
		return ""
	}
	return path
}
