package policy

import (
	"fmt"
	"slices"
	"strings"
)

// This file analyses the two small languages the allowed commands run:
// sed scripts and awk programs. Both analysers fail closed: text they cannot
// read with certainty is refused, because a misread boundary (where a
// regular expression or a string ends) could hide a command from them.

const unanalysable = "the script cannot be analysed"

// regexEnd returns the index just past the delimiter that ends a regular
// expression starting at s[start], or ok=false. sed and awk implementations
// disagree on whether the delimiter may appear inside a bracket expression
// and whether a backslash escapes there (GNU sed and mawk: [/] is a
// bracket holding "/"; older ones end the regex at that "/"). The end is
// computed under each reading and accepted only if they agree.
func regexEnd(s string, start int, delim byte) (int, bool) {
	plain := regexEndModel(s, start, delim, false, false)
	posix := regexEndModel(s, start, delim, true, false)
	escaping := regexEndModel(s, start, delim, true, true)
	if plain < 0 || plain != posix || plain != escaping {
		return 0, false
	}
	return plain, true
}

// regexEndModel finds the end under one reading: brackets says whether
// [...] is recognised, escapeInBracket whether a backslash escapes inside
// it. It returns -1 for an unterminated regex or a raw newline in it.
func regexEndModel(s string, i int, delim byte, brackets, escapeInBracket bool) int {
	for i < len(s) {
		c := s[i]
		switch {
		case c == '\n':
			return -1
		case c == '\\':
			if i+1 >= len(s) || s[i+1] == '\n' {
				return -1
			}
			i += 2
		case c == delim:
			return i + 1
		case c == '[' && brackets:
			j := i + 1
			if j < len(s) && s[j] == '^' {
				j++
			}
			if j < len(s) && s[j] == ']' {
				j++
			}
			for {
				if j >= len(s) || s[j] == '\n' {
					return -1
				}
				if s[j] == '[' && j+1 < len(s) && strings.IndexByte(":.=", s[j+1]) >= 0 {
					end := strings.Index(s[j+2:], string(s[j+1])+"]")
					if end < 0 {
						return -1
					}
					j += 2 + end + 2
					continue
				}
				if s[j] == '\\' && escapeInBracket {
					j += 2
					continue
				}
				if s[j] == ']' {
					break
				}
				j++
			}
			i = j + 1
		default:
			i++
		}
	}
	return -1
}

// checkSedScript returns why a sed script is refused, or "". It follows
// GNU sed's grammar; the e and w commands and the e and w flags of s are
// refused, and so is anything it cannot parse.
func checkSedScript(s string) string {
	p := &sedParser{s: s}
	return p.run()
}

type sedParser struct {
	s string
	i int
}

func (p *sedParser) eof() bool { return p.i >= len(p.s) }

func (p *sedParser) skip(chars string) {
	for !p.eof() && strings.IndexByte(chars, p.s[p.i]) >= 0 {
		p.i++
	}
}

// until advances to the first byte in stops.
func (p *sedParser) until(stops string) {
	for !p.eof() && strings.IndexByte(stops, p.s[p.i]) < 0 {
		p.i++
	}
}

func (p *sedParser) run() string {
	for {
		p.skip(" \t\r\n;")
		if p.eof() {
			return ""
		}
		switch p.s[p.i] {
		case '#':
			p.until("\n")
			continue
		case '}':
			p.i++
			continue
		}
		if why := p.address(false); why != "" {
			return why
		}
		p.skip(" \t")
		if !p.eof() && p.s[p.i] == ',' {
			p.i++
			p.skip(" \t")
			if why := p.address(true); why != "" {
				return why
			}
		}
		p.skip(" \t")
		for !p.eof() && p.s[p.i] == '!' {
			p.i++
			p.skip(" \t")
		}
		if p.eof() {
			return "" // an address without a command: sed reports an error
		}
		cmd := p.s[p.i]
		p.i++
		switch cmd {
		case '{':
			continue
		case '=', 'd', 'D', 'F', 'g', 'G', 'h', 'H', 'n', 'N', 'p', 'P', 'x', 'z':
		case 'l', 'L', 'q', 'Q':
			p.skip(" \t")
			p.skip("0123456789")
		case ':', 'b', 't', 'T', 'v':
			// A label ends at the first of ";", blank or newline: the
			// earliest end any sed uses, so nothing after it is missed.
			p.skip(" \t")
			p.until("; \t\r\n")
		case 'a', 'i', 'c':
			p.text()
		case 'r', 'R':
			// GNU reads the file name to the end of the line; stopping at
			// ";" instead only checks more.
			p.until(";\n")
		case 'w', 'W':
			return "the " + string(cmd) + " command writes a file"
		case 'e':
			return "the e command runs a command"
		case 's':
			if why := p.subst(); why != "" {
				return why
			}
		case 'y':
			if why := p.translit(); why != "" {
				return why
			}
		default:
			return fmt.Sprintf("%s (unknown command %q)", unanalysable, cmd)
		}
		p.skip(" \t\r")
		if !p.eof() && strings.IndexByte(";\n}#", p.s[p.i]) < 0 {
			return fmt.Sprintf("%s (unexpected %q after the %c command)", unanalysable, p.s[p.i], cmd)
		}
	}
}

