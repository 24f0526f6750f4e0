package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// getenv returns a getenv func backed by m.
func getenv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// environ turns m into os.Environ form.
func environ(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func mustLoad(t *testing.T, l Loader) Config {
	t.Helper()
	c, err := l.Load()
	if err != nil {
		t.Fatalf("Load() error: %v", err)
	}
	return c
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	for name, l := range map[string]Loader{
		"zero loader":     {},
		"nil getenv":      {Getenv: nil},
		"empty getenv":    {Getenv: getenv(nil)},
		"empty environ":   {Environ: []string{}},
		"unrelated env":   {Environ: []string{"PATH=/bin", "HOME=/root", "SANDBOX_INTEGRATION=1"}},
		"empty overrides": {Overrides: map[string]string{}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, l)
			if got, want := c.String(), Defaults().String(); got != want {
				t.Errorf("Load() =\n%s\nwant defaults\n%s", got, want)
			}
			if w := c.Warnings(); len(w) != 0 {
				t.Errorf("Load().Warnings() = %q, want none", w)
			}
		})
	}
	c, err := Load(nil, nil)
	if err != nil || c.String() != Defaults().String() {
		t.Errorf("Load(nil, nil) = %v, %v", c, err)
	}
}

func TestDefaultValues(t *testing.T) {
	t.Parallel()
	c := Defaults()
	sb := c.Sandbox
	checks := []struct {
		name      string
		got, want any
	}{
		{"Enabled", sb.Enabled, true},
		{"MockMode", sb.MockMode, false},
		{"Provider", sb.Provider, ProviderAuto},
		{"ProviderFallback", sb.ProviderFallback, true},
		{"DockerAutoDetect", sb.DockerAutoDetect, true},
		{"DockerRequired", sb.DockerRequired, false},
		{"DockerConnectionTimeout", sb.DockerConnectionTimeout, 5 * time.Second},
		{"DockerMaxRetries", sb.DockerMaxRetries, 3},
		{"DockerHost", sb.DockerHost, ""},
		{"DockerRuntime", sb.DockerRuntime, ""},
		{"Image", sb.Image, sandbox.DefaultImage},
		{"AutoPullImage", sb.AutoPullImage, false},
		{"MemoryLimit", sb.MemoryLimit, ByteSize(sandbox.DefaultMemoryLimit)},
		{"CPULimit", sb.CPULimit, sandbox.DefaultCPULimit},
		{"PidsLimit", sb.PidsLimit, sandbox.DefaultPidsLimit},
		{"Timeout", sb.Timeout, 30 * time.Second},
		{"MaxOutputBytes", sb.MaxOutputBytes, ByteSize(sandbox.DefaultOutputLimit)},
		{"NetworkDisabled", sb.NetworkDisabled, true},
		{"ContainerNamePrefix", sb.ContainerNamePrefix, sandbox.DefaultNamePrefix},
		{"MaxSandboxes", sb.MaxSandboxes, 32},
		{"IdleTimeout", sb.IdleTimeout, 10 * time.Minute},
		{"AdditionalReadDirs", len(sb.AdditionalReadDirs), 0},
		{"AdditionalWriteDirs", len(sb.AdditionalWriteDirs), 0},
		{"MaxRequestBytes", sb.MaxRequestBytes, ByteSize(10 << 20)},
		{"API.Host", c.API.Host, "127.0.0.1"},
		{"API.Port", c.API.Port, 8000},
		{"API.Keys", len(c.API.Keys), 0},
		{"Security.SecretKey", c.Security.SecretKey, Secret("")},
		{"Log.Level", c.Log.Level, LevelInfo},
		{"Log.Format", c.Log.Format, LogAuto},
		{"Addr", c.Addr(), "127.0.0.1:8000"},
	}
	for _, tt := range checks {
		if tt.got != tt.want {
			t.Errorf("Defaults().%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Defaults().Validate() = %v", err)
	}
}

func TestPrecedence(t *testing.T) {
	t.Parallel()
	const name = "SANDBOX__PIDS_LIMIT"
	tests := []struct {
		name                  string
		override, env, dotenv string // "" = not set in that source
		want                  int
		wantSource            string // in a range error, when the value is out of range
	}{
		{name: "default", want: 256},
		{name: "dotenv over default", dotenv: "100", want: 100},
		{name: "env over dotenv", env: "200", dotenv: "100", want: 200},
		{name: "override over env", override: "300", env: "200", dotenv: "100", want: 300},
		{name: "override over dotenv", override: "300", dotenv: "100", want: 300},
		{name: "override alone", override: "300", want: 300},
		{name: "empty env is unset", env: " ", dotenv: "100", want: 100},
		{name: "bad dotenv shadowed by env", env: "200", dotenv: "zillion", want: 200},
		{name: "error names env", env: "4", dotenv: "100", want: 4, wantSource: "the environment"},
		{name: "error names dotenv", dotenv: "4", want: 4, wantSource: ".env"},
		{name: "error names overrides", override: "4", want: 4, wantSource: "overrides"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			set := func(v string) map[string]string {
				if v == "" {
					return nil
				}
				return map[string]string{name: v}
			}
			// The environment through both getenv and environ must agree.
			for _, l := range []Loader{
				{Overrides: set(tt.override), Getenv: getenv(set(tt.env)), Dotenv: set(tt.dotenv)},
				{Overrides: set(tt.override), Environ: environ(set(tt.env)), Dotenv: set(tt.dotenv)},
			} {
				c, err := l.Load()
				if c.Sandbox.PidsLimit != tt.want {
					t.Errorf("PidsLimit = %d, want %d", c.Sandbox.PidsLimit, tt.want)
				}
				if tt.wantSource == "" {
					if err != nil {
						t.Errorf("Load() error: %v", err)
					}
					continue
				}
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Name != name || fe.Source != tt.wantSource {
					t.Errorf("Load() error = %v, want a FieldError for %s from %s", err, name, tt.wantSource)
				}
			}
		})
	}
}

