package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// defaultSafeCommands is TinyAgent's safe_shell_commands, exactly.
var defaultSafeCommands = []string{
	"ls", "cat", "grep", "find", "echo", "pwd", "whoami", "date", "head", "tail",
	"wc", "sort", "uniq", "tr", "cut", "sed", "awk", "ps", "df", "du", "uname",
	"which", "type", "file", "stat", "rg", "if", "tree",
}

// defaultControlOperators is TinyAgent's safe_control_operators, exactly.
var defaultControlOperators = []string{"&&", "||", ";", "|"}

// noopCommands do nothing but succeed, fail or steer a loop or function.
// They are always allowed: TinyAgent skipped true and false as keywords,
// ":" is their twin, and the control builtins read their argument as a
// plain number (not as arithmetic), so they run nothing.
var noopCommands = []string{"true", "false", ":", "break", "continue", "return", "exit", "shift"}

// maxShellDepth bounds how many shells inside shells (bash -c, eval, watch)
// the checker follows; deeper nesting is refused.
const maxShellDepth = 8

// DefaultSafeCommands returns the commands a [ShellPolicy] allows without
// ExtraCommands: TinyAgent's safe_shell_commands, exactly.
func DefaultSafeCommands() []string { return slices.Clone(defaultSafeCommands) }

// DefaultControlOperators returns the control operators a [ShellPolicy]
// allows without ExtraOperators: "&&", "||", ";" and "|".
func DefaultControlOperators() []string { return slices.Clone(defaultControlOperators) }

// ShellPolicy decides whether a shell command may run. The zero value is
// TinyAgent's policy with shell safety on: the default commands and
// operators, nothing extra.
//
// TinyAgent's providers switched the check off by default for docker,
// bubblewrap and seatbelt (bypass_shell_safety=True) and on only for
// modal; [DefaultShellPolicy] maps a provider's isolation to the same
// default.
//
// A ShellPolicy is a value; its methods are pure and safe for concurrent
// use.
type ShellPolicy struct {
	// Bypass switches the check off: every command is allowed
	// (bypass_shell_safety).
	Bypass bool
	// ExtraCommands extends the allowed commands
	// (additional_safe_shell_commands). "*" allows everything, like Bypass.
	ExtraCommands []string
	// ExtraOperators extends the allowed control operators
	// (additional_safe_control_operators); "*" allows any operator.
	// Background ("&") and "|&" are operators that must be allowed here.
	ExtraOperators []string
}

func (p ShellPolicy) bypass() bool {
	return p.Bypass || slices.Contains(p.ExtraCommands, "*")
}

// Check parses command as bash and refuses it unless every command that
// could run is allowed. The result is nil or a [*PolicyError].
func (p ShellPolicy) Check(command string) error {
	if p.bypass() {
		return nil
	}
	c := &shellChecker{p: p, budget: workBudget(len(command))}
	if perr := c.checkScript(command, dialectBash, 0); perr != nil {
		return perr
	}
	return nil
}

// CheckArgv checks a command given as an argument vector, which Warden
// runs without a shell: argv[0] must be allowed, its arguments must not make
// it dangerous, and a shell wrapper (bash -c SCRIPT, env, xargs, ...) has
// its inner command or script checked as well. An element that is a shell
// control operator ("&", "|", ";", ...) is refused: without a shell it
// would be a plain argument, so the caller almost certainly meant a command
// string. The result is nil or a [*PolicyError].
func (p ShellPolicy) CheckArgv(argv []string) error {
	if p.bypass() {
		return nil
	}
	if len(argv) == 0 || argv[0] == "" {
		return deny(RuleShellEmpty, "Empty or invalid command")
	}
	for _, a := range argv[1:] {
		switch a {
		case "&", "&&", "||", ";", "|", "|&", ";;", "\n":
			return deny(RuleShellArgv, fmt.Sprintf("argument %q is a shell operator, but an argv runs without a shell; send a command string instead", a))
		}
	}
	n := 0
	for _, a := range argv {
		n += len(a)
	}
	c := &shellChecker{p: p, budget: workBudget(n)}
	u := &unit{c: c}
	args := make([]warg, len(argv))
	for i, a := range argv {
		args[i] = constArg(a)
	}
	if perr := u.checkArgv(args, argvCtx{}); perr != nil {
		return perr
	}
	return nil
}

