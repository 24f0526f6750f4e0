package server_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
)

func TestEnv(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	id := ts.create(t, `{"environment_variables":{"A":"1","B":"2"}}`)
	base := "/sandbox/" + string(id) + "/env"
	// The steps build on each other, so they run in order.
	steps := []struct {
		method, path, body string
		want               map[string]string
	}{
		{"GET", base, "", map[string]string{"A": "1", "B": "2"}},
		{"PATCH", base, `{"set":{"C":"3","A":"one"},"unset":["B","MISSING"]}`, map[string]string{"A": "one", "C": "3"}},
		{"DELETE", base + "/C", "", map[string]string{"A": "one"}},
		{"DELETE", base + "/NEVER_SET", "", map[string]string{"A": "one"}},
		{"PUT", base, `{"environment_variables":{"X":"with spaces = and \"quotes\""}}`, map[string]string{"X": `with spaces = and "quotes"`}},
		{"PUT", base, `{"environment_variables":{}}`, map[string]string{}},
		{"GET", base, "", map[string]string{}},
	}
	for _, s := range steps {
		var body any
		if s.body != "" {
			body = s.body
		}
		resp := ts.do(t, s.method, s.path, body)
		if resp.status != http.StatusOK {
			t.Fatalf("%s %s %s = %d %s, want 200", s.method, s.path, s.body, resp.status, resp.body)
		}
		got := decode[map[string]map[string]string](t, resp)["environment_variables"]
		if got == nil || !reflect.DeepEqual(got, s.want) {
			t.Errorf("%s %s %s = %s, want %v", s.method, s.path, s.body, resp.body, s.want)
		}
	}
}

func TestEnvInvalid(t *testing.T) {
	t.Parallel()
	ts := newServer(t, setup{})
	id := ts.create(t, nil)
	base := "/sandbox/" + string(id) + "/env"
	tests := []struct {
		method, path, body string
		want               []string
	}{
		{"PUT", base, `{}`, []string{"environment_variables"}},
		{"PUT", base, `{"environment_variables":{"1A":"x","B-C":"y"}}`, []string{"1A", "B-C"}},
		{"PUT", base, `{"environment_variables":{"A":1}}`, []string{"environment_variables", "string"}},
		{"PUT", base, `{"env":{}}`, []string{`"env"`}},
		{"PATCH", base, `{"set":{"OK":"1"},"unset":["bad name"]}`, []string{"bad name"}},
		{"PATCH", base, ``, []string{"empty"}},
		{"DELETE", base + "/9LIVES", "", []string{"9LIVES"}},
	}
	for _, tt := range tests {
		var body any
		if tt.body != "" {
			body = tt.body
		}
		resp := ts.do(t, tt.method, tt.path, body)
		e := wantError(t, tt.method+" "+tt.path+" "+tt.body, resp, http.StatusBadRequest, "invalid")
		for _, w := range tt.want {
			if !strings.Contains(e.Error.Message, w) {
				t.Errorf("%s %s %s message = %q, want it to mention %q", tt.method, tt.path, tt.body, e.Error.Message, w)
			}
		}
	}
	// Nothing changed.
	resp := ts.do(t, "GET", base, nil)
	if got := decode[map[string]map[string]string](t, resp)["environment_variables"]; len(got) != 0 {
		t.Errorf("GET env after refused updates = %v, want empty", got)
	}
}
