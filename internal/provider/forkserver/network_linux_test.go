package forkserver

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestNetwork: a sandbox with networking gets tap0 from slirp4netns, its
// own /etc/hosts and resolv.conf, no way to the host's loopback, and its
// slirp4netns ends with it.
func TestNetwork(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireSlirp4netns(t)
	t.Parallel()
	setups(t, func(t *testing.T, p *Provider) {
		if !p.Capabilities().NetworkToggle {
			t.Fatalf("no networking: %v", p.networkErr())
		}
		// A service on the host's loopback, which the sandbox must not reach.
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
				_, _ = c.Write([]byte("host secret\n"))
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		info := newBox(t, p, sandbox.Spec{Network: true})
		code := fmt.Sprintf(`import socket
print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').read().splitlines()[2:]))
print(open('/etc/resolv.conf').read().strip())
print('sandbox' in open('/etc/hosts').read())
for host in ('10.0.2.2', '127.0.0.1'):
    try:
        c = socket.create_connection((host, %d), timeout=3)
        print(host, 'reached', c.recv(64))
    except OSError as e:
        print(host, type(e).__name__, e.errno)`, port)
		r := run(t, p, info.ID, sandbox.Python, code)
		// 10.0.2.2 is the host only for what does not go to its loopback
		// (--disable-host-loopback: ENETUNREACH, as in the bubblewrap
		// provider); 127.0.0.1 is the sandbox's own.
		want := "['lo', 'tap0']\nnameserver 10.0.2.3\nTrue\n10.0.2.2 OSError 101\n127.0.0.1 ConnectionRefusedError 111\n"
		if string(r.Stdout) != want {
			t.Errorf("networked sandbox:\n%s%s\nwant\n%s", r.Stdout, r.Stderr, want)
		}
		if r := run(t, p, info.ID, sandbox.Shell, "touch /etc/resolv.conf 2>&1 | grep -c Read-only"); string(r.Stdout) != "1\n" {
			t.Errorf("resolv.conf writable: %q %q", r.Stdout, r.Stderr)
		}
		b, _ := p.Boxes.Get(info.ID)
		b.Box.l.mu.Lock()
		slirpPID := b.Box.l.net.cmd.Process.Pid
		b.Box.l.mu.Unlock()
		if err := p.Destroy(t.Context(), info.ID); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", slirpPID))
			if err != nil || syscall.Kill(slirpPID, 0) != nil || strings.Contains(string(st), ") Z") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("slirp4netns %d outlived its sandbox", slirpPID)
			}
		}
	})
}