// CheckEnv refuses environment variables that change how commands are
// found or run (PATH, LD_PRELOAD, BASH_ENV, IFS, ...): the same names a
// command may not assign. Use it on the environment of an execution
// request. The result is nil or a [*PolicyError].
func (p ShellPolicy) CheckEnv(env map[string]string) error {
	if p.bypass() {
		return nil
	}
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if why := sensitiveVar(k); why != "" {
			return deny(RuleShellEnv, fmt.Sprintf("Unsafe environment variable: %s %s", k, why))
		}
	}
	return nil
}

// shellChecker holds one check's policy.
type shellChecker struct {
	p ShellPolicy
	// budget is the number of script bytes left to parse. Each sh -c
	// level is parsed twice (POSIX and bash), so nested shells could make
	// the work exponential; past the budget the command is refused.
	budget int
}

// parseCost is the fixed cost of one parse, in bytes of budget.
const parseCost = 4 << 10

// workBudget allows parsing sixteen times the command's size, and at
// least 64 parses of short scripts.
func workBudget(n int) int { return max(16*n, 64*parseCost) }

func (c *shellChecker) commandAllowed(name string) bool {
	return slices.Contains(defaultSafeCommands, name) || slices.Contains(noopCommands, name) ||
		slices.Contains(c.p.ExtraCommands, name)
}

func (c *shellChecker) operatorAllowed(op string) bool {
	return slices.Contains(defaultControlOperators, op) || slices.Contains(c.p.ExtraOperators, op) ||
		slices.Contains(c.p.ExtraOperators, "*")
}

func (c *shellChecker) allowedOperators() string {
	ops := slices.Concat(defaultControlOperators, c.p.ExtraOperators)
	slices.Sort(ops)
	return strings.Join(slices.Compact(ops), " ")
}

// dialect says which grammars a script must pass.
type dialect int

const (
	dialectBash  dialect = iota // the command string Warden runs with bash -c
	dialectShell                // sh -c: /bin/sh may be dash, busybox or bash
)

// checkScript parses src and checks every command in it. An sh script must
// pass both as POSIX sh and as bash, since /bin/sh differs between images.
func (c *shellChecker) checkScript(src string, d dialect, depth int) *PolicyError {
	if depth > maxShellDepth {
		return deny(RuleShellNesting, fmt.Sprintf("shells nested deeper than %d levels cannot be checked", maxShellDepth))
	}
	langs := []syntax.LangVariant{syntax.LangBash}
	if d == dialectShell {
		langs = append(langs, syntax.LangPOSIX)
	}
	for _, lang := range langs {
		if c.budget -= len(src) + parseCost; c.budget < 0 {
			return deny(RuleShellNesting, "the command nests shells too much to be checked")
		}
		f, err := syntax.NewParser(syntax.Variant(lang)).Parse(strings.NewReader(src), "")
		if err != nil {
			return deny(RuleShellSyntax, "Could not parse "+lang.String()+" command safely: "+err.Error())
		}
		if depth == 0 && len(f.Stmts) == 0 {
			return deny(RuleShellEmpty, "Empty or invalid command")
		}
		u := &unit{c: c, depth: depth}
		if perr := u.check(f); perr != nil {
			return perr
		}
	}
	return nil
}

// unit is one parsed script: the top-level command string or a script
// given to bash -c, eval or watch.
type unit struct {
	c     *shellChecker
	depth int
	// funcs maps each function defined unconditionally at the top level to
	// the end of its definition: a call after that point runs the
	// function, whose body is checked where it is defined.
	funcs map[string]uint
	// ints records, for arithmetic, which variables hold integers the
	// script itself assigned.
	ints map[string]*intVar
	// poisoned: the script runs eval or source, which may assign any
	// variable out of the checker's sight.
	poisoned bool
	// stack holds the nodes being walked, innermost last.
	stack []syntax.Node
}

func (u *unit) check(f *syntax.File) *PolicyError {
	u.prepare(f)
	var perr *PolicyError
	syntax.Walk(f, func(n syntax.Node) bool {
		if perr != nil {
			return false // Walk goes on to siblings; keep the first refusal
		}
		if n == nil {
			u.stack = u.stack[:len(u.stack)-1]
			return true
		}
		if perr = u.visit(n); perr != nil {
			return false
		}
		u.stack = append(u.stack, n)
		return true
	})
	return perr
}

