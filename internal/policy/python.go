package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// TinyAgent's safety.py lists, exactly.
var (
	// dangerousModules is DANGEROUS_MODULES.
	dangerousModules = []string{
		"builtins", "ctypes", "importlib", "io", "multiprocessing", "os", "pathlib", "pty", "shlex",
		"shutil", "signal", "socket", "subprocess", "sys", "tempfile", "threading", "webbrowser",
	}
	// dangerousFunctions is DANGEROUS_FUNCTIONS.
	dangerousFunctions = []string{"exec", "eval", "compile", "__import__", "open", "input", "breakpoint"}
	// essentialModules is ESSENTIAL_MODULES, always importable.
	essentialModules = []string{"cloudpickle", "tinyagent", "json", "time", "datetime", "requests"}
)

// escapeModules are blocked, like dangerousModules, when no import
// allow-list is given: TinyAgent missed them, and each runs code or
// reaches the interpreter's internals by another door. posix and nt are
// os under another name; pickle, marshal and shelve run code while loading;
// code, codeop, runpy, pdb, bdb, timeit, cProfile, profile, trace and
// doctest run strings or modules as code; gc and inspect find any live
// object (modules, frames); pkgutil.resolve_name and pydoc.locate import
// from a string; site runs .pth files; distutils, setuptools, pip and
// ensurepip spawn processes; the underscore modules are C twins of blocked
// ones.
var escapeModules = []string{
	"posix", "nt", "_posixsubprocess", "_thread", "_io", "_socket", "_signal", "_ctypes", "cffi",
	"pickle", "_pickle", "dill", "shelve", "marshal", "code", "codeop", "runpy", "pdb", "bdb",
	"timeit", "cProfile", "profile", "trace", "doctest", "gc", "inspect", "pydoc", "imp", "_imp",
	"zipimport", "pkgutil", "site", "distutils", "setuptools", "pip", "ensurepip",
	"_frozen_importlib", "_frozen_importlib_external",
}

// introspectionAttrs walk from any object to the interpreter's internals:
// classes and their subclasses, function globals and code, modules'
// namespaces, bound methods' owners, and frames.
var introspectionAttrs = []string{
	"__class__", "__bases__", "__base__", "__mro__", "__subclasses__", "__globals__", "__code__",
	"__builtins__", "__import__", "__loader__", "__spec__", "__dict__", "__self__", "__func__",
	"__closure__", "__getattribute__", "__reduce__", "__reduce_ex__",
	"f_globals", "f_locals", "f_builtins", "f_back", "f_code", "gi_frame", "gi_code", "cr_frame",
	"cr_code", "ag_frame", "ag_code", "tb_frame",
}

// moduleAttrs are attribute names under which modules expose blocked
// modules they imported (logging.os, random._os, tempfile._os ...).
// io and signal are left out: pandas.io and scipy.signal are common and
// harmless.
var moduleAttrs = []string{
	"os", "_os", "sys", "_sys", "subprocess", "_subprocess", "builtins", "posix", "nt",
	"_posixsubprocess", "shutil", "socket", "_socket", "ctypes", "_ctypes", "importlib", "_imp",
	"pty", "multiprocessing", "webbrowser", "shlex", "tempfile", "pathlib", "threading", "_thread",
	"pickle", "_pickle", "marshal", "runpy", "pdb", "inspect", "gc", "pydoc", "pkgutil", "zipimport",
}

// dangerousAttrs run processes or native code from otherwise allowed
// modules.
var dangerousAttrs = []string{
	"create_subprocess_exec", "create_subprocess_shell", "subprocess_exec", "subprocess_shell",
	"load_extension", "enable_load_extension", "ctypeslib", "CodeType",
}

// resolverFuncs import or locate a module named by a string.
var resolverFuncs = []string{
	"import_module", "find_spec", "find_module", "find_loader", "load_module", "run_module",
	"get_loader", "resolve_name", "locate", "import_string",
}

// referenceChecked are dangerous functions refused even when only named
// (e = eval; e("...")). open and input are not: they are common names of
// parameters and variables.
var referenceChecked = []string{"exec", "eval", "compile", "breakpoint", "__import__"}

