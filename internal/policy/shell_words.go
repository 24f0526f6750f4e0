package policy

import (
	"slices"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// warg is one shell word as far as the checker can know it before the
// command runs.
type warg struct {
	// val is the word's value when konst; otherwise the constant text
	// before the first part only known at run time (a parameter, a
	// substitution, a glob or a brace expansion).
	val string
	// konst reports that the word is one constant field: literals and
	// quotes only, so "r""m" and \rm are the constant rm.
	konst bool
	// multi reports that the word may expand to zero or several fields:
	// unquoted expansions, globs, brace expansions, "$@".
	multi bool
	// word is the source word, for messages; nil for argv elements.
	word *syntax.Word
	// pos is the word's offset in its script.
	pos uint
}

// constArg is an argv element: always one constant field.
func constArg(s string) warg { return warg{val: s, konst: true} }

// display is the word as written, for messages.
func (a warg) display() string {
	if a.word == nil {
		return strconv.Quote(a.val)
	}
	var b strings.Builder
	if err := syntax.NewPrinter().Print(&b, a.word); err != nil {
		return strconv.Quote(a.val)
	}
	return b.String()
}

// placeholders in the unquoted text used to find glob and brace characters
// that are active (not quoted or escaped).
const (
	quotedChar  = '\x00'
	dynamicChar = '\x01'
)

// evalWord resolves w as far as it is constant.
func evalWord(w *syntax.Word) warg {
	a := warg{word: w, pos: w.Pos().Offset(), konst: true}
	// First pass: the word's text with quoted and dynamic parts replaced
	// by placeholders, to find the first active glob or brace character.
	var unq []byte
	for i, part := range w.Parts {
		switch p := part.(type) {
		case *syntax.Lit:
			s := p.Value
			for j := 0; j < len(s); j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
					unq = append(unq, quotedChar)
					continue
				}
				if s[j] == '~' && i == 0 && j == 0 {
					unq = append(unq, dynamicChar)
					continue
				}
				unq = append(unq, s[j])
			}
		case *syntax.SglQuoted:
			if p.Dollar {
				unq = append(unq, dynamicChar)
			} else {
				unq = append(unq, strings.Repeat(string(quotedChar), len(p.Value))...)
			}
		case *syntax.DblQuoted:
			if p.Dollar {
				unq = append(unq, dynamicChar)
				continue
			}
			for _, dp := range p.Parts {
				if l, ok := dp.(*syntax.Lit); ok {
					unq = append(unq, strings.Repeat(string(quotedChar), len(unescapeDouble(l.Value)))...)
				} else {
					unq = append(unq, dynamicChar)
				}
			}
		default:
			unq = append(unq, dynamicChar)
		}
	}
	active := firstActive(unq)
	hasActive := active < len(unq)

	// Second pass: the value, up to the first run-time part.
	var b strings.Builder
	stop := func() bool {
		if hasActive && b.Len() >= active {
			a.konst = false
			a.multi = true
			return true
		}
		return false
	}
