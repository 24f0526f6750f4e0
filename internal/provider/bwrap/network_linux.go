package bwrap

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// A sandbox with networking gets its own network namespace all the same,
// connected to the outside by slirp4netns: a user-mode TCP/IP stack that
// makes the sandbox's connections from the host as ordinary sockets. It is
// never the host's namespace: there the sandbox would reach every service
// listening on the host's loopback, Warden's API among them.
//
// Inside, the sandbox sees tap0 as 10.0.2.100/24, the gateway 10.0.2.2 and
// a DNS forwarder at 10.0.2.3. --disable-host-loopback makes 10.0.2.2 refuse
// what would reach the host's 127.0.0.1; the host's other addresses are
// reachable, as they are from a Docker container on the default bridge.
const (
	slirpTap      = "tap0"
	slirpDNS      = "10.0.2.3"
	slirpReadyMax = 10 * time.Second
	// sandboxHosts and sandboxResolv replace the host's files: the
	// sandbox learns nothing of the host's names and resolves through
	// slirp4netns.
	localHosts    = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	sandboxHosts  = localHosts + "10.0.2.100\tsandbox\n"
	sandboxResolv = "nameserver " + slirpDNS + "\n"
)

// The host's resolver configuration, and systemd-resolved's list of the
// servers behind its loopback stub.
const (
	hostResolvConf     = "/etc/resolv.conf"
	resolvedResolvConf = "/run/systemd/resolve/resolv.conf"
)

// resolvConf is the /etc/resolv.conf of a sandbox with networking, made
// from the host's (hostConf) and systemd-resolved's (resolvedConf) files.
// slirp4netns forwards 10.0.2.3 to the host's first nameserver; where that
// is on loopback (systemd-resolved's 127.0.0.53, a local dnsmasq),
// --disable-host-loopback keeps the sandbox from it. The sandbox then gets
// the upstream servers instead, systemd-resolved's first, reached through
// slirp4netns like any outside address, as Docker does. ok is false when
// there are none: the sandbox has no working DNS.
func resolvConf(hostConf, resolvedConf string) (conf string, ok bool) {
	host := nameservers(hostConf)
	if len(host) == 0 || !host[0].IsLoopback() {
		return sandboxResolv, len(host) > 0
	}
	var chosen []netip.Addr
	for _, ns := range append(nameservers(resolvedConf), host...) {
		if !ns.IsLoopback() && len(chosen) < 3 && !slices.Contains(chosen, ns) {
			chosen = append(chosen, ns)
		}
	}
	if len(chosen) == 0 {
		return sandboxResolv, false
	}
	var b strings.Builder
	for _, ns := range chosen {
		fmt.Fprintf(&b, "nameserver %s\n", ns)
	}
	return b.String(), true
}

// nameservers lists the IPv4 nameservers of a resolv.conf, in order
// (slirp4netns's network is IPv4 only).
func nameservers(conf string) []netip.Addr {
	var out []netip.Addr
	for _, line := range strings.Split(conf, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && a.Is4() {
				out = append(out, a)
			}
		}
	}
	return out
}

// sandboxResolvConf reads the host's files and makes the sandbox's.
func (p *Provider) sandboxResolvConf() string {
	host, _ := os.ReadFile(p.resolvFiles[0])
	resolved, _ := os.ReadFile(p.resolvFiles[1])
	conf, ok := resolvConf(string(host), string(resolved))
	if !ok {
		p.log.Warn("sandboxes with networking have no DNS: the host's resolver is on loopback and no upstream server is listed",
			"host", p.resolvFiles[0], "upstream", p.resolvFiles[1])
	}
	return conf
}

// errNoSlirp refuses networking without slirp4netns rather than share the
// host's network namespace.
var errNoSlirp = fmt.Errorf("bubblewrap: networking needs slirp4netns (apt-get install slirp4netns), which is not installed; "+
	"Warden never gives a bubblewrap sandbox the host's network, where it would reach every service on the host's loopback: %w", sandbox.ErrUnsupported)

// networkErr says why sandboxes may not have networking, or nil if they
// may: slirp4netns must be installed and, unless Warden is root, able to
// open /dev/net/tun.
func networkErr(slirp string, root bool, tunUsable func() error) error {
	if slirp == "" {
		return errNoSlirp
	}
	if root {
		return nil
	}
	if err := tunUsable(); err != nil {
		return fmt.Errorf("bubblewrap: networking as a non-root user needs slirp4netns to open /dev/net/tun as that user (%v); "+
			"udev makes it mode 0666 on most hosts, this one does not: run Warden as root, or chmod 0666 /dev/net/tun: %w", err, sandbox.ErrUnsupported)
	}
	return nil
}

// slirp is the slirp4netns process of one sandbox.
type slirp struct {
	once   sync.Once
	cmd    *exec.Cmd
	exitW  *os.File // closing it tells slirp4netns to exit
	stderr *agent.TailBuffer
}

// bwrapInfo is what bwrap writes to --info-fd once it has cloned the
// sandbox's first process.
type bwrapInfo struct {
	ChildPID int `json:"child-pid"`
	// NetNS is the inode of the sandbox's network namespace (bwrap 0.4 and
	// later): it tells that /proc/<ChildPID> is still the sandbox.
	NetNS uint64 `json:"net-namespace"`
}

