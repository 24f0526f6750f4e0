package bwrap

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// initMarker is argv[1] of the in-sandbox shim: the provider runs its own
// executable, bind-mounted read-only at initPath, as
//
//	/.warden/init __warden_bwrap_init__ <config JSON> python3 -c <agent> agent
//
// The shim applies Landlock and rlimits to itself, then execs the rest.
const (
	initMarker = "__warden_bwrap_init__"
	initDir    = "/.warden"
	initPath   = initDir + "/init"
	// protocolMarker asks a program whether it is a shim this package can
	// use: it prints protocolLine and exits 0.
	protocolMarker = "__warden_bwrap_init_protocol__"
	// shimProtocol changes whenever the shim's arguments or shimConfig
	// change meaning: a shim of another protocol is never used.
	shimProtocol = 1
)

// protocolLine is what a shim of this package prints for protocolMarker.
var protocolLine = fmt.Sprintf("warden-bwrap-init %d", shimProtocol)

// hooked records that this process's main called Init, so its executable
// can serve as the shim. It is process-wide by nature, like the hook it
// records: set once, never cleared.
var hooked atomic.Bool

// Init must be the first statement of main in any program that creates
// bubblewrap sandboxes (and of TestMain in tests that do). When the
// process is the in-sandbox shim it never returns: it applies Landlock and
// resource limits and executes the sandbox's command, or exits 127 with a
// message on stderr. Otherwise it returns at once, having recorded that the
// executable can be used as the shim. Without Init, sandboxes still run,
// but without Landlock or rlimits (Capabilities and the log say so).
func Init() {
	if len(os.Args) >= 4 && os.Args[1] == initMarker {
		err := shim(os.Args[2], os.Args[3:])
		fmt.Fprintf(os.Stderr, "warden sandbox init: %v\n", err)
		os.Exit(127)
	}
	if len(os.Args) == 2 && os.Args[1] == protocolMarker {
		fmt.Println(protocolLine)
		os.Exit(0)
	}
	// Descriptors this process inherited stay out of every sandbox and
	// slirp4netns: Go opens its own close-on-exec, but whatever started
	// Warden may have left others open (a socket, a file), and bwrap
	// passes on what it gets.
	closeOnExecFrom(3)
	hooked.Store(true)
}

// closeOnExecFrom marks every descriptor from fd up close-on-exec, with
// close_range(2) where the kernel has it (5.11 and later), else one by one.
func closeOnExecFrom(fd int) {
	if unix.CloseRange(uint(fd), ^uint(0), unix.CLOSE_RANGE_CLOEXEC) == nil {
		return
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil && n >= fd {
			unix.CloseOnExec(n)
		}
	}
}

// shimConfig is what the provider tells the shim, as JSON in argv[2].
type shimConfig struct {
	// Landlock rules by path inside the sandbox. Paths that do not exist
	// are skipped.
	Landlock *landlockRules `json:"landlock,omitempty"`
	// Rlimits to set, each as [resource, soft and hard value].
	Rlimits [][2]uint64 `json:"rlimits,omitempty"`
	// NetFDs, for a sandbox with networking: the shim writes a byte to the
	// first once it runs (bwrap is done with the namespaces), then waits
	// for one on the second (slirp4netns has connected the network).
	NetFDs *[2]int `json:"net_fds,omitempty"`
	// Subreaper makes the program the reaper of its orphans
	// (PR_SET_CHILD_SUBREAPER survives exec) and tells it so with
	// WARDEN_SUBREAPER=1 in its environment: the agent then need not load
	// ctypes to do it itself.
	Subreaper bool `json:"subreaper,omitempty"`
}

// landlockRules group paths by the access they get.
type landlockRules struct {
	RO      []string `json:"ro"`      // read files, list directories, execute
	RW      []string `json:"rw"`      // everything, including rename across directories and device ioctls
	ListDir []string `json:"listdir"` // list directories only (the root, so `ls /` works)
	Proc    []string `json:"proc"`    // read, and write existing files (oom_score_adj, comm)
}

// Landlock filesystem access rights (linux/landlock.h) by ABI version.
const (
	llExecute    = unix.LANDLOCK_ACCESS_FS_EXECUTE
	llWriteFile  = unix.LANDLOCK_ACCESS_FS_WRITE_FILE
	llReadFile   = unix.LANDLOCK_ACCESS_FS_READ_FILE
	llReadDir    = unix.LANDLOCK_ACCESS_FS_READ_DIR
	llABI1       = 1<<13 - 1 // EXECUTE .. MAKE_SYM
	llRefer      = 1 << 13   // ABI 2
	llTruncate   = 1 << 14   // ABI 3
	llIoctlDev   = 1 << 15   // ABI 5
	llScopeAbstr = 1 << 0    // ABI 6: LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
	llScopeSig   = 1 << 1    // ABI 6: LANDLOCK_SCOPE_SIGNAL
)

// landlockABI returns the kernel's Landlock ABI version, 0 without Landlock.
func landlockABI() int {
	v, _, errno := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 {
		return 0
	}
	return int(v)
}

