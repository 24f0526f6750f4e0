// Package local runs sandboxes as plain host processes: the unisolated
// "mock" provider, after Nomad's raw_exec driver. It guarantees nothing
// about isolation. Code it runs can read and change everything the Warden
// process's user can, on this host and on the network.
//
// The provider is off unless the operator enables it (SANDBOX__MOCK_MODE in
// the service): [Provider.Create] fails with [sandbox.ErrDisabled]
// otherwise. Every [sandbox.ExecResult] it returns carries [Warning], and
// [Provider.Capabilities] reports sandbox.IsolationNone and no limits.
//
// # What it does
//
// Each sandbox is the in-sandbox agent (agent.Source) started as
// `python3 -c <agent> agent` in its own process group, driven by an
// agent.Session exactly as in the isolating providers: persistent Python
// globals, shell commands, timeouts, bounded output.
//
// Each sandbox gets a private directory WorkspaceRoot/local-<id> (mode 0700)
// holding its HOME (home/), its TMPDIR (tmp/) and, unless the spec names a
// workspace_dir, its workspace (workspace/). A workspace_dir given in the
// spec is used in place: Warden creates nothing in it and never removes it;
// only the code changes it. Destroy removes the private directory.
//
// The workspace appears "inside" the sandbox at its real host path:
// Spec.WorkspacePath is replaced by that path, [sandbox.Info.Workspace]
// reports it, the agent's working directory is that path and relative shell
// working directories resolve under it. Absolute paths are host paths.
//
// The environment is built from scratch and never inherited from Warden:
// PATH (the standard directories, after the interpreter's own), HOME,
// TMPDIR, LANG/LC_ALL=C.UTF-8, TERM=dumb, PYTHONDONTWRITEBYTECODE=1,
// PYTHONPATH and WARDEN_WORKSPACE (the workspace), MPLBACKEND=Agg, and two
// markers, [MarkerEnv]=<sandbox id> and [OwnerEnv]=<this Warden process>.
// The sandbox's own variables are added to each execution.
//
// # What it does not do
//
// Nothing in the spec that needs isolation is enforced: the memory, CPU and
// process limits, tmp_size and the network switch are accepted and ignored
// (network is always on), and the image is not used. A mount whose target
// equals its source is accepted because the host path is visible anyway,
// but read_only is not enforced; a mount that would move a directory to
// another path is refused with [sandbox.ErrInvalid], since nothing can remap
// paths here. The API layer is expected to refuse specs that ask for more
// than [Provider.Capabilities] promises.
//
// # Processes
//
// The agent makes itself a subreaper and starts workers and shell commands
// in sessions of their own, so the sandbox's processes are not one process
// group. Reset and Destroy therefore find them by their environment: every
// process whose initial environment (/proc/PID/environ) holds
// MarkerEnv=<id> is killed, repeatedly, until none is left. This is
// bookkeeping, not containment: code that starts a process with a cleaned
// environment, or through a set-user-ID program whose environment Warden
// may not read, escapes it and outlives the sandbox. At start-up (and with
// [Provider.RemoveOrphans]) processes and directories left behind by Warden
// processes that died are removed the same way, by [OwnerEnv].
//
// The interpreter is resolved once, in [New]: Options.Python, else
// /usr/bin/python3 when it exists, else python3 on PATH. It is asked for
// its own sys.executable, so a pyenv shim is replaced by the interpreter it
// selects now, instead of re-selecting (from files the sandboxed code could
// write) at every agent start.
package local
