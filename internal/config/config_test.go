package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// intVerb is a non-constant format, for printing with verbs vet would reject.
var intVerb = "%d"

var update = flag.Bool("update", false, "rewrite testdata golden files")

// leafFields returns every settable field of Config: the exported fields
// of its section structs, by path ("Sandbox.MemoryLimit") and address.
func leafFields(c *Config) map[string]reflect.Value {
	out := make(map[string]reflect.Value)
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		sec := v.Type().Field(i)
		if !sec.IsExported() {
			continue
		}
		sv := v.Field(i)
		for j := range sv.NumField() {
			f := sv.Type().Field(j)
			out[sec.Name+"."+f.Name] = sv.Field(j)
		}
	}
	return out
}

// TestRegistryComplete checks that every Config field has exactly one
// registry entry, with a well-formed name, documentation and a default
// that parses, and that every entry points into Config.
func TestRegistryComplete(t *testing.T) {
	t.Parallel()
	var c Config
	fields := leafFields(&c)
	if len(fields) == 0 {
		t.Fatal("no Config fields found")
	}
	// Each section must be a struct of settings, so the walk above sees them all.
	for i := range reflect.TypeFor[Config]().NumField() {
		if f := reflect.TypeFor[Config]().Field(i); f.IsExported() && f.Type.Kind() != reflect.Struct {
			t.Errorf("Config.%s is not a section struct", f.Name)
		}
	}
	byAddr := make(map[uintptr]string)
	for path, v := range fields {
		byAddr[v.Addr().Pointer()] = path
	}
	nameRE := regexp.MustCompile(`^(SANDBOX|API|SECURITY|LOG)__[A-Z][A-Z0-9_]*[A-Z0-9]$`)
	covered := make(map[string]string)
	names := make(map[string]bool)
	for _, s := range registry {
		if !nameRE.MatchString(s.name) {
			t.Errorf("%s: name does not look like SECTION__FIELD", s.name)
		}
		if s.inverse != "" && !nameRE.MatchString(s.inverse) {
			t.Errorf("%s: inverse %s does not look like SECTION__FIELD", s.name, s.inverse)
		}
		for _, n := range []string{s.name, s.alias(), s.inverse} {
			if n != "" && names[n] {
				t.Errorf("name %s is used twice", n)
			}
			names[n] = true
		}
		if len(strings.TrimSpace(s.doc)) < 20 || !strings.HasSuffix(s.doc, ".") && !strings.HasSuffix(s.doc, ")") {
			t.Errorf("%s: doc %q is missing or not a sentence", s.name, s.doc)
		}
		p := reflect.ValueOf(s.field(&c))
		if p.Kind() != reflect.Pointer {
			t.Errorf("%s: field returns %s, not a pointer", s.name, p.Type())
			continue
		}
		path, ok := byAddr[p.Pointer()]
		if !ok {
			t.Errorf("%s: field does not point to a setting field of Config", s.name)
			continue
		}
		if fields[path].Type() != p.Elem().Type() {
			t.Errorf("%s: field type %s, Config.%s is %s", s.name, p.Elem().Type(), path, fields[path].Type())
		}
		if prev, dup := covered[path]; dup {
			t.Errorf("Config.%s is set by both %s and %s", path, prev, s.name)
		}
		covered[path] = s.name
		var d Config
		if err := setValue(s.field(&d), s.defaultValue()); err != nil {
			t.Errorf("%s: default %q does not parse: %v", s.name, s.defaultValue(), err)
		}
		if s.secret && s.def != "" {
			t.Errorf("%s: a secret must not have a default", s.name)
		}
		if s.inverse != "" {
			if _, ok := s.field(&d).(*bool); !ok {
				t.Errorf("%s: only booleans can have an inverse", s.name)
			}
		}
	}
	for path := range fields {
		if covered[path] == "" {
			t.Errorf("Config.%s has no registry entry (env name, default, doc)", path)
		}
	}
}