// PythonPolicy decides whether Python code may run: TinyAgent's
// validate_code_safety, plus the escapes it missed. Checks run on the host
// before the code reaches any sandbox; they are a guard rail in front of
// the sandbox, not a boundary.
//
// The checker works on tokens, not on a syntax tree (see the package
// documentation for why): names, attributes after ".", string literals
// (decoded, with adjacent and "+"-joined literals concatenated), calls and
// their arguments. Code that does not parse still gets every check; the
// interpreter reports its syntax error later.
//
// A PythonPolicy is a value; Check is pure and safe for concurrent use.
type PythonPolicy struct {
	// AuthorizedImports restricts imports. nil: any module but the
	// dangerous ones (TinyAgent's DANGEROUS_MODULES and the escape modules
	// above). Otherwise only these modules and the essential ones
	// (cloudpickle, tinyagent, json, time, datetime, requests) may be
	// imported; "x.*" allows the package x, "*" allows everything. A
	// dangerous module listed here is allowed.
	AuthorizedImports []string
	// AuthorizedFunctions exempts names from the dangerous-function checks
	// (exec, eval, compile, open, input, breakpoint) and from the
	// introspection and dynamic-access checks (an entry "getattr" allows
	// getattr with a computed name; "__class__" allows that attribute).
	// __import__ is refused regardless, as in TinyAgent.
	AuthorizedFunctions []string
	// CheckStringObfuscation refuses string manipulation that can build a
	// name out of sight: chr(), ord(), "".join([... for ...]), base64
	// functions and any .format() call, as TinyAgent did, plus string
	// reversal slices, .fromhex() and codecs.encode/decode.
	CheckStringObfuscation bool
	// Trusted skips every check: only for code the operator wrote.
	Trusted bool
}

// DefaultPythonPolicy returns the Python policy TinyAgent's local
// providers used: no import allow-list (only dangerous modules blocked),
// no authorised functions, string-obfuscation checks on. It applies to
// every provider: the checks run on the host.
func DefaultPythonPolicy() PythonPolicy {
	return PythonPolicy{CheckStringObfuscation: true}
}

// DangerousModules returns TinyAgent's DANGEROUS_MODULES, exactly.
func DangerousModules() []string { return slices.Clone(dangerousModules) }

// DangerousFunctions returns TinyAgent's DANGEROUS_FUNCTIONS, exactly.
func DangerousFunctions() []string { return slices.Clone(dangerousFunctions) }

// Check refuses code that imports a module it may not, uses a dangerous
// function, hides names from the checks, or walks to the interpreter's
// internals. The result is nil or a [*PolicyError]. The checks and their
// messages come in TinyAgent's order: __import__, dangerous functions,
// obfuscation, imports; then the escapes TinyAgent missed.
func (p PythonPolicy) Check(code string) error {
	if p.Trusted {
		return nil
	}
	c := newPyChecker(p, code)
	for _, step := range []func() *PolicyError{
		c.checkImportCall, c.checkDangerous, c.checkObfuscation, c.checkImports,
		c.checkIntrospection, c.checkStrings,
	} {
		if perr := step(); perr != nil {
			return perr
		}
	}
	return nil
}

type pyChecker struct {
	p PythonPolicy
	t []pyTok
	// match maps each opening bracket to its closing one (or len(t));
	// commas lists the commas directly inside each opening bracket; hasFor
	// marks brackets with a "for" directly inside. Computed once, so that
	// nested calls cost linear time.
	match  map[int]int
	commas map[int][]int
	hasFor map[int]bool
}

func newPyChecker(p PythonPolicy, code string) *pyChecker {
	c := &pyChecker{p: p, t: lexPython(code), match: map[int]int{}, commas: map[int][]int{}, hasFor: map[int]bool{}}
	var stack []int
	for j, t := range c.t {
		switch {
		case t.kind == pyOp && (t.val == "(" || t.val == "[" || t.val == "{"):
			stack = append(stack, j)
		case t.kind == pyOp && (t.val == ")" || t.val == "]" || t.val == "}"):
			if len(stack) > 0 {
				c.match[stack[len(stack)-1]] = j
				stack = stack[:len(stack)-1]
			}
		case t.kind == pyOp && t.val == "," && len(stack) > 0:
			top := stack[len(stack)-1]
			c.commas[top] = append(c.commas[top], j)
		case t.kind == pyName && t.val == "for" && len(stack) > 0:
			c.hasFor[stack[len(stack)-1]] = true
		}
	}
	for _, j := range stack {
		c.match[j] = len(c.t)
	}
	return c
}

