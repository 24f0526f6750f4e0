package bwrap

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

func newBox(t *testing.T, spec sandbox.Spec) (*Provider, sandbox.ID) {
	t.Helper()
	return newBoxWith(t, Options{WorkspaceRoot: testutil.SharedDir(t)}, spec)
}

func newBoxWith(t *testing.T, opts Options, spec sandbox.Spec) (*Provider, sandbox.ID) {
	t.Helper()
	testutil.RequireBwrap(t)
	p, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	info, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Destroy(context.Background(), info.ID); err != nil && !errors.Is(err, sandbox.ErrNotFound) {
			t.Error(err)
		}
	})
	return p, info.ID
}

func run(t *testing.T, p *Provider, id sandbox.ID, lang sandbox.Language, code string, timeout time.Duration) sandbox.ExecResult {
	t.Helper()
	r, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: lang, Code: code, Timeout: timeout})
	if err != nil {
		t.Fatalf("Exec(%q): %v", code, err)
	}
	return r
}

func TestIsolation(t *testing.T) {
	t.Parallel()
	p, id := newBox(t, sandbox.Spec{})
	run(t, p, id, sandbox.Python, "x = 42", 0)
	if r := run(t, p, id, sandbox.Python, "x", 0); r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Fatalf("persistence: %+v", r)
	}
	checks := []struct{ name, cmd, want string }{
		{"uid", "id -u; id -g", "1000\n1000\n"},
		{"no capabilities", "grep CapEff /proc/self/status", "CapEff:\t0000000000000000\n"},
		{"no network", "ls /sys/class/net 2>/dev/null || cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '", "lo\n"},
		{"read-only system", "touch /usr/x 2>&1 | grep -c 'Read-only'", "1\n"},
		{"private tmp", "echo hi > /tmp/t && cat /tmp/t", "hi\n"},
		{"workspace", "pwd; echo w > f && cat f", "/workspace\nw\n"},
		{"host home hidden", "ls /root /home 2>&1 | grep -c 'No such file'", "2\n"},
		{"pid namespace", "cat /proc/1/comm", "bwrap\n"},
	}
	for _, c := range checks {
		if r := run(t, p, id, sandbox.Shell, c.cmd, 0); string(r.Stdout) != c.want {
			t.Errorf("%s: %q = %q (stderr %q), want %q", c.name, c.cmd, r.Stdout, r.Stderr, c.want)
		}
	}
}

func TestMountsEnvAndCleanup(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	ro, rw := testutil.SharedDir(t), testutil.SharedDir(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	info, err := p.Create(t.Context(), sandbox.Spec{
		Mounts: []sandbox.Mount{{Source: ro, ReadOnly: true}, {Source: rw, Target: "/data/out"}},
		Env:    map[string]string{"TOKEN": "s3cret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, p, info.ID, sandbox.Shell, "touch "+ro+"/x 2>&1 | grep -c Read-only; echo o > /data/out/f; echo \"$TOKEN\"", 0)
	if string(r.Stdout) != "1\ns3cret\n" {
		t.Fatalf("mounts/env = %q %q", r.Stdout, r.Stderr)
	}
	run(t, p, info.ID, sandbox.Shell, "sleep 300 >/dev/null 2>&1 &", 0)
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("Exec after Destroy = %v", err)
	}
	if err := p.Destroy(t.Context(), info.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("second Destroy = %v", err)
	}
	// Nothing of the sandbox runs on: no process holds its workspace.
	if out, _ := exec.Command("sh", "-c", "grep -l '"+info.Workspace+"' /proc/[0-9]*/mountinfo 2>/dev/null | wc -l").Output(); strings.TrimSpace(string(out)) != "0" {
		t.Fatalf("%s processes still see the workspace after Destroy", strings.TrimSpace(string(out)))
	}
	if _, err := os.Stat(info.Workspace); !os.IsNotExist(err) {
		t.Fatalf("workspace left behind: %v", err)
	}
}

// TestHostUser: under a root Warden, the sandbox's user is host uid 1000,
// not host root: files it creates belong to 1000, and a root-owned file
// in a writable mount stays out of its reach.
func TestHostUser(t *testing.T) {
	testutil.RequireRoot(t)
	t.Parallel()
	rw := testutil.SharedDir(t)
	if err := os.Chmod(rw, 0o777); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(rw, "root-only")
	if err := os.WriteFile(secret, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, id := newBoxWith(t, Options{WorkspaceRoot: testutil.SharedDir(t)}, sandbox.Spec{Mounts: []sandbox.Mount{{Source: rw, Target: "/data"}}})
	r := run(t, p, id, sandbox.Shell, "echo new > /data/mine; echo changed >> /data/root-only; echo exit=$?", 0)
	if !strings.Contains(string(r.Stderr), "Permission denied") || string(r.Stdout) != "exit=1\n" {
		t.Errorf("appending to a root-owned file: %q %q, want Permission denied", r.Stdout, r.Stderr)
	}
	if b, _ := os.ReadFile(secret); string(b) != "keep\n" {
		t.Errorf("the root-owned file changed: %q", b)
	}
	st, err := os.Stat(filepath.Join(rw, "mine"))
	if err != nil {
		t.Fatal(err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; uid != DefaultRunAs.UID {
		t.Errorf("a file the sandbox created belongs to host uid %d, want %d", uid, DefaultRunAs.UID)
	}
}