// address reads an optional address: a line number, first~step, $, /re/
// or \cREc; the second address may also be +N or ~N.
func (p *sedParser) address(second bool) string {
	if p.eof() {
		return ""
	}
	c := p.s[p.i]
	switch {
	case c >= '0' && c <= '9':
		p.skip("0123456789")
		if !p.eof() && p.s[p.i] == '~' {
			p.i++
			p.skip("0123456789")
		}
	case second && (c == '+' || c == '~'):
		p.i++
		p.skip("0123456789")
	case c == '$':
		p.i++
	case c == '/' || c == '\\':
		delim := byte('/')
		p.i++
		if c == '\\' {
			if p.eof() || !sedDelimOK(p.s[p.i]) {
				return unanalysable + " (bad regex delimiter)"
			}
			delim = p.s[p.i]
			p.i++
		}
		end, ok := regexEnd(p.s, p.i, delim)
		if !ok {
			return unanalysable + " (ambiguous or unterminated regular expression)"
		}
		p.i = end
		p.skip("IM")
	}
	return ""
}

func sedDelimOK(c byte) bool { return c != '\n' && c != '\\' && c < 0x80 }

// text reads the text of a, i and c: up to an unescaped newline.
func (p *sedParser) text() {
	p.skip(" \t")
	for !p.eof() {
		switch p.s[p.i] {
		case '\\':
			p.i += 2
		case '\n':
			p.i++
			return
		default:
			p.i++
		}
	}
}

// subst reads s/re/replacement/flags.
func (p *sedParser) subst() string {
	if p.eof() || !sedDelimOK(p.s[p.i]) {
		return unanalysable + " (bad s delimiter)"
	}
	delim := p.s[p.i]
	p.i++
	end, ok := regexEnd(p.s, p.i, delim)
	if !ok {
		return unanalysable + " (ambiguous or unterminated regular expression)"
	}
	p.i = end
	// The replacement: brackets are not special, a backslash escapes.
	end = regexEndModel(p.s, p.i, delim, false, false)
	if end < 0 {
		return unanalysable + " (unterminated replacement)"
	}
	p.i = end
	for !p.eof() {
		switch c := p.s[p.i]; {
		case strings.IndexByte("gpiImM0123456789", c) >= 0:
			p.i++
		case c == 'e':
			return "the e flag of s runs the result as a command"
		case c == 'w':
			return "the w flag of s writes a file"
		default:
			return ""
		}
	}
	return ""
}

// translit reads y/source/dest/.
func (p *sedParser) translit() string {
	if p.eof() || !sedDelimOK(p.s[p.i]) {
		return unanalysable + " (bad y delimiter)"
	}
	delim := p.s[p.i]
	p.i++
	for range 2 {
		end := regexEndModel(p.s, p.i, delim, false, false)
		if end < 0 {
			return unanalysable + " (unterminated y command)"
		}
		p.i = end
	}
	return ""
}

// awkKeywords are names after which an operand is expected, so "/" starts
// a regular expression.
var awkKeywords = []string{
	"BEGIN", "END", "BEGINFILE", "ENDFILE", "function", "func", "if", "else", "while", "for",
	"do", "break", "continue", "next", "nextfile", "exit", "return", "delete", "in", "print",
	"printf", "case", "default", "switch",
}