// readChildPID reads the sandbox's host PID from bwrap's --info-fd. bwrap
// writes it before the sandbox reads its --block-fd, so the namespaces
// exist and nothing of the sandbox's own has run yet.
func readChildPID(r io.Reader) (bwrapInfo, error) {
	var info bwrapInfo
	if err := json.NewDecoder(r).Decode(&info); err != nil {
		return info, fmt.Errorf("reading bwrap's info: %w", err)
	}
	if info.ChildPID <= 0 {
		return info, fmt.Errorf("bwrap's info has no child-pid")
	}
	return info, nil
}

// startSlirp connects the network namespace of the process pid to the
// outside, and returns once its interface is configured.
func (l *launcher) startSlirp(info bwrapInfo) (*slirp, error) {
	pid := info.ChildPID
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyR.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return nil, err
	}
	defer exitR.Close()
	// The namespaces go by descriptor, not by PID: the network namespace,
	// and the user namespace that owns it (not the sandbox's own, which
	// --disable-userns nests below it), whose owner may configure it
	// without privileges.
	netns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		readyW.Close()
		exitW.Close()
		return nil, err
	}
	defer netns.Close()
	// The PID is bwrap's child, which bwrap reaps: if it died and its PID
	// went to another process before the open, this is not the sandbox's
	// namespace, and slirp4netns must not connect it.
	var st unix.Stat_t
	if err := unix.Fstat(int(netns.Fd()), &st); err != nil || st.Ino != info.NetNS {
		readyW.Close()
		exitW.Close()
		return nil, fmt.Errorf("process %d no longer is the sandbox (network namespace %d, want %d)", pid, st.Ino, info.NetNS)
	}
	fd, err := unix.IoctlRetInt(int(netns.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		readyW.Close()
		exitW.Close()
		return nil, fmt.Errorf("finding the owner of the network namespace: %w", err)
	}
	userns := os.NewFile(uintptr(fd), "userns")
	defer userns.Close()
	root := os.Geteuid() == 0
	cmd := exec.Command(l.p.slirp, slirpArgs(root)...)
	cmd.Env = l.markers()
	cmd.ExtraFiles = []*os.File{readyW, exitR, userns, netns}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if root {
		// slirp4netns runs as Warden, root, whatever the sandbox's user
		// and whatever the mode of /dev/net/tun. It once ran as the
		// sandbox's user where /dev/net/tun is open to all (mode 0666,
		// udev's default): its --enable-sandbox then failed on every
		// host with that mode (it becomes root in the namespace's owning
		// user namespace, where bwrap maps only the sandbox's user), and
		// without it an unprivileged slirp4netns would see the whole host
		// filesystem as the user every sandbox runs as. As root it sheds
		// every capability once tap0 is up, pivots into a root of its own,
		// filters its system calls, and, in a PID and IPC namespace of
		// its own, can signal or trace no process but its child.
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC
		// slirp4netns --enable-sandbox makes its new mount namespace's /
		// private but not what is mounted below it, then detaches the old
		// root: as root, in the host's user namespace, that unmount
		// propagates to every shared mount's peers in the host's namespace.
		// Docker's /var/lib/docker is shared, so the root filesystems of
		// containers being started vanished under them ("stat
		// /sbin/docker-init: permission denied"). Go starts slirp4netns in a
		// mount namespace of its own made private all the way down (MS_REC),
		// from which nothing propagates.
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
	}
	stderr := &agent.TailBuffer{Max: 8 << 10}
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		exitW.Close()
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	s := &slirp{cmd: cmd, exitW: exitW, stderr: stderr}
	// slirp4netns writes "1" to the ready fd once tap0 is up; if it dies
	// first, the read ends with EOF.
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := readyR.Read(b)
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(slirpReadyMax):
		err = fmt.Errorf("not ready after %v", slirpReadyMax)
	}
	if err != nil {
		s.stop()
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return nil, fmt.Errorf("slirp4netns: %v: %s", err, msg)
		}
		return nil, fmt.Errorf("slirp4netns: %w", err)
	}
	if l.cg != nil {
		// Its memory and processes count against the sandbox's limits.
		if err := l.cg.add(cmd.Process.Pid); err != nil {
			s.stop()
			return nil, fmt.Errorf("limiting slirp4netns: %w", err)
		}
	}
	return s, nil
}

// slirpArgs are slirp4netns's arguments; descriptors 3 to 6 are the
// ready and exit pipes, the owning user namespace and the network
// namespace.
func slirpArgs(root bool) []string {
	args := []string{
		"--configure", "--mtu=65520", "--disable-host-loopback",
		"--ready-fd=3", "--exit-fd=4",
		"--userns-path=/proc/self/fd/5", "--netns-type=path", "/proc/self/fd/6", slirpTap,
	}
	// slirp4netns filters its own system calls either way. Only as root
	// can it also --enable-sandbox (a new mount namespace, an empty root,
	// no capabilities): the sandbox joins the namespace's owning user
	// namespace and becomes root there, and an unprivileged bwrap maps
	// only its own user. A rootless Warden's slirp4netns is confined by
	// its seccomp filter and its user's rights, as rootless Podman's is
	// where its user namespace maps no root.
	confine := []string{"--enable-seccomp"}
	if root {
		confine = append(confine, "--enable-sandbox")
	}
	return append(confine, args...)
}

// tunUsable says whether this process may open /dev/net/tun, which a
// non-root slirp4netns needs: udev makes it 0666 on desktop and server
// Debian, containers often make it root's only.
func tunUsable() error {
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

func (s *slirp) stop() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		s.exitW.Close()
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait() // killed on purpose: its status says so
	})
}

// dataFile returns a pipe holding data, for bwrap's --ro-bind-data.
func dataFile(data string) (*os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	_, err = io.WriteString(w, data) // well under a pipe's buffer
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}
