package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Compiling the agent's source costs its interpreter more than the rest of
// its start (about 25 ms on a 2-core VM). A provider that can run the
// sandboxes' interpreter once, apart from any sandbox's code, compiles it
// there with [CompileCommand], keeps the result with [Compiled], and starts
// agents with [LoaderCommand], which loads the compiled program from a
// file the sandbox may read but not write.
//
// The compiled file holds the interpreter's magic number (the one .pyc
// files start with), the length of the marshalled code object, the code
// object, and the agent's source. The loader runs the code object only
// when the magic number is its own interpreter's, and compiles the source
// otherwise, so a stale file (an interpreter upgraded meanwhile) costs
// time, never correctness.

// compileProgram reads the agent's source on stdin and writes the
// compiled file on stdout. It runs as python3 -I -S: no environment, no
// site, nothing of the sandbox's.
const compileProgram = `import sys, marshal
src = sys.stdin.buffer.read()
code = marshal.dumps(compile(src.decode("utf-8"), "<warden-agent>", "exec"))
magic = sys.modules["_frozen_importlib_external"].MAGIC_NUMBER
sys.stdout.buffer.write(magic + len(code).to_bytes(4, "big") + code + src)
`

// loaderRun runs the compiled file in b, or compiles the source it holds
// when its magic number is another interpreter's; the loaders read b.
const loaderRun = `n = int.from_bytes(b[4:8], "big")
WARDEN_COMPILED = b[:4] == sys.modules["_frozen_importlib_external"].MAGIC_NUMBER
if WARDEN_COMPILED:
    c = marshal.loads(b[8:8 + n])
else:
    c = compile(b[8 + n:].decode("utf-8"), "<warden-agent>", "exec")
del b, n
exec(c)
`

// loaderProgram runs the agent from the compiled file named by its second
// argument (python3 -c loaderProgram agent FILE).
const loaderProgram = `import sys, marshal
with open(sys.argv[2], "rb") as f:
    b = f.read()
del f
` + loaderRun

// stdinLoaderProgram runs the agent from a compiled file sent first on its
// standard input, after the file's length (4 bytes, big-endian); the
// protocol follows on the same descriptor. It reads with os.read, exactly
// what was sent, so that nothing of the protocol is buffered away.
const stdinLoaderProgram = `import os, sys, marshal
def warden_read(n):
    b = bytearray()
    while len(b) < n:
        c = os.read(0, n - len(b))
        if not c:
            raise SystemExit("agent loader: input ended in the compiled agent")
        b += c
    return bytes(b)
b = warden_read(int.from_bytes(warden_read(4), "big"))
del warden_read
` + loaderRun

// StdinLoaderCommand starts an agent from the compiled file the host
// writes first on the agent's standard input, framed by [StdinPayload]:
// for a provider that has no file to share with its sandboxes (Docker,
// whose daemon may be on another machine). Like [LoaderCommand], it
// compiles the source in the file when the magic number is another
// interpreter's.
func StdinLoaderCommand() []string {
	return []string{"python3", "-c", stdinLoaderProgram, "agent"}
}

// StdinPayload frames a compiled file (see [CheckCompiled]) for
// [StdinLoaderCommand].
func StdinPayload(compiled []byte) []byte {
	out := make([]byte, 4, 4+len(compiled))
	binary.BigEndian.PutUint32(out, uint32(len(compiled)))
	return append(out, compiled...)
}

// MaxCompiled bounds the output of [CompileCommand] that [Compiled] accepts.
const MaxCompiled = 8 << 20

// CompileCommand is the command that compiles the agent with the
// sandboxes' interpreter (python3, found on PATH): it reads [Source] on
// its stdin and writes the compiled file on its stdout. It runs nothing
// else: no site module, no environment variables of Python's, nothing
// from the working directory.
func CompileCommand() []string {
	return []string{"python3", "-I", "-S", "-c", compileProgram}
}

// LoaderCommand is the command that starts an agent from the compiled
// file at path (a path inside the sandbox).
func LoaderCommand(path string) []string {
	return []string{"python3", "-c", loaderProgram, "agent", path}
}

// CheckCompiled reports whether b is a compiled file of this agent:
// a magic number, a code object whose length fits, and Source.
func CheckCompiled(b []byte) error {
	if len(b) < 8 || len(b) > MaxCompiled {
		return fmt.Errorf("compiled agent of %d bytes", len(b))
	}
	// Every CPython magic number ends in \r\n.
	if b[2] != '\r' || b[3] != '\n' {
		return fmt.Errorf("compiled agent: no magic number (% x)", b[:4])
	}
	n := binary.BigEndian.Uint32(b[4:8])
	if uint64(n) > uint64(len(b)-8) {
		return fmt.Errorf("compiled agent: code object of %d bytes in a file of %d", n, len(b))
	}
	if !bytes.Equal(b[8+n:], []byte(Source)) {
		return errors.New("compiled agent: not this agent's source")
	}
	return nil
}

// Compiled returns the path of the agent compiled by the interpreter that
// compile runs (it runs [CompileCommand] with stdin as its standard input
// and returns its standard output), kept in dir. The file's name comes
// from Source and key, which must change whenever the interpreter may
// have (its path, size and modification time, say); a file of that name
// is reused only if it is this process's user's, writable by no one else,
// and valid. dir must be a directory of this user's that no one else may
// write to.
func Compiled(ctx context.Context, dir, key string, compile func(ctx context.Context, stdin []byte) ([]byte, error)) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s", Source, compileProgram, key)
	path := filepath.Join(dir, "agent-"+hex.EncodeToString(h.Sum(nil))[:32])
	if ownFile(path) {
		if b, err := os.ReadFile(path); err == nil && CheckCompiled(b) == nil {
			return path, nil
		}
	}
	b, err := compile(ctx, []byte(Source))
	if err != nil {
		return "", fmt.Errorf("compiling the agent: %w", err)
	}
	if err := CheckCompiled(b); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "agent-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", err
	}
	// Readable by the sandboxes' user, whoever that is.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	return path, nil
}

// ownFile reports whether path is a regular file of this process's user
// that no one else may write to.
func ownFile(path string) bool {
	st, err := os.Lstat(path)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o022 != 0 {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Uid == uint32(os.Geteuid())
}