// visit checks one node; the walk reaches every node of the tree, so every
// command, including those in substitutions, conditions, loop bodies,
// function bodies and here-documents, is visited.
func (u *unit) visit(n syntax.Node) *PolicyError {
	switch n := n.(type) {
	case *syntax.Stmt:
		// Sequencing (";" and newline) is always allowed: ";" is in the
		// default operators and a newline is treated as ";".
		if n.Background && !u.c.operatorAllowed("&") {
			return u.operatorDenied("&")
		}
	case *syntax.BinaryCmd:
		if op := n.Op.String(); !u.c.operatorAllowed(op) {
			return u.operatorDenied(op)
		}
	case *syntax.CallExpr:
		if len(n.Args) == 0 {
			return nil // assignments only; each Assign is visited
		}
		args := make([]warg, len(n.Args))
		for i, w := range n.Args {
			args[i] = evalWord(w)
		}
		return u.checkArgv(args, argvCtx{direct: true})
	case *syntax.DeclClause:
		return u.checkDecl(n)
	case *syntax.LetClause:
		if !u.c.commandAllowed("let") {
			return deny(RuleShellCommand, "Unsafe command: let")
		}
		for _, x := range n.Exprs {
			if perr := u.checkArith(x); perr != nil {
				return perr
			}
		}
	case *syntax.CoprocClause:
		if !u.c.commandAllowed("coproc") {
			return deny(RuleShellCommand, "Unsafe command: coproc")
		}
	case *syntax.Assign:
		if n.Name != nil {
			if why := sensitiveVar(n.Name.Value); why != "" {
				return deny(RuleShellAssignment, fmt.Sprintf("Unsafe assignment: %s %s", n.Name.Value, why))
			}
		}
		if n.Index != nil {
			return u.checkArith(n.Index)
		}
	case *syntax.ArrayElem:
		if n.Index != nil {
			return u.checkArith(n.Index)
		}
	case *syntax.ArithmExp:
		return u.checkArith(n.X)
	case *syntax.ArithmCmd:
		return u.checkArith(n.X)
	case *syntax.CStyleLoop:
		for _, x := range []syntax.ArithmExpr{n.Init, n.Cond, n.Post} {
			if x != nil {
				if perr := u.checkArith(x); perr != nil {
					return perr
				}
			}
		}
	case *syntax.WordIter:
		if why := sensitiveVar(n.Name.Value); why != "" {
			return deny(RuleShellAssignment, fmt.Sprintf("Unsafe assignment: %s %s", n.Name.Value, why))
		}
	case *syntax.TestClause:
		return u.checkTest(n.X)
	case *syntax.ParamExp:
		return u.checkParamExp(n)
	case *syntax.Redirect:
		return checkRedirect(n)
	}
	return nil
}

func (u *unit) operatorDenied(op string) *PolicyError {
	return deny(RuleShellOperator, fmt.Sprintf("Unsafe control operator: %s (allowed: %s)", op, u.c.allowedOperators()))
}

// checkDecl checks declare, local, export, readonly, typeset and nameref,
// which are commands like any other.
func (u *unit) checkDecl(n *syntax.DeclClause) *PolicyError {
	name := n.Variant.Value
	if !u.c.commandAllowed(name) {
		return deny(RuleShellCommand, "Unsafe command: "+name)
	}
	if name == "nameref" {
		return deny(RuleShellAssignment, "Unsafe assignment: nameref variables hide which variable an assignment changes")
	}
	for _, a := range n.Args {
		if a.Name == nil && a.Value != nil {
			w := evalWord(a.Value)
			if !w.konst {
				return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of %s: argument %s is computed at run time", name, w.display()))
			}
			if strings.HasPrefix(w.val, "-") && strings.Contains(w.val, "n") {
				return deny(RuleShellAssignment, fmt.Sprintf("Unsafe use of %s: -n makes a nameref, which hides which variable an assignment changes", name))
			}
			if strings.HasPrefix(w.val, "-") && strings.Contains(w.val, "i") {
				return deny(RuleShellArithmetic, fmt.Sprintf("Unsafe use of %s: -i evaluates every value assigned as arithmetic, which can run commands", name))
			}
			if strings.Contains(w.val, "[") {
				return deny(RuleShellArithmetic, fmt.Sprintf("Unsafe use of %s: %s evaluates an array subscript, which can run commands", name, w.display()))
			}
		}
	}
	return nil
}

