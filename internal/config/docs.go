package config

import (
	"fmt"
	"strings"
)

// Setting describes one variable, for documentation and tools such as
// `warden config`.
type Setting struct {
	// Name is the canonical variable name, e.g. SANDBOX__MEMORY_LIMIT.
	Name string
	// Alias is the single-underscore spelling, also accepted.
	Alias string
	// Default is the default value as written in the variable ("" for
	// none); host-dependent defaults are shown symbolically.
	Default string
	// Accepted describes the accepted values or range, or "".
	Accepted string
	// Doc is the operator documentation, in Markdown.
	Doc string
	// Secret settings are never printed.
	Secret bool
}

// Settings describes every variable, in documentation order. The inverse
// spelling SANDBOX__ENABLE_NETWORK is listed after SANDBOX__NETWORK_DISABLED.
func Settings() []Setting {
	var out []Setting
	var c Config
	for i := range registry {
		s := &registry[i]
		def := s.def
		if s.defDoc != "" {
			def = s.defDoc
		}
		out = append(out, Setting{
			Name: s.name, Alias: s.alias(), Default: def,
			Accepted: s.accepted(&c), Doc: s.doc, Secret: s.secret,
		})
		if s.inverse != "" {
			out = append(out, Setting{
				Name: s.inverse, Alias: singleUnderscore(s.inverse),
				Doc: fmt.Sprintf("Inverse of `%s`: `true` allows network access.", s.name),
			})
		}
	}
	return out
}

// accepted describes what values s takes, for the documentation.
func (s *setting) accepted(c *Config) string {
	if s.rule != nil {
		return s.rule.accepted
	}
	if ev, ok := s.field(c).(enumValue); ok {
		return "one of `" + strings.Join(ev.choices().values, "`, `") + "`"
	}
	return ""
}

// Markdown renders the settings table for the README:
// | variable | default | description |, one row per variable.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| variable | default | description |\n")
	b.WriteString("|---|---|---|\n")
	for _, s := range Settings() {
		def := s.Default
		switch {
		case def == "":
			def = "(unset)"
		case !strings.HasPrefix(def, "`"):
			def = "`" + def + "`"
		}
		desc := s.Doc
		if s.Accepted != "" {
			desc += " Accepted: " + s.Accepted + "."
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Name, cell(def), cell(desc))
	}
	return b.String()
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}
