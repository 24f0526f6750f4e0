package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/image"
	"github.com/warden-sandbox/warden/internal/provider"
	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/runner"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

const runHelp = `Runs each Python script in a sandbox of its own (network off unless
--network) and records the run in <log-dir>/run_<script>_<8 hex>/:
console.log, stdout.log, stderr.log, result.json and workspace/. Arguments
after -- are passed to every script. Flags may come before or after the
scripts.

With one script its output is streamed as it runs (stdout to stdout, stderr
to stderr) and the summary goes to stderr; with several, output is streamed
only with --prefix, each line prefixed with [script], and the summary table
goes to stdout. The exit code is 0 when every script succeeded, else the
exit code of the first script that failed (124 for a timeout), or 1.

A framework other than none, --package and --python-version select a
per-framework image (warden-runtime-<framework>:latest), built first if it
is missing; pip needs PyPI or --wheels DIR.`

// cmdRun is `warden run`: scripts in sandboxes, one run record each.
func cmdRun(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("warden run")
	sf := newSettingFlags(e)
	var envs, envFiles, packages multi
	framework := fs.String("framework", image.FrameworkNone, "agent `framework` of the image: "+strings.Join(image.Frameworks(), ", "))
	timeoutFlag := fs.String("timeout", "30m", "timeout of each script, seconds or a duration like 90s")
	logDir := fs.String("log-dir", "./logs", "`dir`ectory of the run records")
	creds := fs.String("credentials", "", "host `dir` mounted read-only at "+runner.CredentialsPath+" ($WARDEN_CREDENTIALS)")
	credsRW := fs.Bool("credentials-rw", false, "mount the credentials directory read-write (it must be writable by uid 1000)")
	network := fs.Bool("network", false, "enable outbound network")
	parallel := fs.Int("parallel", 1, "run up to `N` scripts at once")
	prefix := fs.Bool("prefix", false, "stream every script's output, each line prefixed with [script]")
	imageFlag := fs.String("image", "", "container `image` to run (overrides --framework; default SANDBOX__IMAGE)")
	python := fs.String("python-version", "", "Python `version` (3.N) of the image; checked before the script runs")
	wheels := fs.String("wheels", "", "build the framework image from the wheels in `dir`, without a package index")
	outputLimit := fs.String("output-limit", "64m", "bytes kept per output stream of each script")
	jsonOut := fs.Bool("json", false, "print each result as a JSON object (one per line) instead of the table")
	fs.Var(&envs, "env", "environment variable `K=V` for the scripts; repeatable")
	fs.Var(&envFiles, "env-file", "read environment variables from a .env `file`; repeatable")
	fs.Var(&packages, "package", "extra pip `requirement` for the image, e.g. pandas==2.2.3; repeatable")
	sf.add(fs, "provider", "SANDBOX__PROVIDER", "isolation backend: auto, bubblewrap, docker, seatbelt, local, forkserver or kubernetes")
	sf.add(fs, "memory", "SANDBOX__MEMORY_LIMIT", "memory limit of each script's sandbox, e.g. 1g")
	sf.add(fs, "cpus", "SANDBOX__CPU_LIMIT", "CPU limit of each sandbox, e.g. 0.5")
	sf.add(fs, "pids", "SANDBOX__PIDS_LIMIT", "maximum number of processes in each sandbox")

	scripts, scriptArgs, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(scripts) == 0 {
		return usageErrorf("no script given (warden run SCRIPT... [-- ARG...])")
	}
	for _, s := range scripts {
		if st, err := os.Stat(s); err != nil || !st.Mode().IsRegular() {
			return usageErrorf("script %s: not found or not a file", s)
		}
	}
	if _, err := image.FrameworkPackages(*framework); err != nil {
		return usageErrorf("--framework: %v", err)
	}
	for _, p := range packages {
		if err := image.ValidatePackage(p); err != nil {
			return usageErrorf("--package: %v", err)
		}
	}
	if *python != "" {
		if err := image.ValidatePythonVersion(*python); err != nil {
			return usageErrorf("--python-version: %v", err)
		}
	}
	if *parallel < 1 {
		return usageErrorf("--parallel %d: want at least 1", *parallel)
	}
	timeout, err := config.ParseDuration(*timeoutFlag)
	if err != nil || timeout <= 0 {
		return usageErrorf("--timeout %q: want a positive number of seconds or a duration", *timeoutFlag)
	}
	limit, err := config.ParseBytes(*outputLimit)
	if err != nil || limit < 1 || limit > 1<<30 {
		return usageErrorf("--output-limit %q: want a byte size from 1 to 1g", *outputLimit)
	}
	cfg, err := sf.load(e)
	if err != nil {
		return err
	}
	cfg.Sandbox.KubernetesReplicaID = "" // only warden serve is a replica
	if !cfg.Sandbox.Enabled {
		return fmt.Errorf("sandboxes are disabled (SANDBOX__ENABLED=false)")
	}
	jobEnv := map[string]string{}
	for _, f := range envFiles {
		m, err := config.LoadFile(f)
		if err != nil {
			return fmt.Errorf("--env-file: %w", err)
		}
		maps.Copy(jobEnv, m)
	}
	for _, kv := range envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return usageErrorf("--env %q is not K=V", kv)
		}
		jobEnv[k] = v
	}
	frameworkImage := *imageFlag == "" &&
		(*framework != image.FrameworkNone || len(packages) > 0 || (*python != "" && *python != image.DebianPython))
	if *wheels != "" && !frameworkImage {
		return usageErrorf("--wheels applies only when a framework image is built (--framework, --package or --python-version without --image)")
	}

	if *imageFlag != "" {
		// The image is chosen before the provider, so that bubblewrap
		// runs its root filesystem, as Docker runs the image.
		cfg.Sandbox.Image = *imageFlag
	}
	if frameworkImage && cfg.Sandbox.Provider == config.ProviderAuto {
		// Framework images are built by Docker, and only Docker runs an
		// image other than SANDBOX__IMAGE's: auto means Docker here, as an
		// explicit choice (SANDBOX__PROVIDER_FALLBACK applies).
		cfg.Sandbox.Provider = config.ProviderDocker
	}
	sel, err := provider.Open(ctx, cfg, logger(cfg, e.stderr))
	if err != nil {
		return fmt.Errorf("%w\n(run `warden doctor` for details and remedies)", err)
	}
	if sel.Provider == nil {
		return fmt.Errorf("no sandbox backend: %s\n(run `warden doctor` for details and remedies)", sel.Reason)
	}
	defer sel.Provider.Close(context.WithoutCancel(ctx))
	warnSelection(e, cfg, sel)
	if *creds != "" && *credsRW {
		dir := absPath(*creds)
		v, err := prepareWritable(sel.Provider, cfg.Sandbox.WorkspaceRoot, []hostDir{{flag: "--credentials", path: dir}})
		if err != nil {
			return err
		}
		defer v.release() // the runs have ended; a sandbox still binding a view keeps its copy
		if m, ok := v[dir]; ok {
			*creds = m.Path
		}
	}

	// Scripts pass the Python check when it is on for this provider, as
	// code sent to `warden exec` does.
	if _, py := provider.Policies(cfg.Sandbox, sel.Provider.Capabilities().Isolation); !py.Trusted {
		for _, s := range scripts {
			src, err := os.ReadFile(s)
			if err != nil {
				return err
			}
			if err := py.Check(string(src)); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
	}

	img := cfg.Sandbox.Image
	if frameworkImage {
		dp, ok := sel.Provider.(*docker.Provider)
		if !ok {
			return fmt.Errorf("framework images (--framework, --package, --python-version) are built and run by Docker, and %s was selected: use --provider docker or make Docker reachable", sel.Provider.Name())
		}
		fo := image.FrameworkOptions{Framework: *framework, Packages: packages, WheelDir: *wheels, PythonVersion: *python}
		if *python == "" || *python == image.DebianPython {
			fo.Base = cfg.Sandbox.Image
		}
		prog, err := newBuildProgress(e.stderr, "")
		if err != nil {
			return err
		}
		img, _, err = image.EnsureFramework(ctx, dp.Client(), fo, prog)
		prog.finish(err, e.stderr, false)
		if err != nil {
			return fmt.Errorf("framework image: %w", err)
		}
	}

	spec := cfg.SandboxSpec()
	spec.Image = img
	r, err := runner.New(sel.Provider, runner.Options{
		LogDir:      *logDir,
		Spec:        spec,
		Timeout:     timeout,
		OutputLimit: limit,
		Log:         logger(cfg, e.stderr),
		PrepareDirs: func(spec *sandbox.Spec) (func(), error) {
			// The run's workspace, under --log-dir, and the mounts.
			v, err := prepareWritable(sel.Provider, cfg.Sandbox.WorkspaceRoot, writableDirs(*spec, "--log-dir", nil))
			if err != nil {
				return nil, err
			}
			v.apply(spec)
			return v.release, nil
		},
	})
	if err != nil {
		return err
	}

	raw := len(scripts) == 1 && !*prefix && !*jsonOut
	out := &prefixer{stdout: e.stdout, stderr: e.stderr}
	labels := scriptLabels(scripts)
	jobs := make([]runner.Job, len(scripts))
	for i, s := range scripts {
		jobs[i] = runner.Job{
			Script:              s,
			Args:                scriptArgs,
			Env:                 jobEnv,
			Framework:           *framework,
			PythonVersion:       *python,
			Credentials:         *creds,
			CredentialsWritable: *credsRW,
			Network:             *network,
		}
		switch {
		case raw:
			jobs[i].OnOutput = func(s sandbox.Stream, p []byte) {
				if s == sandbox.Stdout {
					e.stdout.Write(p)
				} else {
					e.stderr.Write(p)
				}
			}
		case *prefix:
			label := labels[i]
			jobs[i].OnOutput = func(s sandbox.Stream, p []byte) { out.write(label, s, p) }
		}
		if !raw && !*prefix {
			// Output is only in the logs: say on stderr what runs and
			// how each run ended, as it happens.
			label := labels[i]
			jobs[i].OnStart = func() { out.status("%s: started", label) }
			jobs[i].OnDone = func(res runner.Result) {
				out.status("%s: %s, exit %s, %.1fs", label, runStatus(res), exitText(res), res.Duration)
			}
		}
	}

	results := r.RunAll(ctx, jobs, *parallel)
	out.flush()

	if *jsonOut {
		enc := json.NewEncoder(e.stdout)
		for _, res := range results {
			if err := enc.Encode(res); err != nil {
				return err
			}
		}
	} else {
		table := e.stdout
		if raw {
			table = e.stderr // stdout is the script's own
		}
		writeSummary(table, results, labels)
		for i, res := range results {
			if res.ExitCode == -1 && res.Error != "" {
				fmt.Fprintf(e.stderr, "warden run: %s: %s\n", labels[i], res.Error)
			}
		}
	}
	for _, res := range results {
		if !res.Success {
			return exitError{code: max(res.ExitCode, 1)}
		}
	}
	return nil
}

