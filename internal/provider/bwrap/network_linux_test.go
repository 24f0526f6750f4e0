package bwrap

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// hostAddr returns an IPv4 address of this host other than loopback.
func hostAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String()
		}
	}
	t.Skip("this host has no IPv4 address besides loopback")
	return ""
}

// serve answers every connection on l with token.
func serve(t *testing.T, l net.Listener, token string) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, token)
			c.Close()
		}
	}()
}

// dial is Python that connects to host:port and prints what it reads, or
// the error.
func dial(host string, port int) string {
	return fmt.Sprintf(`import socket
try:
    s = socket.create_connection((%q, %d), timeout=3)
    print('read', s.recv(64).decode())
except OSError as e:
    print('failed', type(e).__name__, e.errno)`, host, port)
}

// TestNetwork: a sandbox with networking reaches the host's other
// addresses through slirp4netns, never the host's loopback, where
// Warden's API listens; without networking it reaches nothing. Its
// slirp4netns goes with it.
func TestNetwork(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	testutil.RequireSlirp4netns(t)
	addr := hostAddr(t)
	// One port open on every host address, loopback included: only the
	// address the sandbox dials decides whether it gets through.
	all, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, all, "public")
	port := all.Addr().(*net.TCPAddr).Port
	lo, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, lo, "loopback")
	loPort := lo.Addr().(*net.TCPAddr).Port

	p, id := newBox(t, sandbox.Spec{Network: true})
	if got := p.Enforcement().Network; got != "slirp4netns" {
		t.Errorf("Enforcement().Network = %q", got)
	}
	want := func(code, want string) {
		t.Helper()
		r := run(t, p, id, sandbox.Python, code, 20*time.Second)
		if got := strings.TrimSpace(string(r.Stdout)); got != want {
			t.Errorf("%s\n= %q (stderr %q), want %q", code, got, r.Stderr, want)
		}
	}
	want(dial(addr, port), "read public")
	// The host's loopback, behind slirp4netns's gateway, is unreachable; the
	// sandbox's own loopback has nothing listening.
	for _, p := range []int{port, loPort} {
		want(dial("10.0.2.2", p), "failed OSError 101") // ENETUNREACH
		want(dial("127.0.0.1", p), "failed ConnectionRefusedError 111")
	}
	want("print(open('/etc/resolv.conf').read().strip())", "nameserver "+slirpDNS)
	want("import socket; print(socket.gethostbyname('localhost'))", "127.0.0.1")
	first := slirpPID(t, p, id)
	if first == 0 || !alive(first) {
		t.Fatalf("no slirp4netns running for the sandbox (pid %d)", first)
	}

	// When the Python process dies the sandbox restarts: its new process
	// tree is connected by a new slirp4netns, and the old one is gone.
	run(t, p, id, sandbox.Shell, "kill -9 $PPID", 0) // the agent
	want(dial(addr, port), "read public")
	second := slirpPID(t, p, id)
	if alive(first) || second == first || !alive(second) {
		t.Errorf("after a restart: old slirp4netns %d alive %v, new one %d alive %v", first, alive(first), second, alive(second))
	}
	if err := p.Destroy(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if alive(second) {
		t.Errorf("slirp4netns %d outlives its sandbox", second)
	}

	// Without networking there is no route anywhere.
	p, id = newBox(t, sandbox.Spec{})
	r := run(t, p, id, sandbox.Python, dial(addr, port), 20*time.Second)
	if got := strings.TrimSpace(string(r.Stdout)); !strings.HasPrefix(got, "failed") {
		t.Errorf("network off: %q", got)
	}
}

// TestNoSlirp4netns: without slirp4netns a sandbox may not have networking
// (rather than get the host's), and the error says what to install.
func TestNoSlirp4netns(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	p.slirp, p.enf.Network = "", "none"
	_, err = p.Create(t.Context(), sandbox.Spec{Network: true})
	if !errors.Is(err, sandbox.ErrUnsupported) || !strings.Contains(err.Error(), "apt-get install slirp4netns") {
		t.Fatalf("Create with networking and no slirp4netns = %v, want ErrUnsupported naming the package", err)
	}
}

// slirpPID returns the PID of sandbox id's slirp4netns, 0 for none.
func slirpPID(t *testing.T, p *Provider, id sandbox.ID) int {
	t.Helper()
	b, err := p.boxes.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	l := b.Box.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.net == nil {
		return 0
	}
	return l.net.cmd.Process.Pid
}

// alive says whether process pid exists (and is not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
