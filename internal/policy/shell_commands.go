package policy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// binDirs are the directories from which a command may be named by path:
// /usr/bin/ls is ls, ./ls or /tmp/ls is a file the script may have written.
var binDirs = []string{"/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"}

// argvCtx is how a command is reached.
type argvCtx struct {
	// direct: a command of the script itself, which may be a function the
	// script defined (wrappers such as xargs run programs, not functions).
	direct bool
	// appended: xargs appends arguments read at run time.
	appended bool
}

// argsChecked are the commands whose arguments decide whether they are
// dangerous; run-time arguments appended by xargs defeat their checks.
var argsChecked = []string{
	"find", "sed", "awk", "gawk", "mawk", "nawk", "sort", "tree", "rg", "date", "file", "uniq",
	"eval", "watch", "test", "[", "read", "mapfile", "readarray", "printf", "getopts", "unset", "wait",
}

// checkArgv checks one command: its name, then the uses of its arguments.
func (u *unit) checkArgv(args []warg, ctx argvCtx) *PolicyError {
	name := args[0]
	if !name.konst {
		return deny(RuleShellDynamic, fmt.Sprintf("Unsafe command: the command name %s is computed at run time", name.display()))
	}
	base := name.val
	if strings.Contains(base, "/") {
		dir, file := path.Split(base)
		if file == "" || !slices.Contains(binDirs, path.Clean(dir)) {
			return deny(RuleShellCommand, fmt.Sprintf("Unsafe command: %s (a command named by path must be in %s)", base, strings.Join(binDirs, ", ")))
		}
		base = file
	} else if ctx.direct && u.isFunc(base, name.pos) {
		return nil // a function defined above: its body is checked where it is defined
	}
	if !u.c.commandAllowed(base) {
		if base == "" {
			base = `""`
		}
		return deny(RuleShellCommand, "Unsafe command: "+base)
	}
	if ctx.appended && slices.Contains(argsChecked, base) {
		return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of xargs: %s would get arguments read at run time, which cannot be checked", base))
	}
	switch base {
	case "find":
		return checkFind(args)
	case "sed":
		return checkSed(args)
	case "awk", "gawk", "mawk", "nawk":
		return checkAwk(base, args)
	case "sort", "tree", "rg", "date", "file", "uniq":
		return checkOptionCommand(base, args)
	case "test", "[":
		return checkTestCommand(base, args)
	case "read", "mapfile", "readarray", "printf", "getopts", "unset", "wait":
		return checkNameArgs(base, args)
	case "bash", "sh", "dash", "ash", "rbash":
		return u.checkShell(base, args)
	case "zsh", "ksh", "ksh93", "mksh", "pdksh", "yash", "fish", "csh", "tcsh", "pwsh":
		return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of %s: its scripts cannot be checked", base))
	case "source", ".":
		return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of %s: the sourced file cannot be checked", base))
	case "eval":
		return u.checkEval(args)
	case "watch":
		return u.checkWatch(args, ctx)
	}
	if w, ok := wrappers[base]; ok {
		return u.checkWrapper(base, w, args, ctx)
	}
	return nil
}

func (u *unit) isFunc(name string, pos uint) bool {
	end, ok := u.funcs[name]
	return ok && pos > end
}

func dynamicArg(cmd string, a warg, why string) *PolicyError {
	return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of %s: argument %s is computed at run time and %s", cmd, a.display(), why))
}

func dangerous(cmd, why string) *PolicyError {
	return deny(RuleShellDangerous, fmt.Sprintf("Unsafe use of %s: %s", cmd, why))
}

// optSpec describes a command's options, as getopt_long reads them. Only
// options known to take a value are listed as such: treating a value-less
// option as taking one would hide the next word from the checks.
type optSpec struct {
	shortArg string // short options with a required value
	shortOpt string // short options with an optional attached value
	longArg  []string
	longOpt  []string
	longFlag []string
	// dangerShort and dangerLong are refused, with the reason. A long
	// option given as an abbreviation (--in-pl) is matched too, as
	// getopt_long accepts unambiguous prefixes.
	dangerShort map[byte]string
	dangerLong  map[string]string
	// wholeCluster scans every letter of -abc for dangerous options, even
	// after a letter that takes a value (for parsers that are not getopt).
	wholeCluster bool
	// stopAtOperand: options end at the first operand (wrappers, whose
	// operands are a command).
	stopAtOperand bool
}

