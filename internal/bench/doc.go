// Package bench measures Warden's Docker provider against plain Docker on
// the same engine and image, and reports medians, percentiles and the
// speed-up (baseline median / Warden median).
//
// Two cases are measured. "exec" is the round trip of a trivial statement
// in a live sandbox (provider.Exec of Python `x = 1` and of shell `true`)
// against `docker exec` into a plain long-lived container, both through
// the docker CLI and through the Docker Go SDK, so that the CLI's own
// overhead shows separately. "lifecycle" is create, first result of
// `print(1)`, destroy (provider.Create, Exec, Destroy) against
// `docker run --rm`, through the CLI and the SDK.
//
// The "bwrap" case, not run by default, sets the bubblewrap provider
// against the Docker provider through the same provider interface: exec of
// `x = 1` and `true` in a live sandbox, and create + first exec of
// print(1) + destroy, interleaved the same way (Options.Bwrap).
//
// The baselines run in a plain container (no hardening, no limits); the
// Warden side runs in its hardened one. Warden and baseline operations are
// interleaved, each round in a random order, so that drift on a noisy
// machine affects both alike.
//
// Every container the package starts itself carries the label
// org.warden.bench=1 (Warden's sandboxes, started by the provider, carry
// org.warden.label.bench=1) and is removed before Run returns, also on
// error or cancellation. The package talks to the daemon through the
// provider's Docker client, and to the docker CLI with an environment
// of its own (DOCKER_HOST set to that daemon).
package bench
