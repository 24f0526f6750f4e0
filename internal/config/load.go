package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Load is Loader{Getenv: getenv, Dotenv: dotenv}.Load(): the configuration
// from the process environment, then the .env variables, then the defaults.
// Either argument may be nil.
func Load(getenv func(string) string, dotenv map[string]string) (Config, error) {
	return Loader{Getenv: getenv, Dotenv: dotenv}.Load()
}

// Loader gathers settings from its sources, highest priority first:
// Overrides, then the process environment (Environ or Getenv), then Dotenv,
// then the defaults. The zero Loader yields [Defaults]. A Loader holds only
// what it is given; it never reads the process environment itself.
type Loader struct {
	// Overrides are values from command-line flags, keyed by any accepted
	// spelling of a variable name. Unknown names are an error: they are
	// written by the program, not the operator. See [Loader.Set].
	Overrides map[string]string
	// Environ is the process environment as [os.Environ] returns it. It
	// finds names in any case and lets Load warn about unknown variables.
	Environ []string
	// Getenv is used instead when Environ is nil; it finds only the upper-
	// and lower-case spellings and cannot report unknown variables.
	Getenv func(string) string
	// Dotenv holds the variables of a .env file; see [LoadFile].
	Dotenv map[string]string
	// DotenvName names the .env source in messages; "" means ".env".
	DotenvName string
	// NumCPU returns the number of CPUs, the upper bound of
	// SANDBOX__CPU_LIMIT; nil means [runtime.NumCPU].
	NumCPU func() int
}

// Set records an override, as a flag.Func callback would: name is any
// accepted spelling of a variable, and the value must parse for its type
// (ranges are checked later, by Load). The override is stored under the
// canonical name, so a later Set of the same variable replaces it. Set is
// not safe for concurrent use.
func (l *Loader) Set(name, value string) error {
	s, inverse, ok := lookup(asciiUpper(name))
	if !ok {
		return fmt.Errorf("unknown setting %s%s: %w", printable(name), suggestion(asciiUpper(name)), sandbox.ErrInvalid)
	}
	var c Config
	canonical, p := s.name, s.field(&c)
	if inverse {
		canonical, p = s.inverse, new(bool)
	}
	if err := setValue(p, value); err != nil {
		return s.parseError(canonical, value, err, origin{})
	}
	if l.Overrides == nil {
		l.Overrides = make(map[string]string)
	}
	for k := range l.Overrides {
		if ks, kinv, ok := lookup(asciiUpper(k)); ok && ks == s && kinv == inverse {
			delete(l.Overrides, k)
		}
	}
	l.Overrides[canonical] = value
	return nil
}

