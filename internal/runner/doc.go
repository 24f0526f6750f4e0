// Package runner runs Python scripts in sandboxes and keeps a record of
// each run: the script runner of `warden run`, after the seed system's
// DockerRunner, without its bugs.
//
// Every run gets its own sandbox from a [sandbox.Provider] (hardened,
// network off unless asked) and its own directory
// <log dir>/run_<script stem>_<8 hex digits>/ holding:
//
//	console.log   stdout and stderr interleaved, in the order they arrived
//	stdout.log    the script's standard output, byte for byte
//	stderr.log    its standard error, byte for byte
//	result.json   the Result
//	workspace/    the sandbox's /workspace: a copy of the script and
//	              whatever the script wrote there
//
// The logs are written as the output arrives, so a run that times out or
// is cancelled still leaves everything printed until then. Each stream is
// capped (64 MiB by default); output beyond the cap is dropped and the
// result says so. Nothing Warden adds (timeout messages and the like)
// goes into the logs: they hold only what the script wrote. The sandbox
// cannot reach the logs, only its workspace.
//
// Guarantees, each tested against the real engine:
//   - a script that fails is a failure with its own exit code (the seed
//     piped through tee and reported exit code 0);
//   - a timeout destroys the sandbox (the container is gone when Run
//     returns), writes the logs up to that point and says "Timeout after N
//     seconds" (the seed left the container running and wrote no logs);
//   - each run has its own script directory, and the caller's Job (its
//     environment map and arguments) is never modified.
//
// Ordering between the streams: stdout and stderr are separate pipes, read
// by the in-sandbox agent as data arrives. Writes to different streams are
// recorded in the order they happened when the script flushes between them
// and they are more than a few milliseconds apart; writes that land within
// the same instant may appear in console.log in either order. Each stream
// on its own is always exact. Python buffers stdout when it is not a
// terminal, so the runner sets PYTHONUNBUFFERED=1 unless the job sets it.
package runner