type option struct {
	name   string // the letter, or the long name (completed if abbreviated)
	val    warg
	hasVal bool
}

type scanned struct {
	opts     []option
	operands []warg
}

func (s *optSpec) longDanger(cmd, name string) *PolicyError {
	if name == "" {
		return nil
	}
	for _, d := range sortedKeys(s.dangerLong) {
		if strings.HasPrefix(d, name) {
			return dangerous(cmd, "--"+d+" "+s.dangerLong[d])
		}
	}
	return nil
}

// canonLong completes an abbreviated long option, if it is unambiguous.
func (s *optSpec) canonLong(name string) string {
	all := slices.Concat(s.longArg, s.longOpt, s.longFlag)
	if slices.Contains(all, name) {
		return name
	}
	match := ""
	for _, l := range all {
		if strings.HasPrefix(l, name) {
			if match != "" {
				return name
			}
			match = l
		}
	}
	if match == "" {
		return name
	}
	return match
}

// scanOpts reads args (without the command name) as options and operands.
// Words computed at run time are accepted only where they cannot become an
// option: as the value of an option, or as an operand whose constant start
// is not "-". "--" is not honoured unless stopAtOperand: a word after it
// that looks like a dangerous option is still refused, because misreading
// which option takes a value must not hide one.
func scanOpts(cmd string, args []warg, s *optSpec) (scanned, *PolicyError) {
	var r scanned
	takeValue := func(i int) (warg, *PolicyError) {
		v := args[i]
		if v.multi {
			return v, dynamicArg(cmd, v, "could expand to several arguments, options among them")
		}
		return v, nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !a.konst {
			if a.multi {
				return r, dynamicArg(cmd, a, "could expand to several arguments, options among them")
			}
			switch {
			case strings.HasPrefix(a.val, "--"):
				name, _, ok := strings.Cut(a.val[2:], "=")
				if !ok {
					return r, dynamicArg(cmd, a, "could be an option")
				}
				if perr := s.longDanger(cmd, name); perr != nil {
					return r, perr
				}
				r.opts = append(r.opts, option{name: s.canonLong(name), val: a, hasVal: true})
			case strings.HasPrefix(a.val, "-"):
				valued := false
				for j := 1; j < len(a.val) && !valued; j++ {
					c := a.val[j]
					if why, bad := s.dangerShort[c]; bad {
						return r, dangerous(cmd, "-"+string(c)+" "+why)
					}
					if strings.IndexByte(s.shortArg+s.shortOpt, c) >= 0 {
						r.opts = append(r.opts, option{name: string(c), val: a, hasVal: true})
						valued = true
					}
				}
				if !valued {
					return r, dynamicArg(cmd, a, "could be an option")
				}
			case a.val == "":
				return r, dynamicArg(cmd, a, "could be an option")
			default:
				if s.stopAtOperand {
					r.operands = args[i:]
					return r, nil
				}
				r.operands = append(r.operands, a)
			}
			continue
		}
		v := a.val
		switch {
		case v == "--":
			if s.stopAtOperand {
				r.operands = args[i+1:]
				return r, nil
			}
		case strings.HasPrefix(v, "--"):
			name, val, hasEq := strings.Cut(v[2:], "=")
			if perr := s.longDanger(cmd, name); perr != nil {
				return r, perr
			}
			o := option{name: s.canonLong(name)}
			if hasEq {
				o.val, o.hasVal = constArg(val), true
			} else if slices.Contains(s.longArg, o.name) && i+1 < len(args) {
				i++
				var perr *PolicyError
				if o.val, perr = takeValue(i); perr != nil {
					return r, perr
				}
				o.hasVal = true
			}
			r.opts = append(r.opts, o)
		case len(v) > 1 && v[0] == '-':
			for j := 1; j < len(v); j++ {
				c := v[j]
				if why, bad := s.dangerShort[c]; bad {
					return r, dangerous(cmd, "-"+string(c)+" "+why)
				}
				if strings.IndexByte(s.shortArg, c) >= 0 {
					o := option{name: string(c), hasVal: true}
					if j+1 < len(v) {
						o.val = constArg(v[j+1:])
					} else if i+1 < len(args) {
						i++
						var perr *PolicyError
						if o.val, perr = takeValue(i); perr != nil {
							return r, perr
						}
					} else {
						o.hasVal = false
					}
					r.opts = append(r.opts, o)
					if s.wholeCluster {
						for k := j + 1; k < len(v); k++ {
							if why, bad := s.dangerShort[v[k]]; bad {
								return r, dangerous(cmd, "-"+string(v[k])+" "+why)
							}
						}
					}
					break
				}
				if strings.IndexByte(s.shortOpt, c) >= 0 {
					r.opts = append(r.opts, option{name: string(c), val: constArg(v[j+1:]), hasVal: j+1 < len(v)})
					break
				}
				r.opts = append(r.opts, option{name: string(c)})
			}
		default:
			if s.stopAtOperand {
				r.operands = args[i:]
				return r, nil
			}
			r.operands = append(r.operands, a)
		}
	}
	return r, nil
}