// checkParamExp refuses expansions that evaluate a value as code or as a
// variable name, and checks the arithmetic of indexes and slices.
func (u *unit) checkParamExp(n *syntax.ParamExp) *PolicyError {
	if n.Excl && n.Names == 0 && !isAllIndex(n.Index) {
		return deny(RuleShellExpansion, fmt.Sprintf("Unsafe expansion: ${!%s} uses a value as a variable name, and bash evaluates array subscripts in it, which can run commands", paramName(n)))
	}
	if n.Exp != nil {
		switch n.Exp.Op {
		case syntax.OtherParamOps:
			if n.Exp.Word != nil && strings.Contains(n.Exp.Word.Lit(), "P") {
				return deny(RuleShellExpansion, fmt.Sprintf("Unsafe expansion: ${%s@P} expands a value like a prompt, which runs command substitutions in it", paramName(n)))
			}
		case syntax.AssignUnset, syntax.AssignUnsetOrNull:
			if n.Param != nil {
				if why := sensitiveVar(n.Param.Value); why != "" {
					return deny(RuleShellAssignment, fmt.Sprintf("Unsafe assignment: %s %s", n.Param.Value, why))
				}
			}
		}
	}
	if n.Index != nil && !isAllIndex(n.Index) {
		if perr := u.checkArith(n.Index); perr != nil {
			return perr
		}
	}
	if n.Slice != nil {
		for _, x := range []syntax.ArithmExpr{n.Slice.Offset, n.Slice.Length} {
			if x != nil {
				if perr := u.checkArith(x); perr != nil {
					return perr
				}
			}
		}
	}
	return nil
}

func paramName(n *syntax.ParamExp) string {
	if n.Param != nil {
		return n.Param.Value
	}
	return "..."
}

// isAllIndex reports whether x is the [@] or [*] of an array expansion.
func isAllIndex(x syntax.ArithmExpr) bool {
	w, ok := x.(*syntax.Word)
	if !ok {
		return false
	}
	s := w.Lit()
	return s == "@" || s == "*"
}

// checkTest checks a [[ ]] expression: -v and -R evaluate array subscripts
// in their operand, and the arithmetic comparisons evaluate both operands
// as arithmetic, either of which can run commands hidden in a value.
func (u *unit) checkTest(x syntax.TestExpr) *PolicyError {
	switch x := x.(type) {
	case *syntax.UnaryTest:
		if x.Op == syntax.TsVarSet || x.Op == syntax.TsRefVar {
			w, ok := x.X.(*syntax.Word)
			if !ok {
				return deny(RuleShellArithmetic, "Unsafe test: the operand of "+x.Op.String()+" must be a plain variable name")
			}
			a := evalWord(w)
			if !a.konst || !isName(a.val) {
				return deny(RuleShellArithmetic, fmt.Sprintf("Unsafe test: %s %s evaluates an array subscript, which can run commands", x.Op, a.display()))
			}
		}
		return u.checkTest(x.X)
	case *syntax.BinaryTest:
		switch x.Op {
		case syntax.TsEql, syntax.TsNeq, syntax.TsLss, syntax.TsLeq, syntax.TsGtr, syntax.TsGeq:
			for _, side := range []syntax.TestExpr{x.X, x.Y} {
				w, ok := side.(*syntax.Word)
				if !ok {
					continue
				}
				if perr := u.checkArith(w); perr != nil {
					return perr
				}
			}
		}
		if perr := u.checkTest(x.X); perr != nil {
			return perr
		}
		return u.checkTest(x.Y)
	case *syntax.ParenTest:
		return u.checkTest(x.X)
	}
	return nil
}

// systemDirs are the directories a redirection may not write into: the
// programs the allowed commands run, their libraries and configuration,
// and kernel interfaces. Overwriting /usr/bin/ls and then running ls would
// otherwise run anything.
var systemDirs = []string{"/bin", "/sbin", "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/boot", "/proc", "/sys", "/dev"}

// harmlessDevices are the files under /dev a redirection may write.
var harmlessDevices = []string{"/dev/null", "/dev/zero", "/dev/stdout", "/dev/stderr", "/dev/tty"}

// startupFiles are run by later shells; writing one plants code that no
// check sees.
var startupFiles = []string{
	".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".bash_aliases",
	".zshrc", ".zshenv", ".zprofile", ".zlogin", ".kshrc", ".mkshrc", ".inputrc",
}

