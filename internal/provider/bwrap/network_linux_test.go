package bwrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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
	host, _ := os.ReadFile(hostResolvConf)
	resolved, _ := os.ReadFile(resolvedResolvConf)
	conf, _ := resolvConf(string(host), string(resolved))
	want("print(open('/etc/resolv.conf').read().strip())", strings.TrimSpace(conf))
	want("import socket; print(socket.gethostbyname('localhost'))", "127.0.0.1")
	first := slirpPID(t, p, id)
	if first == 0 || !alive(first) {
		t.Fatalf("no slirp4netns running for the sandbox (pid %d)", first)
	}
	checkSlirpConfinement(t, first)

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
	p.netErr = networkErr(p.slirp, os.Geteuid() == 0, tunUsable)
	_, err = p.Create(t.Context(), sandbox.Spec{Network: true})
	if !errors.Is(err, sandbox.ErrUnsupported) || !strings.Contains(err.Error(), "apt-get install slirp4netns") {
		t.Fatalf("Create with networking and no slirp4netns = %v, want ErrUnsupported naming the package", err)
	}
}

// slirpPID returns the PID of sandbox id's slirp4netns, 0 for none.
func slirpPID(t *testing.T, p *Provider, id sandbox.ID) int {
	t.Helper()
	b, err := p.Boxes.Get(id)
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

func TestResolvConf(t *testing.T) {
	t.Parallel()
	const dns = "nameserver " + slirpDNS + "\n"
	for _, tc := range []struct {
		host, resolved, want string
		ok                   bool
	}{
		// A resolver slirp4netns can reach: it forwards to it.
		{"nameserver 10.255.255.53\n", "", dns, true},
		{"search example.com\nnameserver 192.0.2.1\nnameserver 127.0.0.1\n", "nameserver 198.51.100.1\n", dns, true},
		// systemd-resolved's stub: its upstream servers, at most three.
		{"nameserver 127.0.0.53\noptions edns0 trust-ad\n",
			"nameserver 198.51.100.1\nnameserver 2001:db8::1\nnameserver 198.51.100.2\nnameserver 198.51.100.3\nnameserver 198.51.100.4\n",
			"nameserver 198.51.100.1\nnameserver 198.51.100.2\nnameserver 198.51.100.3\n", true},
		// A local dnsmasq first, an outside server after it.
		{"nameserver 127.0.0.1\nnameserver 192.0.2.1\n", "", "nameserver 192.0.2.1\n", true},
		{"nameserver 127.0.0.53\n", "nameserver 192.0.2.1\n", "nameserver 192.0.2.1\n", true},
		{"nameserver 127.0.0.53\n", "nameserver 127.0.0.1\n", dns, false},
		{"", "", dns, false},
		{"nameserver not-an-address\n", "", dns, false},
	} {
		got, ok := resolvConf(tc.host, tc.resolved)
		if got != tc.want || ok != tc.ok {
			t.Errorf("resolvConf(%q, %q) = %q, %v; want %q, %v", tc.host, tc.resolved, got, ok, tc.want, tc.ok)
		}
	}
}

// TestDNSBehindLoopbackResolver: on a host whose resolver is a loopback
// stub (systemd-resolved), a sandbox resolves names through the upstream
// server the stub lists. Here that server is a tiny one of the test's on
// the host's own address, answering every A query with 192.0.2.77.
func TestDNSBehindLoopbackResolver(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	testutil.RequireSlirp4netns(t)
	addr := hostAddr(t)
	pc, err := net.ListenPacket("udp4", net.JoinHostPort(addr, "53"))
	if err != nil {
		t.Skipf("cannot serve DNS on %s:53 (needs root and a free port): %v", addr, err)
	}
	t.Cleanup(func() { pc.Close() })
	go serveDNS(pc, [4]byte{192, 0, 2, 77})

	dir := t.TempDir()
	stub := filepath.Join(dir, "resolv.conf")
	upstream := filepath.Join(dir, "upstream.conf")
	if err := os.WriteFile(stub, []byte("nameserver 127.0.0.53\noptions edns0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(upstream, []byte("nameserver "+addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	p.resolvFiles = [2]string{stub, upstream}
	info, err := p.Create(t.Context(), sandbox.Spec{Network: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Destroy(context.Background(), info.ID) })
	r := run(t, p, info.ID, sandbox.Python, "import socket; print(socket.gethostbyname('probe.warden.test'))", 30*time.Second)
	if got := strings.TrimSpace(string(r.Stdout)); got != "192.0.2.77" {
		t.Errorf("resolving through the upstream server = %q (stderr %q), want 192.0.2.77", got, r.Stderr)
	}
}

// serveDNS answers every query on pc: an A record addr for type A, no
// records for any other type.
func serveDNS(pc net.PacketConn, addr [4]byte) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := buf[:n]
		if len(q) < 12 {
			continue
		}
		// The question: a name as labels, then its type and class.
		end := 12
		for end < len(q) && q[end] != 0 {
			end += 1 + int(q[end])
		}
		end += 5
		if end > len(q) {
			continue
		}
		qtype := int(q[end-4])<<8 | int(q[end-3])
		resp := append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:end]...)
		if qtype == 1 {
			resp[7] = 1
			resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, addr[0], addr[1], addr[2], addr[3])
		}
		pc.WriteTo(resp, from)
	}
}