// TestFieldDocComments checks that every field of the Config structs in
// config.go has a doc comment naming its variable.
func TestFieldDocComments(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "config.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	structs := make(map[string]*ast.StructType)
	ast.Inspect(file, func(n ast.Node) bool {
		if ts, ok := n.(*ast.TypeSpec); ok {
			if st, ok := ts.Type.(*ast.StructType); ok {
				structs[ts.Name.Name] = st
			}
		}
		return true
	})
	var c Config
	envOf := make(map[string]string) // "Sandbox.MemoryLimit" -> its variables
	for _, s := range registry {
		p := reflect.ValueOf(s.field(&c)).Pointer()
		for path, v := range leafFields(&c) {
			if v.Addr().Pointer() == p {
				envOf[path] = s.name
			}
		}
	}
	root := structs["Config"]
	if root == nil {
		t.Fatal("type Config not found in config.go")
	}
	for _, sec := range root.Fields.List {
		if len(sec.Names) == 0 || !sec.Names[0].IsExported() {
			continue
		}
		if sec.Doc == nil {
			t.Errorf("Config.%s has no doc comment", sec.Names[0].Name)
		}
		typeName := sec.Type.(*ast.Ident).Name
		st := structs[typeName]
		if st == nil {
			t.Errorf("section type %s not found in config.go", typeName)
			continue
		}
		for _, f := range st.Fields.List {
			for _, n := range f.Names {
				path := sec.Names[0].Name + "." + n.Name
				if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), n.Name+" ") {
					t.Errorf("%s.%s: doc comment must start with the field name", typeName, n.Name)
					continue
				}
				if env := envOf[path]; env == "" || !strings.Contains(f.Doc.Text(), env) {
					t.Errorf("%s.%s: doc comment does not name its variable %s", typeName, n.Name, env)
				}
			}
		}
	}
}

func TestDefaultsLoadFromTheirOwnText(t *testing.T) {
	t.Parallel()
	// Feeding every documented default back in changes nothing.
	dot := make(map[string]string)
	for _, s := range registry {
		dot[s.name] = s.defaultValue()
	}
	c := mustLoad(t, Loader{Dotenv: dot})
	if got, want := c.String(), Defaults().String(); got != want {
		t.Errorf("loading the defaults =\n%s\nwant\n%s", got, want)
	}
	if got := Defaults().Sandbox.WorkspaceRoot; got != filepath.Join(os.TempDir(), "warden") {
		t.Errorf("WorkspaceRoot = %q", got)
	}
}

const (
	// Every secret contains marker, which no output may contain.
	marker    = "Xy7q"
	secretKey = "0123456789-Xy7q-abcdefghijklmnopqrst"
	apiKey1   = "api-key-Xy7q-one-0123456789"
	apiKey2   = "api-key-Xy7q-two-0123456789"
)

func loadedWithSecrets(t *testing.T) Config {
	t.Helper()
	return mustLoad(t, Loader{Environ: []string{
		"SECURITY__SECRET_KEY=" + secretKey,
		"API__KEYS=" + apiKey1 + "," + apiKey2,
		"SANDBOX__IMAGE=img:1",
	}})
}

