package forkserver

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// setupSource is the native set-up of a sandbox (ADR 0020): compiled into
// a shared object when the provider starts, handed to the fork server in
// a memfd, and called there for each sandbox.
//
//go:embed native/setup.c
var setupSource []byte

// nativeSetup compiles setup.c once per process with the C compiler
// ($CC, else cc): the shared object's bytes, or why there are none. Only
// this process's temporary directory is involved: nothing compiled is
// ever taken from a place another user could write.
var nativeSetup = sync.OnceValues(func() ([]byte, error) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return nil, fmt.Errorf("no C compiler (%s) to build it", cc)
	}
	dir, err := os.MkdirTemp("", "warden-setup-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	src, so := filepath.Join(dir, "setup.c"), filepath.Join(dir, "setup.so")
	if err := os.WriteFile(src, setupSource, 0o600); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cc, "-O2", "-shared", "-fPIC", "-o", so, src).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("compiling it with %s: %v: %s", cc, err, strings.TrimSpace(string(out)))
	}
	return os.ReadFile(so)
})

// setupMemfd is the native set-up in a memfd for the fork server's fd 9,
// or nil (and why) when it cannot be had.
func (p *Provider) setupMemfd() (*os.File, error) {
	if p.opts.PythonSetup || p.opts.DoubleFork {
		return nil, errors.New("not asked for")
	}
	so, err := nativeSetup()
	if err != nil {
		return nil, err
	}
	// Executable (where vm.memfd_noexec asks for it to be said: Linux
	// 6.3) and sealed once written: what the server maps is what was
	// compiled here.
	fd, err := unix.MemfdCreate("warden-setup", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate("warden-setup", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "warden-setup")
	if _, err := f.Write(so); err != nil {
		f.Close()
		return nil, err
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_WRITE|unix.F_SEAL_GROW|unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("sealing it: %w", err)
	}
	return f, nil
}