func (r scanned) has(names ...string) bool {
	for _, o := range r.opts {
		if slices.Contains(names, o.name) {
			return true
		}
	}
	return false
}

// optionCommands are allowed commands whose options can make them write
// files or run programs.
var optionCommands = map[string]*optSpec{
	"sort": {
		shortArg: "kotST",
		longArg: []string{"key", "output", "field-separator", "buffer-size", "temporary-directory",
			"batch-size", "files0-from", "parallel", "random-source", "sort", "compress-program"},
		longOpt:     []string{"check"},
		dangerShort: map[byte]string{'o': "writes a file"},
		dangerLong:  map[string]string{"output": "writes a file", "compress-program": "runs a program"},
	},
	"tree": {
		// tree has its own parser; every letter of a cluster is checked.
		shortArg:     "LPIHT",
		longArg:      []string{"charset", "filelimit", "timefmt", "sort", "hintro", "houtro", "infile"},
		dangerShort:  map[byte]string{'o': "writes a file", 'R': "writes a file in every directory"},
		dangerLong:   map[string]string{"output": "writes a file"},
		wholeCluster: true,
	},
	"rg": {
		shortArg: "ABCEMTdefgjmrt",
		longArg: []string{"after-context", "before-context", "context", "encoding", "max-columns",
			"type-not", "max-depth", "regexp", "file", "glob", "iglob", "threads", "max-count",
			"replace", "type", "type-add", "type-clear", "colors", "color", "context-separator",
			"field-context-separator", "field-match-separator", "path-separator", "pre", "pre-glob",
			"hostname-bin", "hyperlink-format", "dfa-size-limit", "regex-size-limit", "engine",
			"max-filesize", "sort", "sortr", "ignore-file", "generate"},
		dangerLong: map[string]string{"pre": "runs a program on every file", "hostname-bin": "runs a program"},
	},
	"date": {
		shortArg:    "dfr",
		shortOpt:    "I",
		longArg:     []string{"date", "file", "reference", "set", "rfc-3339", "resolution"},
		longOpt:     []string{"iso-8601"},
		dangerShort: map[byte]string{'s': "sets the system clock"},
		dangerLong:  map[string]string{"set": "sets the system clock"},
	},
	"file": {
		shortArg:    "eFfmP",
		longArg:     []string{"exclude", "exclude-quiet", "separator", "files-from", "magic-file", "parameter"},
		dangerShort: map[byte]string{'C': "writes a compiled magic file"},
		dangerLong:  map[string]string{"compile": "writes a compiled magic file"},
	},
	"uniq": {
		shortArg: "fsw",
		longArg:  []string{"skip-fields", "skip-chars", "check-chars"},
		longOpt:  []string{"all-repeated", "group"},
	},
}

