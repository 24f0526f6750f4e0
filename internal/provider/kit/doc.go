// Package kit is what providers built on the in-sandbox agent share: a
// registry of live sandboxes ([Sandboxes]) and [Base], which a provider
// embeds to get every [sandbox.Provider] method but Name, Capabilities
// and Create, by forwarding to each sandbox's agent session. A provider
// is then its agent.Launcher, its Create and a teardown (see
// docs/providers.md and ADR 0015).
//
// It guarantees the parts of the contract that do not depend on the
// backend: a malformed ID is ErrInvalid and an unknown one ErrNotFound
// before anything else happens, an execution that Destroy ended returns
// ErrNotFound, and names a provider reserves are refused with ErrInvalid.
// Subpackage hostproc serves providers whose sandboxes are host processes.
package kit