// TestSlirpLeavesHostMountsAlone: starting slirp4netns unmounts nothing in
// the host's mount namespace. slirp4netns --enable-sandbox, as root, used
// to: it detached its old root with the mounts below shared ones still
// shared, and the unmount reached their peers on the host (Docker's
// /var/lib/docker is shared, so containers being started lost their root
// filesystems). A shared tmpfs with a mount inside stands in for it here.
func TestSlirpLeavesHostMountsAlone(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	testutil.RequireSlirp4netns(t)
	if os.Geteuid() != 0 {
		t.Skip("slirp4netns unmounts through propagation only as root; mounting the stand-in needs root too")
	}
	shared := t.TempDir()
	if err := unix.Mount("tmpfs", shared, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(shared, unix.MNT_DETACH) })
	if err := unix.Mount("", shared, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	inner := filepath.Join(shared, "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", inner, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(inner, unix.MNT_DETACH) })
	mounted := func() bool {
		var a, b unix.Stat_t
		return unix.Stat(shared, &a) == nil && unix.Stat(inner, &b) == nil && a.Dev != b.Dev
	}
	if !mounted() {
		t.Fatal("the stand-in mount is not there to begin with")
	}
	p, id := newBox(t, sandbox.Spec{Network: true})
	run(t, p, id, sandbox.Python, "1", 0)
	if err := p.Destroy(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if !mounted() {
		t.Errorf("%s was unmounted on the host while a sandbox's slirp4netns started", inner)
	}
}