// checkOptionCommand checks sort, tree, rg, date, file and uniq.
func checkOptionCommand(cmd string, args []warg) *PolicyError {
	r, perr := scanOpts(cmd, args[1:], optionCommands[cmd])
	if perr != nil {
		return perr
	}
	switch cmd {
	case "date":
		// date MMDDhhmm sets the clock; only +FORMAT operands are safe.
		for _, o := range r.operands {
			if !strings.HasPrefix(o.val, "+") {
				return dangerous(cmd, fmt.Sprintf("operand %s sets the system clock (only +FORMAT is allowed)", o.display()))
			}
		}
	case "uniq":
		if len(r.operands) >= 2 {
			return dangerous(cmd, fmt.Sprintf("the second operand %s is an output file, which uniq writes", r.operands[1].display()))
		}
	}
	return nil
}

// checkTestCommand refuses test -v / -R with an array subscript, which bash
// evaluates and which can run commands.
func checkTestCommand(cmd string, args []warg) *PolicyError {
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !a.konst || (a.val != "-v" && a.val != "-R") || i+1 >= len(args) {
			continue
		}
		n := args[i+1]
		if !n.konst || strings.Contains(n.val, "[") {
			return deny(RuleShellArithmetic, fmt.Sprintf("Unsafe test: %s %s evaluates an array subscript, which can run commands", a.val, n.display()))
		}
	}
	return nil
}

// nameArgSpecs read the options of the builtins that take variable names;
// bash evaluates an array subscript in such a name (read 'a[$(cmd)]' runs
// cmd).
var nameArgSpecs = map[string]*optSpec{
	"read":      {shortArg: "adinNptu"},
	"mapfile":   {shortArg: "dnOsuCc"},
	"readarray": {shortArg: "dnOsuCc"},
	"printf":    {shortArg: "v"},
	"getopts":   {},
	"unset":     {},
	"wait":      {shortArg: "p"},
}

// checkNameArgs refuses variable names that are computed at run time or
// carry an array subscript.
func checkNameArgs(cmd string, args []warg) *PolicyError {
	r, perr := scanOpts(cmd, args[1:], nameArgSpecs[cmd])
	if perr != nil {
		return perr
	}
	var names []warg
	for _, o := range r.opts {
		if o.hasVal && ((cmd == "read" && o.name == "a") || o.name == "v" || (cmd == "wait" && o.name == "p")) {
			names = append(names, o.val)
		}
	}
	switch cmd {
	case "printf":
		// The operands are a format and its data.
	case "getopts":
		if len(r.operands) > 1 {
			names = append(names, r.operands[1])
		}
	default:
		names = append(names, r.operands...)
	}
	for _, n := range names {
		if !n.konst || strings.Contains(n.val, "[") {
			return deny(RuleShellArithmetic, fmt.Sprintf("Unsafe use of %s: the variable name %s may hold an array subscript, which bash evaluates and which can run commands", cmd, n.display()))
		}
	}
	return nil
}

// findDanger are find's actions that delete, run or write.
var findDanger = map[string]string{
	"-delete":  "deletes files",
	"-exec":    "runs a command",
	"-execdir": "runs a command",
	"-ok":      "runs a command",
	"-okdir":   "runs a command",
	"-fprint":  "writes a file",
	"-fprint0": "writes a file",
	"-fprintf": "writes a file",
	"-fls":     "writes a file",
}

// findValue are find's primaries and options that take the next word as
// their value.
var findValue = []string{
	"-amin", "-anewer", "-atime", "-cmin", "-cnewer", "-ctime", "-fstype", "-gid", "-group",
	"-ilname", "-iname", "-inum", "-ipath", "-iregex", "-iwholename", "-links", "-lname",
	"-mmin", "-mtime", "-name", "-newer", "-path", "-perm", "-regex", "-samefile", "-size",
	"-type", "-uid", "-used", "-user", "-wholename", "-xtype", "-context", "-printf",
	"-maxdepth", "-mindepth", "-regextype", "-files0-from", "-D",
}

func isFindNewerXY(s string) bool {
	if len(s) != 8 || !strings.HasPrefix(s, "-newer") {
		return false
	}
	return strings.IndexByte("aBcmt", s[6]) >= 0 && strings.IndexByte("aBcmt", s[7]) >= 0
}

