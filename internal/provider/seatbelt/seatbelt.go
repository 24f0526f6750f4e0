package seatbelt

import (
	"log/slog"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// UnsupportedMessage is the text of the error [New] returns where the
// provider cannot run, the seed system's wording.
const UnsupportedMessage = "Seatbelt provider is not supported on this system. It requires macOS with sandbox-exec."

// Isolation is what [Provider.Capabilities] reports: the code runs as a
// host process confined by a sandbox-exec profile, neither namespaces nor
// nothing.
const Isolation = sandbox.IsolationSeatbelt

// SandboxExec is the only sandbox-exec used: never one found on PATH.
const SandboxExec = "/usr/bin/sandbox-exec"

// MarkerEnv is set to the sandbox ID in the environment of every sandbox
// process, so that Reset and Destroy can find them. Sandbox environment
// variables may not use this name.
const MarkerEnv = "WARDEN_SEATBELT_SANDBOX"

// Options configure a Provider.
type Options struct {
	// WorkspaceRoot is the host directory holding each sandbox's private
	// directory (workspace, HOME, TMPDIR). Default: $TMPDIR/warden.
	WorkspaceRoot string
	// Python is the interpreter that runs the agent: a path or a name
	// looked up on PATH. Default: python3 on PATH, else /usr/bin/python3.
	// Python 3.8 or later. Its installation (prefixes and sys.path, as
	// it reports them) is made readable in every sandbox.
	Python string
	// ReadDirs are host directories every sandbox may read, for example
	// /opt/homebrew to use its tools. Only the system directories, the
	// interpreter's installation and the sandbox's own directories are
	// readable otherwise.
	ReadDirs []string
	// MetadataEverywhere lets sandboxed code stat any file, as the
	// original profile did (see ProfileOptions.MetadataEverywhere). Off by
	// default.
	MetadataEverywhere bool
	// Log receives operational messages. Default: discard.
	Log *slog.Logger
}

var _ sandbox.Provider = (*Provider)(nil)

// unsupportedError is returned where the provider cannot run. Its text is
// UnsupportedMessage, followed by the reason when there is one; it matches
// [sandbox.ErrUnsupported].
type unsupportedError struct{ reason string }

func (e *unsupportedError) Error() string {
	if e.reason == "" {
		return UnsupportedMessage
	}
	return UnsupportedMessage + " (" + e.reason + ")"
}

func (e *unsupportedError) Unwrap() error { return sandbox.ErrUnsupported }
