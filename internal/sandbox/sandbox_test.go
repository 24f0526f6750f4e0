package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestValidateID(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"sb-0123456789abcdef", "a", "A.b_c-d", strings.Repeat("x", 64)} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("ValidateID(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "../etc", "a/b", "-x", ".x", "a b", "a\x00", strings.Repeat("x", 65), "é"} {
		if err := ValidateID(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateID(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := ValidateID(string(NewID())); err != nil {
		t.Errorf("NewID() is invalid: %v", err)
	}
}

func FuzzValidateID(f *testing.F) {
	for _, s := range []string{"sb-1", "..", "a/b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateID(s) == nil && (strings.ContainsAny(s, "/\\\x00") || s == "." || s == ".." || len(s) > MaxIDLength) {
			t.Fatalf("ValidateID(%q) accepted an unsafe id", s)
		}
	})
}

func TestSpecValidate(t *testing.T) {
	t.Parallel()
	good := Spec{Mounts: []Mount{{Source: "/data"}, {Source: "/tmp/x", Target: "/tmp/x", ReadOnly: true}, {Source: "/a", Target: "/var/lib/a"}}}.WithDefaults()
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	if good.Mounts[0].Target != "/data" {
		t.Errorf("default mount target = %q, want the source path", good.Mounts[0].Target)
	}
	bad := Spec{
		MemoryLimit: 1, CPULimit: -1, PidsLimit: 2, WorkspacePath: "/etc", NamePrefix: "a b",
		Env:    map[string]string{"1X": "", "OK": ""},
		Mounts: []Mount{{Source: "rel"}, {Source: "/a", Target: "/usr/x"}, {Source: "/b", Target: "/proc"}, {Source: "/c", Target: "/tmp"}, {Source: "/d", Target: "/x/../y"}},
	}.WithDefaults()
	err := bad.Validate()
	for _, want := range []string{"memory_limit", "cpu_limit", "pids_limit", "workspace_path", "container_name_prefix", `"1X"`, `"rel"`, `"/usr/x"`, `"/proc"`, `"/tmp"`, `"/x/../y"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate(bad) does not mention %s: %v", want, err)
		}
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("Validate(bad) = %v, want ErrInvalid", err)
	}
}

func TestExecRequestValidate(t *testing.T) {
	t.Parallel()
	for _, r := range []ExecRequest{
		{Language: "ruby", Code: "1"},
		{Language: Shell},
		{Language: Shell, Code: "ls", Argv: []string{"ls"}},
		{Language: Python, Argv: []string{"x"}},
		{Language: Python, Code: "1", Timeout: -time.Second},
	} {
		if err := r.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalid", r, err)
		}
	}
}

func TestOutputValidate(t *testing.T) {
	t.Parallel()
	many := map[string]string{}
	for i := range MaxOutputTypes + 1 {
		many[fmt.Sprintf("text/x-%d", i)] = ""
	}
	for _, tc := range []struct {
		name string
		o    Output
		ok   bool
	}{
		{"text", Output{OutputDisplay, map[string]string{"text/plain": "x"}}, true},
		{"rich", Output{OutputResult, map[string]string{"text/html": "<b>", "image/svg+xml": "<svg/>", "application/vnd.x.v1+json": "{}", "image/png": "iVBORw==", "audio/wav": ""}}, true},
		{"unknown type", Output{"stream", map[string]string{"text/plain": "x"}}, false},
		{"no data", Output{OutputDisplay, nil}, false},
		{"too many types", Output{OutputDisplay, many}, false},
		{"uppercase", Output{OutputDisplay, map[string]string{"Text/plain": "x"}}, false},
		{"parameters", Output{OutputDisplay, map[string]string{"text/plain;charset=utf-8": "x"}}, false},
		{"no subtype", Output{OutputDisplay, map[string]string{"text/": "x"}}, false},
		{"no slash", Output{OutputDisplay, map[string]string{"text": "x"}}, false},
		{"two slashes", Output{OutputDisplay, map[string]string{"text/a/b": "x"}}, false},
		{"long", Output{OutputDisplay, map[string]string{"text/" + strings.Repeat("a", MaxMIMETypeLength-4): "x"}}, false},
		{"longest", Output{OutputDisplay, map[string]string{"text/" + strings.Repeat("a", MaxMIMETypeLength-5): "x"}}, true},
		{"binary not base64", Output{OutputDisplay, map[string]string{"image/png": "PNG"}}, false},
		{"binary unpadded", Output{OutputDisplay, map[string]string{"image/jpeg": "iVBORw"}}, false},
		{"binary with a line break", Output{OutputDisplay, map[string]string{"application/pdf": "iVBO\nRw=="}}, false},
	} {
		err := tc.o.Validate()
		if tc.ok && err != nil {
			t.Errorf("%s: Validate(%v) = %v, want nil", tc.name, tc.o, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate(%v) = %v, want ErrInvalid", tc.name, tc.o, err)
		}
	}
	if got := (Output{Data: map[string]string{"text/plain": "abc", "image/png": "iVBORw=="}}).Size(); got != 10+3+9+8 {
		t.Errorf("Size = %d, want 30", got)
	}
	for mime, want := range map[string]bool{"image/png": true, "image/jpeg": true, "image/svg+xml": false, "audio/ogg": true,
		"video/mp4": true, "application/pdf": true, "application/json": false, "text/html": false} {
		if IsBinaryMIME(mime) != want {
			t.Errorf("IsBinaryMIME(%q) = %v, want %v", mime, !want, want)
		}
	}
}

func TestSpecJSON(t *testing.T) {
	t.Parallel()
	in := Spec{Image: "img", Timeout: 1500 * time.Millisecond, MemoryLimit: 1 << 20}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"timeout":1.5`) || !strings.Contains(string(b), `"memory_limit":1048576`) {
		t.Errorf("json = %s", b)
	}
	var out Spec
	if err := json.Unmarshal(b, &out); err != nil || out.Timeout != in.Timeout || out.Image != "img" {
		t.Errorf("round trip = %+v, %v", out, err)
	}
}
