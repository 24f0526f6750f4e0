package forkserver

import (
	"log/slog"
	"os"
	"path/filepath"
)

// Options configure a Provider.
type Options struct {
	// Bwrap is the bubblewrap binary that starts the fork server. Default:
	// bwrap on PATH.
	Bwrap string
	// WorkspaceRoot is where private workspaces are created. Default
	// $TMPDIR/warden-fork.
	WorkspaceRoot string
	// CgroupRoot is where the cgroup v1 hierarchies are mounted. Default
	// /sys/fs/cgroup.
	CgroupRoot string
	// ForceRlimits bounds memory and processes with rlimits even where
	// cgroups are available.
	ForceRlimits bool
	// RootFS is a directory holding an extracted root filesystem whose
	// system directories the sandboxes get read-only. Default: the host's
	// /usr and a few files of /etc, as the bubblewrap provider does.
	RootFS string
	// UID and GID are the host user the fork server and its sandboxes run
	// as when Warden is root. Default 1000.
	UID, GID uint32
	// DoubleFork makes the fork server start each sandbox with fork(),
	// unshare() and a second fork() (the first process in a new pid
	// namespace is its init) instead of one clone(2) that creates the
	// user and pid namespaces with the child. Slower; the interpreter's
	// own fork path throughout.
	DoubleFork bool
	// PythonSetup sets each sandbox up (namespaces, root, confinement) in
	// the fork server's Python, as with DoubleFork, instead of with the
	// native set-up (setup.c, compiled with the C compiler when the
	// provider starts; used when it compiles and loads).
	PythonSetup bool
	// Log receives operational messages.
	Log *slog.Logger

	// hotSample replaces the program the fork server learns a one-shot
	// run's pages from (tests: one that fails).
	hotSample string
}

func (o Options) withDefaults() Options {
	if o.WorkspaceRoot == "" {
		o.WorkspaceRoot = filepath.Join(os.TempDir(), "warden-fork")
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = "/sys/fs/cgroup"
	}
	if o.UID == 0 {
		o.UID = 1000
	}
	if o.GID == 0 {
		o.GID = 1000
	}
	return o
}