func TestSecretsNeverPrinted(t *testing.T) {
	t.Parallel()
	c := loadedWithSecrets(t)
	if c.Security.SecretKey.Reveal() != secretKey || len(c.API.Keys) != 2 || c.API.Keys[1].Reveal() != apiKey2 {
		t.Fatalf("secrets not loaded: %d keys", len(c.API.Keys))
	}
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var text, jsonLog bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "cfg", c, "key", c.Security.SecretKey, "keys", c.API.Keys)
	slog.New(slog.NewJSONHandler(&jsonLog, nil)).Info("config", "cfg", c, "key", c.Security.SecretKey, "keys", c.API.Keys)
	redactedJSON, _ := json.Marshal(c.Redacted())
	outputs := map[string]string{
		"String":            c.String(),
		"%v":                fmt.Sprintf("%v", c),
		"%+v":               fmt.Sprintf("%+v", c),
		"%#v":               fmt.Sprintf("%#v", c),
		"%s":                fmt.Sprintf("%s", c),
		"%d":                fmt.Sprintf("%d", c),
		"%x":                fmt.Sprintf("%x", c),
		"pointer %+v":       fmt.Sprintf("%+v", &c),
		"section %+v":       fmt.Sprintf("%+v", c.API),
		"section %#v":       fmt.Sprintf("%#v", c.Security),
		"section %d":        fmt.Sprintf(intVerb, c.API), // a variable format: vet rejects %d here
		"section %d bad":    fmt.Sprintf(intVerb, c.Security),
		"secret %x":         fmt.Sprintf("%x", c.Security.SecretKey),
		"secret %q":         fmt.Sprintf("%q", c.Security.SecretKey),
		"keys %v":           fmt.Sprint(c.API.Keys),
		"json":              string(js),
		"Redacted json":     string(redactedJSON),
		"Redacted %v":       fmt.Sprint(c.Redacted()),
		"Redacted.Reveal":   c.Redacted().Security.SecretKey.Reveal() + string(c.Redacted().API.Keys[0]),
		"slog text":         text.String(),
		"slog json":         jsonLog.String(),
		"LogValue":          c.LogValue().String(),
		"Warnings":          strings.Join(c.Warnings(), "\n"),
		"Settings":          fmt.Sprint(Settings()),
		"Markdown":          Markdown(),
		"SandboxSpec %+v":   fmt.Sprintf("%+v", c.SandboxSpec()),
		"Validate of short": errText(func() Config { d := c; d.Security.SecretKey = "short-Xy7q"; return d }().Validate()),
	}
	for name, out := range outputs {
		if strings.Contains(out, marker) {
			t.Errorf("%s contains a secret:\n%s", name, out)
		}
	}
	if !strings.Contains(c.String(), "# SECURITY__SECRET_KEY=[redacted]\n") || !strings.Contains(c.String(), "# API__KEYS=[redacted]\n") {
		t.Errorf("String() does not show that the secrets are set:\n%s", c)
	}
	if c.Security.SecretKey.Reveal() != secretKey {
		t.Error("Redacted() modified the original")
	}
	if Secret("").String() != "" || fmt.Sprint(Secret("")) != "" {
		t.Error("an empty Secret does not print as empty")
	}
}

func TestStringRoundTrip(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, Loader{Environ: []string{
		"SANDBOX__IMAGE=registry.local/img:1",
		"SANDBOX__ADDITIONAL_READ_DIRS=/data/a b,/srv/x",
		"SANDBOX__TIMEOUT=90",
		"SANDBOX__MEMORY_LIMIT=1536m",
		"SANDBOX__CPU_LIMIT=0.5",
		"SANDBOX__ENABLE_NETWORK=yes",
		"SANDBOX__DOCKER_HOST=tcp://10.0.0.1:2376",
		"LOG__LEVEL=WARNING",
	}, NumCPU: func() int { return 2 }})
	dot, err := ParseDotenv(strings.NewReader(c.String()))
	if err != nil {
		t.Fatalf("ParseDotenv(String()) = %v\n%s", err, c)
	}
	back := mustLoad(t, Loader{Dotenv: dot, NumCPU: func() int { return 2 }})
	if back.String() != c.String() {
		t.Errorf("String() does not round-trip:\n%s\nbecame\n%s", c, back)
	}
	for _, want := range []string{"SANDBOX__TIMEOUT=1m30s\n", "SANDBOX__MEMORY_LIMIT=1536m\n", `SANDBOX__ADDITIONAL_READ_DIRS="/data/a b,/srv/x"` + "\n", "SANDBOX__NETWORK_DISABLED=false\n", "LOG__LEVEL=warn\n"} {
		if !strings.Contains(c.String(), want) {
			t.Errorf("String() lacks %q:\n%s", want, c)
		}
	}
}