// checkFind refuses find's actions that delete files, run commands or
// write files, and run-time words that could become one of them.
func checkFind(args []warg) *PolicyError {
	value := false
	for _, a := range args[1:] {
		if value {
			value = false
			if a.multi {
				return dynamicArg("find", a, "could expand to several arguments, actions among them")
			}
			continue
		}
		if !a.konst {
			if a.multi || a.val == "" || strings.IndexByte("-()!,", a.val[0]) >= 0 {
				return dynamicArg("find", a, "could be an action such as -delete or -exec")
			}
			continue
		}
		if why, bad := findDanger[a.val]; bad {
			return dangerous("find", a.val+" "+why)
		}
		value = slices.Contains(findValue, a.val) || isFindNewerXY(a.val)
	}
	return nil
}

var sedSpec = &optSpec{
	shortArg: "efl",
	shortOpt: "i",
	longArg:  []string{"expression", "file", "line-length"},
	longOpt:  []string{"in-place"},
	longFlag: []string{"quiet", "silent", "debug", "follow-symlinks", "posix", "regexp-extended",
		"separate", "sandbox", "unbuffered", "null-data", "zero-terminated", "binary", "help", "version"},
	dangerShort: map[byte]string{'i': "edits files in place", 'f': "reads the script from a file, which cannot be checked"},
	dangerLong:  map[string]string{"in-place": "edits files in place", "file": "reads the script from a file, which cannot be checked"},
}

// checkSed refuses sed -i and -f, and scripts that run commands or write
// files.
func checkSed(args []warg) *PolicyError {
	r, perr := scanOpts("sed", args[1:], sedSpec)
	if perr != nil {
		return perr
	}
	var scripts []warg
	for _, o := range r.opts {
		if (o.name == "e" || o.name == "expression") && o.hasVal {
			scripts = append(scripts, o.val)
		}
	}
	if len(scripts) == 0 && !r.has("e", "expression") {
		if len(r.operands) == 0 {
			return nil // no script: sed prints its usage
		}
		scripts = r.operands[:1]
	}
	parts := make([]string, len(scripts))
	for i, s := range scripts {
		if !s.konst {
			return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of sed: the script %s is computed at run time", s.display()))
		}
		parts[i] = s.val
	}
	if why := checkSedScript(strings.Join(parts, "\n")); why != "" {
		return dangerous("sed", why)
	}
	return nil
}

// awk options: gawk's and mawk's. Those that read code from elsewhere,
// load extensions or write files are refused.
var (
	awkDangerShort = map[byte]string{
		'f': "reads the program from a file, which cannot be checked",
		'E': "reads the program from a file, which cannot be checked",
		'i': "includes a source file, which cannot be checked",
		'l': "loads an extension library",
		'o': "writes a file",
		'p': "writes a profile file",
		'd': "writes a file",
		'D': "starts the debugger",
		'W': "takes implementation options (mawk -W exec reads the program from a file)",
	}
	awkSpec = &optSpec{
		longArg: []string{"assign", "field-separator", "source", "exec", "file", "include", "load"},
		longOpt: []string{"lint", "pretty-print", "profile", "dump-variables", "debug"},
		longFlag: []string{"characters-as-bytes", "traditional", "copyright", "gen-pot", "help", "bignum",
			"non-decimal-data", "use-lc-numeric", "optimize", "no-optimize", "posix", "re-interval",
			"sandbox", "lint-old", "version", "csv"},
		dangerLong: map[string]string{
			"exec": "reads the program from a file, which cannot be checked", "file": "reads the program from a file, which cannot be checked",
			"include": "includes a source file, which cannot be checked", "load": "loads an extension library",
			"pretty-print": "writes a file", "profile": "writes a profile file",
			"dump-variables": "writes a file", "debug": "starts the debugger",
		},
	}
	awkSafeShort = "bcCghMnNOPrsStVk"
)

