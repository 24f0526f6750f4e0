package policy

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pyKind is the kind of a Python token.
type pyKind uint8

const (
	pyName    pyKind = iota // an identifier or keyword, NFKC-folded to ASCII where Python would
	pyString                // a string or bytes literal; val is its decoded value
	pyNumber                // a number
	pyOp                    // an operator or delimiter
	pyNewline               // the end of a logical line
)

// pyTok is one token.
type pyTok struct {
	kind pyKind
	val  string
	// fstr: an f-string or t-string; val holds only its literal text, and
	// its replacement fields are tokens of their own, after it.
	fstr bool
	// opaque: the value is not known exactly (\N{...} escapes).
	opaque bool
}

// lexPython splits src into tokens. It never fails: unterminated strings
// end at the end of their line (or of the input), and characters it does
// not know become operator tokens, so code that does not parse still gets
// every name-level check. Python's own tokenizer decides what runs; this
// one agrees with it on valid code, which is all that can run.
func lexPython(src string) []pyTok {
	lx := &pyLexer{src: src}
	lx.run(false)
	return lx.toks
}

type pyLexer struct {
	src   string
	i     int
	depth int // bracket nesting: newlines inside brackets do not end a line
	toks  []pyTok
}

func (lx *pyLexer) emit(t pyTok) { lx.toks = append(lx.toks, t) }

// pyOps are Python's operators, longest first.
var pyOps = []string{
	"**=", "//=", ">>=", "<<=", "...", "!=", "%=", "&=", "**", "*=", "+=", "-=", "->", "//",
	"/=", ":=", "<<", "<=", "==", ">=", ">>", "@=", "^=", "|=",
}

// run lexes until the end of input or, inside an f-string replacement
// field (field true), until the "}", ":" or "!" that ends the expression at
// nesting zero. It returns the byte that stopped it. Inside a field a
// quote always starts a nested string, as in Python 3.12; in 3.11 the same
// quote could not appear there in valid code, so both agree on code that
// runs.
func (lx *pyLexer) run(field bool) byte {
	local := 0 // nesting inside this field
	for lx.i < len(lx.src) {
		c := lx.src[lx.i]
		switch {
		case c == ' ' || c == '\t' || c == '\f':
			lx.i++
		case c == '\\' && lx.i+1 < len(lx.src) && (lx.src[lx.i+1] == '\n' || lx.src[lx.i+1] == '\r'):
			lx.i += 2
			if lx.src[lx.i-1] == '\r' && lx.i < len(lx.src) && lx.src[lx.i] == '\n' {
				lx.i++
			}
		case c == '\n' || c == '\r':
			lx.i++
			if lx.depth == 0 && !field && len(lx.toks) > 0 && lx.toks[len(lx.toks)-1].kind != pyNewline {
				lx.emit(pyTok{kind: pyNewline})
			}
		case c == '#':
			for lx.i < len(lx.src) && lx.src[lx.i] != '\n' && lx.src[lx.i] != '\r' {
				lx.i++
			}
		case field && local == 0 && (c == '}' || c == ':'):
			return c
		case field && local == 0 && c == '!' && lx.i+1 < len(lx.src) && lx.src[lx.i+1] != '=':
			return c // !r, !s, !a conversion
		case c == '"' || c == '\'':
			lx.str(c, "")
		case c >= '0' && c <= '9' || (c == '.' && lx.i+1 < len(lx.src) && lx.src[lx.i+1] >= '0' && lx.src[lx.i+1] <= '9'):
			lx.number()
		case c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= utf8.RuneSelf && lx.identStart():
			lx.ident()
		default:
			op := string(c)
			for _, o := range pyOps {
				if strings.HasPrefix(lx.src[lx.i:], o) {
					op = o
					break
				}
			}
			if c >= utf8.RuneSelf {
				_, size := utf8.DecodeRuneInString(lx.src[lx.i:])
				op = lx.src[lx.i : lx.i+size]
			}
			lx.i += len(op)
			switch op {
			case "(", "[", "{":
				lx.depth++
				local++
			case ")", "]", "}":
				if lx.depth > 0 {
					lx.depth--
				}
				if local > 0 {
					local--
				}
			}
			lx.emit(pyTok{kind: pyOp, val: op})
		}
	}
	return 0
}

func (lx *pyLexer) identStart() bool {
	r, _ := utf8.DecodeRuneInString(lx.src[lx.i:])
	return isPyIdentRune(r, true)
}

