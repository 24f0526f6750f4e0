package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/policy"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/wire"
)

// cell is one execution of `warden exec`, in command-line order.
type cell struct {
	lang sandbox.Language
	code string
	argv []string
}

// multi collects a repeatable flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

const execHelp = `Creates one sandbox, runs the cells in command-line order in it (Python
cells share one session: variables persist), stops at the first that
fails, removes the sandbox and exits with that cell's exit code (124 for a
timeout, 137 for a kill). A cell's final expression is printed like in a
REPL. A program to run without a shell goes after --. A single cell
without --json is a one-shot run (POST /sandbox/run with --server), which
the fork server runs without an agent.`

func cmdExec(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden exec")
	sf := newSettingFlags(e)
	var cells []cell
	var readDirs, writeDirs, mounts, envs, envFiles multi
	var jsonOut bool
	var workspace, workdir string
	fs.Func("python", "Python `code` to run; repeat for several cells of one session; - reads stdin", func(v string) error {
		code, err := codeArg(e, v)
		cells = append(cells, cell{lang: sandbox.Python, code: code})
		return err
	})
	fs.Func("shell", "shell `command` to run with bash -c; repeatable; - reads stdin", func(v string) error {
		code, err := codeArg(e, v)
		cells = append(cells, cell{lang: sandbox.Shell, code: code})
		return err
	})
	fs.Func("file", "run the code in `path`: shell for *.sh, else Python; - is stdin (Python); repeatable", func(v string) error {
		code, err := readFile(e, v)
		lang := sandbox.Python
		if strings.HasSuffix(v, ".sh") {
			lang = sandbox.Shell
		}
		cells = append(cells, cell{lang: lang, code: code})
		return err
	})
	sf.add(fs, "provider", "SANDBOX__PROVIDER", "isolation backend: auto, bubblewrap, docker, seatbelt, local, forkserver or kubernetes")
	sf.add(fs, "timeout", "SANDBOX__TIMEOUT", "per-execution timeout, seconds or a duration like 90s")
	sf.add(fs, "memory", "SANDBOX__MEMORY_LIMIT", "memory limit, e.g. 512m or 1g")
	sf.add(fs, "cpus", "SANDBOX__CPU_LIMIT", "CPU limit, e.g. 0.5")
	sf.add(fs, "pids", "SANDBOX__PIDS_LIMIT", "maximum number of processes")
	sf.add(fs, "image", "SANDBOX__IMAGE", "container image")
	sf.add(fs, "output-limit", "SANDBOX__MAX_OUTPUT_BYTES", "bytes kept per output stream")
	sf.add(fs, "volume-mount-path", "SANDBOX__VOLUME_MOUNT_PATH", "where the workspace appears inside the sandbox")
	sf.addBool(fs, "network", "SANDBOX__ENABLE_NETWORK", "enable outbound network")
	fs.Var(&readDirs, "read-dir", "host `dir` mounted read-only at the same path; repeatable")
	fs.Var(&writeDirs, "write-dir", "host `dir` mounted read-write at the same path; repeatable")
	fs.Var(&mounts, "mount", "mount `SRC[:DST][:ro]` (DST defaults to SRC); repeatable")
	fs.Var(&envs, "env", "environment variable `K=V` for the sandbox; repeatable")
	fs.Var(&envFiles, "env-file", "read environment variables from a .env `file`; repeatable")
	fs.StringVar(&workspace, "workspace", "", "host `dir` to use as the workspace (default: a private one, removed afterwards)")
	fs.StringVar(&workdir, "workdir", "", "working `dir` of shell commands, relative to the workspace")
	fs.BoolVar(&jsonOut, "json", false, "print each result as a JSON object (one per line)")
	outputDir := fs.String("output-dir", "", "write rich outputs (figures, HTML, ...) of Python cells as files into `dir`")
	server := fs.String("server", "", "run in the sandbox service at `URL` (warden serve) instead of locally")
	apiKey := fs.String("api-key", "", "bearer `key` for --server (default: $WARDEN_API_KEY)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if rest := fs.Args(); len(rest) > 0 {
		// A program runs only after --: a stray word is a mistake, not a
		// command to run.
		if i := len(args) - len(rest); i == 0 || args[i-1] != "--" {
			return usageErrorf("unexpected argument %q; put a program to run after --, as in: warden exec -- %s", rest[0], strings.Join(rest, " "))
		}
		cells = append(cells, cell{lang: sandbox.Shell, argv: rest})
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if len(cells) == 0 {
		return usageErrorf("nothing to run: give --python, --shell, --file or -- PROGRAM ARGS")
	}
	if len(readDirs) > 0 {
		if err := sf.set("read-dir", "SANDBOX__ADDITIONAL_READ_DIRS", absJoin(readDirs)); err != nil {
			return err
		}
	}
	if len(writeDirs) > 0 {
		if err := sf.set("write-dir", "SANDBOX__ADDITIONAL_WRITE_DIRS", absJoin(writeDirs)); err != nil {
			return err
		}
	}
	cfg, err := sf.load(e)
	if err != nil {
		return err
	}
	if !cfg.Sandbox.Enabled {
		return fmt.Errorf("sandboxes are disabled (SANDBOX__ENABLED=false)")
	}
	spec := cfg.SandboxSpec()
	spec.Env = map[string]string{}
	for _, f := range envFiles {
		m, err := config.LoadFile(f)
		if err != nil {
			return fmt.Errorf("--env-file: %w", err)
		}
		maps.Copy(spec.Env, m)
	}
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usageErrorf("--env %q is not K=V", kv)
		}
		spec.Env[k] = v
	}
	for _, m := range mounts {
		mt, err := parseMount(m)
		if err != nil {
			return err
		}
		spec.Mounts = append(spec.Mounts, mt)
	}
	if workspace != "" {
		if spec.WorkspaceDir, err = filepath.Abs(workspace); err != nil {
			return err
		}
	}

	// One cell needs no session: a one-shot run, which the fork server
	// runs without an agent. --json reports the sandbox's ID, so it keeps
	// one.
	oneShot := len(cells) == 1 && !jsonOut
	var target execTarget
	if *server != "" {
		if len(mounts) > 0 {
			return usageErrorf("--mount cannot be used with --server; use --read-dir and --write-dir")
		}
		// The service has chosen its backend and its limits on output
		// already: say so rather than ignore the flags.
		for _, f := range []string{"provider", "output-limit", "volume-mount-path"} {
			if set[f] {
				return usageErrorf("--%s cannot be used with --server: the service's own settings decide it", f)
			}
		}
		key := *apiKey
		if key == "" {
			key = envLookup(e.environ, "WARDEN_API_KEY")
		}
		target, err = newRemoteTarget(ctx, *server, key, remoteCreateOptions(spec, set, readDirs, writeDirs), !oneShot)
	} else {
		labels := map[string]string{}
		for _, m := range spec.Mounts {
			labels[m.Source] = "SANDBOX__ADDITIONAL_WRITE_DIRS"
		}
		for _, d := range readDirs {
			labels[absPath(d)] = "--read-dir"
		}
		for _, d := range writeDirs {
			labels[absPath(d)] = "--write-dir"
		}
		for _, m := range mounts {
			if mt, err := parseMount(m); err == nil {
				labels[mt.Source] = "--mount"
			}
		}
		target, err = newLocalTarget(ctx, cfg, spec, writableDirs(spec, "--workspace", labels), !oneShot, e)
	}
	if err != nil {
		return err
	}
	defer target.close(context.WithoutCancel(ctx))

	for i, c := range cells {
		req := sandbox.ExecRequest{Language: c.lang, Code: c.code, Argv: c.argv}
		if c.lang == sandbox.Shell {
			req.Workdir = workdir
		}
		shown := &outputWriter{dir: *outputDir, cell: i + 1, stdout: e.stdout, stderr: e.stderr}
		if !jsonOut {
			req.OnDisplay = shown.display
			req.OnOutput = func(s sandbox.Stream, b []byte) {
				if s == sandbox.Stdout {
					e.stdout.Write(b)
				} else {
					e.stderr.Write(b)
				}
			}
		}
		run := target.exec
		if oneShot {
			run = target.runOnce
		}
		r, err := run(ctx, req)
		if pe, ok := refusal(err); ok {
			// Nothing ran. The refusal is answered as TinyAgent did, as a
			// result: exit code 1 and the reason on stderr.
			r, err = policy.RefusalResult(pe), nil
			if jsonOut {
				if err := writeJSONResult(e.stdout, i+1, c.lang, target.id(), r); err != nil {
					return err
				}
			} else {
				e.stderr.Write(r.Stderr)
			}
			return exitError{code: r.ExitCode}
		}
		if err != nil && r.Stdout == nil {
			if len(cells) == 1 {
				return err
			}
			return fmt.Errorf("cell %d: %w", i+1, err)
		}
		if jsonOut {
			if *outputDir != "" {
				for _, o := range r.Outputs {
					shown.save(o)
				}
			}
			if err := writeJSONResult(e.stdout, i+1, c.lang, target.id(), r); err != nil {
				return err
			}
		} else {
			if r.OutputsTruncated {
				fmt.Fprintf(e.stderr, "warden: rich outputs beyond %s were dropped\n", config.FormatBytes(int64(spec.OutputLimit)))
			}
			if r.ReturnValue != nil {
				fmt.Fprintln(e.stdout, *r.ReturnValue)
			}
			if r.StdoutTruncated || r.StderrTruncated {
				fmt.Fprintf(e.stderr, "warden: output truncated at %s per stream\n", config.FormatBytes(int64(spec.OutputLimit)))
			}
			for _, n := range r.Notes {
				fmt.Fprintln(e.stderr, "warden: note:", n)
			}
		}
		if err != nil {
			return err
		}
		if r.ExitCode != 0 {
			return exitError{code: r.ExitCode}
		}
	}
	return nil
}

