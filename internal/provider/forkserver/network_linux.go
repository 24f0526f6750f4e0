package forkserver

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// A sandbox with networking keeps its own network namespace, connected to
// the outside by slirp4netns, as in the bubblewrap provider (ADR 0006):
// tap0 is 10.0.2.100/24, the gateway 10.0.2.2 refuses what would reach the
// host's loopback (--disable-host-loopback), and 10.0.2.3 forwards DNS to
// the host's first nameserver. Only a root Warden offers it here (a root
// slirp4netns can --enable-sandbox).
const (
	slirpReadyMax = 10 * time.Second
	localHostsNet = localHosts + "10.0.2.100\tsandbox\n"
	resolvNet     = "nameserver 10.0.2.3\n"
)

// networkErr says why sandboxes may not have networking, nil if they may.
func (p *Provider) networkErr() error {
	if p.slirp == "" {
		return fmt.Errorf("forkserver: networking needs slirp4netns (apt-get install slirp4netns): %w", sandbox.ErrUnsupported)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("forkserver: networking needs a root Warden: %w", sandbox.ErrUnsupported)
	}
	return nil
}

type slirp struct {
	once  sync.Once
	cmd   *exec.Cmd
	exitW *os.File
}

func (s *slirp) stop() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		s.exitW.Close()
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		_ = s.cmd.Wait()
	})
}

// startSlirp connects the network namespace of the sandbox's init (pid,
// and pidfd on it) and waits until tap0 is up.
func (p *Provider) startSlirp(pid, pidfd int, cg *cgroup) (*slirp, error) {
	netns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return nil, err
	}
	defer netns.Close()
	// The pidfd names the sandbox's init; while it still runs, the pid
	// opened above was its.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		return nil, fmt.Errorf("the sandbox's init is gone: %w", err)
	}
	ufd, err := unix.IoctlRetInt(int(netns.Fd()), unix.NS_GET_USERNS)
	if err != nil {
		return nil, fmt.Errorf("finding the owner of the network namespace: %w", err)
	}
	userns := os.NewFile(uintptr(ufd), "userns")
	defer userns.Close()
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
	cmd := exec.Command(p.slirp, "--enable-seccomp", "--enable-sandbox",
		"--configure", "--mtu=65520", "--disable-host-loopback", "--ready-fd=3", "--exit-fd=4",
		"--userns-path=/proc/self/fd/5", "--netns-type=path", "/proc/self/fd/6", "tap0")
	cmd.Env = []string{}
	cmd.ExtraFiles = []*os.File{readyW, exitR, userns, netns}
	// As in the bubblewrap provider: its own pid and IPC namespaces, and a
	// mount namespace Go makes private all the way down, so that its
	// --enable-sandbox's unmount of the old root reaches no shared mount
	// of the host's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL,
		Cloneflags: syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC, Unshareflags: syscall.CLONE_NEWNS}
	stderr := &agent.TailBuffer{Max: 8 << 10}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	readyW.Close()
	if err != nil {
		exitW.Close()
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	s := &slirp{cmd: cmd, exitW: exitW}
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
		return nil, fmt.Errorf("slirp4netns: %v (%s)", err, strings.TrimSpace(stderr.String()))
	}
	if cg != nil {
		// Its memory and processes count against the sandbox's limits.
		if err := cg.add(cmd.Process.Pid); err != nil {
			s.stop()
			return nil, fmt.Errorf("limiting slirp4netns: %w", err)
		}
	}
	return s, nil
}