// checkAwkProgram returns why an awk program is refused, or "": system()
// and pipes run commands, print > file writes files, and gawk's @ forms,
// extension() and /inet special files reach outside. Code it cannot
// tokenise with certainty is refused.
func checkAwkProgram(s string) string {
	prevOperand := false // the last token ends an operand: "/" divides
	depth := 0           // ( and [ nesting
	printDepth := -1     // nesting of the print statement being read, or -1
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			i += 2
		case c == '\\' && i+2 < len(s) && s[i+1] == '\r' && s[i+2] == '\n':
			i += 3
		case c == '\n' || c == ';':
			if printDepth >= 0 && depth <= printDepth {
				printDepth = -1
			}
			prevOperand = false
			i++
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '"':
			str, end, ok := awkString(s, i)
			if !ok {
				return unanalysable + " (unterminated string)"
			}
			if strings.HasPrefix(str, "/inet") {
				return "the special file " + str + " opens a network connection"
			}
			i = end
			prevOperand = true
		case c == '/' && !prevOperand:
			end, ok := regexEnd(s, i+1, '/')
			if !ok {
				return unanalysable + " (ambiguous or unterminated regular expression)"
			}
			i = end
			prevOperand = true
		case c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z'):
			j := i
			for j < len(s) && (s[j] == '_' || (s[j]|0x20 >= 'a' && s[j]|0x20 <= 'z') || (s[j] >= '0' && s[j] <= '9')) {
				j++
			}
			word := s[i:j]
			i = j
			switch word {
			case "system":
				return "system() runs a command"
			case "extension":
				return "extension() loads a library"
			case "print", "printf":
				printDepth = depth
			}
			prevOperand = !slices.Contains(awkKeywords, word)
		case c >= '0' && c <= '9' || (c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9'):
			for i < len(s) && (s[i] == '.' || s[i] == '_' || (s[i] >= '0' && s[i] <= '9') || (s[i]|0x20 >= 'a' && s[i]|0x20 <= 'z')) {
				i++
			}
			prevOperand = true
		case c == '(' || c == '[':
			depth++
			prevOperand = false
			i++
		case c == ')' || c == ']':
			depth--
			prevOperand = true
			i++
		case c == '{' || c == '}':
			printDepth = -1
			prevOperand = false
			i++
		case c == '|':
			if i+1 < len(s) && s[i+1] == '|' {
				i += 2
				prevOperand = false
				continue
			}
			return "| runs a command (print | cmd, cmd | getline)"
		case c == '>':
			i++
			if i < len(s) && s[i] == '>' {
				i++
			} else if i < len(s) && s[i] == '=' {
				i++
				prevOperand = false
				continue
			}
			if printDepth >= 0 && depth == printDepth && !awkStdRedirect(s, i) {
				return "print > file writes a file"
			}
			prevOperand = false
		case c == '@':
			return "@ directives and indirect calls (gawk) cannot be checked"
		case c == '+' || c == '-':
			if i+1 < len(s) && s[i+1] == c {
				i += 2
				prevOperand = true
				continue
			}
			i++
			prevOperand = false
		default:
			i++
			prevOperand = false
		}
	}
	return ""
}

// awkString reads the string literal at s[i] == '"'.
func awkString(s string, i int) (string, int, bool) {
	var b strings.Builder
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if j+1 >= len(s) {
				return "", 0, false
			}
			j++
			b.WriteByte(s[j])
		case '\n':
			return "", 0, false
		case '"':
			return b.String(), j + 1, true
		default:
			b.WriteByte(s[j])
		}
	}
	return "", 0, false
}

// awkStdRedirect reports whether the print redirection target at s[i] is
// "/dev/stdout" or "/dev/stderr" ending the statement: writing there is
// printing.
func awkStdRedirect(s string, i int) bool {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if i >= len(s) || s[i] != '"' {
		return false
	}
	str, end, ok := awkString(s, i)
	if !ok || (str != "/dev/stdout" && str != "/dev/stderr") {
		return false
	}
	for end < len(s) && (s[end] == ' ' || s[end] == '\t' || s[end] == '\r') {
		end++
	}
	return end >= len(s) || strings.IndexByte(";\n}", s[end]) >= 0
}