parts:
	for i, part := range w.Parts {
		switch p := part.(type) {
		case *syntax.Lit:
			s := p.Value
			for j := 0; j < len(s); j++ {
				if stop() {
					break parts
				}
				if s[j] == '\\' && j+1 < len(s) {
					j++
				} else if s[j] == '~' && i == 0 && j == 0 {
					// Tilde expansion: a home directory, an absolute path.
					a.konst = false
					b.WriteString("/")
					break parts
				}
				b.WriteByte(s[j])
			}
		case *syntax.SglQuoted:
			if p.Dollar {
				a.konst = false // $'...' escapes: not decoded, so not constant
				break parts
			}
			for j := 0; j < len(p.Value); j++ {
				if stop() {
					break parts
				}
				b.WriteByte(p.Value[j])
			}
		case *syntax.DblQuoted:
			if p.Dollar {
				a.konst = false // $"..." may be translated
				break parts
			}
			for _, dp := range p.Parts {
				l, ok := dp.(*syntax.Lit)
				if !ok {
					a.konst = false
					if quotedMulti(dp) {
						a.multi = true
					}
					break parts
				}
				s := unescapeDouble(l.Value)
				for j := 0; j < len(s); j++ {
					if stop() {
						break parts
					}
					b.WriteByte(s[j])
				}
			}
		case *syntax.ProcSubst:
			// A path such as /dev/fd/63.
			a.konst = false
			b.WriteString("/dev/fd/")
			break parts
		case *syntax.ArithmExp:
			a.konst = false // a number, maybe negative; one field
			break parts
		default: // ParamExp, CmdSubst, ExtGlob: split and globbed
			a.konst = false
			a.multi = true
			break parts
		}
	}
	if !a.konst && !a.multi {
		// Later unquoted expansions split too.
		for _, part := range w.Parts {
			switch p := part.(type) {
			case *syntax.ParamExp, *syntax.CmdSubst, *syntax.ExtGlob:
				a.multi = true
			case *syntax.DblQuoted:
				for _, dp := range p.Parts {
					if quotedMulti(dp) {
						a.multi = true
					}
				}
			}
		}
		if hasActive {
			a.multi = true
		}
	}
	a.val = b.String()
	return a
}

// quotedMulti reports whether a part inside double quotes still expands to
// several fields: "$@", "${a[@]}", "${!prefix@}".
func quotedMulti(p syntax.WordPart) bool {
	pe, ok := p.(*syntax.ParamExp)
	if !ok {
		return false
	}
	if pe.Param != nil && pe.Param.Value == "@" {
		return true
	}
	if pe.Names == syntax.NamesPrefixWords {
		return true
	}
	if pe.Index != nil {
		if w, ok := pe.Index.(*syntax.Word); ok && w.Lit() == "@" {
			return true
		}
	}
	return false
}

// firstActive returns the index in unq of the first character that makes
// the word a pattern: *, ?, [ with a later ], or a brace expansion; or
// len(unq).
func firstActive(unq []byte) int {
	for i, c := range unq {
		switch c {
		case '*', '?':
			return i
		case '[':
			for _, d := range unq[i+1:] {
				if d == ']' {
					return i
				}
			}
		case '{':
			// {a,b} or {1..3}: an unquoted comma or .. before a later }.
			depth, seen := 0, false
			for j := i + 1; j < len(unq); j++ {
				switch unq[j] {
				case '{':
					depth++
				case ',':
					seen = true
				case '.':
					if j+1 < len(unq) && unq[j+1] == '.' {
						seen = true
					}
				case '}':
					if depth == 0 {
						if seen {
							return i
						}
						j = len(unq)
					} else {
						depth--
					}
				}
			}
		}
	}
	return len(unq)
}

// unescapeDouble removes the backslashes that quote a character inside
// double quotes.
func unescapeDouble(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '$', '`', '"', '\\':
				i++
			case '\n':
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// wordSuffix returns the constant text at the end of w, after its last
// part known only at run time: "/.bashrc" for ~/.bashrc or "$HOME/.bashrc".
func wordSuffix(w *syntax.Word) string {
	var parts []string
	for i := len(w.Parts) - 1; i >= 0; i-- {
		switch p := w.Parts[i].(type) {
		case *syntax.Lit:
			v := p.Value
			if i == 0 {
				v = strings.TrimLeft(v, "~")
			}
			parts = append(parts, strings.ReplaceAll(v, "\\", ""))
			continue
		case *syntax.SglQuoted:
			if !p.Dollar {
				parts = append(parts, p.Value)
				continue
			}
		case *syntax.DblQuoted:
			for j := len(p.Parts) - 1; j >= 0; j-- {
				l, ok := p.Parts[j].(*syntax.Lit)
				if !ok {
					return joinReversed(parts)
				}
				parts = append(parts, unescapeDouble(l.Value))
			}
			continue
		}
		break
	}
	return joinReversed(parts)
}

func joinReversed(parts []string) string {
	slices.Reverse(parts)
	return strings.Join(parts, "")
}