// checkAwk refuses awk programs that run commands or write files, and
// options that bring in code the checker cannot see. Options end at the
// program text, as in gawk and mawk.
func checkAwk(cmd string, args []warg) *PolicyError {
	var programs []warg
	sawE := false
	i := 1
options:
	for ; i < len(args); i++ {
		a := args[i]
		if !a.konst {
			return dynamicArg(cmd, a, "could be an option or the program")
		}
		v := a.val
		if v == "--" {
			i++
			break
		}
		if v == "-" || !strings.HasPrefix(v, "-") {
			break
		}
		value := func(attached string, hasAttached bool) (warg, bool, *PolicyError) {
			if hasAttached {
				return constArg(attached), true, nil
			}
			if i+1 >= len(args) {
				return warg{}, false, nil
			}
			i++
			if args[i].multi {
				return warg{}, false, dynamicArg(cmd, args[i], "could expand to several arguments")
			}
			return args[i], true, nil
		}
		if strings.HasPrefix(v, "--") {
			name, val, hasEq := strings.Cut(v[2:], "=")
			if perr := awkSpec.longDanger(cmd, name); perr != nil {
				return perr
			}
			canon := awkSpec.canonLong(name)
			switch {
			case slices.Contains(awkSpec.longArg, canon):
				w, ok, perr := value(val, hasEq)
				if perr != nil {
					return perr
				}
				if canon == "source" {
					sawE = true
					if ok {
						programs = append(programs, w)
					}
				}
			case slices.Contains(awkSpec.longFlag, canon), canon == "lint":
			default:
				return dangerous(cmd, "option --"+name+" is not known to be safe")
			}
			continue
		}
		for j := 1; j < len(v); j++ {
			c := v[j]
			if why, bad := awkDangerShort[c]; bad {
				return dangerous(cmd, "-"+string(c)+" "+why)
			}
			switch {
			case c == 'F' || c == 'v' || c == 'e':
				w, ok, perr := value(v[j+1:], j+1 < len(v))
				if perr != nil {
					return perr
				}
				if c == 'e' {
					sawE = true
					if ok {
						programs = append(programs, w)
					}
				}
				continue options
			case c == 'L':
				continue options // -L[fatal|invalid]
			case strings.IndexByte(awkSafeShort, c) < 0:
				return dangerous(cmd, "option -"+string(c)+" is not known to be safe")
			}
		}
	}
	if !sawE {
		if i >= len(args) {
			return nil // no program: awk prints its usage
		}
		programs = append(programs, args[i])
	}
	for _, p := range programs {
		if !p.konst {
			return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of %s: the program %s is computed at run time", cmd, p.display()))
		}
		if why := checkAwkProgram(p.val); why != "" {
			return dangerous(cmd, why)
		}
	}
	return nil
}

// checkShell checks bash, sh, dash and ash: a -c script is parsed and
// checked like the command itself; a script file or standard input cannot
// be checked and is refused.
func (u *unit) checkShell(cmd string, args []warg) *PolicyError {
	cflag := false
	i := 1
loop:
	for ; i < len(args); i++ {
		a := args[i]
		if !a.konst {
			return dynamicArg(cmd, a, "could be an option or the script")
		}
		v := a.val
		switch {
		case v == "--" || v == "-":
			i++
			break loop
		case v == "--version" || v == "--help":
			return nil
		case v == "--rcfile" || v == "--init-file":
			return dangerous(cmd, v+" runs a file, which cannot be checked")
		case strings.HasPrefix(v, "--"):
			// --norc, --noprofile, --login, --posix, --restricted, ...
		case len(v) > 1 && (v[0] == '-' || v[0] == '+'):
			for j := 1; j < len(v); j++ {
				switch v[j] {
				case 'c':
					cflag = true
				case 'i':
					return dangerous(cmd, "-i starts an interactive shell, which runs startup files")
				case 's':
					if v[0] == '-' {
						return dangerous(cmd, "-s reads commands from standard input, which cannot be checked")
					}
				case 'o', 'O':
					i++ // the option name
				}
			}
		default:
			break loop
		}
	}
	if !cflag {
		return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of %s: a script file or standard input cannot be checked; pass the commands with -c", cmd))
	}
	if i >= len(args) {
		return nil // -c without a script: an error, nothing runs
	}
	script := args[i]
	if !script.konst {
		return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of %s: the script %s is computed at run time", cmd, script.display()))
	}
	d := dialectShell
	if cmd == "bash" || cmd == "rbash" {
		d = dialectBash
	}
	return u.c.checkScript(script.val, d, u.depth+1)
}