func (c *pyChecker) op(i int, s string) bool {
	return i >= 0 && i < len(c.t) && c.t[i].kind == pyOp && c.t[i].val == s
}

func (c *pyChecker) name(i int, s string) bool {
	return i >= 0 && i < len(c.t) && c.t[i].kind == pyName && c.t[i].val == s
}

// isAttr reports whether the name at i follows a ".".
func (c *pyChecker) isAttr(i int) bool { return c.op(i-1, ".") }

// attrBase returns the plain name before ".name" at i, or "".
func (c *pyChecker) attrBase(i int) string {
	if c.isAttr(i) && i >= 2 && c.t[i-2].kind == pyName && !c.isAttr(i-2) {
		return c.t[i-2].val
	}
	return ""
}

// isCall reports whether the token at i is followed by "(".
func (c *pyChecker) isCall(i int) bool { return c.op(i+1, "(") }

// isRef reports whether the name at i is read: not an attribute, not the
// name being defined or imported, not a keyword argument or an assignment
// target.
func (c *pyChecker) isRef(i int) bool {
	if c.isAttr(i) || c.name(i-1, "def") || c.name(i-1, "class") || c.name(i-1, "import") || c.name(i-1, "as") || c.op(i-1, ",") && c.inImport(i) {
		return false
	}
	return !c.op(i+1, "=")
}

// inImport reports whether the token at i is part of an import statement.
func (c *pyChecker) inImport(i int) bool {
	for j := i - 1; j >= 0 && c.t[j].kind != pyNewline && !c.op(j, ";"); j-- {
		if c.name(j, "import") {
			return true
		}
	}
	return false
}

func (c *pyChecker) authorized(name string) bool {
	return slices.Contains(c.p.AuthorizedFunctions, name)
}

// importAllowed applies TinyAgent's import rule to a root module name.
func (c *pyChecker) importAllowed(root string) bool {
	if c.p.AuthorizedImports == nil {
		return !slices.Contains(dangerousModules, root) && !slices.Contains(escapeModules, root)
	}
	if slices.Contains(essentialModules, root) {
		return true
	}
	for _, pat := range c.p.AuthorizedImports {
		if pat == "*" || pat == root || (strings.HasSuffix(pat, ".*") && strings.TrimSuffix(pat, ".*") == root) {
			return true
		}
	}
	return false
}

// importDenied is TinyAgent's import message.
func (c *pyChecker) importDenied(roots []string, detail string) *PolicyError {
	roots = slices.Clone(roots)
	sort.Strings(roots)
	msg := fmt.Sprintf("Importing module(s) %s is not allowed.", strings.Join(slices.Compact(roots), ", "))
	if c.p.AuthorizedImports != nil {
		allowed := slices.Clone(c.p.AuthorizedImports)
		sort.Strings(allowed)
		msg += " Allowed imports are: " + strings.Join(allowed, ", ")
	}
	if detail != "" {
		msg += " (" + detail + ")"
	}
	return deny(RulePythonImport, msg)
}

// callArgs returns the token ranges of the arguments of the call whose
// "(" is at p, and the index of its ")" (len(t) if unclosed).
func (c *pyChecker) callArgs(p int) (args [][2]int, end int) {
	end, ok := c.match[p]
	if !ok {
		return nil, p
	}
	start := p + 1
	for _, comma := range c.commas[p] {
		args = append(args, [2]int{start, comma})
		start = comma + 1
	}
	if end > start {
		args = append(args, [2]int{start, end})
	}
	return args, end
}

// constStr evaluates the tokens in r as a constant string: string literals
// joined by adjacency or "+", possibly in parentheses. f-strings and
// opaque escapes are not constant.
func (c *pyChecker) constStr(r [2]int) (string, bool) {
	lo, hi := r[0], r[1]
	for hi-lo >= 2 && c.op(lo, "(") && c.op(hi-1, ")") {
		if _, end := c.callArgs(lo); end != hi-1 {
			break
		}
		lo, hi = lo+1, hi-1
	}
	if lo >= hi {
		return "", false
	}
	var b strings.Builder
	wantStr := true
	for j := lo; j < hi; j++ {
		t := c.t[j]
		switch {
		case t.kind == pyString && !t.fstr && !t.opaque:
			b.WriteString(t.val)
			wantStr = false
		case c.op(j, "+") && !wantStr:
			wantStr = true
		default:
			return "", false
		}
	}
	return b.String(), !wantStr
}

