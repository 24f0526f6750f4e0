package config

import (
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Config holds every Warden setting. Build it once with [Load] (or
// [Loader.Load], or [Defaults]) and pass it down by value; nothing else in
// Warden reads the environment.
//
// Each field's comment names its variable. The variable's default, accepted
// range and operator documentation live in the registry (registry.go) and are
// rendered by [Markdown]; a test checks that every field is in the registry.
// A Config is a plain value: copies share the backing arrays of its slices,
// which nothing in this package modifies after loading.
type Config struct {
	// Sandbox configures sandbox creation and the isolation backends.
	Sandbox SandboxConfig
	// API configures the HTTP service.
	API APIConfig
	// Security holds server-wide secrets.
	Security SecurityConfig
	// Log configures Warden's operational log (not sandbox output).
	Log LogConfig

	// numCPU bounds SANDBOX__CPU_LIMIT; 0 means runtime.NumCPU().
	numCPU int
	// warnings collected while loading: unknown or shadowed variables.
	warnings []string
	// set names the settings a source gave a value, sorted; see [Config.IsSet].
	set []string
}

// SandboxConfig holds the SANDBOX__* settings.
type SandboxConfig struct {
	// Enabled turns sandboxes on (SANDBOX__ENABLED).
	Enabled bool
	// MockMode allows the local provider, which has no isolation
	// (SANDBOX__MOCK_MODE).
	MockMode bool
	// Provider selects the isolation backend (SANDBOX__PROVIDER).
	Provider ProviderName
	// ProviderFallback lets startup fall back to another backend when the
	// chosen one is unavailable (SANDBOX__PROVIDER_FALLBACK).
	ProviderFallback bool
	// DockerAutoDetect makes the auto provider probe Docker
	// (SANDBOX__DOCKER_AUTO_DETECT).
	DockerAutoDetect bool
	// DockerRequired fails startup when Docker is unreachable
	// (SANDBOX__DOCKER_REQUIRED).
	DockerRequired bool
	// DockerConnectionTimeout bounds one Docker ping
	// (SANDBOX__DOCKER_CONNECTION_TIMEOUT).
	DockerConnectionTimeout time.Duration
	// DockerMaxRetries is the number of ping retries at startup
	// (SANDBOX__DOCKER_MAX_RETRIES).
	DockerMaxRetries int
	// DockerHost is the daemon address; empty means the Docker client's own
	// defaults (SANDBOX__DOCKER_HOST).
	DockerHost string
	// DockerRuntime is the OCI runtime Docker sandboxes run under, as
	// registered with the daemon ("runsc" for gVisor); empty means the
	// daemon's default (SANDBOX__DOCKER_RUNTIME).
	DockerRuntime string
	// KubernetesKubeconfig is the kubernetes provider's kubeconfig; empty
	// means in-cluster or client-go's defaults
	// (SANDBOX__KUBERNETES_KUBECONFIG).
	KubernetesKubeconfig string
	// KubernetesContext is the kubeconfig context
	// (SANDBOX__KUBERNETES_CONTEXT).
	KubernetesContext string
	// KubernetesNamespace holds the sandboxes' pods
	// (SANDBOX__KUBERNETES_NAMESPACE).
	KubernetesNamespace string
	// KubernetesRuntimeClass is the pods' RuntimeClass
	// (SANDBOX__KUBERNETES_RUNTIME_CLASS).
	KubernetesRuntimeClass string
	// KubernetesNodeSelector restricts the pods' nodes, as key=value
	// pairs (SANDBOX__KUBERNETES_NODE_SELECTOR).
	KubernetesNodeSelector string
	// KubernetesImagePullPolicy is the pods' image pull policy
	// (SANDBOX__KUBERNETES_IMAGE_PULL_POLICY).
	KubernetesImagePullPolicy string
	// KubernetesStartTimeout bounds a pod's start
	// (SANDBOX__KUBERNETES_START_TIMEOUT).
	KubernetesStartTimeout time.Duration
	// KubernetesReplicaID names this `warden serve` replica and its Lease;
	// empty takes the host name (SANDBOX__KUBERNETES_REPLICA_ID).
	KubernetesReplicaID string
	// KubernetesReplicaAddress is the base URL other replicas forward
	// requests to; empty derives it from the listen address
	// (SANDBOX__KUBERNETES_REPLICA_ADDRESS).
	KubernetesReplicaAddress string
	// KubernetesLeaseDuration is how long a replica's Lease holds
	// unrenewed (SANDBOX__KUBERNETES_LEASE_DURATION).
	KubernetesLeaseDuration time.Duration
	// KubernetesAdoptWindow is how long the sandboxes of a replica gone
	// wait to be adopted before they are deleted
	// (SANDBOX__KUBERNETES_ADOPT_WINDOW).
	KubernetesAdoptWindow time.Duration
	// Image is the sandbox container image (SANDBOX__IMAGE).
	Image string
	// E2BTemplates maps E2B template names to images, beside base and
	// code-interpreter-v1, which take Image (SANDBOX__E2B_TEMPLATES).
	E2BTemplates Templates
	// AutoPullImage allows pulling a missing image
	// (SANDBOX__AUTO_PULL_IMAGE).
	AutoPullImage bool
	// MemoryLimit per sandbox (SANDBOX__MEMORY_LIMIT).
	MemoryLimit ByteSize
	// CPULimit per sandbox, in CPUs (SANDBOX__CPU_LIMIT).
	CPULimit float64
	// PidsLimit per sandbox (SANDBOX__PIDS_LIMIT).
	PidsLimit int
	// Timeout is the default per-execution timeout (SANDBOX__TIMEOUT).
	Timeout time.Duration
	// MaxOutputBytes caps each output stream of one execution
	// (SANDBOX__MAX_OUTPUT_BYTES).
	MaxOutputBytes ByteSize
	// NetworkDisabled denies network access in sandboxes
	// (SANDBOX__NETWORK_DISABLED, or the inverse SANDBOX__ENABLE_NETWORK).
	NetworkDisabled bool
	// WorkspaceRoot is the host directory holding private workspaces
	// (SANDBOX__WORKSPACE_ROOT).
	WorkspaceRoot string
	// ContainerNamePrefix prefixes container names
	// (SANDBOX__CONTAINER_NAME_PREFIX).
	ContainerNamePrefix string
	// VolumeMountPath is where the workspace appears inside sandboxes
	// (SANDBOX__VOLUME_MOUNT_PATH).
	VolumeMountPath string
	// MaxSandboxes bounds the number of live sandboxes
	// (SANDBOX__MAX_SANDBOXES).
	MaxSandboxes int
	// BwrapRoot is the root filesystem of bubblewrap sandboxes: auto,
	// host, or a directory (SANDBOX__BWRAP_ROOT).
	BwrapRoot string
	// WorkspaceSize bounds what a private workspace may hold; 0 is no
	// bound (SANDBOX__WORKSPACE_SIZE).
	WorkspaceSize ByteSize
	// WarmPoolSize is how many fresh sandboxes the service keeps ready
	// (SANDBOX__WARM_POOL_SIZE).
	WarmPoolSize int
	// IdleTimeout destroys unused sandboxes; 0 never does
	// (SANDBOX__IDLE_TIMEOUT).
	IdleTimeout time.Duration
	// AdditionalReadDirs are host directories mounted read-only
	// (SANDBOX__ADDITIONAL_READ_DIRS).
	AdditionalReadDirs []string
	// AdditionalWriteDirs are host directories mounted read-write
	// (SANDBOX__ADDITIONAL_WRITE_DIRS).
	AdditionalWriteDirs []string
	// AllowedHostDirs are, when set, the only host directories (and what
	// lies below them) that API clients may mount or use as a workspace
	// (SANDBOX__ALLOWED_HOST_DIRS).
	AllowedHostDirs []string
	// MaxRequestBytes bounds HTTP request bodies
	// (SANDBOX__MAX_REQUEST_BYTES).
	MaxRequestBytes ByteSize
	// BypassShellSafety switches the shell-command check off or on; auto
	// leaves it to the provider's isolation (SANDBOX__BYPASS_SHELL_SAFETY).
	BypassShellSafety Switch
	// AdditionalSafeShellCommands extends the allowed shell commands; "*"
	// allows everything (SANDBOX__ADDITIONAL_SAFE_SHELL_COMMANDS).
	AdditionalSafeShellCommands Words
	// AdditionalSafeControlOperators extends the allowed shell control
	// operators; "*" allows any (SANDBOX__ADDITIONAL_SAFE_CONTROL_OPERATORS).
	AdditionalSafeControlOperators Words
	// PythonSafety switches the Python code check on or off; auto leaves
	// it to the provider's isolation (SANDBOX__PYTHON_SAFETY).
	PythonSafety Switch
	// AuthorizedImports are, when set, the only modules Python code may
	// import (SANDBOX__AUTHORIZED_IMPORTS).
	AuthorizedImports Words
	// AuthorizedFunctions exempts functions from the dangerous-function
	// checks (SANDBOX__AUTHORIZED_FUNCTIONS).
	AuthorizedFunctions Words
	// CheckStringObfuscation refuses string manipulation that can hide
	// names from the Python check (SANDBOX__CHECK_STRING_OBFUSCATION).
	CheckStringObfuscation bool
	// PolicyMaxInput bounds the command or code the checks read
	// (SANDBOX__POLICY_MAX_INPUT).
	PolicyMaxInput ByteSize
}

// APIConfig holds the API__* settings.
type APIConfig struct {
	// Host is the listen address (API__HOST).
	Host string
	// Port is the listen port; 0 picks a free one (API__PORT).
	Port int
	// Keys are the accepted bearer keys; none disables authentication
	// (API__KEYS).
	Keys []Secret
	// E2B serves the E2B-compatible surface on the API's listener
	// (API__E2B).
	E2B bool
}

// SecurityConfig holds the SECURITY__* settings.
type SecurityConfig struct {
	// SecretKey is the server secret, optional (SECURITY__SECRET_KEY).
	SecretKey Secret
}

// LogConfig holds the LOG__* settings.
type LogConfig struct {
	// Level is the minimum level logged (LOG__LEVEL).
	Level LogLevel
	// Format is the log encoding (LOG__FORMAT).
	Format LogFormat
}

// Defaults returns the configuration with every setting at its default.
// The result passes [Config.Validate].
func Defaults() Config {
	var c Config
	for _, s := range registry {
		if err := setValue(s.field(&c), s.defaultValue()); err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", s.name, err)) // a registry bug; a test covers it
		}
	}
	return c
}

// Addr returns API.Host and API.Port as a listen address for net.Listen.
func (c Config) Addr() string {
	h := strings.TrimSuffix(strings.TrimPrefix(c.API.Host, "["), "]")
	return net.JoinHostPort(h, strconv.Itoa(c.API.Port))
}

// Redacted returns a copy of c in which every set secret is replaced by
// "[redacted]", safe to serialise with any encoder.
func (c Config) Redacted() Config {
	if c.Security.SecretKey != "" {
		c.Security.SecretKey = redactedText
	}
	if c.API.Keys != nil {
		keys := make([]Secret, len(c.API.Keys))
		for i := range keys {
			keys[i] = redactedText
		}
		c.API.Keys = keys
	}
	c.Sandbox.AdditionalReadDirs = append([]string(nil), c.Sandbox.AdditionalReadDirs...)
	c.Sandbox.AdditionalWriteDirs = append([]string(nil), c.Sandbox.AdditionalWriteDirs...)
	c.Sandbox.AllowedHostDirs = append([]string(nil), c.Sandbox.AllowedHostDirs...)
	c.warnings = append([]string(nil), c.warnings...)
	c.set = append([]string(nil), c.set...)
	return c
}

// String renders c as lines of NAME=value in registry order, in .env syntax
// that [ParseDotenv] reads back. Secrets that are set appear only as a
// comment, "# NAME=[redacted]", so the output never contains them.
func (c Config) String() string {
	var b strings.Builder
	for _, s := range registry {
		v := formatValue(s.field(&c))
		if s.secret && v != "" {
			fmt.Fprintf(&b, "# %s=%s\n", s.name, redactedText)
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", s.name, quoteDotenv(v))
	}
	return b.String()
}

// Format implements [fmt.Formatter] so that every verb, including %d and
// %#v, prints [Config.String] and never the raw struct with its secrets.
func (c Config) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue implements [slog.LogValuer]: a group of every setting by variable
// name, secrets redacted.
func (c Config) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(registry))
	for _, s := range registry {
		v := formatValue(s.field(&c))
		if s.secret && v != "" {
			v = redactedText
		}
		attrs = append(attrs, slog.String(s.name, v))
	}
	return slog.GroupValue(attrs...)
}

