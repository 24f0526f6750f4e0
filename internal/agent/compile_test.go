package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// hostCompile runs CompileCommand with the host's interpreter.
func hostCompile(ctx context.Context, stdin []byte) ([]byte, error) {
	argv := CompileCommand()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", argv[1:]...)
	cmd.Stdin = bytes.NewReader(stdin)
	return cmd.Output()
}

func TestCompiled(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	t.Parallel()
	dir := t.TempDir()
	calls := 0
	compile := func(ctx context.Context, stdin []byte) ([]byte, error) {
		calls++
		return hostCompile(ctx, stdin)
	}
	path, err := Compiled(t.Context(), dir, "k", compile)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := Compiled(t.Context(), dir, "k", compile); err != nil || again != path || calls != 1 {
		t.Errorf("Compiled again = %q, %v after %d compilations; want %q from the first", again, err, calls, path)
	}
	if other, err := Compiled(t.Context(), dir, "other", compile); err != nil || other == path || calls != 2 {
		t.Errorf("Compiled(another key) = %q, %v after %d compilations; want a file of its own", other, err, calls)
	}
	// A file of that name that is not this agent's, or that others may
	// write, is compiled anew, never run.
	for _, tc := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"garbage", []byte("print('not the agent')"), 0o644},
		{"writable by others", nil, 0o666},
	} {
		data := tc.data
		if data == nil {
			data, _ = os.ReadFile(path)
		}
		if err := os.WriteFile(path, data, tc.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, tc.mode); err != nil {
			t.Fatal(err)
		}
		n := calls
		if got, err := Compiled(t.Context(), dir, "k", compile); err != nil || got != path || calls != n+1 {
			t.Errorf("%s: Compiled = %q, %v with %d compilations; want it compiled again", tc.name, got, err, calls-n)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: the new file is %v (%v), want mode 0644", tc.name, st.Mode(), err)
		}
	}
	// What the compiler says is checked before it is kept.
	for name, out := range map[string][]byte{
		"empty":       nil,
		"no magic":    []byte("12345678"),
		"long code":   []byte("\x01\x02\r\n\xff\xff\xff\xff"),
		"other agent": []byte("\x01\x02\r\n\x00\x00\x00\x00print(1)"),
	} {
		if _, err := Compiled(t.Context(), t.TempDir(), "k", func(context.Context, []byte) ([]byte, error) { return out, nil }); err == nil {
			t.Errorf("Compiled kept the %s output %q", name, out)
		}
	}
	boom := errors.New("boom")
	if _, err := Compiled(t.Context(), t.TempDir(), "k", func(context.Context, []byte) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Errorf("Compiled with a failing compiler = %v, want %v", err, boom)
	}
}

// TestHostLoader runs agents from a compiled file, named or sent on stdin:
// the bytecode when it is the interpreter's own, the source when it is not.
func TestHostLoader(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	t.Parallel()
	good, err := hostCompile(t.Context(), []byte(Source))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCompiled(good); err != nil {
		t.Fatal(err)
	}
	stale := bytes.Clone(good)
	stale[0] ^= 0xff // another interpreter's magic number
	for _, tc := range []struct {
		name     string
		file     []byte
		compiled bool
		stdin    bool // StdinLoaderCommand, not LoaderCommand
	}{
		{"own", good, true, false},
		{"stale", stale, false, false},
		{"own on stdin", good, true, true},
		{"stale on stdin", stale, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := filepath.Join(t.TempDir(), "agent")
			if err := os.WriteFile(file, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			l := &hostLauncher{python: "/usr/bin/python3", dir: dir, args: LoaderCommand(file)[1:]}
			if tc.stdin {
				l.args, l.preface = StdinLoaderCommand()[1:], StdinPayload(tc.file)
			}
			s := NewSession(l, Options{Workspace: dir})
			t.Cleanup(func() { s.Close(); killMarked("WARDEN_HOSTTEST=" + dir) })
			h, err := s.Start(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if h.Compiled != tc.compiled || h.Worker == 0 {
				t.Errorf("hello %+v, want compiled %v and a worker", h, tc.compiled)
			}
			if r := py(t, s, "x = 6 * 7\nx", 0); r.ReturnValue == nil || *r.ReturnValue != "42" {
				t.Errorf("x = %v (%+v)", r.ReturnValue, r)
			}
			if r := sh(t, s, "echo hi", 0); string(r.Stdout) != "hi\n" {
				t.Errorf("echo hi: %q %q", r.Stdout, r.Stderr)
			}
			r, err := s.Exec(t.Context(), sandbox.ExecRequest{Language: sandbox.Python, Code: "1/0"})
			if err != nil || r.Error == nil || r.Error.Name != "ZeroDivisionError" {
				t.Errorf("1/0: %+v, %v", r, err)
			}
			// Killed, the agent is started again from the same file.
			py(t, s, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", 5*time.Second)
			if r := py(t, s, "print('back')", 0); string(r.Stdout) != "back\n" {
				t.Errorf("after the agent's death: %q %q notes %q", r.Stdout, r.Stderr, r.Notes)
			}
		})
	}
}