// stringRuns returns the maximal runs of string literals joined by
// adjacency or "+" anywhere in the code, with whether "+" was used.
func (c *pyChecker) stringRuns(yield func(val string, plus bool, lo, hi int)) {
	for i := 0; i < len(c.t); {
		if c.t[i].kind != pyString || c.t[i].fstr || c.t[i].opaque {
			i++
			continue
		}
		var b strings.Builder
		plus := false
		j := i
		for j < len(c.t) {
			t := c.t[j]
			if t.kind == pyString && !t.fstr && !t.opaque {
				b.WriteString(t.val)
				j++
				continue
			}
			if c.op(j, "+") && j+1 < len(c.t) && c.t[j+1].kind == pyString && !c.t[j+1].fstr && !c.t[j+1].opaque {
				plus = true
				j++
				continue
			}
			break
		}
		yield(b.String(), plus, i, j)
		i = j
	}
}

// text renders tokens for messages.
func (c *pyChecker) text(r [2]int) string {
	var b strings.Builder
	for j := r[0]; j < r[1] && j < len(c.t); j++ {
		t := c.t[j]
		switch t.kind {
		case pyString:
			fmt.Fprintf(&b, "%q", t.val)
		default:
			if b.Len() > 0 && t.kind == pyName && c.t[j-1].kind == pyName {
				b.WriteByte(' ')
			}
			b.WriteString(t.val)
		}
	}
	s := b.String()
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}

// checkImportCall refuses __import__(...) and builtins.__import__(...).
func (c *pyChecker) checkImportCall() *PolicyError {
	for i, t := range c.t {
		if t.kind != pyName || t.val != "__import__" || !c.isCall(i) {
			continue
		}
		if !c.isAttr(i) {
			return deny(RulePythonImportCall, "Usage of __import__ is not allowed in untrusted code.")
		}
		if c.attrBase(i) == "builtins" {
			return deny(RulePythonImportCall, "Usage of builtins.__import__ is not allowed in untrusted code.")
		}
	}
	return nil
}

// checkDangerous refuses the dangerous functions, TinyAgent's way, and
// also when they are only named (e = eval), fetched with getattr from any
// object, or spelled by concatenating literals anywhere.
func (c *pyChecker) checkDangerous() *PolicyError {
	found := map[string]bool{}
	for i, t := range c.t {
		if t.kind != pyName {
			continue
		}
		name := t.val
		if slices.Contains(dangerousFunctions, name) && !c.authorized(name) {
			switch {
			case c.isAttr(i):
				if c.attrBase(i) == "builtins" && c.isCall(i) {
					found["builtins."+name] = true
				}
			case c.name(i-1, "def") || c.name(i-1, "class"):
			case c.isCall(i):
				found[name] = true
				if name == "exec" || name == "eval" {
					if args, _ := c.callArgs(i + 1); len(args) > 0 && c.literalOnly(args[0]) {
						found[name+" with string literal"] = true
					}
				}
			case slices.Contains(referenceChecked, name) && c.isRef(i):
				found[name] = true
			}
		}
		if name == "getattr" && !c.isAttr(i) && c.isCall(i) {
			args, _ := c.callArgs(i + 1)
			if len(args) >= 2 {
				if v, ok := c.constStr(args[1]); ok && slices.Contains(dangerousFunctions, v) && !c.authorized(v) {
					found[fmt.Sprintf("getattr(%s, '%s')", c.text(args[0]), v)] = true
				}
			}
		}
		if name == "cloudpickle" && !c.isAttr(i) && c.op(i+1, ".") && (c.name(i+2, "loads") || c.name(i+2, "load")) && !c.authorized("cloudpickle."+c.t[i+2].val) {
			// An essential module, but loading a pickle runs any code.
			found["cloudpickle."+c.t[i+2].val] = true
		}
	}
	c.stringRuns(func(v string, plus bool, _, _ int) {
		if plus && slices.Contains(dangerousFunctions, v) && !c.authorized(v) {
			found[fmt.Sprintf("string manipulation to create '%s'", v)] = true
		}
	})
	if len(found) == 0 {
		return nil
	}
	names := make([]string, 0, len(found))
	for n := range found {
		names = append(names, n)
	}
	sort.Strings(names)
	return deny(RulePythonFunction, fmt.Sprintf("Usage of dangerous function(s) %s is not allowed in untrusted code.", strings.Join(names, ", ")))
}