func TestRedactedCopies(t *testing.T) {
	t.Parallel()
	c := loadedWithSecrets(t)
	c.Sandbox.AdditionalReadDirs = []string{"/data"}
	r := c.Redacted()
	r.Sandbox.AdditionalReadDirs[0] = "/changed"
	r.API.Keys[0] = "changed"
	if c.Sandbox.AdditionalReadDirs[0] != "/data" || c.API.Keys[0] != apiKey1 {
		t.Error("Redacted() shares slices with the original")
	}
	if r.Security.SecretKey != redactedText || len(r.API.Keys) != 2 {
		t.Errorf("Redacted() = %q, %d keys", r.Security.SecretKey.Reveal(), len(r.API.Keys))
	}
	if d := Defaults().Redacted(); d.Security.SecretKey != "" || d.API.Keys != nil {
		t.Error("Redacted() invented secrets that were not set")
	}
}

func TestMarkdownGolden(t *testing.T) {
	t.Parallel()
	got := Markdown()
	golden := filepath.Join("testdata", "settings.md.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("Markdown() differs from %s; run go test ./internal/config -run TestMarkdownGolden -update and review the diff.\ngot:\n%s", golden, got)
	}
	// Every variable, and the inverse spelling, has a row.
	for _, s := range registry {
		for _, n := range []string{s.name, s.inverse} {
			if n != "" && !strings.Contains(got, "| `"+n+"` |") {
				t.Errorf("Markdown() has no row for %s", n)
			}
		}
	}
	for i, line := range strings.Split(strings.TrimSuffix(got, "\n"), "\n") {
		if n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|"); n != 4 {
			t.Errorf("Markdown() line %d has %d cell separators, want 4: %s", i+1, n, line)
		}
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	settings := Settings()
	if len(settings) != len(registry)+1 {
		t.Fatalf("Settings() has %d entries, want %d", len(settings), len(registry)+1)
	}
	i := slices.IndexFunc(settings, func(s Setting) bool { return s.Name == "SANDBOX__MEMORY_LIMIT" })
	if i < 0 {
		t.Fatal("no SANDBOX__MEMORY_LIMIT")
	}
	want := Setting{Name: "SANDBOX__MEMORY_LIMIT", Alias: "SANDBOX_MEMORY_LIMIT", Default: "512m", Accepted: "at least 6m"}
	got := settings[i]
	got.Doc = ""
	if got != want {
		t.Errorf("Settings()[SANDBOX__MEMORY_LIMIT] = %+v, want %+v", got, want)
	}
	if j := slices.IndexFunc(settings, func(s Setting) bool { return s.Name == "API__KEYS" }); j < 0 || !settings[j].Secret {
		t.Error("API__KEYS is not marked secret")
	}
}

