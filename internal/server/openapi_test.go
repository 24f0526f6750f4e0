package server

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/session"
)

// The OpenAPI document describes exactly the routes the mux serves.
func TestOpenAPICoversEveryRoute(t *testing.T) {
	t.Parallel()
	s := New(Options{Manager: session.New(nil, session.Options{})})

	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d", rec.Code)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatalf("GET /openapi.json is not JSON: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}

	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range s.routes {
		served[strings.TrimSuffix(rt.pattern, "{$}")] = true
	}
	for _, r := range slices.Sorted(maps.Keys(served)) {
		if !documented[r] {
			t.Errorf("route %q is served but not in openapi.json", r)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(documented)) {
		if !served[r] {
			t.Errorf("openapi.json documents %q, which is not served", r)
		}
	}

	// Every route answers through the mux with its own handler.
	for r := range served {
		method, path, _ := strings.Cut(r, " ")
		path = strings.NewReplacer("{id}", "sb-1", "{name}", "X").Replace(path)
		if path == "/" {
			r += "{$}" // the root alone, not everything below it
		}
		if _, pattern := s.mux.Handler(httptest.NewRequest(method, path, nil)); pattern != r {
			t.Errorf("mux.Handler(%s %s) = %q, want %q", method, path, pattern, r)
		}
	}

	// Every reference resolves.
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && k == "$ref" {
					refs = append(refs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var all any
	_ = json.Unmarshal(rec.Body.Bytes(), &all)
	walk(all)
	if len(refs) == 0 {
		t.Fatal("openapi.json has no $ref")
	}
	for _, ref := range refs {
		parts := strings.Split(strings.TrimPrefix(ref, "#/components/"), "/")
		if len(parts) != 2 || doc.Components[parts[0]][parts[1]] == nil {
			t.Errorf("openapi.json: $ref %q does not resolve", ref)
		}
	}
}

func TestStatusFor(t *testing.T) {
	t.Parallel()
	for _, c := range errorClasses {
		status, code := statusFor(c.class)
		if status != c.status || code != c.code {
			t.Errorf("statusFor(%v) = %d, %s, want %d, %s", c.class, status, code, c.status, c.code)
		}
	}
	if status, code := statusFor(&http.MaxBytesError{Limit: 1}); status != 413 || code != "too_large" {
		t.Errorf("statusFor(MaxBytesError) = %d, %s, want 413, too_large", status, code)
	}
	if status, code := statusFor(errUnauthorized); status != 401 || code != "unauthorized" {
		t.Errorf("statusFor(errUnauthorized) = %d, %s, want 401, unauthorized", status, code)
	}
	if status, code := statusFor(http.ErrBodyNotAllowed); status != 500 || code != "internal" {
		t.Errorf("statusFor(other) = %d, %s, want 500, internal", status, code)
	}
}

func TestCompleteUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"abc", 3},
		{"é", 2},
		{"a\xc3", 1},
		{"a\xe2\x82", 1},
		{"a\xe2\x82\xac", 4},
		{"\xf0\x9f\x98", 0},
		{"a\xff", 2}, // invalid, not incomplete: passed on
	}
	for _, tt := range tests {
		if got := completeUTF8([]byte(tt.in)); got != tt.want {
			t.Errorf("completeUTF8(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// The OpenAPI schemas list exactly the JSON fields of the wire types in
// package api, so the document cannot drift from what is sent.
func TestOpenAPISchemasMatchWireTypes(t *testing.T) {
	t.Parallel()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	types := map[string]any{
		"Error": api.ErrorResponse{}, "ErrorObject": api.Error{}, "Health": api.Health{}, "Status": api.Status{}, "DockerInfo": api.DockerInfo{},
		"CreateRequest": api.CreateRequest{}, "Mount": api.Mount{}, "Spec": api.Spec{}, "SandboxInfo": api.Sandbox{},
		"SandboxList": api.SandboxList{}, "Deleted": api.DeleteResponse{}, "ExecuteRequest": api.ExecuteRequest{}, "RunRequest": api.RunRequest{},
		"ExecError": api.ExecError{}, "ExecResult": api.ExecResult{}, "TextEvent": api.OutputEvent{}, "Output": api.Output{},
		"Env": api.Env{}, "PatchEnvRequest": api.EnvPatch{}, "PutFile": api.Upload{}, "FileEntry": api.FileEntry{},
		"FileList": api.FileList{}, "MoveRequest": api.MoveRequest{}, "Removed": api.Removed{}, "ProviderInfo": api.ProviderInfo{}, "PolicyInfo": api.PolicyInfo{},
		"ProviderAvailability": api.ProviderAvailability{},
		"ProcessStart":         api.ProcessStart{}, "Process": api.Process{}, "ProcessList": api.ProcessList{},
		"ProcessEvent": api.ProcessEvent{}, "SignalRequest": api.SignalRequest{},
	}
	for name, v := range types {
		schema, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("openapi.json has no schema %s for %T", name, v)
			continue
		}
		var fields []string
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			tag, _, _ := strings.Cut(rt.Field(i).Tag.Get("json"), ",")
			if tag != "" && tag != "-" {
				fields = append(fields, tag)
			}
		}
		slices.Sort(fields)
		props := slices.Sorted(maps.Keys(schema.Properties))
		if !slices.Equal(fields, props) {
			t.Errorf("schema %s has properties %v; %T has fields %v", name, props, v, fields)
		}
	}
}
