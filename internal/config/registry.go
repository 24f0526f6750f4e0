package config

import (
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// setting describes one variable: the single place where its name,
// default, documentation, accepted range and Config field are written down.
type setting struct {
	// name is the canonical variable, SECTION__FIELD. The alias is derived:
	// the same with a single underscore.
	name string
	// inverse, if set, is a second boolean variable meaning the opposite.
	inverse string
	// def is the default in the variable's own syntax ("" for none).
	def string
	// defFunc computes a default that depends on the host; defDoc is how
	// the documentation shows it.
	defFunc func() string
	defDoc  string
	// doc is the operator documentation, in Markdown.
	doc string
	// secret values are never printed.
	secret bool
	// field returns a pointer to the Config field the variable sets.
	field func(*Config) any
	// rule is an optional range check, run by Validate.
	rule *rule
}

func (s *setting) alias() string { return singleUnderscore(s.name) }

func singleUnderscore(name string) string { return strings.Replace(name, "__", "_", 1) }

func (s *setting) defaultValue() string {
	if s.defFunc != nil {
		return s.defFunc()
	}
	return s.def
}

// rule is a range check with its description.
type rule struct {
	// accepted describes the range for the documentation: "1s to 30s".
	accepted string
	// check returns why the value *p is out of range, or "".
	check func(c *Config, p any) string
}

func between[T cmp.Ordered](lo, hi T, show func(T) string) *rule {
	return &rule{
		accepted: show(lo) + " to " + show(hi),
		check: func(_ *Config, p any) string {
			if v := *p.(*T); v < lo || v > hi {
				return fmt.Sprintf("must be between %s and %s", show(lo), show(hi))
			}
			return ""
		},
	}
}

func atLeast[T cmp.Ordered](lo T, show func(T) string) *rule {
	return &rule{
		accepted: "at least " + show(lo),
		check: func(_ *Config, p any) string {
			if v := *p.(*T); v < lo {
				return "must be at least " + show(lo)
			}
			return ""
		},
	}
}

func showInt(n int) string        { return strconv.Itoa(n) }
func showBytes(b ByteSize) string { return b.String() }

var showDuration = FormatDuration

// cpuRule bounds SANDBOX__CPU_LIMIT by the number of CPUs, as the seed did.
var cpuRule = &rule{
	accepted: "0.1 to the number of CPUs",
	check: func(c *Config, p any) string {
		n := c.cpus()
		if v := *p.(*float64); v < 0.1 || v > float64(n) {
			return fmt.Sprintf("must be between 0.1 and %d (the number of CPUs)", n)
		}
		return ""
	},
}

func (c *Config) cpus() int {
	if c.numCPU > 0 {
		return c.numCPU
	}
	return max(1, runtime.NumCPU())
}

func defaultWorkspaceRoot() string { return filepath.Join(os.TempDir(), "warden") }

// registry lists every setting in documentation order. It is never
// modified.
var registry = []setting{
	{
		name: "SANDBOX__ENABLED", def: "true",
		field: func(c *Config) any { return &c.Sandbox.Enabled },
		doc:   "Turns sandboxes on. When false the service still starts but refuses to create sandboxes.",
	},
	{
		name: "SANDBOX__MOCK_MODE", def: "false",
		field: func(c *Config) any { return &c.Sandbox.MockMode },
		doc: "Allows the `local` provider, which runs code as host processes with **no isolation**. " +
			"Off by default; enable only for development with trusted code. (The name is the seed's.)",
	},
	{
		name: "SANDBOX__PROVIDER", def: "auto",
		field: func(c *Config) any { return &c.Sandbox.Provider },
		doc: "Isolation backend. `auto` takes the first that works in TinyAgent's order: seatbelt (macOS), bubblewrap (Linux), " +
			"docker, then local only if `SANDBOX__MOCK_MODE` is true; `local` requires `SANDBOX__MOCK_MODE=true`. " +
			"`bwrap` is accepted for `bubblewrap`. `forkserver` (Linux, root, experimental: sandboxes forked from a pre-imported " +
			"agent, ADR 0017) and `kubernetes` are chosen by name only, never by `auto`, and never fall back to another backend.",
	},
	{
		name: "SANDBOX__PROVIDER_FALLBACK", def: "true",
		field: func(c *Config) any { return &c.Sandbox.ProviderFallback },
		doc: "When the backend named by `SANDBOX__PROVIDER` is unavailable at startup, try the others in the `auto` order " +
			"instead of failing. Never falls back to `local` unless `SANDBOX__MOCK_MODE` is true. Does not apply to `forkserver` and `kubernetes`.",
	},
	{
		name: "SANDBOX__DOCKER_AUTO_DETECT", def: "true",
		field: func(c *Config) any { return &c.Sandbox.DockerAutoDetect },
		doc:   "Lets `auto` probe the Docker daemon; false skips Docker when choosing a backend.",
	},
	{
		name: "SANDBOX__DOCKER_REQUIRED", def: "false",
		field: func(c *Config) any { return &c.Sandbox.DockerRequired },
		doc: "Use Docker, and fail startup if the Docker daemon is unreachable instead of falling back. " +
			"Contradicts `SANDBOX__PROVIDER=seatbelt`, `bubblewrap`, `forkserver` or `local`, and `SANDBOX__DOCKER_AUTO_DETECT=false` with `auto`.",
	},
	{
		name: "SANDBOX__DOCKER_CONNECTION_TIMEOUT", def: "5s",
		field: func(c *Config) any { return &c.Sandbox.DockerConnectionTimeout },
		rule:  between(1*time.Second, 30*time.Second, showDuration),
		doc:   "How long one ping of the Docker daemon may take. Seconds or a Go duration.",
	},
	{
		name: "SANDBOX__DOCKER_MAX_RETRIES", def: "3",
		field: func(c *Config) any { return &c.Sandbox.DockerMaxRetries },
		rule:  between(0, 10, showInt),
		doc:   "How many times startup retries a failed Docker ping before treating Docker as unavailable.",
	},
	{
		name: "SANDBOX__DOCKER_HOST", def: "",
		field: func(c *Config) any { return &c.Sandbox.DockerHost },
		doc: "Docker daemon address: `unix://`, `tcp://`, `npipe://`, `http://` or `https://`. " +
			"Empty uses the Docker client's defaults (`DOCKER_HOST`, else the local socket).",
	},
	{
		name: "SANDBOX__DOCKER_RUNTIME", def: "",
		field: func(c *Config) any { return &c.Sandbox.DockerRuntime },
		doc: "OCI runtime of Docker sandboxes, by the name the daemon knows it (`docker info` lists them): `runsc` runs them " +
			"under gVisor, whose user-space kernel answers their system calls instead of the host's. Empty uses the daemon's " +
			"default (normally `runc`). A runtime the daemon does not list makes the Docker provider fail at start-up, " +
			"saying which it has; the README's guarantees table says what changes under gVisor.",
	},
	{
		name: "SANDBOX__KUBERNETES_KUBECONFIG", def: "",
		field: func(c *Config) any { return &c.Sandbox.KubernetesKubeconfig },
		doc: "Kubeconfig file of the `kubernetes` provider. Empty uses the in-cluster configuration when Warden runs in a pod, " +
			"else client-go's defaults (`KUBECONFIG`, then `~/.kube/config`).",
	},
	{
		name: "SANDBOX__KUBERNETES_CONTEXT", def: "",
		field: func(c *Config) any { return &c.Sandbox.KubernetesContext },
		doc:   "Kubeconfig context of the `kubernetes` provider; empty uses the kubeconfig's current context.",
	},
	{
		name: "SANDBOX__KUBERNETES_NAMESPACE", def: "warden",
		field: func(c *Config) any { return &c.Sandbox.KubernetesNamespace },
		rule:  &rule{accepted: "a DNS label", check: checkDNSLabel},
		doc: "Namespace of the sandboxes' pods. It must exist; the provider creates its NetworkPolicy there " +
			"(docs/kubernetes.md lists the RBAC rules it needs).",
	},
	{
		name: "SANDBOX__KUBERNETES_RUNTIME_CLASS", def: "",
		field: func(c *Config) any { return &c.Sandbox.KubernetesRuntimeClass },
		doc:   "RuntimeClass of the sandboxes' pods, such as `gvisor`; empty uses the cluster's default runtime.",
	},
	{
		name: "SANDBOX__KUBERNETES_NODE_SELECTOR", def: "",
		field: func(c *Config) any { return &c.Sandbox.KubernetesNodeSelector },
		rule:  &rule{accepted: "comma-separated `key=value` pairs", check: checkNodeSelector},
		doc:   "Node labels the sandboxes' pods must match, as `key=value,key=value`; empty allows any node.",
	},
	{
		name: "SANDBOX__KUBERNETES_IMAGE_PULL_POLICY", def: "IfNotPresent",
		field: func(c *Config) any { return &c.Sandbox.KubernetesImagePullPolicy },
		rule:  &rule{accepted: "`Always`, `IfNotPresent` or `Never`", check: checkPullPolicy},
		doc: "Image pull policy of the sandboxes' pods. The default holds even for `:latest` tags, so that images loaded onto " +
			"the nodes work without a registry.",
	},
	{
		name: "SANDBOX__KUBERNETES_START_TIMEOUT", def: "2m",
		field: func(c *Config) any { return &c.Sandbox.KubernetesStartTimeout },
		rule:  between(5*time.Second, 30*time.Minute, showDuration),
		doc:   "How long a sandbox's pod may take to be scheduled, pull its image and start before the create fails.",
	},
	{
		name: "SANDBOX__KUBERNETES_REPLICA_ID", def: "",
		field: func(c *Config) any { return &c.Sandbox.KubernetesReplicaID },
		rule:  &rule{accepted: "empty or a DNS label of at most 48 characters", check: checkReplicaID},
		doc: "Name of this `warden serve` replica on the `kubernetes` provider: every replica holds a Lease " +
			"`warden-replica-<ID>` in the namespace, and any replica serves any sandbox (ADR 0016). Empty takes the host " +
			"name, which in a pod is the pod's name; replicas on one host need distinct IDs.",
	},
	{
		name: "SANDBOX__KUBERNETES_REPLICA_ADDRESS", def: "",
		field: func(c *Config) any { return &c.Sandbox.KubernetesReplicaAddress },
		doc: "Base URL at which the other replicas reach this one's API, such as `http://$(POD_IP):8000` " +
			"(docs/kubernetes.md). Empty derives it from the listen address, which must then not be 0.0.0.0 or ::.",
	},
	{
		name: "SANDBOX__KUBERNETES_LEASE_DURATION", def: "15s",
		field: func(c *Config) any { return &c.Sandbox.KubernetesLeaseDuration },
		rule:  between(3*time.Second, 5*time.Minute, showDuration),
		doc: "How long a replica's Lease holds without renewal (it is renewed every third of it): after it, another " +
			"replica adopts the sandboxes of a replica that died.",
	},
	{
		name: "SANDBOX__KUBERNETES_ADOPT_WINDOW", def: "10m",
		field: func(c *Config) any { return &c.Sandbox.KubernetesAdoptWindow },
		rule:  between(time.Minute, 7*24*time.Hour, showDuration),
		doc: "How long the sandboxes of a replica whose Lease expired wait for a request that adopts them; after it, " +
			"any replica deletes their pods.",
	},
	{
		name: "SANDBOX__IMAGE", def: "warden-runtime:latest",
		field: func(c *Config) any { return &c.Sandbox.Image },
		doc:   "Container image sandboxes run.",
	},
	{
		name: "SANDBOX__E2B_TEMPLATES", def: "",
		field: func(c *Config) any { return &c.Sandbox.E2BTemplates },
		doc: "Images of E2B templates for the E2B-compatible surface (`API__E2B`), as `name=image` pairs separated by commas: " +
			"`Sandbox.create(\"data\")` then runs `data`'s image. `base` and `code-interpreter-v1` take `SANDBOX__IMAGE` " +
			"unless named here; any other template is refused.",
	},
	{
		name: "SANDBOX__AUTO_PULL_IMAGE", def: "false",
		field: func(c *Config) any { return &c.Sandbox.AutoPullImage },
		doc: "Pull the image from its registry when it is missing. The seed pulled by default; Warden does not, " +
			"because its hosts have no registry access and a pull silently changes the code sandboxes run: " +
			"build or load the image beforehand.",
	},
	{
		name: "SANDBOX__MEMORY_LIMIT", def: "512m",
		field: func(c *Config) any { return &c.Sandbox.MemoryLimit },
		rule:  atLeast(ByteSize(6<<20), showBytes),
		doc: "Memory per sandbox (no extra swap). A byte size: `512m`, `1g`, `2048k`, or bytes; " +
			"k, m, g and t are powers of 1024 as with `docker run --memory`.",
	},
	{
		name: "SANDBOX__CPU_LIMIT", def: "1.0",
		field: func(c *Config) any { return &c.Sandbox.CPULimit },
		rule:  cpuRule,
		doc:   "CPUs per sandbox, e.g. `0.5` or `2`.",
	},
	{
		name: "SANDBOX__PIDS_LIMIT", def: "256",
		field: func(c *Config) any { return &c.Sandbox.PidsLimit },
		rule:  between(8, 32768, showInt),
		doc:   "Processes and threads per sandbox: the fork-bomb guard.",
	},
	{
		name: "SANDBOX__TIMEOUT", def: "30s",
		field: func(c *Config) any { return &c.Sandbox.Timeout },
		rule:  between(1*time.Second, time.Hour, showDuration),
		doc: "Timeout of one execution when the request sets none. Seconds or a Go duration (`90s`, `2m`). " +
			"30s as in the seed's API; the seed's 300s cap is raised to 1h for long script runs.",
	},
	{
		name: "SANDBOX__MAX_OUTPUT_BYTES", def: "1m",
		field: func(c *Config) any { return &c.Sandbox.MaxOutputBytes },
		rule:  between(ByteSize(1<<10), ByteSize(64<<20), showBytes),
		doc:   "Cap on each output stream (stdout, stderr) of one execution; output beyond it is dropped and the result marked truncated.",
	},
	{
		name: "SANDBOX__NETWORK_DISABLED", inverse: "SANDBOX__ENABLE_NETWORK", def: "true",
		field: func(c *Config) any { return &c.Sandbox.NetworkDisabled },
		doc: "Deny network access inside sandboxes. `SANDBOX__ENABLE_NETWORK` is accepted as its inverse; " +
			"giving both contradicting values in the same source is an error.",
	},
	{
		name: "SANDBOX__WORKSPACE_ROOT", defFunc: defaultWorkspaceRoot, defDoc: "`$TMPDIR/warden`",
		field: func(c *Config) any { return &c.Sandbox.WorkspaceRoot },
		doc:   "Absolute host directory under which private per-sandbox workspaces are created (default: the OS temporary directory, `/tmp` when `TMPDIR` is unset, plus `warden`).",
	},
	{
		name: "SANDBOX__CONTAINER_NAME_PREFIX", def: "warden",
		field: func(c *Config) any { return &c.Sandbox.ContainerNamePrefix },
		doc:   "Prefix of container names (`<prefix>-<sandbox id>`). Warden finds its own containers by label, not by name. 1 to 32 of `A-Z a-z 0-9 _ . -`.",
	},
	{
		name: "SANDBOX__VOLUME_MOUNT_PATH", def: "/workspace",
		field: func(c *Config) any { return &c.Sandbox.VolumeMountPath },
		doc:   "Where the workspace appears inside a sandbox: an absolute path that does not cover a system directory (`/usr`, `/etc`, `/tmp`, ...). Python sessions and shell commands start there.",
	},
	{
		name: "SANDBOX__MAX_SANDBOXES", def: "32",
		field: func(c *Config) any { return &c.Sandbox.MaxSandboxes },
		rule:  between(1, 10000, showInt),
		doc:   "Maximum number of live sandboxes; creating another fails.",
	},
	{
		name: "SANDBOX__BWRAP_ROOT", def: "auto",
		field: func(c *Config) any { return &c.Sandbox.BwrapRoot },
		rule:  &rule{accepted: "`auto`, `host` or an absolute directory", check: checkBwrapRoot},
		doc: "Root filesystem of bubblewrap and fork server sandboxes, read-only. `auto`: the root filesystem of `SANDBOX__IMAGE`, " +
			"extracted once per image under `SANDBOX__WORKSPACE_ROOT/.rootfs` when Docker has the image (so bubblewrap " +
			"sandboxes run the same system as Docker's); when Docker does not have it (or does not answer), the host's `/usr` for the default image " +
			"when no source set `SANDBOX__IMAGE`, and for an image given by name bubblewrap refuses to run (never another system than the one asked " +
			"for). `host`: the host's `/usr` and a few files " +
			"of `/etc`. A directory: an extracted root filesystem to use.",
	},
	{
		name: "SANDBOX__WORKSPACE_SIZE", def: "1g",
		field: func(c *Config) any { return &c.Sandbox.WorkspaceSize },
		rule: &rule{accepted: "0, or 8m to 1t", check: func(_ *Config, p any) string {
			if v := *p.(*ByteSize); v != 0 && (v < 8<<20 || v > 1<<40) {
				return "must be 0 (no bound) or between 8m and 1t"
			}
			return ""
		}},
		doc: "Most a sandbox's private workspace may hold, enforced by the kernel: the workspace is a file system of its own " +
			"(ext4 in a sparse image beside it, loop-mounted), so writing past it fails with ENOSPC inside the sandbox and the host " +
			"loses at most this much space. Needs Warden to run as root and mkfs.ext4; elsewhere workspaces are not bounded " +
			"(`warden doctor` says which). A `--workspace` or `workspace_path` of yours is never bounded. 0 turns it off.",
	},
	{
		name: "SANDBOX__WARM_POOL_SIZE", def: "2",
		field: func(c *Config) any { return &c.Sandbox.WarmPoolSize },
		rule:  between(0, 64, showInt),
		doc: "Fresh sandboxes `warden serve` keeps ready, with the default settings: a create that asks for nothing else " +
			"gets one at once (a few milliseconds instead of a container start) and a replacement starts in the background. " +
			"Each costs an idle sandbox's memory; they do not count toward `SANDBOX__MAX_SANDBOXES`. 0 turns the pool off.",
	},
	{
		name: "SANDBOX__IDLE_TIMEOUT", def: "10m",
		field: func(c *Config) any { return &c.Sandbox.IdleTimeout },
		rule:  between(0, 7*24*time.Hour, showDuration),
		doc:   "Destroy a sandbox that has not been used for this long; `0` keeps sandboxes until they are deleted.",
	},
	{
		name: "SANDBOX__ADDITIONAL_READ_DIRS", def: "",
		field: func(c *Config) any { return &c.Sandbox.AdditionalReadDirs },
		doc: "Host directories mounted read-only into every sandbox at the same path. Absolute paths separated " +
			"by `,` or the OS path-list separator (`:` on Unix). System directories such as `/usr` or `/etc` cannot be mounted.",
	},
	{
		name: "SANDBOX__ADDITIONAL_WRITE_DIRS", def: "",
		field: func(c *Config) any { return &c.Sandbox.AdditionalWriteDirs },
		doc:   "Host directories mounted read-write, in the same form. A directory may not be in both lists.",
	},
	{
		name: "SANDBOX__ALLOWED_HOST_DIRS", def: "",
		field: func(c *Config) any { return &c.Sandbox.AllowedHostDirs },
		doc:   "Absolute host directories within which API clients may choose a `workspace_path` or `additional_*_dirs` (symbolic links resolved); anything else is refused with 403. Empty allows any directory outside the sandbox's system paths: set it when the API is reachable by anyone you would not give those directories to.",
	},
	{
		name: "SANDBOX__MAX_REQUEST_BYTES", def: "10m",
		field: func(c *Config) any { return &c.Sandbox.MaxRequestBytes },
		rule:  between(ByteSize(1<<10), ByteSize(1<<30), showBytes),
		doc:   "Largest HTTP request body the API reads.",
	},
	{
		name: "SANDBOX__BYPASS_SHELL_SAFETY", def: "auto",
		field: func(c *Config) any { return &c.Sandbox.BypassShellSafety },
		doc: "Switches off the check of shell commands before they run (`true`), or forces it on (`false`). " +
			"`auto`, as TinyAgent did: the check is off for the isolating providers (docker, bubblewrap, seatbelt) " +
			"and on for `local`, where nothing else stands between the command and the host.",
	},
	{
		name: "SANDBOX__ADDITIONAL_SAFE_SHELL_COMMANDS", def: "",
		field: func(c *Config) any { return &c.Sandbox.AdditionalSafeShellCommands },
		doc: "Commands allowed on top of TinyAgent's 27 safe ones (ls, cat, grep, find, echo, ...), separated by commas or spaces. " +
			"`*` allows every command, like `SANDBOX__BYPASS_SHELL_SAFETY=true`. An added command is trusted with all its options.",
	},
	{
		name: "SANDBOX__ADDITIONAL_SAFE_CONTROL_OPERATORS", def: "",
		field: func(c *Config) any { return &c.Sandbox.AdditionalSafeControlOperators },
		doc:   "Shell control operators allowed on top of `&&`, `||`, `;` and `|`, such as `&` (background) or `|&`; `*` allows any.",
	},
	{
		name: "SANDBOX__PYTHON_SAFETY", def: "auto",
		field: func(c *Config) any { return &c.Sandbox.PythonSafety },
		doc: "Checks Python code on the host before it reaches the sandbox (`true`): dangerous modules and functions, " +
			"string obfuscation, introspection escapes. `auto` checks only for `local`, which isolates nothing; " +
			"`false` never checks (TinyAgent's `trusted_code`).",
	},
	{
		name: "SANDBOX__AUTHORIZED_IMPORTS", def: "",
		field: func(c *Config) any { return &c.Sandbox.AuthorizedImports },
		doc: "When set, the only modules Python code may import, besides json, time, datetime, requests, cloudpickle and tinyagent; " +
			"`x.*` allows the package x, `*` any module. Unset: any module except the dangerous ones (os, sys, subprocess, ...).",
	},
	{
		name: "SANDBOX__AUTHORIZED_FUNCTIONS", def: "",
		field: func(c *Config) any { return &c.Sandbox.AuthorizedFunctions },
		doc: "Functions and attributes exempt from the Python check's dangerous-function and introspection rules (exec, eval, open, getattr, ...). " +
			"`__import__` stays refused.",
	},
	{
		name: "SANDBOX__CHECK_STRING_OBFUSCATION", def: "true",
		field: func(c *Config) any { return &c.Sandbox.CheckStringObfuscation },
		doc:   "With the Python check on, also refuse string manipulation that can hide a name from it: chr(), ord(), base64, `.format()`, reversal slices.",
	},
	{
		name: "SANDBOX__POLICY_MAX_INPUT", def: "256k",
		field: func(c *Config) any { return &c.Sandbox.PolicyMaxInput },
		rule:  between(ByteSize(1<<10), ByteSize(16<<20), showBytes),
		doc:   "Longest command or piece of code the checks read; longer input is refused while a check is on, since it cannot be checked.",
	},
	{
		name: "API__HOST", def: "127.0.0.1",
		field: func(c *Config) any { return &c.API.Host },
		doc: "Address the API listens on: an IP address or host name. Loopback by default, unlike the seed's " +
			"`0.0.0.0`: the API runs code, so exposing it must be a deliberate choice, with `API__KEYS` set.",
	},
	{
		name: "API__PORT", def: "8000",
		field: func(c *Config) any { return &c.API.Port },
		rule:  between(0, 65535, showInt),
		doc: "TCP port of the API. `0` picks a free port (for tests). The seed's minimum of 1024 is dropped: " +
			"who may bind low ports is the operating system's decision.",
	},
	{
		name: "API__KEYS", def: "", secret: true,
		field: func(c *Config) any { return &c.API.Keys },
		doc: "Comma-separated bearer keys the API accepts. Empty disables authentication, which is only " +
			"reasonable on loopback. Secret: never printed.",
	},
	{
		name: "API__E2B", def: "true",
		field: func(c *Config) any { return &c.API.E2B },
		doc: "Serves the E2B-compatible API on the same listener, so that the official E2B SDKs work with " +
			"`E2B_API_URL` and `E2B_SANDBOX_URL` set to the service's address (docs/e2b.md). Its `X-API-KEY` is " +
			"checked against `API__KEYS`; with no keys it is open, as the rest of the API.",
	},
	{
		name: "SECURITY__SECRET_KEY", def: "", secret: true,
		field: func(c *Config) any { return &c.Security.SecretKey },
		doc: "Server secret (for signing). Optional; when set it must be at least 32 characters, and a placeholder " +
			"such as the seed's `...change-this-in-production` draws a warning. Secret: never printed.",
	},
	{
		name: "LOG__LEVEL", def: "info",
		field: func(c *Config) any { return &c.Log.Level },
		doc:   "Minimum level of Warden's own log. `warning` is accepted for `warn`.",
	},
	{
		name: "LOG__FORMAT", def: "auto",
		field: func(c *Config) any { return &c.Log.Format },
		doc:   "Log encoding; `auto` is text when stderr is a terminal and JSON otherwise.",
	},
}

// lookup finds the setting an upper-case variable name refers to: its
// canonical name, alias, inverse or inverse alias.
func lookup(upper string) (s *setting, inverse, ok bool) {
	r, ok := byName[upper]
	return r.s, r.inverse, ok
}

type nameRef struct {
	s       *setting
	inverse bool
}

// byName indexes every accepted upper-case name. It is built once from
// registry and never modified.
var byName = func() map[string]nameRef {
	m := make(map[string]nameRef)
	for i := range registry {
		s := &registry[i]
		m[s.name] = nameRef{s: s}
		m[s.alias()] = nameRef{s: s}
		if s.inverse != "" {
			m[s.inverse] = nameRef{s: s, inverse: true}
			m[singleUnderscore(s.inverse)] = nameRef{s: s, inverse: true}
		}
	}
	return m
}()

// retired are settings of the seed platform that Warden does not
// implement; setting one draws a warning saying so instead of "unknown".
var retired = []string{
	"SANDBOX__ENABLE_GVISOR",
	"API__RELOAD",
	"API__WORKERS",
	"API__CORS_ORIGINS",
	"SECURITY__CORS_ORIGINS",
	"SECURITY__ALLOWED_HOSTS",
	"SECURITY__TOKEN_EXPIRE_MINUTES",
}

func checkBwrapRoot(_ *Config, p any) string {
	switch v := *p.(*string); {
	case v == "auto" || v == "host":
		return ""
	case !filepath.IsAbs(v):
		return "must be auto, host or an absolute directory"
	}
	return ""
}

func checkDNSLabel(_ *Config, p any) string {
	v := *p.(*string)
	if len(v) == 0 || len(v) > 63 {
		return "must be a DNS label: 1 to 63 of a-z 0-9 -"
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(v)-1) {
			return "must be a DNS label: 1 to 63 of a-z 0-9 -, starting and ending with a letter or digit"
		}
	}
	return ""
}

func checkReplicaID(c *Config, p any) string {
	if *p.(*string) == "" {
		return ""
	}
	if msg := checkDNSLabel(c, p); msg != "" {
		return msg
	}
	if len(*p.(*string)) > 48 {
		return "must be at most 48 characters (the Lease's name adds 15)"
	}
	return ""
}

func checkNodeSelector(_ *Config, p any) string {
	if _, err := ParseNodeSelector(*p.(*string)); err != nil {
		return err.Error()
	}
	return ""
}

// ParseNodeSelector parses SANDBOX__KUBERNETES_NODE_SELECTOR: "key=value"
// pairs separated by commas; "" is none.
func ParseNodeSelector(s string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func checkPullPolicy(_ *Config, p any) string {
	switch *p.(*string) {
	case "Always", "IfNotPresent", "Never":
		return ""
	}
	return "must be Always, IfNotPresent or Never"
}