// parseInterleaved parses flags that may come before, between and after
// the positional arguments; everything after the first "--" is returned
// as rest, unparsed.
func parseInterleaved(fs *flag.FlagSet, args []string) (positional, rest []string, err error) {
	if i := slices.Index(args, "--"); i >= 0 {
		args, rest = args[:i], slices.Clone(args[i+1:])
	}
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, rest, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// scriptLabels names each script by its file name, with #2, #3... for
// repeated names.
func scriptLabels(scripts []string) []string {
	seen := map[string]int{}
	labels := make([]string, len(scripts))
	for i, s := range scripts {
		base := filepath.Base(s)
		seen[base]++
		labels[i] = base
		if n := seen[base]; n > 1 {
			labels[i] = fmt.Sprintf("%s#%d", base, n)
		}
	}
	return labels
}

// prefixer writes the output of several scripts line by line, each line
// prefixed with its script's label, never mixing two scripts' lines.
type prefixer struct {
	stdout, stderr io.Writer

	mu      sync.Mutex
	partial map[string]*bytes.Buffer // label + stream -> incomplete line
	order   []string
}

func (p *prefixer) write(label string, s sandbox.Stream, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.partial == nil {
		p.partial = map[string]*bytes.Buffer{}
	}
	key := string(s) + "\x00" + label
	buf := p.partial[key]
	if buf == nil {
		buf = &bytes.Buffer{}
		p.partial[key] = buf
		p.order = append(p.order, key)
	}
	buf.Write(b)
	w := p.writer(s)
	for {
		i := bytes.IndexByte(buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(w, "[%s] %s", label, buf.Next(i+1))
	}
}

// status writes one line of progress to stderr, between whole lines of
// output.
func (p *prefixer) status(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.stderr, "warden run: "+format+"\n", args...)
}

// flush writes the incomplete last lines.
func (p *prefixer) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, key := range p.order {
		buf := p.partial[key]
		if buf.Len() == 0 {
			continue
		}
		s, label, _ := strings.Cut(key, "\x00")
		fmt.Fprintf(p.writer(sandbox.Stream(s)), "[%s] %s\n", label, buf.Bytes())
		buf.Reset()
	}
}