// checkEval parses eval's joined arguments as a script.
func (u *unit) checkEval(args []warg) *PolicyError {
	parts := make([]string, 0, len(args)-1)
	for _, a := range args[1:] {
		if !a.konst {
			return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of eval: argument %s is computed at run time", a.display()))
		}
		parts = append(parts, a.val)
	}
	return u.c.checkScript(strings.Join(parts, " "), dialectBash, u.depth+1)
}

var watchSpec = &optSpec{
	shortArg:      "nq",
	shortOpt:      "d",
	longArg:       []string{"interval", "equexit"},
	longOpt:       []string{"differences"},
	longFlag:      []string{"beep", "color", "no-color", "errexit", "chgexit", "exec", "precise", "no-title", "no-wrap", "no-rerun", "help", "version"},
	stopAtOperand: true,
}

// checkWatch checks watch, which runs its joined arguments with sh -c, or
// runs them as a command with -x.
func (u *unit) checkWatch(args []warg, ctx argvCtx) *PolicyError {
	r, perr := scanOpts("watch", args[1:], watchSpec)
	if perr != nil {
		return perr
	}
	if len(r.operands) == 0 {
		return nil
	}
	if r.has("x", "exec") {
		return u.checkArgv(r.operands, argvCtx{appended: ctx.appended})
	}
	parts := make([]string, len(r.operands))
	for i, a := range r.operands {
		if !a.konst {
			return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of watch: argument %s is computed at run time", a.display()))
		}
		parts[i] = a.val
	}
	return u.c.checkScript(strings.Join(parts, " "), dialectShell, u.depth+1)
}

// wrapper describes a command that runs another command given as its
// operands.
type wrapper struct {
	spec optSpec
	// lead operands come before the command (timeout's duration).
	lead int
	// noCommand options mean no command runs (command -v, ionice -p).
	noCommand []string
	// assigns: NAME=VALUE operands before the command set its environment.
	assigns bool
	// replace: xargs -I/-i/--replace put run-time text into the command.
	replace bool
}

var wrappers = map[string]*wrapper{
	"env": {spec: optSpec{
		shortArg: "uCS",
		longArg:  []string{"unset", "chdir", "split-string"},
		longOpt:  []string{"block-signal", "default-signal", "ignore-signal"},
		longFlag: []string{"ignore-environment", "null", "debug", "list-signal-handling", "help", "version"},
		dangerShort: map[byte]string{
			'S': "splits a string into a command, which cannot be checked",
		},
		dangerLong:    map[string]string{"split-string": "splits a string into a command, which cannot be checked"},
		stopAtOperand: true,
	}, assigns: true},
	"nice":  {spec: optSpec{shortArg: "n", longArg: []string{"adjustment"}, stopAtOperand: true}},
	"nohup": {spec: optSpec{longFlag: []string{"help", "version"}, stopAtOperand: true}},
	"timeout": {spec: optSpec{
		shortArg:      "ks",
		longArg:       []string{"kill-after", "signal"},
		longFlag:      []string{"preserve-status", "foreground", "verbose", "help", "version"},
		stopAtOperand: true,
	}, lead: 1},
	"stdbuf": {spec: optSpec{shortArg: "ioe", longArg: []string{"input", "output", "error"}, stopAtOperand: true}},
	"setsid": {spec: optSpec{longFlag: []string{"ctty", "fork", "wait", "help", "version"}, stopAtOperand: true}},
	"ionice": {spec: optSpec{
		shortArg:      "cnpPu",
		longArg:       []string{"class", "classdata", "pid", "pgid", "uid"},
		longFlag:      []string{"ignore", "help", "version"},
		stopAtOperand: true,
	}, noCommand: []string{"p", "P", "u", "pid", "pgid", "uid"}},
	"xargs": {spec: optSpec{
		shortArg: "adEILnPs",
		shortOpt: "eil",
		longArg:  []string{"arg-file", "delimiter", "max-args", "max-procs", "max-chars", "process-slot-var"},
		longOpt:  []string{"eof", "replace", "max-lines"},
		longFlag: []string{"null", "open-tty", "interactive", "no-run-if-empty", "verbose", "exit",
			"show-limits", "help", "version"},
		stopAtOperand: true,
	}, replace: true},
	"command": {spec: optSpec{stopAtOperand: true}, noCommand: []string{"v", "V"}},
	"builtin": {spec: optSpec{stopAtOperand: true}},
	"exec":    {spec: optSpec{shortArg: "a", stopAtOperand: true}},
	"time": {spec: optSpec{
		shortArg:      "fo",
		longArg:       []string{"format", "output"},
		longFlag:      []string{"append", "portability", "verbose", "quiet", "help", "version"},
		dangerShort:   map[byte]string{'o': "writes a file"},
		dangerLong:    map[string]string{"output": "writes a file"},
		stopAtOperand: true,
	}},
	"sudo": {spec: optSpec{
		shortArg: "CDghpRrTtUu",
		longArg: []string{"close-from", "chdir", "group", "host", "prompt", "chroot", "role",
			"command-timeout", "type", "other-user", "user"},
		dangerShort: map[byte]string{'i': "starts a login shell", 's': "starts a shell", 'e': "edits files"},
		dangerLong:  map[string]string{"login": "starts a login shell", "shell": "starts a shell", "edit": "edits files"},
		// sudo stops at the first operand too.
		stopAtOperand: true,
	}, assigns: true},
	"doas": {spec: optSpec{
		shortArg:      "uC",
		dangerShort:   map[byte]string{'s': "starts a shell"},
		stopAtOperand: true,
	}},
	"busybox": {spec: optSpec{stopAtOperand: true}},
}

