// Package policy decides, before anything starts, whether a shell command
// or a piece of Python code may run: TinyAgent's shell-safety and
// code-safety checks, rebuilt on a real shell parser and a Python
// tokenizer, with the bypasses TinyAgent's checks let through closed.
//
// What it guarantees: a refused command or cell never reaches a sandbox,
// and every refusal is a [*PolicyError] naming its rule and reason, which
// unwraps to [sandbox.ErrDenied]. The checks are pure functions, cheap
// (tens of microseconds for a typical command; about 0.35 µs per byte of
// input) and safe for concurrent use. They are a guard rail in front of the
// sandbox, not a security boundary: the isolation of the provider is.
//
// # Shell
//
// [ShellPolicy.Check] parses the command with mvdan.cc/sh/v3 (bash
// grammar) and visits every node of the tree, so every command that could
// run is checked wherever it sits: behind assignments, in if/while/until/
// for/case/select bodies and conditions, subshells, groups, $(...),
// backticks, <(...) and >(...), here-documents, function bodies, and after
// "&", ";" or a newline. Decisions:
//
//   - Names. A command name must be a constant. Quoting that resolves to a
//     constant is accepted as that constant ("l"s and \ls are ls, "r""m" is
//     rm and refused as rm); anything computed at run time ($CMD, $(...),
//     globs like /bin/r?, brace expansions, ~, $'...') is refused. A name
//     with a slash is accepted only in /bin, /sbin, /usr/bin, /usr/sbin,
//     /usr/local/bin and /usr/local/sbin, so ./ls cannot run a file the
//     script wrote.
//   - Allowed set. TinyAgent's 27 commands exactly ([DefaultSafeCommands]),
//     plus ExtraCommands; "*" or Bypass allows everything. Always allowed as
//     well: true, false and ":" (TinyAgent skipped true and false as
//     keywords) and break, continue, return, exit and shift, which read a
//     plain number and run nothing. The keywords if, while, until, for,
//     case, select, time, [[ ]] and (( )) are syntax, not commands; let,
//     declare, export, local, test and [ are builtins and must be allowed.
//     A function the script defines unconditionally at its top level may be
//     called after its definition: its body is checked where it stands.
//   - Operators. "&&", "||", ";" and "|" by default, plus ExtraOperators
//     ("*" allows any). A newline is ";". "&" (background) and "|&" are
//     operators that must be allowed explicitly, which TinyAgent's dead
//     operator list never enforced.
//   - Wrappers. The command run by env, nice, nohup, timeout, stdbuf,
//     setsid, ionice, xargs, command, builtin, exec, time, sudo, doas and
//     busybox is checked as a command of its own (the wrapper itself must be
//     allowed). xargs appends arguments read at run time, so commands whose
//     arguments decide their danger (find, sed, awk, sort, ...) are refused
//     under it. The scripts given to bash -c, sh -c (which must pass both
//     the POSIX and the bash grammar), eval and watch are parsed and checked
//     in turn, up to 8 levels and a work budget; a shell reading a script
//     file or standard input, source, and zsh and other shells are refused,
//     as their code cannot be read.
//   - Dangerous uses of allowed commands: find -delete, -exec, -execdir,
//     -ok, -okdir, -fprint, -fprint0, -fprintf and -fls; sed -i, -f and
//     scripts with the e or w commands or the e or w flags of s; awk
//     programs with system(), pipes, print/printf redirected to a file,
//     gawk's @ forms, extension() and /inet files, and options that bring
//     in unseen code or write files (-f, -E, -i, -l, -o, -p, -d, -D, -W);
//     sort -o and --compress-program; tree -o and -R; rg --pre and
//     --hostname-bin; date -s and date operands that set the clock; file
//     -C; uniq with an output operand. Option clusters (-ni) and GNU long
//     option abbreviations (--in-pl) are recognised. An argument computed at
//     run time is refused where it could become such an option, and a sed or
//     awk script the analysers cannot read with certainty is refused.
//   - Assignments (prefixes, statements, env and for-loop variables, ${x:=})
//     to variables that change how commands are found or run are refused:
//     PATH, IFS, ENV, BASH* (BASH_ENV, BASH_CMDS, BASH_FUNC_*), LD_*, PS4,
//     RANDOM and others that evaluate arithmetic, RIPGREP_CONFIG_PATH, ...
//   - Arithmetic. bash evaluates the values of variables named in
//     arithmetic, and an array subscript in such a value runs command
//     substitutions (x='a[$(cmd)]'; echo $((x)) runs cmd). A variable may be
//     used in arithmetic, array subscripts, slices and [[ -eq ]] only if the
//     script set it to an integer first (a top-level assignment, a
//     for ((i=0;...)) initialisation, a for-in loop over integer literals)
//     and assigns it nothing else; ${x@P}, ${!x}, [[ -v 'a[...]' ]] and
//     read/printf -v into a subscript are refused.
//   - Redirections are not commands. Writes to system locations (/bin,
//     /usr, /etc, /dev except null and the standard streams, ...), to shell
//     startup files (.bashrc, .profile, ...) and any use of /dev/tcp or
//     /dev/udp are refused; other targets, including computed ones, are
//     allowed, as in TinyAgent.
//   - A parse error is a refusal that carries the parser's message; so is
//     bash syntax the parser does not accept, such as ((cmd); cmd), which
//     it reads as arithmetic.
//
// [ShellPolicy.CheckArgv] checks a command given as an argument vector,
// which Warden runs without a shell: argv[0] and its arguments as above,
// bash -c scripts parsed, and shell operators as elements refused.
// [ShellPolicy.CheckEnv] refuses the same sensitive variables in the
// environment of a request.
//
// Known limits: the checker reads bash as mvdan.cc/sh reads it; commands
// added with ExtraCommands are trusted beyond the modelled wrappers (git -c
// core.pager, tar --to-command, python -c and the like run anything); a
// file written by one command and run by a later interpreter is not
// followed.
//
// # Python
//
// [PythonPolicy.Check] implements TinyAgent's validate_code_safety with
// the same lists ([DangerousModules], [DangerousFunctions], the essential
// modules), semantics and messages, plus the escapes it missed: the
// interpreter's internals (__builtins__, __class__, __bases__, __mro__,
// __subclasses__, __globals__, __code__, __dict__, __self__, frames, ...),
// dangerous functions fetched with getattr from any object or merely named
// (e = eval), getattr and namespace lookups by computed names, modules
// reached through attributes (logging.os) or named in strings
// (importlib.import_module("os"), pkgutil.resolve_name("os:system")),
// modules that are os under another name or run code on load (posix,
// pickle, marshal, code, runpy, gc, inspect, ...), identifiers Python
// normalises to a dangerous name (ｅｘｅｃ), and escape sequences in
// strings.
//
// Parser decision (for an ADR). The checks run in Go on the host, so they
// need Python's syntax in Go. The candidates were a Go Python parser from
// the module proxy, such as github.com/go-python/gpython's, or a tokenizer
// of our own. gpython targets Python 3.4: it rejects f-strings (3.6),
// walrus (3.8), match (3.10), PEP 701 f-strings (3.12) and type
// parameters (3.12), and no maintained Go parser follows CPython's grammar
// release by release; a parser also fails on code that does not parse,
// which TinyAgent let through unchecked. A tokenizer suffices for every
// rule: the rules are about names, attributes after ".", string literals,
// calls and their arguments, never about semantics a syntax tree would
// add. So the package has its own tokenizer (python_lex.go, about 400
// lines): it knows Python's string prefixes, escapes, implicit
// concatenation, f-string replacement fields (tokenised as code, including
// nested same-quote strings and format specs), numbers, comments, line
// continuations and NFKC folding of identifiers (a table generated from
// Python 3.11's unicodedata). It never fails: unterminated strings end at
// their line, and code that does not parse still gets every name-level
// check, so a syntax error is reported by the interpreter later and is not
// a bypass. Cost: no dependency, robust to new syntax; the price is that
// rules are token patterns (getattr(x, "a" + "b") is evaluated, a value
// built across statements is not), so dynamic forms the patterns cannot
// follow (getattr with a computed name, globals()[key]) are refused rather
// than followed.
package policy