func (p *prefixer) writer(s sandbox.Stream) io.Writer {
	if s == sandbox.Stderr {
		return p.stderr
	}
	return p.stdout
}

// writeSummary prints one line per run: script, status, exit code,
// duration and run directory.
func writeSummary(w io.Writer, results []runner.Result, labels []string) {
	cwd, _ := os.Getwd()
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCRIPT\tSTATUS\tEXIT\tDURATION\tLOG DIR")
	for i, res := range results {
		dir := res.LogDir
		if rel, err := filepath.Rel(cwd, dir); err == nil && !strings.HasPrefix(rel, "..") {
			dir = rel
		}
		if dir == "" {
			dir = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1fs\t%s\n", labels[i], runStatus(res), exitText(res), res.Duration, dir)
	}
	tw.Flush()
}

// exitText is the exit code of a run, or "-" when it did not run to an
// exit.
func exitText(res runner.Result) string {
	if res.ExitCode == -1 {
		return "-"
	}
	return strconv.Itoa(res.ExitCode)
}

func runStatus(res runner.Result) string {
	switch {
	case res.Success:
		return "ok"
	case res.TimedOut:
		return "timeout"
	case res.OOMKilled:
		return "out of memory"
	case res.ExitCode == -1:
		return "error"
	default:
		return "failed"
	}
}
