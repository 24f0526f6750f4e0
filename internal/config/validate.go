package config

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// FieldError is one invalid setting. It matches [sandbox.ErrInvalid].
type FieldError struct {
	// Name is the canonical variable name, e.g. SANDBOX__MEMORY_LIMIT.
	Name string
	// Value is the offending value; it is empty for secrets, which are
	// never echoed.
	Value string
	// Reason says what is wrong and what is accepted.
	Reason string
	// Source is where the value was set ("the environment", ".env",
	// "overrides"), or "" when unknown, as for [Config.Validate].
	Source string
	// Key is the spelling used in Source, when it differs from Name.
	Key string
}

// Error returns, for example,
// `SANDBOX__PIDS_LIMIT="4" (from the environment): must be between 8 and 32768`.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Name)
	if e.Value != "" {
		fmt.Fprintf(&b, "=%q", e.Value)
	}
	switch {
	case e.Source == "":
	case e.Key != "" && e.Key != e.Name:
		fmt.Fprintf(&b, " (set as %s in %s)", printable(e.Key), e.Source)
	default:
		fmt.Fprintf(&b, " (from %s)", e.Source)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap returns [sandbox.ErrInvalid].
func (e *FieldError) Unwrap() error { return sandbox.ErrInvalid }

// Validate reports every invalid setting at once: the errors.Join of one
// [*FieldError] per problem, or nil. [Loader.Load] already calls it.
func (c Config) Validate() error { return errors.Join(c.validate(nil)...) }

func (c *Config) validate(origins map[string]origin) []error {
	var errs []error
	bad := func(name, reason string) {
		fe := &FieldError{Name: name, Reason: reason}
		if s, _, ok := lookup(name); ok && !s.secret {
			fe.Value = formatValue(s.field(c))
		}
		if o, ok := origins[name]; ok {
			fe.Source, fe.Key = o.layer, o.key
			if fe.Value != "" {
				fe.Value = o.value // as the operator wrote it
			}
		}
		errs = append(errs, fe)
	}

	for i := range registry {
		s := &registry[i]
		p := s.field(c)
		if ev, ok := p.(enumValue); ok {
			if _, err := ev.choices().parse(formatValue(p)); err != nil {
				reason := err.Error()
				if ve := (*valueError)(nil); errors.As(err, &ve) {
					reason = ve.reason
				}
				bad(s.name, reason)
				continue
			}
		}
		if s.rule != nil {
			if reason := s.rule.check(c, p); reason != "" {
				bad(s.name, reason)
			}
		}
	}

	sb := &c.Sandbox
	if sb.Provider == ProviderLocal && !sb.MockMode {
		bad("SANDBOX__PROVIDER", "local runs code without isolation and requires SANDBOX__MOCK_MODE=true")
	}
	if sb.DockerRequired {
		switch {
		case sb.Provider == ProviderBubblewrap || sb.Provider == ProviderSeatbelt || sb.Provider == ProviderLocal || sb.Provider == ProviderForkServer:
			bad("SANDBOX__DOCKER_REQUIRED", fmt.Sprintf("true contradicts SANDBOX__PROVIDER=%s", sb.Provider))
		case sb.Provider == ProviderAuto && !sb.DockerAutoDetect:
			bad("SANDBOX__DOCKER_REQUIRED", "true contradicts SANDBOX__DOCKER_AUTO_DETECT=false")
		}
	}
	if reason := checkDockerHost(sb.DockerHost); reason != "" {
		bad("SANDBOX__DOCKER_HOST", reason)
	}
	if !runtimeName(sb.DockerRuntime) {
		bad("SANDBOX__DOCKER_RUNTIME", "must be empty (the daemon's default) or a runtime name of 1 to 128 of A-Z a-z 0-9 _ . -, such as runsc")
	}
	if sb.Image == "" || strings.ContainsFunc(sb.Image, isSpaceOrControl) {
		bad("SANDBOX__IMAGE", "must be an image reference without spaces, such as warden-runtime:latest")
	}
	if sandbox.ValidateName(sb.ContainerNamePrefix) != nil {
		bad("SANDBOX__CONTAINER_NAME_PREFIX", "must be 1 to 32 of A-Z a-z 0-9 _ . - starting with a letter or digit")
	}
	if sandbox.ValidateWorkspacePath(sb.VolumeMountPath) != nil {
		bad("SANDBOX__VOLUME_MOUNT_PATH", "must be a clean absolute path outside the sandbox's system directories, such as /workspace")
	}
	if !filepath.IsAbs(sb.WorkspaceRoot) {
		bad("SANDBOX__WORKSPACE_ROOT", "must be an absolute path")
	}
	seen := make(map[string]string)
	for _, l := range []struct {
		name     string
		dirs     []string
		readOnly bool
	}{
		{"SANDBOX__ADDITIONAL_READ_DIRS", sb.AdditionalReadDirs, true},
		{"SANDBOX__ADDITIONAL_WRITE_DIRS", sb.AdditionalWriteDirs, false},
	} {
		for _, d := range l.dirs {
			switch {
			case !filepath.IsAbs(d):
				bad(l.name, fmt.Sprintf("%q is not an absolute path", d))
			case seen[d] == l.name:
				bad(l.name, fmt.Sprintf("%q is listed twice", d))
			case seen[d] != "":
				bad(l.name, fmt.Sprintf("%q is also in %s", d, seen[d]))
			default:
				if err := mountSpec(d, l.readOnly).Validate(); err != nil {
					bad(l.name, fmt.Sprintf("%q cannot be mounted: %s", d, strings.TrimSuffix(err.Error(), ": "+sandbox.ErrInvalid.Error())))
				}
			}
			if seen[d] == "" {
				seen[d] = l.name
			}
		}
	}

	for _, d := range sb.AllowedHostDirs {
		if !filepath.IsAbs(d) {
			bad("SANDBOX__ALLOWED_HOST_DIRS", fmt.Sprintf("%q is not an absolute path", d))
		}
	}

	if reason := checkHost(c.API.Host); reason != "" {
		bad("API__HOST", reason)
	}
	for i, k := range c.API.Keys {
		if k == "" || strings.ContainsFunc(string(k), isSpaceOrControl) {
			bad("API__KEYS", fmt.Sprintf("key %d of %d is empty or contains a space or control character", i+1, len(c.API.Keys)))
		}
	}
	if k := c.Security.SecretKey; k != "" && utf8.RuneCountInString(string(k)) < 32 {
		bad("SECURITY__SECRET_KEY", fmt.Sprintf("must be at least 32 characters long, not %d", utf8.RuneCountInString(string(k))))
	}
	return errs
}

// mountSpec is a sandbox spec with one mount of dir at the same path, for
// checking dir with the sandbox package's own mount rules.
func mountSpec(dir string, readOnly bool) sandbox.Spec {
	return sandbox.Spec{Mounts: []sandbox.Mount{{Source: dir, Target: dir, ReadOnly: readOnly}}}.WithDefaults()
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }

var dockerSchemes = []string{"unix", "tcp", "npipe", "http", "https"}

// checkDockerHost returns why h is not a Docker daemon address, or "".
func checkDockerHost(h string) string {
	if h == "" {
		return ""
	}
	scheme, rest, ok := strings.Cut(h, "://")
	switch {
	case !ok || rest == "" || strings.ContainsFunc(h, isSpaceOrControl):
		return "must be an address such as unix:///var/run/docker.sock or tcp://host:2376"
	case strings.EqualFold(scheme, "ssh"):
		return "ssh:// needs the docker CLI's connection helper; forward the socket and use unix:// or tcp://"
	case !slices.Contains(dockerSchemes, strings.ToLower(scheme)):
		return fmt.Sprintf("scheme %q is not one of %s", scheme, strings.Join(dockerSchemes, ", "))
	}
	return ""
}

// runtimeName reports whether s can name a Docker runtime: empty (the
// daemon's default), or 1 to 128 of A-Z a-z 0-9 _ . - not starting with a
// dot or dash ("runsc", "io.containerd.runsc.v1").
func runtimeName(s string) bool {
	if s == "" {
		return true
	}
	if len(s) > 128 || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// checkHost returns why h is not a listen host, or "". IPv6 addresses may
// be given with or without brackets.
func checkHost(h string) string {
	const reason = "must be an IP address or host name, without scheme or port"
	inner := strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if _, err := netip.ParseAddr(inner); err == nil {
		if inner != h && !strings.Contains(inner, ":") {
			return reason // brackets around an IPv4 address
		}
		return ""
	}
	if inner != h || len(h) == 0 || len(h) > 253 {
		return reason
	}
	for label := range strings.SplitSeq(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return reason
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return reason
			}
		}
	}
	return ""
}