// isPyIdentRune approximates Python's XID_Start / XID_Continue for
// non-ASCII runes; every character that NFKC-folds to ASCII is included,
// which is what matters for the checks.
func isPyIdentRune(r rune, start bool) bool {
	if nfkcFold(r) != "" {
		return true
	}
	if unicode.IsLetter(r) || r == '_' || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Other_ID_Start, r) {
		return true
	}
	return !start && (unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Pc, r) || unicode.Is(unicode.Other_ID_Continue, r))
}

// nfkcFold returns the ASCII NFKC form of r, or "" if it has none.
func nfkcFold(r rune) string {
	i := sort.Search(len(nfkcASCII), func(i int) bool { return nfkcASCII[i].hi >= r })
	if i >= len(nfkcASCII) || nfkcASCII[i].lo > r {
		return ""
	}
	e := nfkcASCII[i]
	if e.lo == e.hi {
		return e.to
	}
	return string(rune(e.to[0]) + (r - e.lo))
}

// ident lexes a name, or the prefix of a string literal.
func (lx *pyLexer) ident() {
	start := lx.i
	var b strings.Builder
	ascii := true
	for lx.i < len(lx.src) {
		c := lx.src[lx.i]
		if c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || (c >= '0' && c <= '9') {
			b.WriteByte(c)
			lx.i++
			continue
		}
		if c < utf8.RuneSelf {
			break
		}
		r, size := utf8.DecodeRuneInString(lx.src[lx.i:])
		if !isPyIdentRune(r, false) {
			break
		}
		ascii = false
		if f := nfkcFold(r); f != "" {
			b.WriteString(f)
		} else {
			b.WriteRune(r)
		}
		lx.i += size
	}
	name := b.String()
	if ascii && lx.i < len(lx.src) && (lx.src[lx.i] == '\'' || lx.src[lx.i] == '"') && isStringPrefix(lx.src[start:lx.i]) {
		lx.str(lx.src[lx.i], strings.ToLower(lx.src[start:lx.i]))
		return
	}
	lx.emit(pyTok{kind: pyName, val: name})
}

func isStringPrefix(p string) bool {
	switch strings.ToLower(p) {
	case "r", "u", "b", "f", "t", "br", "rb", "fr", "rf", "tr", "rt":
		return true
	}
	return false
}

