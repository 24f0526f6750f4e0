package image

import (
	"bufio"
	"io/fs"
	"path"
	"strings"
)

// HostMirror returns the Debian mirror configured on the host, read from an
// apt configuration directory (normally os.DirFS("/etc/apt")), so that the
// base image comes from the same, possibly local, mirror as the host's
// packages. It returns [DefaultMirror] if none is found.
//
// Files are read in apt's order: sources.list, then sources.list.d/*.list
// (one-line format) and *.sources (deb822 format) by name. The first enabled
// "deb" entry with an http(s) URI and a Debian suite (bookworm, stable,
// bookworm-updates, ...) wins; security archives and other vendors'
// repositories are skipped.
func HostMirror(aptDir fs.FS) string {
	if m := findMirror(aptDir); m != "" {
		return m
	}
	return DefaultMirror
}

// findMirror is [HostMirror] without the default.
func findMirror(aptDir fs.FS) string {
	files := []string{"sources.list"}
	if entries, err := fs.ReadDir(aptDir, "sources.list.d"); err == nil {
		for _, e := range entries {
			if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
				files = append(files, path.Join("sources.list.d", e.Name()))
			}
		}
	}
	for _, name := range files {
		data, err := fs.ReadFile(aptDir, name)
		if err != nil {
			continue
		}
		var m string
		switch {
		case strings.HasSuffix(name, ".list"):
			m = mirrorFromList(string(data))
		case strings.HasSuffix(name, ".sources"):
			m = mirrorFromDeb822(string(data))
		}
		if m != "" {
			return m
		}
	}
	return ""
}

// mirrorFromList parses the one-line format:
//
//	deb [ option=value ... ] uri suite [component ...]
func mirrorFromList(data string) string {
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			// Skip the options, which may contain spaces: "[ arch=amd64 ]".
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && debianEntry(f[0], f[1:2]) {
			return strings.TrimRight(f[0], "/")
		}
	}
	return ""
}

// mirrorFromDeb822 parses the deb822 format: stanzas of "Field: value"
// lines separated by blank lines, continuation lines indented.
func mirrorFromDeb822(data string) string {
	stanza := map[string]string{}
	var last string
	flush := func() string {
		defer clear(stanza)
		if strings.EqualFold(stanza["enabled"], "no") || !hasField(stanza["types"], "deb") {
			return ""
		}
		uris := strings.Fields(stanza["uris"])
		if len(uris) == 0 || !debianEntry(uris[0], strings.Fields(stanza["suites"])) {
			return ""
		}
		return strings.TrimRight(uris[0], "/")
	}
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(nil, 1<<20) // Signed-By may embed a whole key
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if m := flush(); m != "" {
				return m
			}
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				stanza[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			stanza[last] = strings.TrimSpace(v)
		}
	}
	return flush()
}

func hasField(list, want string) bool {
	for f := range strings.FieldsSeq(list) {
		if f == want {
			return true
		}
	}
	return false
}

// debianEntry reports whether uri with these suites is a Debian archive
// that can serve [Suite]: http(s), not a security archive, with a Debian
// release name or alias as a suite.
func debianEntry(uri string, suites []string) bool {
	if checkMirror(uri) != nil || strings.HasSuffix(strings.TrimRight(uri, "/"), "-security") {
		return false
	}
	for _, s := range suites {
		if debianSuite(s) {
			return true
		}
	}
	return false
}

// debianSuite reports whether s names a Debian release or alias, or one of
// its non-security suites such as bookworm-updates.
func debianSuite(s string) bool {
	if strings.Contains(s, "/") { // "buster/updates": the old security layout
		return false
	}
	release, variant, _ := strings.Cut(s, "-")
	if variant == "security" {
		return false
	}
	switch release {
	case "jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke",
		"sid", "experimental", "oldoldstable", "oldstable", "stable", "testing", "unstable":
		return true
	}
	return false
}
