package bwrap

import (
	"log/slog"
	"os"
	"path/filepath"
)

// Options configure a Provider.
type Options struct {
	// Bwrap is the bubblewrap binary. Default: bwrap on PATH.
	Bwrap string
	// WorkspaceRoot is where private workspaces are created. Default
	// $TMPDIR/warden.
	WorkspaceRoot string
	// CgroupRoot is where cgroupfs is mounted: the v1 hierarchies' parent,
	// or the unified (v2) hierarchy. Default /sys/fs/cgroup.
	CgroupRoot string
	// CgroupParent is a cgroup v2 directory delegated to Warden (writable
	// by it, with the memory, pids and cpu controllers available); sandbox
	// groups are created below it. Setting it selects cgroup v2 and does
	// not need root. Default, when Warden is root on a unified hierarchy:
	// CgroupRoot/warden.
	CgroupParent string
	// ForceRlimits enforces limits with rlimits even where cgroups are
	// available (see the package documentation for what they bound).
	ForceRlimits bool
	// CPUSeconds, if positive, sets RLIMIT_CPU: every sandbox process is
	// killed (SIGXCPU, then SIGKILL) once it has used that much CPU time
	// in total. It is a budget per process, not a rate.
	CPUSeconds int
	// RootFS is a directory holding an extracted root filesystem (for
	// instance `docker export` of the runtime image). Its system
	// directories replace the host's, read-only. Default: the host's.
	RootFS string
	// Init is the executable run inside each sandbox as the shim that
	// applies Landlock and rlimits before Python starts; it must call
	// [Init] first thing in main. Default: [InitName] beside this
	// program's executable when it speaks this package's protocol (a
	// small program that starts in a fraction of the time a large one
	// takes, every sandbox start), else this program, if its main called
	// Init; otherwise there is no shim, and no Landlock or rlimits.
	Init string
	// RunAs, if set, runs bwrap (and so the sandbox) as this host user
	// and group; Warden must be root. The sandbox's uid 1000 then maps to
	// that user instead of root, which is what makes RLIMIT_NPROC bind
	// (the kernel never checks it for root). The shim, the workspace root
	// and mount sources must be reachable by that user; private workspaces
	// are handed to it.
	RunAs *RunAs
	// RunAsRoot keeps, when Warden runs as root and RunAs is nil, bwrap
	// running as root, so the sandbox's uid 1000 is host root (kuid 0)
	// behind the namespaces, seccomp and Landlock. By default a root Warden
	// runs sandboxes as host uid and gid 1000 ([DefaultRunAs]), as Docker
	// runs its containers' user 1000, and falls back to root only when
	// this kernel refuses unprivileged user namespaces.
	RunAsRoot bool
	// Slirp4netns is the slirp4netns binary that connects the network
	// namespace of a sandbox with networking enabled. Default: slirp4netns
	// on PATH; without it, sandboxes cannot have networking.
	Slirp4netns string
	// Log receives operational messages.
	Log *slog.Logger
}

// withDefaults fills in the default workspace and cgroup roots.
func (o Options) withDefaults() Options {
	if o.WorkspaceRoot == "" {
		o.WorkspaceRoot = filepath.Join(os.TempDir(), "warden")
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	return o
}

// RunAs is a host user and group.
type RunAs struct {
	UID, GID uint32
}

// DefaultRunAs is the host user a root Warden runs sandboxes as: uid and
// gid 1000, the sandbox user of every provider.
var DefaultRunAs = RunAs{UID: 1000, GID: 1000}

// Limits says how a provider bounds a sandbox's memory, processes and CPU.
type Limits string

const (
	LimitsCgroupV1 Limits = "cgroup-v1" // memory, pids and cpu controllers
	LimitsCgroupV2 Limits = "cgroup-v2" // memory.max, pids.max, cpu.max
	LimitsRlimit   Limits = "rlimit"    // RLIMIT_DATA and RLIMIT_NPROC per process
	LimitsNone     Limits = "none"
)

// Enforcement is what a provider enforces on every sandbox besides the
// namespaces, dropped capabilities and read-only mounts.
type Enforcement struct {
	Seccomp bool `json:"seccomp"`
	// LandlockABI is the kernel's Landlock ABI version in use, 0 for none.
	LandlockABI int    `json:"landlock_abi"`
	Limits      Limits `json:"limits"`
	// Network is what connects a sandbox with networking enabled:
	// "slirp4netns", or "none" when networking is refused.
	Network string `json:"network"`
	// Init is the shim run in each sandbox before Python (empty: none).
	Init string `json:"init,omitempty"`
	// Note says what is missing and why, if anything is.
	Note string `json:"note,omitempty"`
}