const redactedText = "[redacted]"

// Secret is a string that never prints: fmt (any verb), encoding/json,
// encoding.TextMarshaler users and log/slog all see "[redacted]" when it is
// set and "" when it is empty. Use [Secret.Reveal] where the value is really
// needed, and compare it in constant time.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String returns "[redacted]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redactedText
}

// Format implements [fmt.Formatter]; every verb prints [Secret.String].
func (s Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalText implements [encoding.TextMarshaler] with [Secret.String].
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements [slog.LogValuer] with [Secret.String].
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// ByteSize is a number of bytes, parsed by [ParseBytes] and printed by
// [FormatBytes].
type ByteSize int64

// Set parses s with [ParseBytes].
func (b *ByteSize) Set(s string) error {
	n, err := ParseBytes(s)
	if err != nil {
		return err
	}
	*b = ByteSize(n)
	return nil
}

// String formats b with [FormatBytes].
func (b ByteSize) String() string { return FormatBytes(int64(b)) }

// ProviderName selects the isolation backend: see the Provider* constants.
type ProviderName string

// Provider choices.
const (
	// ProviderAuto picks the strongest backend available.
	ProviderAuto ProviderName = "auto"
	// ProviderSeatbelt uses macOS sandbox-exec.
	ProviderSeatbelt = ProviderName(sandbox.ProviderSeatbelt)
	// ProviderDocker uses the Docker Engine (container isolation).
	ProviderDocker = ProviderName(sandbox.ProviderDocker)
	// ProviderBubblewrap uses bubblewrap (Linux namespaces).
	ProviderBubblewrap = ProviderName(sandbox.ProviderBubblewrap)
	// ProviderLocal runs host processes without isolation; it requires
	// SANDBOX__MOCK_MODE.
	ProviderLocal = ProviderName(sandbox.ProviderLocal)
	// ProviderKubernetes runs one pod per sandbox on a cluster; never
	// chosen by auto.
	ProviderKubernetes = ProviderName(sandbox.ProviderKubernetes)
	// ProviderForkServer forks Linux sandboxes from a fork server (ADR
	// 0017); chosen by name only, never by auto.
	ProviderForkServer = ProviderName(sandbox.ProviderForkServer)
)

var providerEnum = enum{
	what:    "provider",
	values:  []string{string(ProviderAuto), string(ProviderSeatbelt), string(ProviderBubblewrap), string(ProviderDocker), string(ProviderLocal), string(ProviderKubernetes), string(ProviderForkServer)},
	aliases: map[string]string{"bwrap": string(ProviderBubblewrap), "k8s": string(ProviderKubernetes)},
}

// Set parses a provider name, case-insensitively; "bwrap" means bubblewrap.
func (p *ProviderName) Set(s string) error {
	v, err := providerEnum.parse(s)
	if err == nil {
		*p = ProviderName(v)
	}
	return err
}

// String returns the provider name.
func (p ProviderName) String() string { return string(p) }

func (ProviderName) choices() *enum { return &providerEnum }

// Switch is a setting that is on, off, or left to a default that depends
// on the provider (auto).
type Switch string

// Switch values.
const (
	SwitchAuto Switch = "auto"
	SwitchOn   Switch = "true"
	SwitchOff  Switch = "false"
)

var switchEnum = enum{
	what:   "switch",
	values: []string{"auto", "true", "false"},
	aliases: map[string]string{
		"": "auto", "1": "true", "yes": "true", "on": "true", "t": "true",
		"0": "false", "no": "false", "off": "false", "f": "false",
	},
}

// Set parses auto, or a boolean as [ParseBool] does.
func (s *Switch) Set(v string) error {
	w, err := switchEnum.parse(v)
	if err == nil {
		*s = Switch(w)
	}
	return err
}

// String returns auto, true or false.
func (s Switch) String() string { return string(s) }

// Or returns def for auto (or unset), else whether s is on.
func (s Switch) Or(def bool) bool {
	switch s {
	case SwitchOn:
		return true
	case SwitchOff:
		return false
	}
	return def
}

func (Switch) choices() *enum { return &switchEnum }

// Templates maps E2B template names to images, written
// "name=image,name=image".
type Templates map[string]string

// Set parses "name=image" pairs separated by commas or white space. A name
// is 1 to 128 of A-Z a-z 0-9 _ . - /; an image is not empty and has no
// '=' or control character; a name given twice is an error.
func (t *Templates) Set(s string) error {
	out := Templates{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		name, image, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return badValue(s, fmt.Sprintf("%q is not name=image", f))
		case !templateName(name):
			return badValue(s, fmt.Sprintf("template name %q is not 1 to 128 of A-Z a-z 0-9 _ . - /", name))
		case image == "" || strings.ContainsAny(image, "=") || strings.ContainsFunc(image, unicode.IsControl):
			return badValue(s, fmt.Sprintf("template %s: image %q is empty or contains '=' or a control character", name, image))
		case out[name] != "":
			return badValue(s, fmt.Sprintf("template %s is given twice", name))
		}
		out[name] = image
	}
	if len(out) == 0 {
		out = nil
	}
	*t = out
	return nil
}

