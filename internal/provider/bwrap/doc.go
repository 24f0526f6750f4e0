// Package bwrap is Warden's bubblewrap provider (Linux, no daemon): each
// sandbox is a bwrap process tree with new user, PID, IPC, UTS, cgroup and
// (unless networking is enabled) network namespaces, a fresh root holding
// only the host's /usr read-only plus private /tmp, /proc and /dev and the
// workspace, no capabilities, and, when Warden runs as root on cgroup v1,
// memory, CPU and process limits in a cgroup per sandbox. Code runs as uid
// 1000 inside the sandbox's user namespace.
//
// Not yet done (issue 5): a seccomp filter, Landlock, cgroup v2 limits and
// rlimits for unprivileged use, and the runtime image's root filesystem as
// the sandbox root; Capabilities says which limits are enforced.
package bwrap