func handledFS(abi int) uint64 {
	h := uint64(llABI1)
	if abi >= 2 {
		h |= llRefer
	}
	if abi >= 3 {
		h |= llTruncate
	}
	if abi >= 5 {
		h |= llIoctlDev
	}
	return h
}

// shim runs in the sandbox: limits, then Landlock, then exec.
func shim(cfgJSON string, argv []string) error {
	var cfg shimConfig
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return fmt.Errorf("decoding config: %w", err)
	}
	if fds := cfg.NetFDs; fds != nil {
		if err := netHandOver(fds[0], fds[1]); err != nil {
			return err
		}
	}
	// Landlock and no_new_privs hold for the thread that sets them; exec
	// from that same thread carries them into the new program (and exec
	// ends every other thread).
	runtime.LockOSThread()
	if cfg.Landlock != nil {
		if err := restrict(*cfg.Landlock); err != nil {
			return err
		}
	}
	path := argv[0]
	if p, err := lookPath(path); err == nil {
		path = p
	}
	// Everything exec needs is built before the limits are set: past
	// RLIMIT_DATA a Go allocation may fail (a race-detector build of this
	// shim cannot even map its shadow memory), so nothing allocates between
	// setrlimit and execve.
	pathp, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return err
	}
	// The agent is made a subreaper here, before the limits, so that it
	// need not load ctypes to do it itself.
	env := os.Environ()
	if cfg.Subreaper && unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil {
		env = append(env, "WARDEN_SUBREAPER=1")
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return err
	}
	// The sandbox's program gets its standard streams and nothing else.
	closeOnExecFrom(3)
	for _, r := range cfg.Rlimits {
		lim := unix.Rlimit{Cur: r[1], Max: r[1]}
		if _, _, errno := syscall.RawSyscall6(unix.SYS_PRLIMIT64, 0, uintptr(r[0]), uintptr(unsafe.Pointer(&lim)), 0, 0, 0); errno != 0 {
			return fmt.Errorf("setrlimit %d: %w", r[0], errno)
		}
	}
	_, _, errno := syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(pathp)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])))
	return fmt.Errorf("exec %s: %w", path, errno)
}

// lookPath finds a command on PATH without the os/exec package's checks.
func lookPath(name string) (string, error) {
	for _, dir := range []string{"/usr/local/bin", "/usr/bin", "/bin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}

func restrict(r landlockRules) error {
	abi := landlockABI()
	if abi == 0 {
		return nil // best effort: the provider reported Landlock as absent
	}
	handled := handledFS(abi)
	attr := unix.LandlockRulesetAttr{Access_fs: handled}
	size := unsafe.Sizeof(attr)
	if abi < 6 {
		size = unsafe.Offsetof(attr.Scoped)
		if abi < 4 {
			size = unsafe.Offsetof(attr.Access_net)
		}
	} else {
		attr.Scoped = llScopeAbstr | llScopeSig
	}
	fd, _, errno := syscall.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), size, 0)
	if errno != 0 {
		return fmt.Errorf("landlock_create_ruleset: %w", errno)
	}
	defer syscall.Close(int(fd))
	ro := uint64(llExecute | llReadFile | llReadDir)
	groups := []struct {
		paths  []string
		access uint64
	}{
		{r.RO, ro},
		{r.RW, handled},
		{r.ListDir, llReadDir},
		{r.Proc, llReadFile | llReadDir | llWriteFile | llTruncate},
	}
	for _, g := range groups {
		for _, p := range g.paths {
			if err := addRule(int(fd), p, g.access&handled); err != nil {
				return err
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	if _, _, errno := syscall.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, fd, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_restrict_self: %w", errno)
	}
	return nil
}

func addRule(rulesetFD int, path string, access uint64) error {
	fd, err := syscall.Open(path, unix.O_PATH|syscall.O_CLOEXEC, 0)
	if err != nil {
		if err == syscall.ENOENT {
			return nil
		}
		return fmt.Errorf("landlock rule for %s: %w", path, err)
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fmt.Errorf("landlock rule for %s: %w", path, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		// Rules on files may only carry file rights.
		access &^= llReadDir | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE |
			unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG |
			unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			unix.LANDLOCK_ACCESS_FS_MAKE_SYM | llRefer
	}
	attr := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
	if _, _, errno := syscall.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, uintptr(rulesetFD), unix.LANDLOCK_RULE_PATH_BENEATH,
		uintptr(unsafe.Pointer(&attr)), 0, 0, 0); errno != 0 {
		return fmt.Errorf("landlock_add_rule %s: %w", path, errno)
	}
	return nil
}

// netHandOver tells the provider the sandbox is set up (on up) and waits
// until its network is connected (a byte on wait; EOF if it could not be).
func netHandOver(up, wait int) error {
	_, err := syscall.Write(up, []byte{1})
	syscall.Close(up)
	if err != nil {
		return fmt.Errorf("telling the provider the sandbox is up: %w", err)
	}
	var b [1]byte
	n, err := syscall.Read(wait, b[:])
	for err == syscall.EINTR {
		n, err = syscall.Read(wait, b[:])
	}
	syscall.Close(wait)
	if n != 1 {
		return fmt.Errorf("the sandbox's network was not connected (%v)", err)
	}
	return nil
}