// literalOnly reports whether the tokens in r are string literals only (an
// ast.Constant): no f-string, no operator.
func (c *pyChecker) literalOnly(r [2]int) bool {
	for j := r[0]; j < r[1]; j++ {
		if c.t[j].kind != pyString || c.t[j].fstr {
			return false
		}
	}
	return r[1] > r[0]
}

var obfuscationAttrs = []string{"b64decode", "b64encode", "b32decode", "b32encode", "b16decode", "b16encode", "format", "fromhex"}

// checkObfuscation refuses string manipulation that can build names out
// of the checks' sight, when CheckStringObfuscation is set.
func (c *pyChecker) checkObfuscation() *PolicyError {
	if !c.p.CheckStringObfuscation {
		return nil
	}
	hit := false
	for i, t := range c.t {
		switch {
		case t.kind == pyName && !c.isAttr(i) && (t.val == "chr" || t.val == "ord") && c.isCall(i):
			hit = true
		case t.kind == pyName && c.isAttr(i) && c.isCall(i):
			switch {
			case t.val == "join":
				hit = c.op(i+2, "[") && c.listComp(i+2)
			case slices.Contains(obfuscationAttrs, t.val):
				hit = true
			case (t.val == "decode" || t.val == "encode") && c.attrBase(i) == "codecs":
				hit = true
			}
		case t.kind == pyString && c.op(i+1, "[") && c.op(i+2, ":") && c.op(i+3, ":"):
			hit = true // "cexe"[::-1]
		}
		if hit {
			return deny(RulePythonObfuscation, "Suspicious string manipulation detected that could be used to bypass security.")
		}
	}
	return nil
}

// listComp reports whether the bracket at p holds a list comprehension.
func (c *pyChecker) listComp(p int) bool { return c.hasFor[p] }

// checkImports applies the import rule to import statements.
func (c *pyChecker) checkImports() *PolicyError {
	var blocked []string
	consumed := map[int]bool{}
	check := func(root string) {
		if root != "" && !c.importAllowed(root) {
			blocked = append(blocked, root)
		}
	}
	// dotted reads a dotted name at j; it returns its root and the index
	// after it.
	dotted := func(j int) (string, int) {
		if j >= len(c.t) || c.t[j].kind != pyName {
			return "", j
		}
		root := c.t[j].val
		j++
		for c.op(j, ".") && j+1 < len(c.t) && c.t[j+1].kind == pyName {
			j += 2
		}
		return root, j
	}
	for i, t := range c.t {
		if t.kind != pyName || c.isAttr(i) {
			continue
		}
		switch t.val {
		case "from":
			j := i + 1
			for c.op(j, ".") || c.op(j, "...") {
				j++
			}
			root, k := dotted(j)
			if c.name(k, "import") {
				check(root)
				consumed[k] = true
			}
		case "import":
			if consumed[i] {
				continue
			}
			j := i + 1
			for {
				root, k := dotted(j)
				if root == "" {
					break
				}
				check(root)
				if c.name(k, "as") {
					k += 2
				}
				if !c.op(k, ",") {
					break
				}
				j = k + 1
			}
		}
	}
	if len(blocked) > 0 {
		return c.importDenied(blocked, "")
	}
	return nil
}