func TestLoadHelper(t *testing.T) {
	t.Parallel()
	c, err := Load(getenv(map[string]string{"SANDBOX__IMAGE": "env:1"}), map[string]string{"SANDBOX__IMAGE": "dot:1", "API__PORT": "9000"})
	if err != nil || c.Sandbox.Image != "env:1" || c.API.Port != 9000 {
		t.Errorf("Load() = %q, %d, %v; want env:1, 9000", c.Sandbox.Image, c.API.Port, err)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       map[string]string
		useGetenv bool
		want      string // SANDBOX__IMAGE
		warn      string // a warning that must be present, if any
	}{
		{name: "canonical", env: map[string]string{"SANDBOX__IMAGE": "a"}, want: "a"},
		{name: "alias", env: map[string]string{"SANDBOX_IMAGE": "b"}, want: "b"},
		{name: "alias via getenv", env: map[string]string{"SANDBOX_IMAGE": "b"}, useGetenv: true, want: "b"},
		{name: "lower case", env: map[string]string{"sandbox__image": "c"}, want: "c"},
		{name: "lower case via getenv", env: map[string]string{"sandbox__image": "c"}, useGetenv: true, want: "c"},
		{name: "lower-case alias via getenv", env: map[string]string{"sandbox_image": "c"}, useGetenv: true, want: "c"},
		{name: "mixed case", env: map[string]string{"Sandbox__Image": "d"}, want: "d"},
		{name: "mixed-case alias", env: map[string]string{"Sandbox_Image": "d"}, want: "d"},
		{name: "mixed case not found via getenv", env: map[string]string{"Sandbox__Image": "d"}, useGetenv: true, want: sandbox.DefaultImage},
		{name: "double underscore wins", env: map[string]string{"SANDBOX_IMAGE": "alias", "SANDBOX__IMAGE": "canon"}, want: "canon",
			warn: "SANDBOX_IMAGE in the environment is ignored: SANDBOX__IMAGE is also set and takes precedence"},
		{name: "double underscore wins via getenv", env: map[string]string{"SANDBOX_IMAGE": "alias", "SANDBOX__IMAGE": "canon"}, useGetenv: true, want: "canon",
			warn: "SANDBOX_IMAGE in the environment is ignored: SANDBOX__IMAGE is also set and takes precedence"},
		{name: "lower-case canonical beats upper alias", env: map[string]string{"SANDBOX_IMAGE": "alias", "sandbox__image": "canon"}, want: "canon",
			warn: "SANDBOX_IMAGE in the environment is ignored: sandbox__image is also set and takes precedence"},
		{name: "same value twice is no warning", env: map[string]string{"SANDBOX_IMAGE": "same", "SANDBOX__IMAGE": "same"}, want: "same"},
		{name: "exact spelling beats other case", env: map[string]string{"sandbox__image": "lower", "SANDBOX__IMAGE": "upper"}, want: "upper",
			warn: "sandbox__image in the environment is ignored: SANDBOX__IMAGE is also set and takes precedence"},
		{name: "empty alias ignored", env: map[string]string{"SANDBOX_IMAGE": "", "SANDBOX__IMAGE": "x"}, want: "x"},
		{name: "empty canonical falls to alias", env: map[string]string{"SANDBOX__IMAGE": "", "SANDBOX_IMAGE": "y"}, want: "y"},
		{name: "unicode folding does not match", env: map[string]string{"ſandbox__image": "z"}, want: sandbox.DefaultImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := Loader{Environ: environ(tt.env)}
			if tt.useGetenv {
				l = Loader{Getenv: getenv(tt.env)}
			}
			c := mustLoad(t, l)
			if c.Sandbox.Image != tt.want {
				t.Errorf("Image = %q, want %q", c.Sandbox.Image, tt.want)
			}
			if tt.warn != "" && !slices.Contains(c.Warnings(), tt.warn) {
				t.Errorf("Warnings() = %q, want %q among them", c.Warnings(), tt.warn)
			}
			if tt.warn == "" && len(c.Warnings()) != 0 {
				t.Errorf("Warnings() = %q, want none", c.Warnings())
			}
		})
	}
}

