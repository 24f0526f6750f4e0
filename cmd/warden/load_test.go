package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/load"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestLoad runs `warden load` with tiny numbers against a warden serve it
// starts on bubblewrap: the mix, then each fault mode that needs the
// server process. The real figures (README, docs/load.md) come from the
// same command with real numbers; they are not a test.
func TestLoad(t *testing.T) {
	testutil.RequireBwrap(t)
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "warden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// One workspace root for every server, so the runtime image's root
	// filesystem is extracted once.
	environ := append(os.Environ(), "SANDBOX__IMAGE="+testutil.Image(), "SANDBOX__WORKSPACE_ROOT="+testutil.SharedDir(t))
	runLoad := func(t *testing.T, args ...string) (int, *load.Report, string) {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"load", "-binary", bin, "-provider", "bubblewrap", "-format", "json", "-interval", "1s",
			"-server-log", filepath.Join(t.TempDir(), "server.log")}, args...)
		code := run(t.Context(), args, env{environ: environ, stdin: strings.NewReader(""), stdout: &out, stderr: &errb})
		var rep load.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("warden %q = exit %d, not a JSON report: %v\n%s\n%s", args, code, err, out.String(), errb.String())
		}
		return code, &rep, errb.String()
	}

	t.Run("mix", func(t *testing.T) {
		code, rep, stderr := runLoad(t, "-clients", "2", "-executions", "5")
		if code != 0 || !rep.OK() || rep.Executions != 10 || !rep.StartedServer || rep.Provider != "bubblewrap" || len(rep.Kinds) == 0 {
			t.Errorf("exit %d, report %+v\n%s", code, rep, stderr)
		}
		if !strings.Contains(stderr, "started warden serve at http://127.0.0.1:") {
			t.Errorf("stderr does not say where the server runs:\n%s", stderr)
		}
	})

	t.Run("kill-agent", func(t *testing.T) {
		// Execution 12 of each client kills: client 0 its agent, client 1
		// its interpreter.
		code, rep, stderr := runLoad(t, "-clients", "2", "-executions", "15", "-fault", "kill-agent")
		if code != 0 || !rep.OK() || rep.Faults == nil || rep.Faults.Injected != 2 || rep.Faults.Violations != 0 {
			t.Errorf("exit %d, report %+v, faults %+v\n%s", code, rep, rep.Faults, stderr)
		}
	})

	t.Run("kill-server", func(t *testing.T) {
		code, rep, stderr := runLoad(t, "-clients", "2", "-executions", "10", "-fault", "kill-server")
		f := rep.Faults
		if code != 0 || !rep.OK() || f == nil || f.Injected != 1 || f.Violations != 0 || rep.Executions != 20 {
			t.Errorf("exit %d, report %+v, faults %+v\n%s", code, rep, f, stderr)
		}
	})
}

func TestLoadUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"load", "-fault", "kill-server", "-server", "http://127.0.0.1:1"},
		{"load", "-fault", "sometimes"},
		{"load", "-format", "xml"},
		{"load", "-clients", "0"},
		{"load", "-server", "http://127.0.0.1:1", "-provider", "docker"},
		{"load", "extra"},
	} {
		if code, _, stderr := runCLI(t, "", args...); code != 2 || stderr == "" {
			t.Errorf("warden %q = exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
	if code, _, stderr := runCLI(t, "", "load", "-server", "http://127.0.0.1:1", "-clients", "1"); code != 1 || !strings.Contains(stderr, "/health") {
		t.Errorf("no server there: exit %d, stderr %q", code, stderr)
	}
}
