// Package kubernetes is Warden's Kubernetes provider: one pod per sandbox
// in one namespace of a cluster, driven through k8s.io/client-go.
//
// Every pod is hardened as the Docker provider's containers are, and the
// API server refuses it otherwise: it runs as uid and gid 1000
// (runAsNonRoot), with every capability dropped, no privilege escalation,
// the runtime's default seccomp profile, a read-only root filesystem, a
// memory-backed /tmp and an emptyDir workspace (both with size limits),
// memory and CPU limits, no service-account token and no service
// environment variables. The container's main process is a tiny reaper
// (PID 1 of the container's PID namespace, which kill(-1) spares).
//
// Executions go to Warden's in-sandbox agent (package agent), started with
// one exec (the pods/exec subresource, over WebSocket with a SPDY
// fallback) whose stdin and stdout carry the agent's frames; the agent's
// own program is sent on that stdin first, so no ConfigMap or image change
// is needed and every replica runs its own agent version. Environment
// variables travel inside that channel, never in the pod's spec.
//
// Network off (the default) is a NetworkPolicy denying all ingress and
// egress to the sandbox's pod. Only a CNI plugin that enforces
// NetworkPolicy (Calico, Cilium, ...) makes it hold: with one that does
// not, such as the plain bridge plugin, an "offline" sandbox has the
// pod network. Processes are bounded by the kubelet's podPidsLimit, not
// per sandbox, so Capabilities().PidsLimit is false.
//
// Pods carry labels (app.kubernetes.io/managed-by=warden,
// warden.dev/sandbox, warden.dev/owner) so that a new provider finds and
// removes those a dead Warden process left behind. See
// docs/adr/0016-kubernetes.md.
package kubernetes