// refusal reports whether err is a policy refusal, from this process's
// guard or from a server's 403 answer.
func refusal(err error) (*policy.PolicyError, bool) {
	if pe, ok := errors.AsType[*policy.PolicyError](err); ok {
		return pe, true
	}
	if ae, ok := errors.AsType[*client.APIError](err); ok && ae.StatusCode == http.StatusForbidden && ae.Rule != "" {
		return &policy.PolicyError{Rule: policy.Rule(ae.Rule), Reason: ae.Reason}, true
	}
	return nil, false
}

// jsonResult is one line of `warden exec --json`: the API's result
// object with the cell's number, language and sandbox ID in front, minus
// error_traceback, TinyAgent's copy of error.traceback.
type jsonResult struct {
	Cell      int              `json:"cell"`
	Language  sandbox.Language `json:"language"`
	SandboxID sandbox.ID       `json:"sandbox_id"`
	api.ExecResult
	// ErrorTraceback hides the API's field of that name: always nil, so
	// omitted.
	ErrorTraceback *string `json:"error_traceback,omitempty"`
}

// writeJSONResult writes r as one line, with <, > and & as they are.
func writeJSONResult(w io.Writer, n int, lang sandbox.Language, id sandbox.ID, r sandbox.ExecResult) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(jsonResult{Cell: n, Language: lang, SandboxID: id, ExecResult: wire.ExecResult(r)})
}

