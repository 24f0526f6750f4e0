package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestValidateEachRule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want string // the one error expected; "" for none
	}{
		{name: "memory minimum", env: map[string]string{"SANDBOX__MEMORY_LIMIT": "6m"}},
		{name: "memory below minimum", env: map[string]string{"SANDBOX__MEMORY_LIMIT": "5m"},
			want: `SANDBOX__MEMORY_LIMIT="5m" (from the environment): must be at least 6m`},
		{name: "plain number is bytes", env: map[string]string{"SANDBOX__MEMORY_LIMIT": "512"},
			want: `SANDBOX__MEMORY_LIMIT="512" (from the environment): must be at least 6m`},
		{name: "memory seed invalid", env: map[string]string{"SANDBOX__MEMORY_LIMIT": "invalid"},
			want: `SANDBOX__MEMORY_LIMIT="invalid" (from the environment): not a byte size (want a whole number with an optional unit b, k, m, g or t, e.g. 512m)`},
		{name: "cpu at count", env: map[string]string{"SANDBOX__CPU_LIMIT": "4"}},
		{name: "cpu minimum", env: map[string]string{"SANDBOX__CPU_LIMIT": "0.1"}},
		{name: "cpu too small", env: map[string]string{"SANDBOX__CPU_LIMIT": "0.05"},
			want: `SANDBOX__CPU_LIMIT="0.05" (from the environment): must be between 0.1 and 4 (the number of CPUs)`},
		{name: "cpu above count", env: map[string]string{"SANDBOX__CPU_LIMIT": "4.5"},
			want: `SANDBOX__CPU_LIMIT="4.5" (from the environment): must be between 0.1 and 4 (the number of CPUs)`},
		{name: "pids low", env: map[string]string{"SANDBOX__PIDS_LIMIT": "7"},
			want: `SANDBOX__PIDS_LIMIT="7" (from the environment): must be between 8 and 32768`},
		{name: "pids high", env: map[string]string{"SANDBOX__PIDS_LIMIT": "32769"},
			want: `SANDBOX__PIDS_LIMIT="32769" (from the environment): must be between 8 and 32768`},
		{name: "timeout seconds max", env: map[string]string{"SANDBOX__TIMEOUT": "3600"}},
		{name: "timeout too long", env: map[string]string{"SANDBOX__TIMEOUT": "61m"},
			want: `SANDBOX__TIMEOUT="61m" (from the environment): must be between 1s and 1h`},
		{name: "timeout zero", env: map[string]string{"SANDBOX__TIMEOUT": "0"},
			want: `SANDBOX__TIMEOUT="0" (from the environment): must be between 1s and 1h`},
		{name: "docker timeout", env: map[string]string{"SANDBOX__DOCKER_CONNECTION_TIMEOUT": "31"},
			want: `SANDBOX__DOCKER_CONNECTION_TIMEOUT="31" (from the environment): must be between 1s and 30s`},
		{name: "docker retries", env: map[string]string{"SANDBOX__DOCKER_MAX_RETRIES": "-1"},
			want: `SANDBOX__DOCKER_MAX_RETRIES="-1" (from the environment): must be between 0 and 10`},
		{name: "output small", env: map[string]string{"SANDBOX__MAX_OUTPUT_BYTES": "1023"},
			want: `SANDBOX__MAX_OUTPUT_BYTES="1023" (from the environment): must be between 1k and 64m`},
		{name: "output large", env: map[string]string{"SANDBOX__MAX_OUTPUT_BYTES": "65m"},
			want: `SANDBOX__MAX_OUTPUT_BYTES="65m" (from the environment): must be between 1k and 64m`},
		{name: "sandboxes zero", env: map[string]string{"SANDBOX__MAX_SANDBOXES": "0"},
			want: `SANDBOX__MAX_SANDBOXES="0" (from the environment): must be between 1 and 10000`},
		{name: "idle never", env: map[string]string{"SANDBOX__IDLE_TIMEOUT": "0"}},
		{name: "idle negative", env: map[string]string{"SANDBOX__IDLE_TIMEOUT": "-1s"},
			want: `SANDBOX__IDLE_TIMEOUT="-1s" (from the environment): must be between 0s and 168h`},
		{name: "request bytes", env: map[string]string{"SANDBOX__MAX_REQUEST_BYTES": "2g"},
			want: `SANDBOX__MAX_REQUEST_BYTES="2g" (from the environment): must be between 1k and 1g`},
		{name: "port zero", env: map[string]string{"API__PORT": "0"}},
		{name: "port privileged", env: map[string]string{"API__PORT": "80"}},
		{name: "port high", env: map[string]string{"API__PORT": "65536"},
			want: `API__PORT="65536" (from the environment): must be between 0 and 65535`},
		{name: "local without mock", env: map[string]string{"SANDBOX__PROVIDER": "local"},
			want: `SANDBOX__PROVIDER="local" (from the environment): local runs code without isolation and requires SANDBOX__MOCK_MODE=true`},
		{name: "local with mock", env: map[string]string{"SANDBOX__PROVIDER": "local", "SANDBOX__MOCK_MODE": "true"}},
		{name: "docker required with bwrap", env: map[string]string{"SANDBOX__PROVIDER": "bwrap", "SANDBOX__DOCKER_REQUIRED": "yes"},
			want: `SANDBOX__DOCKER_REQUIRED="yes" (from the environment): true contradicts SANDBOX__PROVIDER=bubblewrap`},
		{name: "docker required without detection", env: map[string]string{"SANDBOX__DOCKER_AUTO_DETECT": "0", "SANDBOX__DOCKER_REQUIRED": "1"},
			want: `SANDBOX__DOCKER_REQUIRED="1" (from the environment): true contradicts SANDBOX__DOCKER_AUTO_DETECT=false`},
		{name: "docker required with docker", env: map[string]string{"SANDBOX__PROVIDER": "docker", "SANDBOX__DOCKER_AUTO_DETECT": "0", "SANDBOX__DOCKER_REQUIRED": "1"}},
		{name: "docker host unix", env: map[string]string{"SANDBOX__DOCKER_HOST": "unix:///var/run/docker.sock"}},
		{name: "docker runtime runsc", env: map[string]string{"SANDBOX__DOCKER_RUNTIME": "runsc"}},
		{name: "docker runtime shim name", env: map[string]string{"SANDBOX__DOCKER_RUNTIME": "io.containerd.runsc.v1"}},
		{name: "docker runtime default", env: map[string]string{"SANDBOX__DOCKER_RUNTIME": ""}},
		{name: "docker runtime path", env: map[string]string{"SANDBOX__DOCKER_RUNTIME": "/usr/bin/runsc"},
			want: `SANDBOX__DOCKER_RUNTIME="/usr/bin/runsc" (from the environment): must be empty (the daemon's default) or a runtime name of 1 to 128 of A-Z a-z 0-9 _ . -, such as runsc`},
		{name: "docker runtime flag", env: map[string]string{"SANDBOX__DOCKER_RUNTIME": "--network=host"},
			want: `SANDBOX__DOCKER_RUNTIME="--network=host" (from the environment): must be empty (the daemon's default) or a runtime name of 1 to 128 of A-Z a-z 0-9 _ . -, such as runsc`},
		{name: "docker runtime space", env: map[string]string{"SANDBOX__DOCKER_RUNTIME": "run sc"},
			want: `SANDBOX__DOCKER_RUNTIME="run sc" (from the environment): must be empty (the daemon's default) or a runtime name of 1 to 128 of A-Z a-z 0-9 _ . -, such as runsc`},
		{name: "docker host tcp", env: map[string]string{"SANDBOX__DOCKER_HOST": "TCP://10.0.0.1:2376"}},
		{name: "docker host no scheme", env: map[string]string{"SANDBOX__DOCKER_HOST": "/var/run/docker.sock"},
			want: `SANDBOX__DOCKER_HOST="/var/run/docker.sock" (from the environment): must be an address such as unix:///var/run/docker.sock or tcp://host:2376`},
		{name: "docker host ssh", env: map[string]string{"SANDBOX__DOCKER_HOST": "ssh://me@host"},
			want: `SANDBOX__DOCKER_HOST="ssh://me@host" (from the environment): ssh:// needs the docker CLI's connection helper; forward the socket and use unix:// or tcp://`},
		{name: "docker host scheme", env: map[string]string{"SANDBOX__DOCKER_HOST": "fd://"},
			want: `SANDBOX__DOCKER_HOST="fd://" (from the environment): must be an address such as unix:///var/run/docker.sock or tcp://host:2376`},
		{name: "docker host other scheme", env: map[string]string{"SANDBOX__DOCKER_HOST": "ftp://x"},
			want: `SANDBOX__DOCKER_HOST="ftp://x" (from the environment): scheme "ftp" is not one of unix, tcp, npipe, http, https`},
		{name: "image with space", env: map[string]string{"SANDBOX__IMAGE": "my image"},
			want: `SANDBOX__IMAGE="my image" (from the environment): must be an image reference without spaces, such as warden-runtime:latest`},
		{name: "prefix bad", env: map[string]string{"SANDBOX__CONTAINER_NAME_PREFIX": "-bad/"},
			want: `SANDBOX__CONTAINER_NAME_PREFIX="-bad/" (from the environment): must be 1 to 32 of A-Z a-z 0-9 _ . - starting with a letter or digit`},
		{name: "workspace relative", env: map[string]string{"SANDBOX__WORKSPACE_ROOT": "work"},
			want: `SANDBOX__WORKSPACE_ROOT="work" (from the environment): must be an absolute path`},
		{name: "dirs fine", env: map[string]string{"SANDBOX__ADDITIONAL_READ_DIRS": "/data,/srv/models", "SANDBOX__ADDITIONAL_WRITE_DIRS": "/home/me/out"}},
		{name: "dir relative", env: map[string]string{"SANDBOX__ADDITIONAL_READ_DIRS": "data"},
			want: `SANDBOX__ADDITIONAL_READ_DIRS="data" (from the environment): "data" is not an absolute path`},
		{name: "dir reserved", env: map[string]string{"SANDBOX__ADDITIONAL_WRITE_DIRS": "/usr/lib"},
			want: `SANDBOX__ADDITIONAL_WRITE_DIRS="/usr/lib" (from the environment): "/usr/lib" cannot be mounted: mount target "/usr/lib" would cover a system directory of the sandbox`},
		{name: "dir cleaned then reserved", env: map[string]string{"SANDBOX__ADDITIONAL_READ_DIRS": "/data/../etc"},
			want: `SANDBOX__ADDITIONAL_READ_DIRS="/data/../etc" (from the environment): "/etc" cannot be mounted: mount target "/etc" would cover a system directory of the sandbox`},
		{name: "dir over workspace", env: map[string]string{"SANDBOX__ADDITIONAL_READ_DIRS": "/workspace"},
			want: `SANDBOX__ADDITIONAL_READ_DIRS="/workspace" (from the environment): "/workspace" cannot be mounted: mount target "/workspace" is used twice`},
		{name: "dir twice", env: map[string]string{"SANDBOX__ADDITIONAL_READ_DIRS": "/data,/data/"},
			want: `SANDBOX__ADDITIONAL_READ_DIRS="/data,/data/" (from the environment): "/data" is listed twice`},
		{name: "dir in both", env: map[string]string{"SANDBOX__ADDITIONAL_READ_DIRS": "/data", "SANDBOX__ADDITIONAL_WRITE_DIRS": "/data"},
			want: `SANDBOX__ADDITIONAL_WRITE_DIRS="/data" (from the environment): "/data" is also in SANDBOX__ADDITIONAL_READ_DIRS`},
		{name: "host any", env: map[string]string{"API__HOST": "0.0.0.0"}},
		{name: "host ipv6", env: map[string]string{"API__HOST": "::1"}},
		{name: "host ipv6 brackets", env: map[string]string{"API__HOST": "[::1]"}},
		{name: "host ipv6 zone", env: map[string]string{"API__HOST": "fe80::1%eth0"}},
		{name: "host name", env: map[string]string{"API__HOST": "warden.internal"}},
		{name: "host with port", env: map[string]string{"API__HOST": "127.0.0.1:8000"},
			want: `API__HOST="127.0.0.1:8000" (from the environment): must be an IP address or host name, without scheme or port`},
		{name: "host url", env: map[string]string{"API__HOST": "http://x"},
			want: `API__HOST="http://x" (from the environment): must be an IP address or host name, without scheme or port`},
		{name: "host bracketed v4", env: map[string]string{"API__HOST": "[1.2.3.4]"},
			want: `API__HOST="[1.2.3.4]" (from the environment): must be an IP address or host name, without scheme or port`},
		{name: "host dash label", env: map[string]string{"API__HOST": "-x.example"},
			want: `API__HOST="-x.example" (from the environment): must be an IP address or host name, without scheme or port`},
		{name: "keys fine", env: map[string]string{"API__KEYS": "0123456789abcdef,fedcba9876543210"}},
		{name: "key with space", env: map[string]string{"API__KEYS": "0123456789abcdef,bad key here ok"},
			want: `API__KEYS (from the environment): key 2 of 2 is empty or contains a space or control character`},
		{name: "secret long enough", env: map[string]string{"SECURITY__SECRET_KEY": strings.Repeat("k", 32)}},
		{name: "secret runes counted", env: map[string]string{"SECURITY__SECRET_KEY": strings.Repeat("é", 32)}},
		{name: "secret short", env: map[string]string{"SECURITY__SECRET_KEY": strings.Repeat("k", 31)},
			want: `SECURITY__SECRET_KEY (from the environment): must be at least 32 characters long, not 31`},
		{name: "level", env: map[string]string{"LOG__LEVEL": "verbose"},
			want: `LOG__LEVEL="verbose" (from the environment): not a log level (want one of debug, info, warn, error)`},
		{name: "alias named in error", env: map[string]string{"sandbox_pids_limit": "1"},
			want: `SANDBOX__PIDS_LIMIT="1" (set as sandbox_pids_limit in the environment): must be between 8 and 32768`},
		{name: "int parse", env: map[string]string{"API__PORT": "eighty"},
			want: `API__PORT="eighty" (from the environment): not a whole number`},
		{name: "bool parse", env: map[string]string{"SANDBOX__ENABLED": "enabled"},
			want: `SANDBOX__ENABLED="enabled" (from the environment): not a boolean (want true/false, 1/0, yes/no or on/off)`},
		{name: "float parse", env: map[string]string{"SANDBOX__CPU_LIMIT": "half"},
			want: `SANDBOX__CPU_LIMIT="half" (from the environment): not a decimal number`},
		{name: "duration parse", env: map[string]string{"SANDBOX__IDLE_TIMEOUT": "1 day"},
			want: `SANDBOX__IDLE_TIMEOUT="1 day" (from the environment): not a duration (want seconds such as 30 or 1.5, or a Go duration such as 90s or 2m)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Loader{Environ: environ(tt.env), NumCPU: func() int { return 4 }}.Load()
			if got := errText(err); got != tt.want {
				t.Errorf("Load(%q) error =\n%s\nwant\n%s", tt.env, got, tt.want)
			}
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || !errors.Is(err, sandbox.ErrInvalid) {
					t.Errorf("Load(%q) error is not a *FieldError matching sandbox.ErrInvalid", tt.env)
				}
			}
		})
	}
}

func TestValidateAllAtOnce(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"SANDBOX__MEMORY_LIMIT":   "1m",
		"SANDBOX__CPU_LIMIT":      "99",
		"SANDBOX__PIDS_LIMIT":     "lots",
		"SANDBOX__TIMEOUT":        "2h",
		"SANDBOX__PROVIDER":       "modal",
		"API__PORT":               "-1",
		"API__HOST":               "a b",
		"SECURITY__SECRET_KEY":    "short-secret",
		"LOG__FORMAT":             "xml",
		"SANDBOX__ENABLE_NETWORK": "1", "SANDBOX__NETWORK_DISABLED": "1",
	}
	_, err := Loader{Environ: environ(env), NumCPU: func() int { return 2 }}.Load()
	if err == nil {
		t.Fatal("Load() = nil error")
	}
	var names []string
	for _, e := range unjoin(err) {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("error %v is not a *FieldError", e)
		}
		names = append(names, fe.Name)
	}
	want := []string{
		// Parse errors, in registry order,
		"SANDBOX__PROVIDER", "SANDBOX__PIDS_LIMIT", "SANDBOX__NETWORK_DISABLED", "LOG__FORMAT",
		// then range and consistency errors.
		"SANDBOX__MEMORY_LIMIT", "SANDBOX__CPU_LIMIT", "SANDBOX__TIMEOUT", "API__PORT", "API__HOST", "SECURITY__SECRET_KEY",
	}
	if !slices.Equal(names, want) {
		t.Errorf("errors for %q,\nwant %q; errors:\n%v", names, want, err)
	}

	// Validate on a hand-built Config reports without sources.
	c := Defaults()
	c.Sandbox.PidsLimit = 1
	c.Log.Level = "loud"
	c.Sandbox.Provider = ""
	c.Sandbox.Image = ""
	c.Security.SecretKey = "tiny"
	wantMsgs := []string{
		`SANDBOX__PROVIDER: not a provider (want one of auto, seatbelt, bubblewrap, docker, local, kubernetes, forkserver)`,
		`SANDBOX__PIDS_LIMIT="1": must be between 8 and 32768`,
		`LOG__LEVEL="loud": not a log level (want one of debug, info, warn, error)`,
		`SANDBOX__IMAGE: must be an image reference without spaces, such as warden-runtime:latest`,
		`SECURITY__SECRET_KEY: must be at least 32 characters long, not 4`,
	}
	if got := strings.Split(errText(c.Validate()), "\n"); !slices.Equal(got, wantMsgs) {
		t.Errorf("Validate() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantMsgs, "\n"))
	}
}

func TestZeroConfigInvalid(t *testing.T) {
	t.Parallel()
	if err := (Config{}).Validate(); err == nil {
		t.Error("Config{}.Validate() = nil; the zero Config is not usable and must say so")
	}
}

func TestWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{name: "defaults", want: nil},
		{name: "mock mode", env: map[string]string{"SANDBOX__MOCK_MODE": "true"},
			want: []string{"SANDBOX__MOCK_MODE=true: the local provider may run code on this host with no isolation"}},
		{name: "exposed without keys", env: map[string]string{"API__HOST": "::"},
			want: []string{"API__HOST=:: accepts connections from other hosts and API__KEYS is empty: anyone who can reach the port can run code"}},
		{name: "exposed with keys", env: map[string]string{"API__HOST": "0.0.0.0", "API__KEYS": "0123456789abcdef0123"}},
		{name: "localhost", env: map[string]string{"API__HOST": "localhost"}},
		{name: "ipv6 loopback", env: map[string]string{"API__HOST": "[::1]"}},
		{name: "short key", env: map[string]string{"API__KEYS": "0123456789abcdef,short"},
			want: []string{"API__KEYS: key 2 of 2 is shorter than 16 characters"}},
		{name: "seed placeholder", env: map[string]string{"SECURITY__SECRET_KEY": "your-super-secret-key-change-this-in-production"},
			want: []string{"SECURITY__SECRET_KEY looks like a placeholder from an example file; set a random value"}},
		{name: "seed check string", env: map[string]string{"SECURITY__SECRET_KEY": "something-CHANGE-IN-PRODUCTION-please"},
			want: []string{"SECURITY__SECRET_KEY looks like a placeholder from an example file; set a random value"}},
		{name: "changeme", env: map[string]string{"SECURITY__SECRET_KEY": "changeme-changeme-changeme-changeme"},
			want: []string{"SECURITY__SECRET_KEY looks like a placeholder from an example file; set a random value"}},
		{name: "random secret", env: map[string]string{"SECURITY__SECRET_KEY": "3b9f0e6c1a7d4e2f8b5c9a0d6e3f1b7c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, Loader{Environ: environ(tt.env)})
			if got := c.Warnings(); !slices.Equal(got, tt.want) {
				t.Errorf("Warnings() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFieldErrorFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  FieldError
		want string
	}{
		{FieldError{Name: "A__B", Reason: "bad"}, "A__B: bad"},
		{FieldError{Name: "A__B", Value: "x y", Reason: "bad"}, `A__B="x y": bad`},
		{FieldError{Name: "A__B", Value: "\n", Reason: "bad", Source: ".env"}, `A__B="\n" (from .env): bad`},
		{FieldError{Name: "A__B", Value: "1", Reason: "bad", Source: ".env", Key: "A__B"}, `A__B="1" (from .env): bad`},
		{FieldError{Name: "A__B", Value: "1", Reason: "bad", Source: ".env", Key: "a_b"}, `A__B="1" (set as a_b in .env): bad`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("FieldError%+v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}
