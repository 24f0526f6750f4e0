// Package seatbelt is Warden's macOS provider: each sandbox is the
// in-sandbox agent run as host processes under sandbox-exec(1) with a
// Seatbelt (SBPL) profile generated from the sandbox's settings.
//
// UNTESTED ON A REAL MAC. This package has only been compiled for darwin
// (GOOS=darwin go vet) and its profile generator tested as text on Linux.
// Nothing here has ever been run under sandbox-exec: whether the profile
// compiles on a given macOS version, whether Python starts under it and
// whether it denies what it means to deny are all unverified. [New] runs
// /usr/bin/true, the interpreter and the agent under a real profile, so
// that a profile macOS rejects is caught at start-up rather than at the
// first sandbox, but only a test run on macOS can establish the rest.
//
// # What the profile guarantees (by design, unverified)
//
// [Profile] builds the profile. It denies by default, and allows:
//
//   - reading the system locations a Python interpreter and bash need
//     (/System/Library, the OS cryptex holding the dyld cache,
//     /Library/Apple, /bin, /sbin, /usr except /usr/local, a few files of
//     /private/etc and /dev), the interpreter's installation, the
//     sandbox's workspace, private HOME and TMPDIR, and the read and write
//     directories it was given; not /Users, /Library, /Applications,
//     /opt, /usr/local or the host's shared /private/tmp;
//   - writing only the workspace, the private HOME and TMPDIR, the
//     writable directories, /dev/null and descriptors already open;
//   - file metadata (stat) on the ancestors of those directories, so paths
//     resolve, unless Options.MetadataEverywhere widens it to every file;
//   - signals and process information only within the same sandbox;
//   - no network at all unless the spec enables it, and then outbound IP
//     except to localhost, plus DNS resolution; never listening.
//
// Every path is made absolute, clean and canonical (/tmp, /var and /etc
// are symlinks into /private on macOS, and Seatbelt matches resolved
// paths; the provider also resolves other symlinks), and is escaped as an
// SBPL string; paths with control characters are refused.
//
// The profile of the original system (TinyAgent's SeatbeltProvider) is the
// counter-example: it allowed all networking, all of /private/tmp, /opt
// and /Library, and ended with an unfiltered (allow file-read-data) that
// re-allowed reading file contents anywhere, /Users included. The tests
// check that none of that can come back.
//
// # What the provider does
//
// [New] needs /usr/bin/sandbox-exec ([Supported]) and a Python 3.8+
// (Options.Python, else python3 on PATH, else /usr/bin/python3), whose
// real executable, prefixes and sys.path it learns once, outside any
// sandbox, and makes readable in every sandbox. Off macOS, or without
// sandbox-exec, New fails with an error matching [sandbox.ErrUnsupported]
// whose text is [UnsupportedMessage].
//
// Each sandbox gets a private directory WorkspaceRoot/seatbelt-<id> (mode
// 0700) holding its HOME (home/), its TMPDIR (tmp/) and, unless the spec
// names a workspace_dir, its workspace (workspace/); Destroy removes it,
// and never a workspace_dir given in the spec. As in the local provider
// the workspace appears at its real host path: Spec.WorkspacePath is
// replaced by it. The agent runs as
// `sandbox-exec -p <profile> python3 -c <agent> agent`, in a new session
// (its own process group, no controlling terminal), with an environment
// built from agent.BaseEnv (HOME and TMPDIR made private, the
// interpreter's directory first in PATH) plus [MarkerEnv]; nothing is
// inherited from Warden's environment. Sandbox variables are added per
// execution.
//
// # What it does not do
//
// sandbox-exec limits what a process may touch, not how much it may use:
// the memory, CPU and process limits and tmp_size of a spec are accepted
// and not enforced, and Capabilities says so (MemoryLimit, CPULimit and
// PidsLimit are false), as with the local provider; the API refuses
// requests that ask for them explicitly. The image is not used: the host's
// interpreter and tools run. macOS has no bind mounts: a mount whose
// target equals its source grants that directory (read-only if asked: a
// read-only directory inside a writable one is carved out by a deny rule);
// any other mount is refused with [sandbox.ErrInvalid]. Capabilities
// therefore reports Mounts false, as the local provider does. Code runs as
// Warden's user, in the host's process, user and network namespaces: it
// can see other processes' existence, the host name and the hardware.
//
// # Processes
//
// The agent starts workers and shell commands in sessions of their own and
// macOS has no subreaper, so the sandbox's processes are neither one
// process group nor one tree. Reset and Destroy find them by their initial
// environment (sysctl kern.procargs2), killing every process holding
// MarkerEnv=<id>, repeatedly, until none is left. This is bookkeeping, not
// containment: a process started with a cleaned environment escapes it and
// outlives the sandbox, still confined by the profile. Unlike the local
// provider, processes and directories left by a Warden process that died
// are not cleaned up at start-up (internal/owner cannot tell a live Warden
// process from a dead one on macOS yet).
//
// Reading process environments and lists uses golang.org/x/sys/unix
// (already required by the module, through the Docker client): the
// standard library has no raw sysctl on darwin.
//
// # Known gap: the agent itself
//
// The embedded agent (internal/agent/agent.py) reads its own source from
// /proc/self/cmdline and lists /proc/self/fd, neither of which exists on
// macOS. Until it falls back to other means there, the agent cannot start
// under this provider, and [New], which starts it once to be sure, fails
// with [sandbox.ErrUnsupported] ("the agent does not start under the
// profile"), so that provider selection moves on.
package seatbelt
