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

	"github.com/warden-sandbox/warden/internal/config"
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

const usage = `warden runs AI-agent code (Python and shell) in isolated sandboxes.

Usage:
  warden exec [flags] --python CODE [--python CODE ...]   run Python cells in one sandbox session
  warden exec [flags] --shell CMD                          run a shell command (bash -c)
  warden exec [flags] -- PROGRAM [ARG ...]                 run a program without a shell
  warden run [flags] SCRIPT... [-- ARG...]                 run Python scripts in sandboxes, one run record each under ./logs
  warden serve [--host H] [--port P]                      run the HTTP service (see docs/api.md), with MCP at /mcp
  warden mcp [--server URL]                                serve the Model Context Protocol over stdio (docs/mcp.md)
  warden doctor [--json]                                   report which providers can be used, and why not
  warden image build [--name NAME] [--no-cache]            build the runtime image (offline-capable)
  warden prune                                             remove what dead Warden processes left of their sandboxes
  warden bench [--n N] [--format markdown]                 measure Warden against plain docker exec / docker run
  warden load [--clients C] [--executions E] [--fault F]   drive a service with concurrent clients, checking every result
  warden version                                           print the version

Settings come from flags, then environment variables (SANDBOX__*, see the
README), then a .env file in the current directory, then defaults.
Run 'warden COMMAND -h' for the flags of a command.
`

func run(ctx context.Context, args []string, e env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "exec":
		err = cmdExec(ctx, args[1:], e)
	case "doctor":
		err = cmdDoctor(ctx, args[1:], e)
	case "image":
		err = cmdImage(ctx, args[1:], e)
	case "prune":
		err = cmdPrune(ctx, args[1:], e)
	case "serve":
		err = cmdServe(ctx, args[1:], e)
	case "mcp":
		err = cmdMCP(ctx, args[1:], e)
	case "run":
		err = cmdRun(ctx, args[1:], e)
	case "bench":
		err = cmdBench(ctx, args[1:], e)
	case "load":
		err = cmdLoad(ctx, args[1:], e)
	case "version", "--version":
		fmt.Fprintln(e.stdout, "warden", version)
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage)
	default:
		fmt.Fprintf(e.stderr, "warden: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var xe exitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &xe):
		return xe.code
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(e.stderr, "warden %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(e.stderr, "warden %s: %v\n", args[0], err)
		return 1
	}
}

var errUsage = errors.New("usage")

// settingFlags registers flags that override configuration settings. Each
// flag's value is handed to the config loader under its variable name, so
// flags win over the environment and .env with the same parsing and
// validation.
type settingFlags struct {
	loader *config.Loader
}

func newSettingFlags(e env) *settingFlags {
	l := &config.Loader{Environ: e.environ}
	if m, err := config.LoadFile(".env"); err == nil {
		l.Dotenv = m
		l.DotenvName = ".env"
	}
	return &settingFlags{loader: l}
}

func (s *settingFlags) add(fs *flag.FlagSet, name, setting, help string) {
	fs.Func(name, help+" ("+setting+")", func(v string) error { return s.loader.Set(setting, v) })
}

func (s *settingFlags) addBool(fs *flag.FlagSet, name, setting, help string) {
	fs.BoolFunc(name, help+" ("+setting+")", func(v string) error { return s.loader.Set(setting, v) })
}

// load returns the validated configuration; warnings go to stderr.
func (s *settingFlags) load(e env) (config.Config, error) {
	cfg, err := s.loader.Load()
	if err != nil {
		return config.Config{}, fmt.Errorf("configuration:\n  %s", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintln(e.stderr, "warden: warning:", w)
	}
	return cfg, nil
}

// logger builds the operational logger (not sandbox output) on stderr.
func logger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Log.Level.Level()}
	if cfg.Log.Format == config.LogFormat("json") {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
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
