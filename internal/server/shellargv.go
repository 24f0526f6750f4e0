package server

import (
	"regexp"
	"slices"
	"strings"
)

// shellOperators are the argv tokens that shell_operators keeps as
// operators: control operators and redirections, as separate tokens.
var shellOperators = []string{
	"|", "||", "&&", ";", "&", "|&",
	"<", ">", ">>", "<<", "<<<", ">|", "&>", "&>>", ">&", "<&",
	"2>", "2>>", "2>&1", "1>&2", ">&2", "1>", "1>>",
}

// shellBuiltins are commands that exist only inside a shell, so an argv
// starting with one must run through bash (TinyAgent's list, trimmed to
// what makes sense in a one-off command).
var shellBuiltins = []string{
	"cd", "export", "source", ".", "alias", "unalias", "set", "unset", "declare", "local",
	"readonly", "typeset", "eval", "exec", "exit", "return", "shift", "read", "wait",
	"ulimit", "umask", "type", "command", "builtin", "shopt", "pushd", "popd", "dirs", "trap",
}

var assignment = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`)

// shellLine turns an argv into one bash command line, as TinyAgent's
// execute_shell meant to: tokens that are shell operators stay operators,
// leading NAME=value assignments stay assignments, and every other token
// is quoted, so it reaches the command as the word it is (no expansion,
// no globbing). It reports false when the argv needs no shell: no
// operator, no builtin, no assignment. An argv that is already
// `bash -c ...` or `sh -c ...` needs none either.
func shellLine(argv []string) (string, bool) {
	if len(argv) >= 2 && (argv[0] == "bash" || argv[0] == "sh" || argv[0] == "/bin/bash" || argv[0] == "/bin/sh") &&
		(argv[1] == "-c" || argv[1] == "-lc") {
		return "", false
	}
	needs := slices.ContainsFunc(argv, isShellOperator) ||
		slices.Contains(shellBuiltins, argv[0]) || assignment.MatchString(argv[0])
	if !needs {
		return "", false
	}
	var b strings.Builder
	cmdStart := true // the next word may be an assignment
	for i, tok := range argv {
		if i > 0 {
			b.WriteByte(' ')
		}
		switch {
		case isShellOperator(tok):
			b.WriteString(tok)
			cmdStart = true
		case cmdStart && assignment.MatchString(tok):
			name, value, _ := strings.Cut(tok, "=")
			b.WriteString(name + "=" + shellQuote(value))
		default:
			b.WriteString(shellQuote(tok))
			cmdStart = false
		}
	}
	return b.String(), true
}

func isShellOperator(tok string) bool { return slices.Contains(shellOperators, tok) }

var bareWord = regexp.MustCompile(`^[A-Za-z0-9_./:@%+,=-]+$`)

// shellQuote quotes s as one bash word: bare when it holds nothing a
// shell would interpret, else in single quotes.
func shellQuote(s string) string {
	if bareWord.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
