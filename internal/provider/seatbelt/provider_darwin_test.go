//go:build darwin

package seatbelt

// These tests need macOS with sandbox-exec. They have never been run: see
// the package documentation. They skip where sandbox-exec is missing, and
// fail instead with WARDEN_REQUIRE_SEATBELT=1.

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
)

func requireSeatbelt(t *testing.T) {
	t.Helper()
	if ok, why := Supported(); !ok {
		if os.Getenv("WARDEN_REQUIRE_SEATBELT") == "1" {
			t.Fatalf("%s, and WARDEN_REQUIRE_SEATBELT=1 requires it", why)
		}
		t.Skip(why)
	}
}

// realTempDir is t.TempDir with symlinks resolved (it is under /var).
func realTempDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func write(t *testing.T, name, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestProfileEnforced runs commands under generated profiles with
// sandbox-exec, without the agent: what the profile must allow, and what
// it must deny.
func TestProfileEnforced(t *testing.T) {
	requireSeatbelt(t)
	t.Parallel()
	py, err := findPython(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	box, outside := realTempDir(t), realTempDir(t)
	ws, tmp, home := filepath.Join(box, "workspace"), filepath.Join(box, "tmp"), filepath.Join(box, "home")
	write(t, filepath.Join(ws, "in", "data.txt"), "input")
	write(t, filepath.Join(tmp, ".keep"), "")
	write(t, filepath.Join(home, ".keep"), "")
	write(t, filepath.Join(outside, "secret"), "secret")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	local := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	profile := func(network bool) string {
		p, err := Profile(ProfileOptions{
			Workspace: ws, TmpDir: tmp, HomeDir: home,
			ReadDirs: []string{filepath.Join(ws, "in")},
			Python:   py.Files[0], PythonDirs: slices.Concat(py.Files[1:], py.Dirs),
			Network: network,
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pyc := func(code string) []string { return []string{py.Executable, "-I", "-c", code} }
	sh := func(cmd string) []string { return []string{"/bin/sh", "-c", cmd} }
	for _, tc := range []struct {
		name    string
		network bool
		argv    []string
		ok      bool
	}{
		{"true", false, []string{"/usr/bin/true"}, true},
		{"write and read the workspace", false, sh("echo hi > " + ws + "/f && cat " + ws + "/f"), true},
		{"write tmp and home", false, sh("echo hi > " + tmp + "/f && echo hi > " + home + "/f"), true},
		{"read a read-only dir", false, sh("cat " + ws + "/in/data.txt"), true},
		{"write a read-only dir inside the workspace", false, sh("echo x > " + ws + "/in/new"), false},
		{"read outside", false, sh("cat " + outside + "/secret"), false},
		{"list outside", false, sh("ls " + outside), false},
		{"list /Users", false, sh("ls /Users"), false},
		{"write outside", false, sh("echo x > " + outside + "/new"), false},
		{"write the shared /private/tmp", false, sh("echo x > /private/tmp/warden-seatbelt-test-$$"), false},
		{"symlink to outside", false, sh("ln -s " + outside + "/secret " + ws + "/link && cat " + ws + "/link"), false},
		{"hard link to outside", false, sh("ln " + outside + "/secret " + ws + "/hard"), false},
		{"signal outside the sandbox", false, sh("kill -0 1"), false},
		{"python runs", false, pyc("import asyncio, json, multiprocessing, os, sqlite3, ssl, subprocess, tempfile\n" +
			"asyncio.run(asyncio.sleep(0))\n" +
			"print(subprocess.run(['/bin/echo', 'ok'], capture_output=True, check=True).stdout)\n" +
			"print(os.cpu_count(), tempfile.gettempdir())"), true},
		{"python multiprocessing", false, pyc("import multiprocessing as m\nif __name__ == '__main__':\n  with m.Pool(2) as p: print(p.map(abs, [-1, -2]))"), true},
		{"no network", false, pyc("import socket; socket.create_connection(('1.1.1.1', 53), 3)"), false},
		{"no loopback without network", false, pyc("import socket; socket.create_connection(('127.0.0.1', " + local + "), 3)"), false},
		{"no loopback with network", true, pyc("import socket; socket.create_connection(('127.0.0.1', " + local + "), 3)"), false},
		{"no listening with network", true, pyc("import socket; s = socket.socket(); s.bind(('0.0.0.0', 0)); s.listen()"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runSandboxed(t.Context(), profile(tc.network), ws, tc.argv...)
			if (err == nil) != tc.ok {
				t.Errorf("%q: err = %v, want success %v; output:\n%s", tc.argv, err, tc.ok, out)
			}
		})
	}

	// Outbound networking, when the host itself has it.
	if c, err := net.DialTimeout("tcp", "1.1.1.1:443", 3*time.Second); err != nil {
		t.Logf("skipping the outbound check: the host has no network (%v)", err)
	} else {
		c.Close()
		code := "import socket; socket.create_connection(('one.one.one.one', 443), 5)"
		if out, err := runSandboxed(t.Context(), profile(true), ws, pyc(code)...); err != nil {
			t.Errorf("outbound connection with networking on: %v\n%s", err, out)
		}
	}
}

func TestKillMarked(t *testing.T) {
	requireSeatbelt(t)
	t.Parallel()
	marker := MarkerEnv + "=" + string(sandbox.NewID())
	var cmds []*exec.Cmd
	for _, setsid := range []bool{false, true} {
		cmd := exec.Command("/bin/sleep", "300")
		cmd.Env = []string{marker}
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	pids, err := scanMarked(marker)
	if err != nil || len(pids) != 2 {
		t.Fatalf("scanMarked = %v, %v; want the 2 sleeps", pids, err)
	}
	if err := killMarked(t.Context(), marker); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err == nil {
			t.Errorf("sleep %d exited normally, want killed", cmd.Process.Pid)
		}
	}
}

func newProvider(t *testing.T) sandbox.Provider {
	t.Helper()
	requireSeatbelt(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: t.TempDir()})
	if err != nil {
		if errors.Is(err, sandbox.ErrUnsupported) && os.Getenv("WARDEN_REQUIRE_SEATBELT") != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(t.Context()) })
	return p
}

func TestConformance(t *testing.T) {
	sandboxtest.Run(t, newProvider)
}

func TestCapabilitiesHonest(t *testing.T) {
	p := newProvider(t)
	c := p.Capabilities()
	if c.MemoryLimit || c.CPULimit || c.PidsLimit || c.Mounts || !c.NetworkToggle || c.Isolation != Isolation {
		t.Errorf("Capabilities = %+v", c)
	}
	if _, err := p.Create(t.Context(), sandbox.Spec{Mounts: []sandbox.Mount{{Source: t.TempDir(), Target: "/data"}}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("Create with a remapped mount = %v, want ErrInvalid", err)
	}
	// A mount at its own path is granted, read-only when asked.
	ro, rw := realTempDir(t), realTempDir(t)
	write(t, filepath.Join(ro, "in.txt"), "in")
	info, err := p.Create(t.Context(), sandbox.Spec{Mounts: []sandbox.Mount{{Source: ro, ReadOnly: true}, {Source: rw}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cmd  string
		exit int
	}{
		{"cat " + ro + "/in.txt", 0},
		{"echo x > " + ro + "/new", 1},
		{"echo x > " + rw + "/new", 0},
	} {
		r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: tc.cmd})
		if err != nil || (r.ExitCode == 0) != (tc.exit == 0) {
			t.Errorf("%s: exit %d, %v; want exit %d (stderr %q)", tc.cmd, r.ExitCode, err, tc.exit, r.Stderr)
		}
	}
}
