//go:build linux

package bwrap

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestRootFS runs a sandbox on the runtime image's root filesystem,
// extracted with docker export, instead of the host's /usr.
func TestRootFS(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	testutil.RequireDocker(t)
	testutil.RequireRoot(t) // extracting an image keeps its owners
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker CLI")
	}
	root := t.TempDir()
	out, err := exec.CommandContext(t.Context(), "docker", "create", testutil.Image(), "true").Output()
	if err != nil {
		t.Skipf("docker create %s: %v", testutil.Image(), err)
	}
	ctr := strings.TrimSpace(string(out))
	defer exec.Command("docker", "rm", "-f", ctr).Run()
	export := exec.CommandContext(t.Context(), "sh", "-c", "docker export \"$1\" | tar -x -C \"$2\" --exclude=dev/*", "sh", ctr, root)
	if out, err := export.CombinedOutput(); err != nil {
		t.Fatalf("exporting %s: %v %s", testutil.Image(), err, out)
	}
	// A file only the extracted root has.
	if err := os.WriteFile(filepath.Join(root, "etc", "warden-rootfs"), []byte("image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, id := newBoxWith(t, Options{WorkspaceRoot: testutil.SharedDir(t), RootFS: root}, sandbox.Spec{})
	checks := []struct{ name, cmd, want string }{
		{"image root", "cat /etc/warden-rootfs", "image\n"},
		{"read-only", "touch /usr/x /etc/x 2>&1 | grep -c Read-only", "2\n"},
		{"no host home", "ls /root /home 2>&1 | grep -c 'No such file'", "2\n"},
		{"workspace", "pwd; echo w > f && cat f", "/workspace\nw\n"},
		{"seccomp", "grep Seccomp: /proc/self/status", "Seccomp:\t2\n"},
	}
	for _, c := range checks {
		if r := run(t, p, id, sandbox.Shell, c.cmd, 0); string(r.Stdout) != c.want {
			t.Errorf("%s: %q = %q (stderr %q), want %q", c.name, c.cmd, r.Stdout, r.Stderr, c.want)
		}
	}
	if r := run(t, p, id, sandbox.Python, "import sys; sys.version_info[0]", 0); r.ReturnValue == nil || *r.ReturnValue != "3" {
		t.Errorf("python on the image root: %+v", r)
	}
	if p.Enforcement().LandlockABI > 0 {
		if r := run(t, p, id, sandbox.Shell, "cat /.warden/init >/dev/null 2>&1 || echo denied", 0); string(r.Stdout) != "denied\n" {
			t.Errorf("landlock on the image root: %q", r.Stdout)
		}
	}
	// The image's /etc is read-only: its resolv.conf and hosts are the
	// mount points of the sandbox's own.
	if _, err := exec.LookPath("slirp4netns"); err == nil {
		p, id := newBoxWith(t, Options{WorkspaceRoot: testutil.SharedDir(t), RootFS: root}, sandbox.Spec{Network: true})
		const cmd = "cat /etc/resolv.conf; getent hosts sandbox"
		if r := run(t, p, id, sandbox.Shell, cmd, 0); string(r.Stdout) != "nameserver 10.0.2.3\n10.0.2.100      sandbox\n" {
			t.Errorf("network on the image root: %q = %q (stderr %q)", cmd, r.Stdout, r.Stderr)
		}
	}
	if _, err := New(t.Context(), Options{RootFS: t.TempDir()}); err == nil {
		t.Error("New with a RootFS lacking usr succeeded")
	}
}
