// Package agent drives Warden's in-sandbox agent: a small Python program
// (agent.py, embedded) that every provider starts inside its sandbox and
// talks to over the agent's stdin and stdout.
//
// The agent runs shell commands and supervises a persistent Python
// interpreter (the worker, forked from the agent before any sandboxed code
// runs) whose globals survive between executions. The
// worker's stdout and stderr are pipes read by the agent, so nothing the
// sandboxed code prints, closes or writes can desynchronise the channel to
// the host; and before each Python execution the worker forks a frozen
// snapshot of itself, which the agent promotes if the execution must be
// killed (timeout, out of memory, crash), so variables from before that
// execution survive.
//
// Everything inside the sandbox is untrusted, the agent included: hostile
// code running as the same user could take it over. The host side in this
// package is therefore the trust boundary. It bounds every frame and every
// output stream, decodes only JSON and raw bytes (never pickles), enforces
// a backstop deadline of its own, and when the agent misbehaves it resets
// the sandbox's processes through the provider and starts a new agent.
//
// Protocol: frames of one kind byte, a 4-byte big-endian length and a
// payload. Host to agent: 'q' request (JSON), 'c' cancel the running
// execution. Agent to host: 'h' hello (JSON), 'o'/'e' stdout/stderr bytes,
// 'm' one rich output of a Python execution (JSON), 'r' result (JSON). See
// docs/adr/0003-agent-protocol.md.
package agent
