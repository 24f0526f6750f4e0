package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"syscall"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// env is everything the commands take from the process, injected so tests
// can run them in-process.
type env struct {
	environ []string
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
}

// exitError carries a specific exit code up to run.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// commands is every subcommand, in the order `warden help` lists them.
func commands() []command {
	return []command{
		{name: "exec", run: cmdExec,
			summary: "Run Python cells, shell commands or a program in one sandbox.",
			usage: `warden exec [flags] --python CODE [--python CODE ...]
warden exec [flags] --shell CMD
warden exec [flags] --file PATH
warden exec [flags] -- PROGRAM [ARG ...]`,
			help: execHelp},
		{name: "run", run: cmdRun,
			summary: "Run Python scripts in sandboxes, one run record each under ./logs.",
			usage:   "warden run [flags] SCRIPT... [-- ARG...]",
			help:    runHelp},
		{name: "serve", run: cmdServe,
			summary: "Run the HTTP service (docs/api.md), with MCP at /mcp.",
			usage:   "warden serve [flags]",
			help: `Serves Warden's API, E2B's API and MCP on one listener until interrupted.
The service picks its provider once, at start-up (see 'warden doctor').`},
		{name: "mcp", run: cmdMCP,
			summary: "Serve the Model Context Protocol over stdio (docs/mcp.md).",
			usage:   "warden mcp [flags]",
			help:    mcpHelp},
		{name: "doctor", run: cmdDoctor,
			summary: "Report which providers can be used here, and why not.",
			usage:   "warden doctor [flags]",
			help: `Probes every provider, as 'warden serve' does at start-up, and says which
would be selected, what each enforces and how to fix what is missing. The
exit code is 1 when the settings leave no provider that can run code.`},
		{name: "image", run: cmdImage,
			summary: "Build the runtime image (offline-capable) or a framework image.",
			usage:   "warden image build [flags]",
			help: `Builds warden-runtime:latest (SANDBOX__IMAGE) in Docker: from the official
Python image when a registry is reachable, else from a Debian base
bootstrapped with debootstrap from your apt mirror. With --framework, also
builds the image of an agent framework on it.`},
		{name: "prune", run: cmdPrune,
			summary: "Remove what dead Warden processes left of their sandboxes.",
			usage:   "warden prune",
			help: `Removes containers, bubblewrap processes, cgroups and workspaces, local
sandbox directories and bounded workspaces that belong to Warden processes
of this host that no longer run. SANDBOX__PROVIDER names the provider to
sweep; auto sweeps all. Sandboxes of running Wardens are never touched.`},
		{name: "bench", run: cmdBench,
			summary: "Measure Warden against plain docker exec / docker run.",
			usage:   "warden bench [flags]"},
		{name: "load", run: cmdLoad,
			summary: "Drive a service with concurrent clients, checking every result.",
			usage:   "warden load [flags]",
			help:    loadHelp},
		{name: "version", run: cmdVersion,
			summary: "Print the version.",
			usage:   "warden version"},
		{name: "help", run: nil,
			summary: "Show the list of commands, or one command's help.",
			usage:   "warden help [COMMAND]"},
	}
}

func cmdVersion(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden version")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "warden", version)
	return nil
}

// run runs the command line args and returns the exit code: 0, the
// sandboxed code's own code, 1 for an error, 2 for a mistake in the
// command line, 128+N when signal N interrupted it.
func run(ctx context.Context, args []string, e env) int {
	cmds := commands()
	if len(args) == 0 {
		printUsage(e.stderr, cmds)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "--help", "-help":
		if len(args) < 2 || name != "help" {
			printUsage(e.stdout, cmds)
			return 0
		}
		// warden help CMD is warden CMD --help.
		name, args = args[1], []string{args[1], "--help"}
		if name == "help" {
			c, _ := findCommand(cmds, "help")
			printHelp(e.stdout, c, nil)
			return 0
		}
	case "--version", "-version":
		name = "version"
	}
	c, ok := findCommand(cmds, name)
	if !ok || c.run == nil {
		msg := fmt.Sprintf("warden: unknown command %q", name)
		var names []string
		for _, c := range cmds {
			names = append(names, c.name)
		}
		if s := suggest(name, names); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		fmt.Fprintf(e.stderr, "%s\nRun 'warden help' for the list of commands.\n", msg)
		return 2
	}
	err := c.run(ctx, args[1:], e)
	var xe exitError
	var ue *usageError
	var hr helpRequest
	switch {
	case err == nil:
		return 0
	case errors.As(err, &hr):
		printHelp(e.stdout, c, hr.fs)
		return 0
	case errors.As(err, &xe):
		if code, ok := interrupted(ctx); ok {
			return code
		}
		return xe.code
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "warden %s: %s\nRun 'warden help %s' for usage.\n", c.name, ue.msg, c.name)
		return 2
	}
	if code, ok := interrupted(ctx); ok {
		fmt.Fprintf(e.stderr, "warden %s: interrupted\n", c.name)
		return code
	}
	fmt.Fprintf(e.stderr, "warden %s: %s\n", c.name, userMessage(err))
	return 1
}

// signalError is the cause of the context main cancels on a signal.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string { return "interrupted by " + e.sig.String() }

// interrupted reports whether a signal ended ctx, and the shell's exit
// code for it: 128 + the signal's number (130 for Ctrl-C).
func interrupted(ctx context.Context) (int, bool) {
	if ctx.Err() == nil {
		return 0, false
	}
	if se, ok := errors.AsType[signalError](context.Cause(ctx)); ok {
		return 128 + int(se.sig), true
	}
	return 0, false
}