// checkWrapper checks the command a wrapper runs, as a command of its own.
func (u *unit) checkWrapper(cmd string, w *wrapper, args []warg, ctx argvCtx) *PolicyError {
	r, perr := scanOpts(cmd, args[1:], &w.spec)
	if perr != nil {
		return perr
	}
	if r.has(w.noCommand...) {
		return nil
	}
	rest := r.operands
	if cmd == "env" && len(rest) > 0 && rest[0].konst && rest[0].val == "-" {
		rest = rest[1:] // env - is env -i
	}
	for n := 0; n < w.lead && len(rest) > 0; n++ {
		if rest[0].multi {
			return dynamicArg(cmd, rest[0], "could expand to several arguments")
		}
		rest = rest[1:]
	}
	for w.assigns && len(rest) > 0 {
		a := rest[0]
		name, _, isAssign := strings.Cut(a.val, "=")
		if !a.konst && (!isAssign || a.multi) {
			return dynamicArg(cmd, a, "could be the command or an assignment")
		}
		if !isAssign {
			break
		}
		if why := sensitiveVar(name); why != "" {
			return deny(RuleShellAssignment, fmt.Sprintf("Unsafe assignment: %s %s", name, why))
		}
		rest = rest[1:]
	}
	inner := argvCtx{appended: ctx.appended}
	if w.replace {
		repl, replacing, dyn := xargsReplace(r)
		if dyn {
			return deny(RuleShellDynamic, "Unsafe use of xargs: the replace string is computed at run time")
		}
		inner.appended = ctx.appended || !replacing
		if replacing && len(rest) > 0 {
			rest = slices.Clone(rest)
			for i, a := range rest {
				if a.konst && strings.Contains(a.val, repl) {
					before, _, _ := strings.Cut(a.val, repl)
					rest[i] = warg{val: before, word: a.word, pos: a.pos}
				}
			}
		}
	}
	if len(rest) == 0 {
		if ctx.appended {
			return deny(RuleShellDynamic, fmt.Sprintf("Unsafe use of %s: the command would be read at run time", cmd))
		}
		return nil // no command: env prints the environment, xargs runs echo
	}
	return u.checkArgv(rest, inner)
}

// xargsReplace returns xargs' replace string, if -I, -i or --replace is
// given, and whether it is computed at run time.
func xargsReplace(r scanned) (repl string, ok, dynamic bool) {
	for _, o := range r.opts {
		switch o.name {
		case "I", "i", "replace":
			if o.hasVal && !o.val.konst {
				return "", true, true
			}
			repl, ok = "{}", true
			if o.hasVal && o.val.val != "" {
				repl = o.val.val
			}
		}
	}
	return repl, ok, false
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