// Load builds the configuration from l's sources and validates it. The
// error joins every problem found, parse and range errors alike, each a
// [*FieldError] or wrapping [sandbox.ErrInvalid]. Warnings (unknown or
// shadowed variables, risky values) do not fail loading: see
// [Config.Warnings]. On error the Config holds the values as parsed, with
// defaults where a value did not parse, and is meant for diagnostics only.
func (l Loader) Load() (Config, error) {
	c := Defaults()
	if l.NumCPU != nil {
		c.numCPU = max(1, l.NumCPU())
	}
	var errs []error
	var warns []string
	var layers []*layer
	if len(l.Overrides) > 0 {
		ly := newLayer("overrides", maps.All(l.Overrides))
		for _, k := range ly.sortedKeys() {
			if _, _, ok := lookup(k); !ok {
				for _, e := range ly.keys[k] {
					errs = append(errs, fmt.Errorf("unknown setting %s in overrides%s: %w", printable(e.key), suggestion(k), sandbox.ErrInvalid))
				}
			}
		}
		layers = append(layers, ly)
	}
	switch {
	case l.Environ != nil:
		ly := newLayer("the environment", environPairs(l.Environ))
		warns = append(warns, ly.unknownWarnings()...)
		layers = append(layers, ly)
	case l.Getenv != nil:
		layers = append(layers, &layer{label: "the environment", getenv: l.Getenv})
	}
	if len(l.Dotenv) > 0 {
		name := l.DotenvName
		if name == "" {
			name = ".env"
		}
		ly := newLayer(name, maps.All(l.Dotenv))
		warns = append(warns, ly.unknownWarnings()...)
		layers = append(layers, ly)
	}

	origins := make(map[string]origin)
	for i := range registry {
		s := &registry[i]
		o, w, err := s.resolve(&c, layers)
		if o.layer != "" {
			origins[s.name] = o
			c.set = append(c.set, s.name)
		}
		warns = append(warns, w...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	c.warnings = warns
	slices.Sort(c.set)
	errs = append(errs, c.validate(origins)...)
	return c, errors.Join(errs...)
}

// IsSet reports whether a source (an override, the environment or a .env
// file) gave the setting name (canonical spelling, e.g. SANDBOX__IMAGE) a
// value, even one equal to its default: a value asked for by name is never
// silently replaced, while a default may fall back where documented.
func (c Config) IsSet(name string) bool {
	_, found := slices.BinarySearch(c.set, name)
	return found
}

// resolve sets s's field from the first layer that sets s (or its inverse)
// and returns where the value came from, warnings about spellings it
// ignored, and a parse or conflict error.
func (s *setting) resolve(c *Config, layers []*layer) (origin, []string, error) {
	for _, ly := range layers {
		direct := ly.find(s.name, s.alias())
		var inv []entry
		if s.inverse != "" {
			inv = ly.find(s.inverse, singleUnderscore(s.inverse))
		}
		if len(direct) == 0 && len(inv) == 0 {
			continue
		}
		warns := append(ly.shadowWarnings(direct), ly.shadowWarnings(inv)...)
		p := s.field(c)
		if len(direct) > 0 {
			e := direct[0]
			o := origin{layer: ly.label, key: e.key, value: e.value}
			if err := setValue(p, e.value); err != nil {
				return o, warns, s.parseError(s.name, e.value, err, o)
			}
			if len(inv) == 0 {
				return o, warns, nil
			}
			// Both spellings are set in this layer: they must agree.
			var on bool
			ie := inv[0]
			if err := setValue(&on, ie.value); err != nil {
				return o, warns, s.parseError(s.inverse, ie.value, err, origin{layer: ly.label, key: ie.key, value: ie.value})
			}
			if *p.(*bool) == on {
				_ = setValue(p, s.def) // keep the (safe) default rather than either side
				return o, warns, &FieldError{
					Name: s.name, Value: e.value, Source: o.layer, Key: o.key,
					Reason: fmt.Sprintf("contradicts %s=%q", printable(ie.key), ie.value),
				}
			}
			return o, warns, nil
		}
		e := inv[0]
		o := origin{layer: ly.label, key: e.key, value: e.value}
		var on bool
		if err := setValue(&on, e.value); err != nil {
			return o, warns, s.parseError(s.inverse, e.value, err, o)
		}
		*p.(*bool) = !on
		return o, warns, nil
	}
	return origin{}, nil, nil
}

func (s *setting) parseError(name, value string, err error, o origin) error {
	fe := &FieldError{Name: name, Value: value, Source: o.layer, Key: o.key, Reason: err.Error()}
	if ve := (*valueError)(nil); errors.As(err, &ve) {
		fe.Reason = ve.reason
	}
	if s.secret {
		fe.Value = "" // never echo a secret
	}
	return fe
}

// origin is where a value came from: a layer label, the spelling used and
// the value as written.
type origin struct {
	layer, key, value string
}

// entry is one variable of a layer, as spelled there.
type entry struct {
	key, value string
}

// layer is one source of values.
type layer struct {
	label string
	// keys maps an ASCII upper-cased name to its spellings in this layer,
	// the exact upper-case spelling first. Nil for a getenv layer.
	keys   map[string][]entry
	getenv func(string) string
}

func newLayer(label string, pairs func(yield func(k, v string) bool)) *layer {
	ly := &layer{label: label, keys: make(map[string][]entry)}
	for k, v := range pairs {
		up := asciiUpper(k)
		ly.keys[up] = append(ly.keys[up], entry{key: k, value: v})
	}
	for up, es := range ly.keys {
		slices.SortFunc(es, func(a, b entry) int {
			if (a.key == up) != (b.key == up) {
				if a.key == up {
					return -1
				}
				return 1
			}
			return strings.Compare(a.key, b.key)
		})
	}
	return ly
}

// environPairs yields os.Environ-style KEY=VALUE strings. The first of
// duplicate keys wins, as with os.Getenv.
func environPairs(environ []string) func(yield func(k, v string) bool) {
	return func(yield func(k, v string) bool) {
		seen := make(map[string]bool)
		for _, kv := range environ {
			// Windows keeps entries like "=C:=C:\dir": the key starts after
			// a leading '='.
			i := strings.IndexByte(kv[min(1, len(kv)):], '=') + min(1, len(kv))
			if i <= 0 || i > len(kv) || seen[kv[:i]] {
				continue
			}
			seen[kv[:i]] = true
			if !yield(kv[:i], kv[i+1:]) {
				return
			}
		}
	}
}

func (ly *layer) sortedKeys() []string { return slices.Sorted(maps.Keys(ly.keys)) }

// find returns the non-empty values set under the given upper-case names,
// best first: the names in order, each exact spelling before others.
func (ly *layer) find(names ...string) []entry {
	var out []entry
	for _, n := range names {
		if ly.keys != nil {
			for _, e := range ly.keys[n] {
				if strings.TrimSpace(e.value) != "" {
					out = append(out, e)
				}
			}
			continue
		}
		for _, k := range []string{n, strings.ToLower(n)} {
			if v := ly.getenv(k); strings.TrimSpace(v) != "" {
				out = append(out, entry{key: k, value: v})
			}
		}
	}
	return out
}

// shadowWarnings reports the spellings that lost to es[0] with another value.
func (ly *layer) shadowWarnings(es []entry) []string {
	var out []string
	for _, e := range es[min(1, len(es)):] {
		if strings.TrimSpace(e.value) != strings.TrimSpace(es[0].value) {
			out = append(out, fmt.Sprintf("%s in %s is ignored: %s is also set and takes precedence", e.key, ly.label, es[0].key))
		}
	}
	return out
}

var sectionPrefixes = []string{"SANDBOX__", "API__", "SECURITY__", "LOG__"}

// unknownWarnings reports variables with a section prefix that name no
// setting, suggesting the nearest known name.
func (ly *layer) unknownWarnings() []string {
	var out []string
	for _, k := range ly.sortedKeys() {
		if !slices.ContainsFunc(sectionPrefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			continue
		}
		if _, _, ok := lookup(k); ok {
			continue
		}
		for _, e := range ly.keys[k] {
			if slices.Contains(retired, k) {
				out = append(out, fmt.Sprintf("%s in %s is a setting of the seed platform that Warden does not implement; it is ignored", printable(e.key), ly.label))
				continue
			}
			out = append(out, fmt.Sprintf("unknown setting %s in %s%s", printable(e.key), ly.label, suggestion(k)))
		}
	}
	return out
}

// suggestion returns "; did you mean NAME?" for the known name nearest to
// upper, or "" if none is close.
func suggestion(upper string) string {
	if len(upper) > 64 {
		return ""
	}
	best, dist := "", 4 // suggest only within 3 edits
	for i := range registry {
		for _, n := range []string{registry[i].name, registry[i].inverse} {
			if n == "" {
				continue
			}
			if d := editDistance(upper, n); d < dist && d < len(n)/2 {
				best, dist = n, d
			}
		}
	}
	if best == "" {
		return ""
	}
	return "; did you mean " + best + "?"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// asciiUpper upper-cases ASCII letters only, so that no Unicode case
// folding can make an unexpected name match a setting.
func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// printable quotes a name that contains anything but printable ASCII.
func printable(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return fmt.Sprintf("%q", s)
		}
	}
	return s
}

// LoadFile reads a .env file with [ParseDotenv]. Errors name the file and
// line ("path:3: ..."). A missing file is an error matching
// [fs.ErrNotExist]; callers that treat the default ".env" as optional check
// for it.
func LoadFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := ParseDotenv(f)
	if err != nil {
		var lineErrs []error
		for _, e := range unjoin(err) {
			if le := (*DotenvError)(nil); errors.As(e, &le) {
				lineErrs = append(lineErrs, fmt.Errorf("%s:%d: %s: %w", path, le.Line, le.Msg, sandbox.ErrInvalid))
			} else {
				lineErrs = append(lineErrs, fmt.Errorf("%s: %w", path, e))
			}
		}
		return nil, errors.Join(lineErrs...)
	}
	return m, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