// userMessage is err's text for the person at the terminal: without the
// names of the error classes it wraps (": invalid argument", ...), which
// matter to callers of the API, not to the reader.
func userMessage(err error) string {
	msg := err.Error()
	for _, class := range []error{sandbox.ErrInvalid, sandbox.ErrNotFound, sandbox.ErrConflict, sandbox.ErrDisabled,
		sandbox.ErrUnsupported, sandbox.ErrUnavailable, sandbox.ErrLimit} {
		if errors.Is(err, class) {
			for _, after := range []string{"\n", " ("} {
				msg = strings.ReplaceAll(msg, ": "+class.Error()+after, after)
			}
			msg = strings.TrimSuffix(msg, ": "+class.Error())
		}
	}
	return msg
}

// settingFlags registers flags that override configuration settings. Each
// flag's value is handed to the config loader under its variable name, so
// flags win over the environment and .env with the same parsing and
// validation; errors name the flag, not the variable.
type settingFlags struct {
	loader *config.Loader
	flags  map[string]string // setting -> flag name
}

func newSettingFlags(e env) *settingFlags {
	l := &config.Loader{Environ: e.environ}
	if m, err := config.LoadFile(".env"); err == nil {
		l.Dotenv = m
		l.DotenvName = ".env"
	}
	return &settingFlags{loader: l, flags: map[string]string{}}
}

func (s *settingFlags) add(fs *flag.FlagSet, name, setting, help string) {
	s.flags[setting] = name
	fs.Var(&settingValue{s: s, setting: setting}, name, help+" ("+setting+")")
}

func (s *settingFlags) addBool(fs *flag.FlagSet, name, setting, help string) {
	s.flags[setting] = name
	fs.Var(&settingValue{s: s, setting: setting, isBool: true}, name, help+" ("+setting+")")
}

// settingValue is the flag.Value of a setting flag. Its String is the
// setting's default, which help shows.
type settingValue struct {
	s       *settingFlags
	setting string
	isBool  bool
}

func (v *settingValue) Set(val string) error { return flagValueError(v.s.loader.Set(v.setting, val)) }
func (v *settingValue) IsBoolFlag() bool     { return v.isBool }

func (v *settingValue) String() string {
	if v == nil || v.s == nil || v.isBool {
		return ""
	}
	for _, st := range config.Settings() {
		if st.Name == v.setting && !st.Secret {
			return st.Default
		}
	}
	return ""
}

// placeholder names the value of a setting flag in help.
func (v *settingValue) placeholder() string {
	switch v.setting {
	case "SANDBOX__MEMORY_LIMIT", "SANDBOX__MAX_OUTPUT_BYTES":
		return "SIZE"
	case "SANDBOX__CPU_LIMIT":
		return "CPUS"
	case "SANDBOX__TIMEOUT", "SANDBOX__IDLE_TIMEOUT", "SANDBOX__DOCKER_CONNECTION_TIMEOUT":
		return "DURATION"
	case "SANDBOX__IMAGE":
		return "IMAGE"
	case "SANDBOX__PROVIDER":
		return "NAME"
	case "SANDBOX__VOLUME_MOUNT_PATH":
		return "PATH"
	case "API__HOST":
		return "HOST"
	case "API__PORT":
		return "PORT"
	}
	return "N"
}

// set sets a setting from the flag named flagName, as add's flags do.
func (s *settingFlags) set(flagName, setting, value string) error {
	s.flags[setting] = flagName
	if err := s.loader.Set(setting, value); err != nil {
		return usageErrorf("--%s %q: %v", flagName, value, flagValueError(err))
	}
	return nil
}

// flagValueError keeps of a setting's parse error only the reason: the
// flag package names the flag and the value.
func flagValueError(err error) error {
	if fe, ok := errors.AsType[*config.FieldError](err); ok {
		return errors.New(fe.Reason)
	}
	return err
}

// load returns the validated configuration; warnings go to stderr. A
// value given by a flag that fails validation is a usage error naming the
// flag; other problems are listed under "configuration".
func (s *settingFlags) load(e env) (config.Config, error) {
	cfg, err := s.loader.Load()
	if err != nil {
		var flagErrs, others []string
		for _, err := range unjoin(err) {
			fe, ok := errors.AsType[*config.FieldError](err)
			if name := s.flags[fieldName(fe)]; ok && fe.Source == "overrides" && name != "" {
				flagErrs = append(flagErrs, fmt.Sprintf("--%s %q: %s", name, fe.Value, fe.Reason))
				continue
			}
			others = append(others, userMessage(err))
		}
		if len(others) == 0 {
			return config.Config{}, &usageError{msg: strings.Join(flagErrs, "\n")}
		}
		return config.Config{}, fmt.Errorf("configuration:\n  %s", strings.ReplaceAll(strings.Join(append(flagErrs, others...), "\n"), "\n", "\n  "))
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(e.stderr, "warden: warning:", w)
	}
	return cfg, nil
}

func fieldName(fe *config.FieldError) string {
	if fe == nil {
		return ""
	}
	return fe.Name
}

// unjoin returns the errors an errors.Join holds, or err alone.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// logger builds the operational logger (not sandbox output) on w:
// LOG__FORMAT text or json, or auto: text on a terminal, else JSON.
func logger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.Level.Level()}
	switch cfg.Log.Format {
	case config.LogFormat("json"):
		return slog.New(slog.NewJSONHandler(w, opts))
	case config.LogFormat("text"):
		return slog.New(slog.NewTextHandler(w, opts))
	}
	if isTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// readFile reads a code file; "-" is standard input.
func readFile(e env, name string) (string, error) {
	if name == "-" {
		b, err := io.ReadAll(e.stdin)
		return string(b), err
	}
	b, err := os.ReadFile(name)
	return string(b), err
}
