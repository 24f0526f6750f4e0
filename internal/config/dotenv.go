package config

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// maxDotenvSize bounds what ParseDotenv reads.
const maxDotenvSize = 1 << 20

// DotenvError is a malformed line of a .env file.
type DotenvError struct {
	Line int    // 1-based
	Msg  string // what is wrong
}

func (e *DotenvError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Unwrap returns [sandbox.ErrInvalid].
func (e *DotenvError) Unwrap() error { return sandbox.ErrInvalid }

// ParseDotenv reads .env syntax, a subset of python-dotenv's that the seed
// used, and returns its variables. A later assignment to the same name
// wins. The syntax, line by line:
//
//   - blank lines and lines whose first non-blank character is # are ignored;
//   - KEY=VALUE, optionally preceded by "export ", with blanks allowed around
//     '='; KEY is [A-Za-z_][A-Za-z0-9_]*;
//   - an unquoted VALUE runs to the end of the line, minus surrounding blanks
//     and minus a comment that starts with a blank followed by #;
//   - a VALUE in single quotes is literal;
//   - a VALUE in double quotes understands the escapes \n \r \t \\ \" \' and
//     \$, keeping any other backslash as it is;
//   - quoted values may span lines, and may be followed by blanks and a
//     comment only.
//
// There is no variable expansion: "${HOME}" stays as written. CRLF line
// ends and a leading byte-order mark are accepted. Input over 1 MiB is an
// error. ParseDotenv reports every malformed line, as errors.Join of
// [*DotenvError] values, and returns no variables then.
func ParseDotenv(r io.Reader) (map[string]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDotenvSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading dotenv: %w", err)
	}
	if len(data) > maxDotenvSize {
		return nil, fmt.Errorf("dotenv input is larger than %d bytes: %w", maxDotenvSize, sandbox.ErrInvalid)
	}
	text := strings.TrimPrefix(string(data), "\ufeff")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	lines := strings.Split(text, "\n")

	vars := make(map[string]string)
	var errs []error
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		fail := func(format string, args ...any) {
			errs = append(errs, &DotenvError{Line: lineNo, Msg: fmt.Sprintf(format, args...)})
		}
		line := strings.TrimLeft(lines[i], " \t")
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			line = strings.TrimLeft(rest, " \t")
		}
		n := 0
		for n < len(line) && isKeyByte(line[n], n == 0) {
			n++
		}
		key := line[:n]
		rest := strings.TrimLeft(line[n:], " \t")
		if key == "" || rest == "" || rest[0] != '=' {
			fail("expected KEY=VALUE")
			continue
		}
		raw := rest[1:]
		value := strings.TrimLeft(raw, " \t")
		if value == "" || (value[0] != '"' && value[0] != '\'') {
			// Unquoted: a comment starts at a # preceded by a blank.
			for j := 1; j < len(raw); j++ {
				if raw[j] == '#' && (raw[j-1] == ' ' || raw[j-1] == '\t') {
					raw = raw[:j]
					break
				}
			}
			vars[key] = strings.Trim(raw, " \t\r")
			continue
		}

		quote := value[0]
		body := value[1:]
		var b strings.Builder
		for {
			tail, closed := scanQuoted(&b, body, quote)
			if closed {
				if t := strings.TrimLeft(tail, " \t\r"); t != "" && t[0] != '#' {
					fail("unexpected text after the closing quote")
				} else {
					vars[key] = b.String()
				}
				break
			}
			if i+1 == len(lines) {
				fail("unterminated %c-quoted value", quote)
				break
			}
			b.WriteByte('\n')
			i++
			body = lines[i]
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return vars, nil
}

func isKeyByte(c byte, first bool) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || !first && c >= '0' && c <= '9'
}

var dotenvEscapes = map[byte]byte{'n': '\n', 'r': '\r', 't': '\t', '\\': '\\', '"': '"', '\'': '\'', '$': '$'}

// scanQuoted appends the quoted text of s, up to the closing quote, to b. It
// returns what follows the closing quote and whether there was one.
func scanQuoted(b *strings.Builder, s string, quote byte) (tail string, closed bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == quote:
			return s[i+1:], true
		case c == '\\' && quote == '"' && i+1 < len(s):
			if e, ok := dotenvEscapes[s[i+1]]; ok {
				b.WriteByte(e)
				i++
				continue
			}
		}
		b.WriteByte(c)
	}
	return "", false
}

// quoteDotenv returns v in .env syntax: as is when that is unambiguous,
// otherwise double-quoted with escapes. ParseDotenv reads it back as v.
func quoteDotenv(v string) string {
	plain := true
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-.,/:@+=%^~[]", c) >= 0) {
			plain = false
			break
		}
	}
	if plain {
		return v
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
