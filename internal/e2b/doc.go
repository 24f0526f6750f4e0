// Package e2b serves the API of E2B (e2b.dev) in front of Warden, so that
// the official, unmodified E2B SDKs (`e2b`, `@e2b/code-interpreter`) drive
// Warden sandboxes when E2B_API_URL and E2B_SANDBOX_URL both point at
// `warden serve`.
//
// Like the MCP server (internal/mcpserver), it is an adapter over Warden's
// public Go client: every operation is a call of Warden's HTTP API, made in
// process, so Warden's keys, limits, checks and mount policy hold. It keeps
// only what E2B has and Warden has not, in memory: the mapping of E2B's
// sandbox IDs to Warden's, each sandbox's access token, metadata and
// absolute end of life (a timer per sandbox destroys it then).
//
// One listener serves three surfaces, told apart as E2B's own proxy does:
//
//   - requests carrying an E2b-Sandbox-Id header are for a sandbox, and
//     E2b-Sandbox-Port selects the daemon: 49983 is envd (files over REST,
//     the process.Process and filesystem.Filesystem Connect services),
//     49999 the code interpreter (POST /execute, streamed as NDJSON);
//   - /sandboxes... and /v2/sandboxes... are the control plane, behind
//     X-API-KEY;
//   - everything else goes to Warden's own API.
//
// Paths are those code in the sandbox sees: sandboxes made here mount their
// workspace at /home/user, E2B's home directory, which is also HOME and the
// working directory. Paths outside it are refused, since Warden's file API
// reaches only the workspace. docs/e2b.md lists what is implemented and
// what is not; docs/adr/0011-e2b-compatibility.md says why.
package e2b