func TestAliasesOfEverySetting(t *testing.T) {
	t.Parallel()
	// Each variable's alias and lower-case spellings reach the same field.
	for _, s := range registry {
		if s.def == "" && s.defFunc == nil {
			continue // nothing to compare with
		}
		for _, spelling := range []string{s.name, s.alias(), strings.ToLower(s.name), strings.ToLower(s.alias())} {
			c := mustLoad(t, Loader{Dotenv: map[string]string{spelling: s.def}})
			d := Defaults()
			if got, want := formatValue(s.field(&c)), formatValue(s.field(&d)); got != want {
				t.Errorf("%s=%s: field = %q, want %q", spelling, s.def, got, want)
			}
		}
	}
}

func TestNetworkInverse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name               string
		override, env, dot map[string]string
		wantDisabled       bool
		wantErr            string
	}{
		{name: "default", wantDisabled: true},
		{name: "disabled false", env: map[string]string{"SANDBOX__NETWORK_DISABLED": "false"}, wantDisabled: false},
		{name: "enable true", env: map[string]string{"SANDBOX__ENABLE_NETWORK": "true"}, wantDisabled: false},
		{name: "enable false", env: map[string]string{"SANDBOX__ENABLE_NETWORK": "no"}, wantDisabled: true},
		{name: "enable alias", env: map[string]string{"sandbox_enable_network": "1"}, wantDisabled: false},
		{name: "agreeing", env: map[string]string{"SANDBOX__ENABLE_NETWORK": "on", "SANDBOX__NETWORK_DISABLED": "off"}, wantDisabled: false},
		{name: "conflicting", env: map[string]string{"SANDBOX__ENABLE_NETWORK": "true", "SANDBOX__NETWORK_DISABLED": "true"}, wantDisabled: true,
			wantErr: `SANDBOX__NETWORK_DISABLED="true" (from the environment): contradicts SANDBOX__ENABLE_NETWORK="true"`},
		{name: "conflicting in dotenv", dot: map[string]string{"SANDBOX__ENABLE_NETWORK": "0", "SANDBOX__NETWORK_DISABLED": "0"}, wantDisabled: true,
			wantErr: `SANDBOX__NETWORK_DISABLED="0" (from .env): contradicts SANDBOX__ENABLE_NETWORK="0"`},
		{name: "higher source wins, no conflict", env: map[string]string{"SANDBOX__NETWORK_DISABLED": "true"},
			dot: map[string]string{"SANDBOX__ENABLE_NETWORK": "true"}, wantDisabled: true},
		{name: "flag inverse beats env", override: map[string]string{"SANDBOX__ENABLE_NETWORK": "true"},
			env: map[string]string{"SANDBOX__NETWORK_DISABLED": "true"}, wantDisabled: false},
		{name: "bad inverse value", env: map[string]string{"SANDBOX__ENABLE_NETWORK": "sometimes"}, wantDisabled: true,
			wantErr: `SANDBOX__ENABLE_NETWORK="sometimes" (from the environment): not a boolean (want true/false, 1/0, yes/no or on/off)`},
		{name: "bad inverse value beside direct", env: map[string]string{"SANDBOX__ENABLE_NETWORK": "sometimes", "SANDBOX__NETWORK_DISABLED": "false"}, wantDisabled: false,
			wantErr: `SANDBOX__ENABLE_NETWORK="sometimes" (from the environment): not a boolean (want true/false, 1/0, yes/no or on/off)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Loader{Overrides: tt.override, Environ: environ(tt.env), Dotenv: tt.dot}.Load()
			if c.Sandbox.NetworkDisabled != tt.wantDisabled {
				t.Errorf("NetworkDisabled = %v, want %v", c.Sandbox.NetworkDisabled, tt.wantDisabled)
			}
			if got := errText(err); got != tt.wantErr {
				t.Errorf("Load() error = %q, want %q", got, tt.wantErr)
			}
			if c.SandboxSpec().Network == c.Sandbox.NetworkDisabled {
				t.Errorf("SandboxSpec().Network = %v with NetworkDisabled = %v", c.SandboxSpec().Network, c.Sandbox.NetworkDisabled)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestUnknownWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		dot  map[string]string
		want []string
	}{
		{name: "typo", env: map[string]string{"SANDBOX__MEMORY_LIMT": "1g"},
			want: []string{"unknown setting SANDBOX__MEMORY_LIMT in the environment; did you mean SANDBOX__MEMORY_LIMIT?"}},
		{name: "typo lower case", dot: map[string]string{"api__prot": "1"},
			want: []string{"unknown setting api__prot in .env; did you mean API__PORT?"}},
		{name: "inverse suggested", env: map[string]string{"SANDBOX__ENABLE_NETWORKING": "1"},
			want: []string{"unknown setting SANDBOX__ENABLE_NETWORKING in the environment; did you mean SANDBOX__ENABLE_NETWORK?"}},
		{name: "nothing close", env: map[string]string{"SECURITY__WHATEVER_THIS_IS": "x"},
			want: []string{"unknown setting SECURITY__WHATEVER_THIS_IS in the environment"}},
		{name: "log section", env: map[string]string{"LOG__LEVL": "debug"},
			want: []string{"unknown setting LOG__LEVL in the environment; did you mean LOG__LEVEL?"}},
		{name: "retired seed setting", env: map[string]string{"SANDBOX__ENABLE_GVISOR": "true"},
			want: []string{"SANDBOX__ENABLE_GVISOR in the environment is a setting of the seed platform that Warden does not implement; it is ignored"}},
		{name: "empty unknown still warned", env: map[string]string{"API__HOSTS": ""},
			want: []string{"unknown setting API__HOSTS in the environment; did you mean API__HOST?"}},
		{name: "too far for a suggestion", env: map[string]string{"API__HOSTNAME": "x"},
			want: []string{"unknown setting API__HOSTNAME in the environment"}},
		{name: "single underscore ignored", env: map[string]string{"SANDBOX_INTEGRATION": "1", "API_TOKEN": "x", "LOG_FILE": "y"}},
		{name: "other prefixes ignored", env: map[string]string{"DOCKER_HOST": "unix:///x", "SANDBOXES__X": "1", "LLM__MODEL": "gpt"}},
		{name: "odd bytes quoted", env: map[string]string{"SANDBOX__\x01": "1"},
			want: []string{`unknown setting "SANDBOX__\x01" in the environment`}},
		{name: "sorted, environment before dotenv",
			env:  map[string]string{"SANDBOX__ZZZ_NOT_A_SETTING": "1", "SANDBOX__AAA_NOT_A_SETTING": "1"},
			dot:  map[string]string{"API__NOPE_NOT_A_SETTING": "1"},
			want: []string{"unknown setting SANDBOX__AAA_NOT_A_SETTING in the environment", "unknown setting SANDBOX__ZZZ_NOT_A_SETTING in the environment", "unknown setting API__NOPE_NOT_A_SETTING in .env"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := mustLoad(t, Loader{Environ: environ(tt.env), Dotenv: tt.dot})
			if got := c.Warnings(); !slices.Equal(got, tt.want) {
				t.Errorf("Warnings() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnvironParsing(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, Loader{Environ: []string{
		"=C:=C:\\dir",           // Windows per-drive entry
		"NOEQUALS",              // malformed
		"",                      // empty
		"SANDBOX__IMAGE=a=b",    // '=' in the value
		"SANDBOX__IMAGE=second", // duplicate: the first wins, as with os.Getenv
	}})
	if c.Sandbox.Image != "a=b" {
		t.Errorf("Image = %q, want a=b", c.Sandbox.Image)
	}
}

func TestOverridesAndSet(t *testing.T) {
	t.Parallel()
	t.Run("unknown override is an error", func(t *testing.T) {
		t.Parallel()
		_, err := Loader{Overrides: map[string]string{"SANDBOX__MEMORY_LIMT": "1g"}}.Load()
		want := "unknown setting SANDBOX__MEMORY_LIMT in overrides; did you mean SANDBOX__MEMORY_LIMIT?: invalid argument"
		if errText(err) != want || !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("Load() = %v, want %q", err, want)
		}
	})
	t.Run("Set", func(t *testing.T) {
		t.Parallel()
		var l Loader
		l.Environ = []string{"SANDBOX__MEMORY_LIMIT=1g", "API__PORT=1234"}
		if err := l.Set("sandbox__memory_limit", "2g"); err != nil {
			t.Fatal(err)
		}
		if err := l.Set("SANDBOX_ENABLE_NETWORK", "true"); err != nil {
			t.Fatal(err)
		}
		if err := l.Set("SANDBOX_IMAGE", "first:1"); err != nil {
			t.Fatal(err)
		}
		if err := l.Set("sandbox__image", "second:1"); err != nil { // replaces, no shadowing
			t.Fatal(err)
		}
		want := map[string]string{"SANDBOX__MEMORY_LIMIT": "2g", "SANDBOX__ENABLE_NETWORK": "true", "SANDBOX__IMAGE": "second:1"}
		if !maps.Equal(l.Overrides, want) {
			t.Errorf("Overrides = %q, want %q", l.Overrides, want)
		}
		c := mustLoad(t, l)
		if len(c.Warnings()) != 0 {
			t.Errorf("Warnings() = %q", c.Warnings())
		}
		if c.Sandbox.MemoryLimit != 2<<30 || c.API.Port != 1234 || c.Sandbox.NetworkDisabled || c.Sandbox.Image != "second:1" {
			t.Errorf("after Set: MemoryLimit=%v Port=%d NetworkDisabled=%v", c.Sandbox.MemoryLimit, c.API.Port, c.Sandbox.NetworkDisabled)
		}
	})
	t.Run("Set errors", func(t *testing.T) {
		t.Parallel()
		tests := []struct{ name, value, want string }{
			{"SANDBOX__NOPE", "1", "unknown setting SANDBOX__NOPE: invalid argument"},
			{"SANDBOX__TIMOUT", "1", "unknown setting SANDBOX__TIMOUT; did you mean SANDBOX__TIMEOUT?: invalid argument"},
			{"SANDBOX__TIMEOUT", "soon", `SANDBOX__TIMEOUT="soon": not a duration (want seconds such as 30 or 1.5, or a Go duration such as 90s or 2m)`},
			{"sandbox_enable_network", "maybe", `SANDBOX__ENABLE_NETWORK="maybe": not a boolean (want true/false, 1/0, yes/no or on/off)`},
			{"SECURITY__SECRET_KEY", "", ""}, // any string parses; ranges are checked by Load
		}
		for _, tt := range tests {
			var l Loader
			err := l.Set(tt.name, tt.value)
			if errText(err) != tt.want {
				t.Errorf("Set(%q, %q) = %v, want %q", tt.name, tt.value, err, tt.want)
			}
			if err != nil && len(l.Overrides) != 0 {
				t.Errorf("Set(%q, %q) failed but recorded an override", tt.name, tt.value)
			}
		}
	})
}

func TestSeedDotenv(t *testing.T) {
	t.Parallel()
	// The .env example of the seed's DOCKER_INTEGRATION_GUIDE (seed 002).
	const seed = `# Agent Platform Configuration

# API Settings
API__HOST=0.0.0.0
API__PORT=8000

# Sandbox Configuration
SANDBOX__ENABLED=true
SANDBOX__MOCK_MODE=false
SANDBOX__DOCKER_AUTO_DETECT=true
SANDBOX__DOCKER_REQUIRED=false
SANDBOX__DOCKER_CONNECTION_TIMEOUT=5
SANDBOX__DOCKER_MAX_RETRIES=3

# Docker Image and Resources
SANDBOX__IMAGE=agent-sandbox:latest
SANDBOX__MEMORY_LIMIT=512m
SANDBOX__CPU_LIMIT=1.0
SANDBOX__TIMEOUT=30
SANDBOX__NETWORK_DISABLED=true

# Security
SECURITY__SECRET_KEY=your-super-secret-key-change-this-in-production
`
	dot, err := ParseDotenv(strings.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	c := mustLoad(t, Loader{Dotenv: dot, NumCPU: func() int { return 1 }})
	if c.Sandbox.Image != "agent-sandbox:latest" || c.Sandbox.Timeout != 30*time.Second ||
		c.Sandbox.DockerConnectionTimeout != 5*time.Second || c.API.Host != "0.0.0.0" {
		t.Errorf("seed .env loaded as\n%v", c)
	}
	want := []string{
		"API__HOST=0.0.0.0 accepts connections from other hosts and API__KEYS is empty: anyone who can reach the port can run code",
		"SECURITY__SECRET_KEY looks like a placeholder from an example file; set a random value",
	}
	if got := c.Warnings(); !slices.Equal(got, want) {
		t.Errorf("Warnings() = %q, want %q", got, want)
	}
}

// FuzzLoad feeds arbitrary text to every source: as a .env file, as
// environment entries, through getenv and as override values. Load must
// never panic, its result must be consistent with Validate, and no output
// may contain a secret (marked "Zq9"), valid or not.
func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"", "SANDBOX__MEMORY_LIMIT=512m\n", "SANDBOX__TIMEOUT=-1\nAPI__PORT=70000\n",
		"sandbox_cpu_limit=NaN\nSANDBOX__ENABLE_NETWORK=1\nSANDBOX__NETWORK_DISABLED=1\n",
		"SANDBOX__ADDITIONAL_READ_DIRS=/tmp,/data,rel\nSANDBOX__ADDITIONAL_WRITE_DIRS=/data\n",
		"SECURITY__SECRET_KEY=\"sekrit\"\nAPI__KEYS=a b,,c\n", "SANDBOX__MEMORY_LIMT=1\n",
		"SANDBOX__PROVIDER=local\nSANDBOX__DOCKER_HOST=ssh://x\nAPI__HOST=[1.2.3.4]\n",
	} {
		f.Add(s)
	}
	secrets := []string{"Zq9-short", strings.Repeat("Zq9-long-secret-", 3)}
	f.Fuzz(func(t *testing.T, in string) {
		if strings.Contains(strings.ToLower(in), "zq9") {
			return // the marker must come only from the secrets below
		}
		dot, _ := ParseDotenv(strings.NewReader(in))
		lines := strings.Split(in, "\n")
		overrides := make(map[string]string)
		for i, s := range registry {
			if i < len(lines) && !s.secret {
				overrides[s.name] = lines[i]
			}
		}
		for _, l := range []Loader{
			{Dotenv: dot},
			{Environ: lines, NumCPU: func() int { return 2 }},
			{Getenv: func(k string) string { return lines[len(k)%len(lines)] }},
			{Overrides: overrides},
		} {
			if _, err := l.Load(); err == nil {
				// Validate must agree with Load on the same values.
				c, _ := l.Load()
				if verr := c.Validate(); verr != nil {
					t.Fatalf("Load() succeeded but Validate() = %v", verr)
				}
				_ = c.SandboxSpec()
			}
			for _, secret := range secrets {
				ls := l
				ls.Overrides = maps.Clone(l.Overrides)
				if ls.Overrides == nil {
					ls.Overrides = make(map[string]string)
				}
				ls.Overrides["SECURITY__SECRET_KEY"] = secret
				ls.Overrides["API__KEYS"] = secret + ", " + secret + " x"
				c, err := ls.Load()
				js, _ := json.Marshal(c)
				out := fmt.Sprintf("%v %+v %#v %s %d %q", c, c, c, c, c, c) + c.String() + string(js) +
					errText(err) + strings.Join(c.Warnings(), "\n") + c.LogValue().String()
				if strings.Contains(out, "Zq9") {
					t.Fatalf("a secret was printed:\n%s", out)
				}
			}
		}
	})
}