func templateName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-' || c == '/') {
			return false
		}
	}
	return true
}

// String writes the pairs sorted by name, separated by commas.
func (t Templates) String() string {
	names := make([]string, 0, len(t))
	for n := range t {
		names = append(names, n)
	}
	slices.Sort(names)
	for i, n := range names {
		names[i] = n + "=" + t[n]
	}
	return strings.Join(names, ",")
}

// Words is a list of names, written separated by commas or white space.
type Words []string

// Set parses a list separated by commas or white space; empty entries are
// dropped, so "" is the empty list.
func (w *Words) Set(s string) error {
	var out Words
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		if strings.ContainsFunc(f, unicode.IsControl) {
			return badValue(s, "not a list of names: it contains a control character")
		}
		out = append(out, f)
	}
	*w = out
	return nil
}

// String joins the list with commas.
func (w Words) String() string { return strings.Join(w, ",") }

// LogLevel is the minimum level of the operational log.
type LogLevel string

// Log levels.
const (
	LevelDebug LogLevel = "debug"
	LevelInfo  LogLevel = "info"
	LevelWarn  LogLevel = "warn"
	LevelError LogLevel = "error"
)

var levelEnum = enum{
	what:    "log level",
	values:  []string{"debug", "info", "warn", "error"},
	aliases: map[string]string{"warning": "warn"},
}