// checkIntrospection refuses the walks to the interpreter's internals that
// TinyAgent missed, attribute access by computed names, and modules
// reached through attributes or resolved from strings.
func (c *pyChecker) checkIntrospection() *PolicyError {
	for i, t := range c.t {
		if t.kind != pyName {
			continue
		}
		v := t.val
		if slices.Contains(resolverFuncs, v) && c.isCall(i) {
			if perr := c.checkResolver(i); perr != nil {
				return perr
			}
		}
		if v == "__builtins__" && !c.authorized(v) {
			return deny(RulePythonIntrospection, "Access to __builtins__ is not allowed in untrusted code.")
		}
		if c.isAttr(i) {
			switch {
			case slices.Contains(introspectionAttrs, v) && !c.authorized(v):
				return deny(RulePythonIntrospection, fmt.Sprintf("Access to attribute %s is not allowed in untrusted code: it can reach the interpreter's internals.", v))
			case slices.Contains(moduleAttrs, v) && !c.importAllowed(strings.TrimPrefix(v, "_")) && !c.authorized(v):
				return deny(RulePythonImport, fmt.Sprintf("Access to module %s through the attribute .%s is not allowed.", strings.TrimPrefix(v, "_"), v))
			case slices.Contains(dangerousAttrs, v) && !c.authorized(v):
				return deny(RulePythonFunction, fmt.Sprintf("Usage of dangerous function(s) %s is not allowed in untrusted code.", v))
			}
			continue
		}
		switch {
		case (v == "__loader__" || v == "__spec__" || v == "CodeType") && !c.authorized(v):
			return deny(RulePythonIntrospection, fmt.Sprintf("Access to %s is not allowed in untrusted code: it can reach the interpreter's internals.", v))
		case (v == "getattr" || v == "attrgetter" || v == "methodcaller") && !c.authorized(v):
			if perr := c.checkGetattr(i); perr != nil {
				return perr
			}
		case (v == "globals" || v == "locals" || v == "vars") && c.isCall(i) && !c.authorized(v):
			if perr := c.checkNamespace(i); perr != nil {
				return perr
			}
		}
	}
	return nil
}

// checkGetattr refuses getattr (and operator.attrgetter / methodcaller)
// with a name the checks cannot read, or naming an internal or a module.
func (c *pyChecker) checkGetattr(i int) *PolicyError {
	v := c.t[i].val
	if !c.isCall(i) {
		if c.isRef(i) && !c.inImport(i) {
			return deny(RulePythonDynamicAccess, fmt.Sprintf("Passing %s around is not allowed in untrusted code: its attribute names cannot be checked.", v))
		}
		return nil
	}
	args, _ := c.callArgs(i + 1)
	nameArg := 1
	if v != "getattr" {
		nameArg = 0
	}
	if len(args) <= nameArg {
		return deny(RulePythonDynamicAccess, fmt.Sprintf("%s without a literal attribute name is not allowed in untrusted code: the name cannot be checked.", v))
	}
	name, ok := c.constStr(args[nameArg])
	if !ok {
		return deny(RulePythonDynamicAccess, fmt.Sprintf("%s with a computed attribute name is not allowed in untrusted code: the name cannot be checked.", v))
	}
	for _, part := range strings.Split(name, ".") {
		if slices.Contains(introspectionAttrs, part) && !c.authorized(part) {
			return deny(RulePythonIntrospection, fmt.Sprintf("Access to attribute %s is not allowed in untrusted code: it can reach the interpreter's internals.", part))
		}
		if slices.Contains(moduleAttrs, part) && !c.importAllowed(strings.TrimPrefix(part, "_")) {
			return deny(RulePythonImport, fmt.Sprintf("Access to module %s through the attribute .%s is not allowed.", strings.TrimPrefix(part, "_"), part))
		}
	}
	return nil
}

// checkNamespace refuses a computed key on globals(), locals() or vars(x):
// the key could be "__builtins__" built out of sight.
func (c *pyChecker) checkNamespace(i int) *PolicyError {
	_, end := c.callArgs(i + 1)
	var key [2]int
	switch {
	case c.op(end+1, "["):
		_, close := c.callArgs(end + 1)
		key = [2]int{end + 2, close}
	case c.op(end+1, ".") && end+2 < len(c.t) && c.t[end+2].kind == pyName && c.isCall(end+2) &&
		slices.Contains([]string{"get", "pop", "setdefault", "__getitem__"}, c.t[end+2].val):
		args, _ := c.callArgs(end + 3)
		if len(args) == 0 {
			return nil
		}
		key = args[0]
	default:
		return nil
	}
	if k, ok := c.constStr(key); ok {
		if slices.Contains(dangerousFunctions, k) && !c.authorized(k) {
			return deny(RulePythonFunction, fmt.Sprintf("Usage of dangerous function(s) %s is not allowed in untrusted code.", k))
		}
		if (slices.Contains(moduleAttrs, k) || slices.Contains(dangerousModules, k)) && !c.importAllowed(strings.TrimPrefix(k, "_")) {
			return deny(RulePythonImport, fmt.Sprintf("Access to module %s through %s() is not allowed.", k, c.t[i].val))
		}
		return nil
	}
	return deny(RulePythonDynamicAccess, fmt.Sprintf("Indexing %s() with a computed key is not allowed in untrusted code: the key cannot be checked.", c.t[i].val))
}

