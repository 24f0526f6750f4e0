package forkserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// TestSetupProgram: the program names the request's descriptors by
// their place ("%i": socket, stderr, cgroups, trees, a one-shot run's
// pipes), keeps them all, takes the confinement's steps in their order,
// and refuses what the server could not read.
func TestSetupProgram(t *testing.T) {
	hosts := "127.0.0.1 localhost\n"
	req := childRequest{
		Cgroups: 3, Hostname: "sandbox", TmpSize: 1 << 20, Workspace: "/workspace",
		Trees: []string{"/workspace", "/data"}, Oneshot: true, Hot: true, Network: true, Hosts: &hosts,
		Landlock: &llConfig{Handled: 7, AttrSize: 16, Rules: [][3]any{{"/usr", uint64(5), uint64(4)}}},
		Rlimits:  [][2]uint64{{7, 64}},
	}
	f := zygoteFacts{uid: 1000, gid: 1001, procRO: []string{"sys"}, etc: []string{"/etc/hosts"}, hot: 500}
	l := layout{dirs: []string{"/usr"}, symlinks: [][2]string{{"/bin", "usr/bin"}}}
	prog, err := setupProgram(req, 9, f, l, rootMount)
	if err != nil {
		t.Fatal(err)
	}
	if prog[len(prog)-1] != 0 {
		t.Fatal("the program does not end in a NUL")
	}
	got := strings.ReplaceAll(string(prog[:len(prog)-1]), "\x00", " ")
	for _, want := range []string{
		// The hot pages once in the sandbox's cgroups: the copies are its.
		"dup2 %1 2 keep 10 %0 %1 %2 %3 %4 %5 %6 %7 %8 2 sigdfl 17 cgroup %2 cgroup %3 cgroup %4 hot file /proc/self/setgroups deny",
		"file /proc/self/uid_map 1000 1000 1 file /proc/self/gid_map 1001 1001 1 unshare",
		"byte %0 2 setsid",
		"symlink usr/bin /.warden/root/bin mkdirs /.warden/root/usr mount /usr /.warden/root/usr  ",
		"mount /.warden/root/proc/sys /.warden/root/proc/sys ",
		"mkdirs /.warden/root/workspace attach %5 /.warden/root/workspace mkdirs /.warden/root/data attach %6 /.warden/root/data",
		"newfile /.warden/root/.warden-hosts 127.0.0.1 localhost\n mount /.warden/root/.warden-hosts /.warden/root/etc/hosts",
		"pivot chdir / trychdir /workspace caps nonewprivs landlock 7 0 16 rule /usr 5 4 restrict rlimit 7 64 seccomp await %0 n 124",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the program lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "trace") || strings.Contains(got, "resolv") || strings.Contains(got, "mount  / ") {
		t.Errorf("the program has steps it was not asked for:\n%s", got)
	}
	if i, j := strings.Index(got, " caps "), strings.Index(got, " seccomp"); i < 0 || j < i || !strings.HasSuffix(got, "await %0 n 124") {
		t.Errorf("confinement out of order:\n%s", got)
	}

	session := req
	session.Oneshot, session.Hot = false, false
	if prog, err := setupProgram(session, 7, f, l, rootMount); err != nil || strings.Contains(string(prog), "\x00hot\x00") {
		t.Errorf("a session's program: %v, with the one-shot hot pages: %q", err, prog)
	}
	shell := req
	shell.Hot = false
	if prog, err := setupProgram(shell, 9, f, l, rootMount); err != nil || strings.Contains(string(prog), "\x00hot\x00") {
		t.Errorf("a one-shot shell run's program: %v, with Python's hot pages: %q", err, prog)
	}
	// The least a sandbox asks (no cgroups, mounts, Landlock, rlimits or
	// network), traced, from a server with shared mounts.
	least := childRequest{Hostname: "sandbox", TmpSize: 1 << 20, Workspace: "/workspace", Trees: []string{"/workspace"}, Trace: true}
	fs := f
	fs.shared = true
	prog, err = setupProgram(least, 3, fs, l, rootMount)
	if err != nil {
		t.Fatal(err)
	}
	got = strings.ReplaceAll(string(prog[:len(prog)-1]), "\x00", " ")
	for _, want := range []string{
		"dup2 %1 2 trace c1 keep 4 %0 %1 %2 2 sigdfl 17 trace c1-go file",
		fmt.Sprintf("file /proc/sys/user/max_user_namespaces 0 mount  /  %d  mount tmpfs", msRec|msPrivate),
		"attach %2 /.warden/root/workspace mount  /.warden/root",
		"seccomp trace confined",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the least program lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"cgroup", "hot", "landlock", "rlimit", "await", "newfile"} {
		if strings.Contains(got, " "+not+" ") {
			t.Errorf("the least program has %q:\n%s", not, got)
		}
	}
	if _, err := setupProgram(req, 8, f, l, rootMount); err == nil {
		t.Error("a one-shot request without its pipes made a program")
	}
	bad := req
	bad.Workspace = "/work\x00space"
	if _, err := setupProgram(bad, 9, f, l, rootMount); err == nil || !strings.Contains(err.Error(), "NUL") {
		t.Errorf("a NUL in a path: %v", err)
	}
	bad = req
	bad.Landlock = &llConfig{Rules: [][3]any{{"/usr", 5, uint64(4)}}}
	if _, err := setupProgram(bad, 9, f, l, rootMount); err == nil {
		t.Error("a Landlock rule of the wrong types made a program")
	}

	msg, err := frame(prog, []byte(`{"x":1}`), maxFDs)
	if err != nil || len(msg) != 4+len(prog)+7 || int(msg[0])|int(msg[1])<<8 != len(prog) {
		t.Errorf("frame: %d bytes, %v", len(msg), err)
	}
	if _, err := frame(prog, make([]byte, maxRequest), 2); err == nil {
		t.Error("frame took a request larger than the server reads")
	}
	if _, err := frame(prog, nil, maxFDs+1); err == nil {
		t.Error("frame took more descriptors than the server reads")
	}
}