// Set parses a level, case-insensitively; "warning" means warn.
func (l *LogLevel) Set(s string) error {
	v, err := levelEnum.parse(s)
	if err == nil {
		*l = LogLevel(v)
	}
	return err
}

// String returns the level name.
func (l LogLevel) String() string { return string(l) }

func (LogLevel) choices() *enum { return &levelEnum }

// Level returns the matching [slog.Level]; unknown levels give slog.LevelInfo.
func (l LogLevel) Level() slog.Level {
	switch l {
	case LevelDebug:
		return slog.LevelDebug
	case LevelWarn:
		return slog.LevelWarn
	case LevelError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogFormat is the encoding of the operational log.
type LogFormat string

// Log formats.
const (
	// LogText is slog's text format.
	LogText LogFormat = "text"
	// LogJSON is slog's JSON format.
	LogJSON LogFormat = "json"
	// LogAuto is text when stderr is a terminal and JSON otherwise; package
	// main decides.
	LogAuto LogFormat = "auto"
)

var formatEnum = enum{what: "log format", values: []string{"text", "json", "auto"}}

// Set parses a format name, case-insensitively.
func (f *LogFormat) Set(s string) error {
	v, err := formatEnum.parse(s)
	if err == nil {
		*f = LogFormat(v)
	}
	return err
}

// String returns the format name.
func (f LogFormat) String() string { return string(f) }

func (LogFormat) choices() *enum { return &formatEnum }