func isLoopback(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	return err == nil && a.IsLoopback()
}

// Warnings returns problems that do not stop Warden from starting but that
// an operator should see: unknown or shadowed variables found by
// [Loader.Load], and risky or placeholder values. Nothing in a warning
// reveals a secret.
func (c Config) Warnings() []string {
	out := slices.Clone(c.warnings)
	if c.Sandbox.MockMode {
		out = append(out, "SANDBOX__MOCK_MODE=true: the local provider may run code on this host with no isolation")
	}
	if len(c.API.Keys) == 0 && checkHost(c.API.Host) == "" && !isLoopback(c.API.Host) {
		out = append(out, fmt.Sprintf("API__HOST=%s accepts connections from other hosts and API__KEYS is empty: anyone who can reach the port can run code", c.API.Host))
	}
	for i, k := range c.API.Keys {
		if n := utf8.RuneCountInString(string(k)); n > 0 && n < 16 {
			out = append(out, fmt.Sprintf("API__KEYS: key %d of %d is shorter than 16 characters", i+1, len(c.API.Keys)))
		}
	}
	if k := strings.ToLower(string(c.Security.SecretKey)); strings.Contains(k, "changeme") ||
		strings.Contains(k, "change") && strings.Contains(k, "production") {
		out = append(out, "SECURITY__SECRET_KEY looks like a placeholder from an example file; set a random value")
	}
	return out
}
