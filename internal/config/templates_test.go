package config

import "testing"

func TestTemplates(t *testing.T) {
	t.Parallel()
	c := mustLoad(t, Loader{Environ: []string{"SANDBOX__E2B_TEMPLATES=data=registry.local/data:1, team/ml=ml:latest"}})
	if got := c.Sandbox.E2BTemplates; len(got) != 2 || got["data"] != "registry.local/data:1" || got["team/ml"] != "ml:latest" {
		t.Errorf("E2BTemplates = %v", got)
	}
	if s := c.Sandbox.E2BTemplates.String(); s != "data=registry.local/data:1,team/ml=ml:latest" {
		t.Errorf("String() = %q", s)
	}
	if d := Defaults(); d.Sandbox.E2BTemplates != nil || !d.API.E2B {
		t.Errorf("defaults: templates %v, API__E2B %v; want none and true", d.Sandbox.E2BTemplates, d.API.E2B)
	}
	for _, bad := range []string{"data", "=img", "da ta=img", "x=", "x=a=b", "x=a,x=b", "bad!name=img"} {
		var tm Templates
		if err := tm.Set(bad); err == nil {
			t.Errorf("Set(%q) = nil error, want one (got %v)", bad, tm)
		}
	}
	if _, err := (Loader{Environ: []string{"API__E2B=off"}}).Load(); err != nil {
		t.Errorf("API__E2B=off: %v", err)
	}
}