func TestParseFacts(t *testing.T) {
	f, err := parseFacts("uid=1000 gid=1000 shared=1 proc_ro=sys,irq etc=/etc/hosts,/etc/resolv.conf")
	if err != nil || f.uid != 1000 || !f.shared || len(f.procRO) != 2 || len(f.etc) != 2 {
		t.Errorf("parseFacts: %+v, %v", f, err)
	}
	if f.hot != 0 {
		t.Errorf("parseFacts without hot: %d hot pages", f.hot)
	}
	if f, err := parseFacts("uid=0 gid=0 shared=0 proc_ro= etc= hot=12"); err != nil || f.procRO != nil || f.shared || f.hot != 12 {
		t.Errorf("parseFacts, empty lists: %+v, %v", f, err)
	}
	for _, s := range []string{"", "uid=1 gid=1 shared=0 proc_ro=", "uid=x gid=1 shared=0 proc_ro= etc=", "uid=1 uid=1 gid=1 shared=0 proc_ro="} {
		if _, err := parseFacts(s); err == nil {
			t.Errorf("parseFacts(%q) took it", s)
		}
	}
}

// TestTooManyMounts: a sandbox whose descriptors would not all reach
// the fork server is refused with ErrInvalid, saying why, on both
// set-ups; the server goes on serving.
func TestTooManyMounts(t *testing.T) {
	setups(t, func(t *testing.T, p *Provider) {
		src := t.TempDir()
		var mounts []sandbox.Mount
		for i := range maxFDs {
			mounts = append(mounts, sandbox.Mount{Source: src, Target: fmt.Sprintf("/m/%d", i), ReadOnly: true})
		}
		_, err := p.Run(t.Context(), sandbox.Spec{Mounts: mounts}, sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)"})
		if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), "descriptors") {
			t.Errorf("Run with %d mounts = %v, want ErrInvalid saying why", len(mounts), err)
		}
		r, err := p.Run(context.Background(), sandbox.Spec{Mounts: mounts[:4]}, sandbox.ExecRequest{Language: sandbox.Python, Code: "import os; print(len(os.listdir('/m')))"})
		if err != nil || strings.TrimSpace(string(r.Stdout)) != "4" {
			t.Errorf("Run with 4 mounts after = %+v, %v", r, err)
		}
	})
}