// number lexes a numeric literal: decimal, hex, octal, binary, float,
// imaginary, with underscores.
func (lx *pyLexer) number() {
	s := lx.src
	i := lx.i
	digits := func(ok func(byte) bool) {
		for i < len(s) && (ok(s[i]) || s[i] == '_') {
			i++
		}
	}
	dec := func(c byte) bool { return c >= '0' && c <= '9' }
	if s[i] == '0' && i+1 < len(s) && strings.IndexByte("xXoObB", s[i+1]) >= 0 {
		i += 2
		digits(func(c byte) bool { return dec(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') })
	} else {
		digits(dec)
		if i < len(s) && s[i] == '.' {
			i++
			digits(dec)
		}
		if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
			j := i + 1
			if j < len(s) && (s[j] == '+' || s[j] == '-') {
				j++
			}
			if j < len(s) && dec(s[j]) {
				i = j
				digits(dec)
			}
		}
		if i < len(s) && (s[i] == 'j' || s[i] == 'J') {
			i++
		}
	}
	lx.emit(pyTok{kind: pyNumber, val: s[lx.i:i]})
	lx.i = i
}

// str lexes a string literal whose opening quote is at lx.i.
func (lx *pyLexer) str(quote byte, prefix string) {
	raw := strings.Contains(prefix, "r")
	fmtd := strings.Contains(prefix, "f") || strings.Contains(prefix, "t")
	triple := strings.HasPrefix(lx.src[lx.i:], strings.Repeat(string(quote), 3))
	if triple {
		lx.i += 3
	} else {
		lx.i++
	}
	tok := pyTok{kind: pyString, fstr: fmtd}
	idx := len(lx.toks)
	lx.emit(tok)
	var val strings.Builder
	opaque := false
	closeQuote := strings.Repeat(string(quote), 1)
	if triple {
		closeQuote = strings.Repeat(string(quote), 3)
	}
	for lx.i < len(lx.src) {
		c := lx.src[lx.i]
		if strings.HasPrefix(lx.src[lx.i:], closeQuote) {
			lx.i += len(closeQuote)
			break
		}
		if !triple && (c == '\n' || c == '\r') {
			break // unterminated: a syntax error
		}
		if c == '\\' && lx.i+1 < len(lx.src) {
			if raw {
				val.WriteString(lx.src[lx.i : lx.i+2])
				lx.i += 2
				continue
			}
			s, n, ok := pyEscape(lx.src[lx.i:])
			if !ok {
				opaque = true
			}
			val.WriteString(s)
			lx.i += n
			continue
		}
		if fmtd && c == '{' {
			if lx.i+1 < len(lx.src) && lx.src[lx.i+1] == '{' {
				val.WriteByte('{')
				lx.i += 2
				continue
			}
			lx.i++
			lx.field(quote, triple)
			continue
		}
		if fmtd && c == '}' && lx.i+1 < len(lx.src) && lx.src[lx.i+1] == '}' {
			val.WriteByte('}')
			lx.i += 2
			continue
		}
		val.WriteByte(c)
		lx.i++
	}
	lx.toks[idx].val = val.String()
	lx.toks[idx].opaque = opaque
}

// field lexes an f-string replacement field after its "{": the expression,
// a conversion, and a format spec that may hold nested fields.
func (lx *pyLexer) field(quote byte, triple bool) {
	depth := lx.depth
	lx.emit(pyTok{kind: pyOp, val: "("}) // the field's expression stands alone
	stop := lx.run(true)
	lx.emit(pyTok{kind: pyOp, val: ")"})
	lx.depth = depth
	if stop == '!' {
		lx.i++
		for lx.i < len(lx.src) && lx.src[lx.i] != ':' && lx.src[lx.i] != '}' && lx.src[lx.i] != quote {
			lx.i++
		}
		if lx.i < len(lx.src) && lx.src[lx.i] != quote {
			stop = lx.src[lx.i]
		}
	}
	if stop == ':' {
		lx.i++
		for lx.i < len(lx.src) {
			c := lx.src[lx.i]
			if c == '}' {
				break
			}
			if c == quote || (!triple && (c == '\n' || c == '\r')) {
				return
			}
			if c == '{' {
				lx.i++
				lx.field(quote, triple)
				continue
			}
			lx.i++
		}
		stop = '}'
	}
	if stop == '}' && lx.i < len(lx.src) && lx.src[lx.i] == '}' {
		lx.i++
	}
}

// pyEscape decodes the escape sequence at the start of s (s[0] == '\\'),
// returning the text, the bytes consumed and whether it was understood.
func pyEscape(s string) (string, int, bool) {
	c := s[1]
	switch c {
	case '\n':
		return "", 2, true
	case '\\', '\'', '"':
		return string(c), 2, true
	case 'a':
		return "\a", 2, true
	case 'b':
		return "\b", 2, true
	case 'f':
		return "\f", 2, true
	case 'n':
		return "\n", 2, true
	case 'r':
		return "\r", 2, true
	case 't':
		return "\t", 2, true
	case 'v':
		return "\v", 2, true
	case 'x', 'u', 'U':
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if len(s) < 2+n {
			return s, len(s), false
		}
		v, err := strconv.ParseUint(s[2:2+n], 16, 32)
		if err != nil {
			return s[:2], 2, false
		}
		return string(rune(v)), 2 + n, true
	case 'N':
		end := strings.IndexByte(s, '}')
		if len(s) < 3 || s[2] != '{' || end < 0 {
			return s[:2], 2, false
		}
		if r, ok := unicodeName(s[3:end]); ok {
			return string(r), end + 1, true
		}
		return s[:end+1], end + 1, false
	}
	if c >= '0' && c <= '7' {
		n := 1
		for n < 3 && 1+n < len(s) && s[1+n] >= '0' && s[1+n] <= '7' {
			n++
		}
		v, _ := strconv.ParseUint(s[1:1+n], 8, 32)
		return string(rune(v)), 1 + n, true
	}
	return s[:2], 2, true // unknown escapes stay as they are
}

// unicodeName resolves the \N{...} names of ASCII letters, digits and the
// low line, the ones that can spell a Python name; other names are left
// opaque.
func unicodeName(name string) (rune, bool) {
	name = strings.ToUpper(strings.TrimSpace(name))
	switch {
	case name == "LOW LINE":
		return '_', true
	case name == "FULL STOP":
		return '.', true
	case strings.HasPrefix(name, "LATIN SMALL LETTER ") && len(name) == len("LATIN SMALL LETTER ")+1:
		return rune(name[len(name)-1]) | 0x20, true
	case strings.HasPrefix(name, "LATIN CAPITAL LETTER ") && len(name) == len("LATIN CAPITAL LETTER ")+1:
		return rune(name[len(name)-1]), true
	case strings.HasPrefix(name, "DIGIT "):
		digits := []string{"ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"}
		for i, d := range digits {
			if name == "DIGIT "+d {
				return rune('0' + i), true
			}
		}
	}
	return 0, false
}