// checkRedirect refuses writes to system locations and shell startup
// files. Targets computed at run time are allowed: redirections write files,
// they do not run them.
func checkRedirect(r *syntax.Redirect) *PolicyError {
	if r.Word != nil {
		// bash opens a network connection for /dev/tcp/host/port and
		// /dev/udp/host/port, reading or writing.
		if w := evalWord(r.Word); strings.HasPrefix(w.val, "/dev/tcp/") || strings.HasPrefix(w.val, "/dev/udp/") {
			return deny(RuleShellRedirect, fmt.Sprintf("Unsafe redirection: %s opens a network connection", w.display()))
		}
	}
	switch r.Op {
	case syntax.RdrOut, syntax.AppOut, syntax.RdrInOut, syntax.DplOut, syntax.RdrClob, syntax.AppClob,
		syntax.RdrAll, syntax.RdrAllClob, syntax.AppAll, syntax.AppAllClob:
	default:
		return nil
	}
	if base := path.Base(wordSuffix(r.Word)); slices.Contains(startupFiles, base) {
		return deny(RuleShellRedirect, fmt.Sprintf("Unsafe redirection: %s is a shell startup file, which later shells would run", base))
	}
	w := evalWord(r.Word)
	if !w.konst {
		// Only the constant start is known: /usr/bin/$x is refused.
		for _, d := range systemDirs {
			if strings.HasPrefix(w.val, d+"/") && !strings.HasPrefix(w.val, "/dev/fd/") {
				return deny(RuleShellRedirect, fmt.Sprintf("Unsafe redirection: writes under %s, a system location", d))
			}
		}
		return nil
	}
	target := w.val
	if r.Op == syntax.DplOut && (target == "-" || isDigits(target)) {
		return nil // >&2 duplicates a descriptor
	}
	clean := path.Clean(target)
	if !strings.HasPrefix(clean, "/") || slices.Contains(harmlessDevices, clean) || strings.HasPrefix(clean, "/dev/fd/") {
		return nil
	}
	for _, d := range systemDirs {
		if clean == d || strings.HasPrefix(clean, d+"/") {
			return deny(RuleShellRedirect, fmt.Sprintf("Unsafe redirection: writes to %s, a system location", target))
		}
	}
	return nil
}

// sensitiveVar explains why assigning name is refused, or returns "".
func sensitiveVar(name string) string {
	switch name {
	case "PATH", "CDPATH":
		return "changes where commands are found"
	case "IFS":
		return "changes how words are split"
	case "ENV":
		return "makes sh run a file at start"
	case "SHELLOPTS", "GLOBIGNORE":
		return "changes how the shell behaves"
	case "PS0", "PS1", "PS2", "PS3", "PS4", "PROMPT_COMMAND":
		return "runs code when the shell prompts or traces"
	case "RANDOM", "SRANDOM", "OPTIND", "HISTCMD":
		return "evaluates its value as arithmetic, which can run commands"
	case "GCONV_PATH", "LOCPATH", "NLSPATH", "GLIBC_TUNABLES":
		return "changes what the C library loads into every program"
	case "RIPGREP_CONFIG_PATH":
		return "makes rg read options, such as --pre, from a file"
	case "AWKPATH", "AWKLIBPATH":
		return "makes awk load code from other places"
	case "PYTHONSTARTUP", "PYTHONPATH", "PYTHONHOME", "PERL5LIB", "PERL5OPT", "PERLLIB", "RUBYOPT", "RUBYLIB", "NODE_OPTIONS":
		return "loads code into an interpreter"
	}
	switch {
	case strings.HasPrefix(name, "LD_"), strings.HasPrefix(name, "DYLD_"):
		return "loads code into every program"
	case strings.HasPrefix(name, "BASH"):
		return "changes how bash behaves (BASH_ENV runs a file, BASH_CMDS redirects commands, BASH_FUNC_ defines functions)"
	}
	return ""
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// DefaultShellPolicy returns the shell policy TinyAgent used for a
// provider of the given isolation: it switched the check off
// (bypass_shell_safety=True) for its isolating providers (docker,
// bubblewrap, seatbelt) and on for the others. Here the check is on for
// IsolationNone, where nothing else stands between the command and the
// host, and for any isolation it does not know, and off for namespace,
// container and seatbelt isolation. Operators may switch it on everywhere.
func DefaultShellPolicy(iso sandbox.Isolation) ShellPolicy {
	switch iso {
	case sandbox.IsolationNamespace, sandbox.IsolationContainer, sandbox.IsolationSeatbelt:
		return ShellPolicy{Bypass: true}
	}
	return ShellPolicy{}
}
