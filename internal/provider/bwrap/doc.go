// Package bwrap is Warden's bubblewrap provider (Linux, no daemon): each
// sandbox is a bwrap process tree running Warden's agent with a persistent
// Python session, as in the Docker provider.
//
// What every sandbox gets:
//
//   - New user, PID, IPC, UTS, cgroup and network namespaces; nested user
//     namespaces are disabled (bwrap --disable-userns, where bwrap has it,
//     and the seccomp filter). Code runs as uid
//     and gid 1000 of its user namespace, which map to the host user
//     running bwrap. A root Warden runs bwrap as host uid and gid 1000
//     ([DefaultRunAs], or [Options.RunAs]), as Docker runs its containers'
//     user, so files the sandbox creates belong to 1000 and root-owned
//     files it can see stay read-only to it; the workspace root, the mount
//     sources and the shim must then be reachable by that user (a shim
//     that is not is copied under the workspace root). Only when the
//     kernel refuses unprivileged user namespaces, or with
//     [Options.RunAsRoot], is the sandbox's user host root, behind the
//     other layers; [Provider.Enforcement] says so.
//   - The network namespace has only loopback, unless networking is
//     enabled: then slirp4netns (a user-mode TCP/IP stack running on the
//     host, started per sandbox before the sandbox runs anything, with its
//     own sandbox and seccomp filter) connects it as tap0, 10.0.2.100/24,
//     DNS at 10.0.2.3, with --disable-host-loopback so the host's
//     127.0.0.1, where Warden's API listens, is unreachable. The sandbox
//     gets its own /etc/hosts and /etc/resolv.conf (10.0.2.3, or the
//     upstream servers where the host's resolver is a loopback stub such
//     as systemd-resolved's). Without slirp4netns a
//     sandbox with networking is refused (sandbox.ErrUnsupported): it never
//     shares the host's network namespace. slirp4netns runs as the
//     sandbox's host user when /dev/net/tun is open to all users, else as
//     Warden's (root), shedding its capabilities once tap0 is up.
//   - No capabilities (--cap-drop ALL) and no_new_privs.
//   - A fresh root (a tmpfs) holding only read-only system directories:
//     the host's /usr and a few files of /etc, or, with [Options.RootFS],
//     the top-level directories of an extracted root filesystem (the
//     runtime image's, from docker export), minus /var, /home, /root,
//     /run, /srv, /mnt, /media, /boot. Plus a private /proc, a private
//     /dev (null, zero, full, random, urandom, tty, pts) that is read-only
//     but for /dev/shm, and /dev/shm and /tmp as tmpfs of Spec.TmpSize
//     each, the workspace read-write and the spec's mounts. The workspace
//     root must be Warden's user's alone (internal/safedir).
//   - A seccomp filter (classic BPF built in this package, passed with
//     bwrap --seccomp), a deny list after Docker's default profile: EPERM
//     for mount and the new mount API, umount2, pivot_root, chroot,
//     ptrace, process_vm_readv/writev, kcmp, pidfd_getfd, kexec_*,
//     *_module, bpf, perf_event_open, keyctl, add_key, request_key,
//     userfaultfd, lookup_dcookie, setns, open_by_handle_at,
//     name_to_handle_at, swapon/off, reboot, acct, quotactl(_fd), syslog,
//     settimeofday, clock_settime, adjtimex, clock_adjtime, iopl, ioperm,
//     fanotify_init, vhangup, io_uring_*, mbind, set_mempolicy,
//     migrate_pages, move_pages; clone and unshare with any namespace
//     flag; socket of AF_VSOCK; personality other than Docker's allowed
//     values; ioctl TIOCSTI and TIOCLINUX. ENOSYS for clone3 (glibc then
//     falls back to clone), for x32 system calls, and for calls numbered
//     above the last one reviewed (471, Linux 6.18), so a kernel's new
//     calls stay closed until someone looks at them; another
//     architecture's system calls (i386 on amd64) kill the process. amd64
//     and arm64.
//   - Landlock, when the kernel has it and the program called [Init]: a
//     shim (the program's own executable, mounted read-only at
//     /.warden/init) restricts itself before it executes python3, so the
//     agent and everything it starts are bound by: read and execute in the
//     system directories, /sys/fs/cgroup (the OOM counter) and read-only
//     mounts; everything in the workspace, /tmp, /dev and read-write
//     mounts (including renames across directories and device ioctls);
//     read and write of existing files in /proc (oom_score_adj); listing
//     of directories anywhere; nothing else (the shim itself cannot be
//     read). With ABI 6 and later, abstract UNIX sockets and signals are
//     scoped to the sandbox. The rules follow the kernel's ABI (best
//     effort); without Landlock the sandbox runs without it and
//     [Provider.Enforcement] says so.
//   - Limits, by the first of these that works:
//     cgroup v2 ([Options.CgroupParent], or CgroupRoot/warden when Warden
//     is root on a unified hierarchy): memory.max, memory.swap.max 0,
//     pids.max, cpu.max; this path is tested only against a stand-in
//     directory, never on a real v2 host.
//     cgroup v1 when Warden is root: memory (and memsw), pids, cpu quota.
//     The sandbox joins its group before it runs anything (bwrap
//     --block-fd). Memory exhaustion then OOM-kills the execution, reported
//     as oom_killed with exit 137 like Docker.
//     Otherwise rlimits, set by the shim ([Options.ForceRlimits] forces
//     this path): RLIMIT_DATA of Spec.MemoryLimit, which bounds each
//     process's heap and private writable mappings, not the sandbox's sum
//     (an allocation past it fails: Python raises MemoryError, nothing is
//     OOM-killed); RLIMIT_NPROC of Spec.PidsLimit, which the kernel counts
//     per user per user namespace, so per sandbox, threads included, but
//     never checks for host root: it binds only when bwrap runs as another
//     user (not root, or [Options.RunAs]). There is no CPU rate limit
//     without cgroups. [Options.CPUSeconds] sets RLIMIT_CPU in any mode,
//     a per-process budget of CPU seconds after which the process is
//     killed (SIGXCPU), not a rate.
//     Without cgroups or the shim nothing is limited.
//     [Provider.Capabilities] reports MemoryLimit, PidsLimit and CPULimit
//     accordingly: with rlimits, MemoryLimit (per process) and PidsLimit
//     (only when it binds), never CPULimit.
//   - An execution's timeout kills the process group of the execution
//     (the agent's doing, as with Docker): children that put themselves in
//     another process group or session survive until the sandbox is reset
//     or destroyed. Destroy, and the agent's reset after a lost session,
//     kill bwrap and so the whole PID namespace (and, with cgroups, anything
//     left in the group).
//
// Creating a sandbox waits on events, never a fixed time: bwrap's info pipe
// (the sandbox's first process, moved into its cgroups before it runs
// anything), the shim's signal, the agent's hello. A few sandboxes start at
// once (two per CPU, at least four); other creates wait for a turn, so a
// burst does not slow every start down together. A create gives up when its
// context ends, or after 60 seconds, and every failure to start a sandbox
// that no other class covers is [sandbox.ErrUnavailable] (a 503 in the
// service): it may succeed later.
//
// # What a sandbox leaves, and who removes it
//
// Destroy kills bwrap (and with it the sandbox's PID namespace), waits for
// the sandbox's cgroups to be empty, polling until its context ends (and 30
// seconds more), and removes them and the private workspace. A Warden
// process killed before it could do so leaves them behind: the names of
// the workspace (WorkspaceRoot/bwrap-<id>@<tag>), of the cgroups
// (warden/<id>@<tag>) and of the copy of the shim (.init/init-<hash>@<tag>)
// end with the tag of the Warden process that made them (owner.TagOf: pid,
// start time, host), and its bwrap and slirp4netns processes carry
// [OwnerEnv] and [SandboxEnv] in their environment. [New], Close and
// [RemoveOrphans] (`warden prune`) remove what belongs to Warden processes
// of this host that no longer run, and what this process left of sandboxes
// it no longer has (a removal that failed); never what a live Warden
// process has, nor what carries no tag (made by an older Warden: remove it
// by hand).
//
// Programs that create bubblewrap sandboxes call [Init] first thing in
// main (and tests in TestMain), so that their executable can act as the
// shim.
package bwrap
