// Package forkserver is an experimental Linux provider whose sandboxes are
// forked from a fork server (a "zygote"): one long-lived Python
// interpreter per provider, started once in a bubblewrap sandbox of its
// own with the image's system directories, that has imported and compiled
// Warden's agent. Each sandbox start is a fork of it that unshares fresh
// user, mount, pid, network, IPC, UTS and cgroup namespaces, joins the
// sandbox's cgroup, builds its own root (the image read-only, a private
// /tmp, /dev/shm and devpts, the workspace attached from a mount tree the
// host opened), drops every capability, and sets no_new_privs, the
// bubblewrap provider's Landlock rules and its seccomp filter before the
// agent's main loop runs. No interpreter starts and nothing is compiled
// per sandbox. See docs/adr/0017-fork-server.md.
//
// SANDBOX__PROVIDER=forkserver selects it (internal/provider); `auto`
// never does.
package forkserver

import (
	_ "embed"
)

// zygoteSource is the fork server's program, run as python3 -c.
//
//go:embed zygote.py
var zygoteSource string