// checkResolver refuses import_module("os") and its kin, and any of them
// with a computed name.
func (c *pyChecker) checkResolver(i int) *PolicyError {
	args, _ := c.callArgs(i + 1)
	if len(args) == 0 {
		return nil
	}
	name, ok := c.constStr(args[0])
	if !ok {
		return deny(RulePythonDynamicAccess, fmt.Sprintf("%s with a computed module name is not allowed in untrusted code: the name cannot be checked.", c.t[i].val))
	}
	if root := moduleRoot(name); root != "" && !c.importAllowed(root) {
		return c.importDenied([]string{root}, fmt.Sprintf("named in %s(%q)", c.t[i].val, name))
	}
	return nil
}

// moduleRoot returns the first name of a dotted module path such as
// "os.path" or "os:system", or "".
func moduleRoot(s string) string {
	end := strings.IndexAny(s, ".:")
	if end < 0 {
		end = len(s)
	}
	if !isName(s[:end]) {
		return ""
	}
	return s[:end]
}

// checkStrings refuses string literals that name interpreter internals or
// blocked modules by dotted path ("os.system", "builtins.exec"), which
// resolvers such as pkgutil.resolve_name, pydoc.locate, logging.config and
// unittest.mock import.
func (c *pyChecker) checkStrings() *PolicyError {
	var perr *PolicyError
	check := func(v string) {
		if perr != nil {
			return
		}
		for _, a := range introspectionAttrs {
			if strings.HasPrefix(a, "__") && strings.Contains(v, a) && !c.authorized(a) {
				perr = deny(RulePythonIntrospection, fmt.Sprintf("String %q names the internal %s, which is not allowed in untrusted code.", shorten(v), a))
				return
			}
			if v == a && !c.authorized(a) {
				perr = deny(RulePythonIntrospection, fmt.Sprintf("String %q names an interpreter internal, which is not allowed in untrusted code.", shorten(v)))
				return
			}
		}
		if v == "builtins" && !c.importAllowed("builtins") {
			perr = c.importDenied([]string{"builtins"}, fmt.Sprintf("named in the string %q", v))
			return
		}
		if strings.ContainsAny(v, ".:") && !strings.ContainsAny(v, " \t\n/") && !isFileName(v) {
			if root := moduleRoot(v); root != "" && !c.importAllowed(root) {
				if rest := v[len(root)+1:]; rest != "" && isDottedName(rest) {
					perr = c.importDenied([]string{root}, fmt.Sprintf("named in the string %q", shorten(v)))
				}
			}
		}
	}
	for _, t := range c.t {
		if t.kind == pyString {
			check(t.val)
		}
	}
	c.stringRuns(func(v string, plus bool, lo, hi int) {
		if hi-lo > 1 {
			check(v)
		}
	})
	return perr
}

// fileExtensions end strings that name files, not modules ("signal.csv").
var fileExtensions = []string{
	"csv", "tsv", "txt", "json", "jsonl", "log", "md", "py", "ipynb", "png", "jpg", "jpeg", "gif",
	"svg", "pdf", "html", "xml", "yaml", "yml", "toml", "ini", "cfg", "xlsx", "xls", "parquet",
	"feather", "npy", "npz", "pkl", "pickle", "h5", "hdf5", "db", "sqlite", "gz", "zip", "tar", "bz2",
	"xz", "dat", "bin", "out", "wav", "mp3", "mp4",
}

func isFileName(s string) bool {
	i := strings.LastIndexByte(s, '.')
	return i > 0 && slices.Contains(fileExtensions, strings.ToLower(s[i+1:]))
}

func isDottedName(s string) bool {
	for _, part := range strings.Split(s, ".") {
		if !isName(part) {
			return false
		}
	}
	return true
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