// codeArg returns v, or standard input when v is "-".
func codeArg(e env, v string) (string, error) {
	if v == "-" {
		return readFile(e, "-")
	}
	return v, nil
}

// parseMount parses SRC[:DST][:ro|:rw].
func parseMount(s string) (sandbox.Mount, error) {
	parts := strings.Split(s, ":")
	m := sandbox.Mount{}
	if n := len(parts); n > 1 && (parts[n-1] == "ro" || parts[n-1] == "rw") {
		m.ReadOnly = parts[n-1] == "ro"
		parts = parts[:n-1]
	}
	if len(parts) == 0 || len(parts) > 2 || parts[0] == "" {
		return m, usageErrorf("--mount %q is not SRC[:DST][:ro]", s)
	}
	src, err := filepath.Abs(parts[0])
	if err != nil {
		return m, err
	}
	m.Source = src
	if len(parts) == 2 {
		m.Target = parts[1]
	}
	return m, nil
}

func absJoin(dirs []string) string {
	out := make([]string, len(dirs))
	for i, d := range dirs {
		if a, err := filepath.Abs(d); err == nil {
			d = a
		}
		out[i] = d
	}
	return strings.Join(out, ",")
}

// openDocker connects to Docker with the configured host, timeout and
// retries.
func openDocker(ctx context.Context, cfg config.Config, e env) (*docker.Provider, error) {
	s := cfg.Sandbox
	switch s.Provider {
	case config.ProviderAuto, config.ProviderDocker:
	default:
		return nil, fmt.Errorf("warden bench measures the Docker provider (its bwrap case compares bubblewrap with it), and SANDBOX__PROVIDER is %s: unset it or set it to docker", s.Provider)
	}
	var err error
	for attempt := 0; attempt <= s.DockerMaxRetries; attempt++ {
		var p *docker.Provider
		p, err = docker.New(ctx, docker.Options{
			Host:          s.DockerHost,
			Timeout:       s.DockerConnectionTimeout,
			WorkspaceRoot: s.WorkspaceRoot,
			Log:           logger(cfg, e.stderr),
		})
		if err == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	return nil, fmt.Errorf("%w\n(run `warden doctor` for details and remedies)", err)
}