// TestNetworkConcurrentStarts: networked sandboxes created four at a time
// all start. bwrap sets up the namespace's loopback while Warden starts
// slirp4netns; before the shim held the sandbox back for the hand-over,
// about one start in eleven failed so ("loopback: Failed RTM_NEWADDR").
func TestNetworkConcurrentStarts(t *testing.T) {
	t.Parallel()
	testutil.RequireBwrap(t)
	testutil.RequireSlirp4netns(t)
	p, err := New(t.Context(), Options{WorkspaceRoot: testutil.SharedDir(t)})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 10
	errs := make(chan error, workers*each)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				info, err := p.Create(t.Context(), sandbox.Spec{Network: true})
				if err == nil {
					err = p.Destroy(context.Background(), info.ID)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestNetworkWhateverTunMode: networking works whether /dev/net/tun is
// root's only (as in most containers, and on this CI's hosts) or open to
// all (udev's 0666 on desktop and server Debian), under a root Warden,
// whose slirp4netns runs as root, and under a non-root one, whose
// slirp4netns runs as that user. The host's device is left as it is:
// TestNetwork runs again in a child whose private mount namespace has a
// 0666 node for the same device over /dev/net/tun, once as root and once
// as uid 1000.
func TestNetworkWhateverTunMode(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireBwrap(t)
	testutil.RequireSlirp4netns(t)
	if os.Getenv("WARDEN_TEST_TUN_0666") != "" {
		t.Skip("inside the child already")
	}
	for _, tool := range []string{"unshare", "setpriv"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s (util-linux) is missing", tool)
		}
	}
	// A copy of the test binary that uid 1000 may run, in directories it
	// may traverse, and a TMPDIR of its own for its workspaces.
	dir := testutil.SharedDir(t)
	bin := filepath.Join(dir, "bwrap.test")
	copyFile(t, os.Args[0], bin)
	for _, tc := range []struct {
		name     string
		uid      int
		slirpUID string
	}{
		{"root", 0, "0"},
		{"unprivileged", 1000, "1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tmp := filepath.Join(dir, tc.name)
			if err := os.Mkdir(tmp, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(tmp, tc.uid, tc.uid); err != nil {
				t.Fatal(err)
			}
			dev := filepath.Join(dir, tc.name+"-dev")
			if err := os.Mkdir(dev, 0o755); err != nil {
				t.Fatal(err)
			}
			// In the child's mount namespace: a tmpfs (the host's own
			// filesystems may be nodev) with a 0666 node for the tun
			// device, bound over /dev/net/tun; then the test binary, as
			// uid.
			script := `set -e
mount -t tmpfs -o mode=0755 warden-test "$1"
mknod -m 0666 "$1/tun" c 10 200
mount --bind "$1/tun" /dev/net/tun
shift
exec "$@"`
			args := []string{"--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", dev}
			if tc.uid != 0 {
				args = append(args, "setpriv", "--reuid", strconv.Itoa(tc.uid), "--regid", strconv.Itoa(tc.uid), "--clear-groups", "--")
			}
			args = append(args, bin, "-test.run", "^(TestNetwork|TestResolvConf)$", "-test.v", "-test.count=1")
			cmd := exec.CommandContext(t.Context(), "unshare", args...)
			cmd.Dir = "/"
			cmd.Env = append(os.Environ(), "WARDEN_TEST_TUN_0666=1", "WARDEN_TEST_SLIRP_UID="+tc.slirpUID, "TMPDIR="+tmp, "HOME="+tmp)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			// The child ran the network tests, on the path wanted, and
			// did not skip them.
			for _, want := range []string{"--- PASS: TestNetwork ", "--- PASS: TestResolvConf "} {
				if !strings.Contains(string(out), want) {
					t.Errorf("no %q in the child's output:\n%s", want, out)
				}
			}
			if bytes.Contains(out, []byte("--- SKIP")) {
				t.Errorf("the child skipped a test:\n%s", out)
			}
		})
	}
}

// checkSlirpConfinement checks the user and PID namespace of the
// slirp4netns with PID pid: it runs as Warden's user (the one
// WARDEN_TEST_SLIRP_UID names, when set) and, as root, in a PID namespace
// of its own.
func checkSlirpConfinement(t *testing.T, pid int) {
	t.Helper()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var uid string
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			uid = strings.Fields(rest)[1] // effective
		}
	}
	want := strconv.Itoa(os.Geteuid())
	if w := os.Getenv("WARDEN_TEST_SLIRP_UID"); w != "" && w != want {
		t.Fatalf("the test runs as uid %s, the parent wanted uid %s", want, w)
	}
	if uid != want {
		t.Errorf("slirp4netns runs as uid %s, want Warden's %s", uid, want)
	}
	if os.Geteuid() != 0 {
		return
	}
	theirs, err1 := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/pid")
	ours, err2 := os.Readlink("/proc/self/ns/pid")
	if err1 != nil || err2 != nil || theirs == ours {
		t.Errorf("slirp4netns shares Warden's PID namespace (%s, %v, %v)", theirs, err1, err2)
	}
}

// TestNetworkErr: networking is refused, saying why and what to do, where
// slirp4netns is missing or a non-root Warden's slirp4netns cannot open
// /dev/net/tun; root needs nothing of the device's mode.
func TestNetworkErr(t *testing.T) {
	denied := func() error { return os.ErrPermission }
	usable := func() error { return nil }
	for _, tc := range []struct {
		slirp string
		root  bool
		tun   func() error
		want  string // in the error, "" for none
	}{
		{"", true, usable, "apt-get install slirp4netns"},
		{"", false, usable, "apt-get install slirp4netns"},
		{"/usr/bin/slirp4netns", true, denied, ""},
		{"/usr/bin/slirp4netns", false, usable, ""},
		{"/usr/bin/slirp4netns", false, denied, "chmod 0666 /dev/net/tun"},
	} {
		err := networkErr(tc.slirp, tc.root, tc.tun)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("networkErr(%q, root %v) = %v, want nil", tc.slirp, tc.root, err)
		case tc.want != "" && (!errors.Is(err, sandbox.ErrUnsupported) || !strings.Contains(fmt.Sprint(err), tc.want)):
			t.Errorf("networkErr(%q, root %v) = %v, want ErrUnsupported saying %q", tc.slirp, tc.root, err, tc.want)
		}
	}
}