func TestSandboxSpec(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, Loader{Environ: []string{
		"SANDBOX__IMAGE=img:2",
		"SANDBOX__MEMORY_LIMIT=1g",
		"SANDBOX__CPU_LIMIT=1.5",
		"SANDBOX__PIDS_LIMIT=100",
		"SANDBOX__NETWORK_DISABLED=false",
		"SANDBOX__TIMEOUT=45",
		"SANDBOX__MAX_OUTPUT_BYTES=64k",
		"SANDBOX__CONTAINER_NAME_PREFIX=wt",
		"SANDBOX__AUTO_PULL_IMAGE=true",
		"SANDBOX__ADDITIONAL_READ_DIRS=/data,/srv/models",
		"SANDBOX__ADDITIONAL_WRITE_DIRS=/home/me/out",
		"SANDBOX__WORKSPACE_SIZE=2g",
	}, NumCPU: func() int { return 2 }})
	got := c.SandboxSpec()
	want := sandbox.Spec{
		Image: "img:2", MemoryLimit: 1 << 30, CPULimit: 1.5, PidsLimit: 100, Network: true,
		Timeout: 45 * time.Second, OutputLimit: 64 << 10, NamePrefix: "wt", AutoPullImage: true, WorkspaceSize: 2 << 30,
		Mounts: []sandbox.Mount{
			{Source: "/data", Target: "/data", ReadOnly: true},
			{Source: "/srv/models", Target: "/srv/models", ReadOnly: true},
			{Source: "/home/me/out", Target: "/home/me/out"},
		},
	}.WithDefaults()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SandboxSpec() =\n%+v\nwant\n%+v", got, want)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("SandboxSpec().Validate() = %v", err)
	}
	def := Defaults().SandboxSpec()
	if def.Network || def.Timeout != 30*time.Second || def.AutoPullImage || len(def.Mounts) != 0 {
		t.Errorf("Defaults().SandboxSpec() = %+v", def)
	}
	if err := def.Validate(); err != nil {
		t.Errorf("Defaults().SandboxSpec().Validate() = %v", err)
	}
	// The spec is a copy.
	got.Mounts[0].Source = "/changed"
	if c.Sandbox.AdditionalReadDirs[0] != "/data" {
		t.Error("SandboxSpec() shares memory with the Config")
	}
}

func TestAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		host string
		port int
		want string
	}{
		{"127.0.0.1", 8000, "127.0.0.1:8000"},
		{"::1", 0, "[::1]:0"},
		{"[::1]", 80, "[::1]:80"},
		{"warden.internal", 443, "warden.internal:443"},
	}
	for _, tt := range tests {
		c := Defaults()
		c.API.Host, c.API.Port = tt.host, tt.port
		if got := c.Addr(); got != tt.want {
			t.Errorf("Addr() with %q, %d = %q, want %q", tt.host, tt.port, got, tt.want)
		}
	}
}

// TestREADMESettings keeps the README's settings table equal to the
// generated one.
func TestREADMESettings(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Skip("no README:", err)
	}
	s := string(b)
	const begin, end = "<!-- settings -->\n", "<!-- /settings -->"
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README.md has no <!-- settings --> ... <!-- /settings --> block")
	}
	if got := s[i+len(begin) : j]; got != Markdown() {
		t.Errorf("README.md's settings table differs from config.Markdown(); paste internal/config/testdata/settings.md.golden between the markers")
	}
}

func TestWorkspaceSize(t *testing.T) {
	t.Parallel()
	if c := mustLoad(t, Loader{}); c.Sandbox.WorkspaceSize != 1<<30 {
		t.Errorf("default = %v, want 1g", c.Sandbox.WorkspaceSize)
	}
	if c := mustLoad(t, Loader{Environ: []string{"SANDBOX__WORKSPACE_SIZE=0"}}); c.SandboxSpec().WorkspaceSize != 0 {
		t.Error("0 does not turn it off")
	}
	for _, bad := range []string{"1m", "2t", "lots"} {
		if _, err := (Loader{Environ: []string{"SANDBOX__WORKSPACE_SIZE=" + bad}}).Load(); err == nil || !strings.Contains(err.Error(), "SANDBOX__WORKSPACE_SIZE") {
			t.Errorf("SANDBOX__WORKSPACE_SIZE=%s: %v", bad, err)
		}
	}
}

func TestIsSet(t *testing.T) {
	def := Defaults().Sandbox.Image
	c, err := Load(func(k string) string {
		if k == "SANDBOX__IMAGE" {
			return def // the default's value, given by name
		}
		return ""
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.IsSet("SANDBOX__IMAGE") {
		t.Error("IsSet(SANDBOX__IMAGE) = false for a value given equal to the default")
	}
	if c.IsSet("SANDBOX__MEMORY_LIMIT") {
		t.Error("IsSet(SANDBOX__MEMORY_LIMIT) = true, but no source set it")
	}
	if d := Defaults(); d.IsSet("SANDBOX__IMAGE") {
		t.Error("Defaults().IsSet(SANDBOX__IMAGE) = true")
	}
}
