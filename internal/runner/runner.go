package runner

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Defaults of [Options] and [Job].
const (
	// DefaultLogDir is where run directories are made, relative to the
	// current directory, as in the seed system.
	DefaultLogDir = "logs"
	// DefaultTimeout bounds a run whose job sets none. The seed waited
	// forever; a script that never ends would hold its sandbox forever.
	DefaultTimeout = 30 * time.Minute
	// DefaultOutputLimit caps each stream of a run, in bytes. The provider
	// also buffers up to this much per stream while the script runs.
	DefaultOutputLimit = 64 << 20
	// DefaultPreviewLimit is how much of each stream result.json holds.
	DefaultPreviewLimit = 64 << 10
	// CredentialsPath is where Job.Credentials appears inside the sandbox;
	// the script also finds it in $WARDEN_CREDENTIALS.
	CredentialsPath = "/credentials"
	// sandboxUID owns the run's workspace so that the sandbox user can
	// write it (the runtime image's uid, image.UID).
	sandboxUID = 1000
	// backstop is how long past the timeout the provider's own execution
	// timeout waits, in case destroying the sandbox fails.
	backstop = 30 * time.Second
)

// Options configure a [Runner]. The zero value is usable.
type Options struct {
	// LogDir is where run directories are made. Default [DefaultLogDir].
	LogDir string
	// Spec is the template of every run's sandbox: image, limits, name
	// prefix, extra mounts and environment. Per run the runner sets the
	// workspace, output limit and timeout, adds the job's environment,
	// credentials mount and network, and the job's image if it has one.
	Spec sandbox.Spec
	// Timeout is the default timeout of a run. Default [DefaultTimeout].
	Timeout time.Duration
	// OutputLimit caps each output stream of a run, in bytes. Default
	// [DefaultOutputLimit].
	OutputLimit int64
	// PreviewLimit is how many bytes of each stream result.json holds (the
	// end of the stream). Default [DefaultPreviewLimit].
	PreviewLimit int
	// Log receives operational messages (never script output). Default:
	// discard.
	Log *slog.Logger
	// PrepareDirs, if set, is called with each run's spec before its
	// sandbox is created and may change the host directories it binds
	// (cmd/warden gives idmapped views); release is called once the
	// sandbox is destroyed.
	PrepareDirs func(spec *sandbox.Spec) (release func(), err error)
}

// Job is one script to run. The runner does not modify it or anything it
// refers to.
type Job struct {
	// Script is the host path of the Python script. It is copied into the
	// run's workspace and run as python3 /workspace/<name> Args...
	Script string
	// Args are the script's arguments, passed as an argv (no shell).
	Args []string
	// Env holds environment variables for the script, on top of
	// Options.Spec.Env. The runner adds PYTHONUNBUFFERED=1 unless set here,
	// WARDEN_RUN_ID, and WARDEN_CREDENTIALS with credentials.
	Env map[string]string
	// Timeout bounds the run; zero means Options.Timeout.
	Timeout time.Duration
	// Image overrides Options.Spec.Image.
	Image string
	// Framework is recorded in the result.
	Framework string
	// PythonVersion, if set ("3.11"), is checked against the sandbox's
	// python3 before the script runs.
	PythonVersion string
	// Credentials is a host directory mounted at [CredentialsPath],
	// read-only unless CredentialsWritable.
	Credentials         string
	CredentialsWritable bool
	// Network enables outbound networking for this run.
	Network bool
	// OnOutput, if set, receives each chunk of output as it arrives, after
	// it is written to the logs, from one goroutine per run. It must not
	// retain p.
	OnOutput func(s sandbox.Stream, p []byte)
	// OnStart and OnDone, if set, are called by [Runner.RunAll] when the
	// job starts and with its result when it has finished, from the run's
	// goroutine; a job that never starts gets neither.
	OnStart func()
	OnDone  func(Result)
}

// Runner runs jobs in sandboxes of one provider. It is safe for
// concurrent use.
type Runner struct {
	p    sandbox.Provider
	opts Options
	log  *slog.Logger
}

// New returns a runner that creates its sandboxes with p. The caller keeps
// ownership of p.
func New(p sandbox.Provider, opts Options) (*Runner, error) {
	if p == nil {
		return nil, fmt.Errorf("runner needs a provider: %w", sandbox.ErrInvalid)
	}
	if opts.LogDir == "" {
		opts.LogDir = DefaultLogDir
	}
	if opts.Timeout == 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.OutputLimit == 0 {
		opts.OutputLimit = DefaultOutputLimit
	}
	if opts.PreviewLimit == 0 {
		opts.PreviewLimit = DefaultPreviewLimit
	}
	var errs []error
	if opts.Timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative: %w", opts.Timeout, sandbox.ErrInvalid))
	}
	if opts.OutputLimit < 1 || opts.OutputLimit > 1<<30 {
		errs = append(errs, fmt.Errorf("output limit %d is outside 1 byte to 1 GiB: %w", opts.OutputLimit, sandbox.ErrInvalid))
	}
	if opts.PreviewLimit < 0 {
		errs = append(errs, fmt.Errorf("preview limit %d is negative: %w", opts.PreviewLimit, sandbox.ErrInvalid))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(opts.LogDir)
	if err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	opts.LogDir = abs
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{p: p, opts: opts, log: log.With("provider", p.Name())}, nil
}

// LogDir returns the absolute directory run directories are made in.
func (r *Runner) LogDir() string { return r.opts.LogDir }

// Run runs one job and returns its result, which it also writes to
// result.json in the run directory. A script that fails or times out is a
// result (Success false), not an error. Run returns an error when the job
// could not be run to its end: it was invalid (then no run directory is
// made, as in the seed system), the sandbox could not be created or
// destroyed, ctx was cancelled, or the logs could not be written; the
// result says so in Error too.
//
// Cancelling ctx stops the script by destroying its sandbox; the logs and
// result are still written. In every case the sandbox is gone when Run
// returns. Run is safe to call concurrently.
func (r *Runner) Run(ctx context.Context, job Job) (res Result, err error) {
	start := time.Now()
	timeout := job.Timeout
	if timeout == 0 {
		timeout = r.opts.Timeout
	}
	res = Result{
		Script:    job.Script,
		Args:      slices.Clone(job.Args),
		Framework: job.Framework,
		Image:     cmp.Or(job.Image, r.opts.Spec.Image, sandbox.DefaultImage),
		Provider:  r.p.Name(),
		ExitCode:  -1,
		StartedAt: start.UTC().Truncate(time.Millisecond),
		Timeout:   timeout.Seconds(),
	}
	if res.Args == nil {
		res.Args = []string{}
	}
	if abs, aerr := filepath.Abs(job.Script); aerr == nil {
		res.Script = abs
	}
	fail := func(e error) (Result, error) {
		res.Error = e.Error()
		res.Duration = time.Since(start).Seconds()
		return res, e
	}
	if err := r.check(job, timeout); err != nil {
		return fail(err)
	}

	dir, err := r.makeRunDir(job.Script)
	if err != nil {
		return fail(err)
	}
	res.RunID, res.LogDir = filepath.Base(dir), dir
	log := r.log.With("run_id", res.RunID)

	// From here on every outcome is recorded in result.json.
	var rec *recorder
	defer func() {
		if rec != nil {
			if cerr := rec.close(); cerr != nil && err == nil {
				err = cerr
				res.Success = false
				res.Error = cerr.Error()
			}
			rec.fill(&res)
		}
		res.Duration = time.Since(start).Seconds()
		if werr := writeResult(dir, res); werr != nil && err == nil {
			err = werr
		}
		log.Debug("script run finished", "success", res.Success, "exit_code", res.ExitCode, "timed_out", res.TimedOut, "duration", res.Duration)
	}()

	ws := filepath.Join(dir, WorkspaceDir)
	name := filepath.Base(job.Script)
	if err := makeWorkspace(ws, job.Script, name); err != nil {
		res.Error = err.Error()
		return res, err
	}
	rec, err = openRecorder(dir, r.opts.OutputLimit, r.opts.PreviewLimit)
	if err != nil {
		res.Error = err.Error()
		return res, err
	}

	spec := r.spec(job, res.RunID, ws, timeout)
	if prep := r.opts.PrepareDirs; prep != nil {
		release, err := prep(&spec)
		if err != nil {
			res.Error = err.Error()
			return res, err
		}
		defer release() // deferred first: runs after the sandbox is destroyed
	}
	info, err := r.p.Create(ctx, spec)
	if err != nil {
		err = fmt.Errorf("creating sandbox: %w", err)
		res.Error = err.Error()
		return res, err
	}
	res.SandboxID = string(info.ID)
	log.Debug("script run started", "sandbox_id", info.ID, "image", spec.Image)
	destroy := sync.OnceValue(func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return r.p.Destroy(dctx, info.ID)
	})
	defer func() {
		if derr := destroy(); derr != nil && !errors.Is(derr, sandbox.ErrNotFound) {
			log.Warn("destroying sandbox", "sandbox_id", info.ID, "err", derr)
			if err == nil {
				// The container may still run: not a success.
				err = fmt.Errorf("destroying sandbox %s: %w", info.ID, derr)
				res.Success = false
				res.Error = cmp.Or(res.Error, err.Error())
			}
		}
	}()

	if job.PythonVersion != "" {
		if err := r.checkPython(ctx, info.ID, job.PythonVersion, res.Image); err != nil {
			res.Error = err.Error()
			return res, err
		}
	}

	// The runner enforces the timeout itself, by destroying the sandbox:
	// the provider's own timeout would append its message to stderr, and
	// the logs hold only what the script wrote.
	var timedOut, cancelled atomic.Bool
	timer := time.AfterFunc(timeout, func() {
		timedOut.Store(true)
		_ = destroy()
	})
	stop := context.AfterFunc(ctx, func() {
		if !timedOut.Load() {
			cancelled.Store(true)
		}
		_ = destroy()
	})
	onOutput := rec.write
	if job.OnOutput != nil {
		onOutput = func(s sandbox.Stream, p []byte) {
			rec.write(s, p)
			job.OnOutput(s, p)
		}
	}
	er, xerr := r.p.Exec(context.WithoutCancel(ctx), info.ID, sandbox.ExecRequest{
		Language: sandbox.Shell,
		Argv:     append([]string{"python3", sandboxPath(spec.WorkspacePath, name)}, job.Args...),
		Timeout:  timeout + backstop,
		OnOutput: onOutput,
	})
	timer.Stop()
	stop()
	_ = destroy() // wait for a destroy the timer or ctx started

	res.StdoutTruncated, res.StderrTruncated = er.StdoutTruncated, er.StderrTruncated
	var runErr error
	switch {
	case timedOut.Load() || er.TimedOut:
		res.TimedOut = true
		res.ExitCode = sandbox.TimeoutExitCode
		res.Error = "Timeout after " + strconv.FormatFloat(timeout.Seconds(), 'f', -1, 64) + " seconds"
	case cancelled.Load():
		runErr = fmt.Errorf("cancelled: %w", ctx.Err())
		res.Error = runErr.Error()
	case xerr != nil:
		runErr = fmt.Errorf("running script: %w", xerr)
		res.Error = runErr.Error()
	case er.OOMKilled:
		res.OOMKilled = true
		res.ExitCode = er.ExitCode
		res.Error = "killed: out of memory (the sandbox's memory limit was reached)"
	default:
		res.ExitCode = er.ExitCode
		res.Success = er.ExitCode == 0
		if !res.Success {
			res.Error = fmt.Sprintf("script exited with code %d", er.ExitCode)
		}
	}
	return res, runErr
}

// check refuses jobs that cannot run, before anything is created.
func (r *Runner) check(job Job, timeout time.Duration) error {
	var errs []error
	if job.Script == "" {
		errs = append(errs, fmt.Errorf("no script given: %w", sandbox.ErrInvalid))
	} else if st, err := os.Stat(job.Script); err != nil {
		errs = append(errs, fmt.Errorf("script %s: %w", job.Script, sandbox.ErrNotFound))
	} else if !st.Mode().IsRegular() {
		errs = append(errs, fmt.Errorf("script %s is not a regular file: %w", job.Script, sandbox.ErrInvalid))
	}
	if timeout < 0 {
		errs = append(errs, fmt.Errorf("timeout %s is negative: %w", timeout, sandbox.ErrInvalid))
	}
	for k := range job.Env {
		if err := sandbox.ValidateEnvName(k); err != nil {
			errs = append(errs, err)
		}
	}
	caps := r.p.Capabilities()
	if job.Credentials != "" {
		if st, err := os.Stat(job.Credentials); err != nil || !st.IsDir() {
			errs = append(errs, fmt.Errorf("credentials directory %s is not a directory: %w", job.Credentials, sandbox.ErrInvalid))
		}
		if !caps.Mounts {
			errs = append(errs, fmt.Errorf("provider %s cannot mount the credentials directory: %w", r.p.Name(), sandbox.ErrUnsupported))
		}
	}
	if !job.Network && !r.opts.Spec.Network && !caps.NetworkToggle {
		errs = append(errs, fmt.Errorf("provider %s cannot turn networking off: %w", r.p.Name(), sandbox.ErrUnsupported))
	}
	return errors.Join(errs...)
}

// spec is the sandbox of one run.
func (r *Runner) spec(job Job, runID, ws string, timeout time.Duration) sandbox.Spec {
	s := r.opts.Spec.WithDefaults() // copies the maps and mounts
	if job.Image != "" {
		s.Image = job.Image
	}
	if s.Env == nil {
		s.Env = map[string]string{}
	}
	s.Env["PYTHONUNBUFFERED"] = "1"
	maps.Copy(s.Env, job.Env)
	s.Env["WARDEN_RUN_ID"] = runID
	if job.Credentials != "" {
		src, err := filepath.Abs(job.Credentials)
		if err != nil {
			src = job.Credentials
		}
		s.Mounts = append(s.Mounts, sandbox.Mount{Source: src, Target: CredentialsPath, ReadOnly: !job.CredentialsWritable})
		s.Env["WARDEN_CREDENTIALS"] = CredentialsPath
	}
	s.Network = s.Network || job.Network
	s.WorkspaceDir = ws
	s.OutputLimit = int(r.opts.OutputLimit)
	s.Timeout = timeout + backstop
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	s.Labels["run_id"] = runID
	return s
}

// checkPython compares the sandbox's python3 version with want.
func (r *Runner) checkPython(ctx context.Context, id sandbox.ID, want, image string) error {
	er, err := r.p.Exec(ctx, id, sandbox.ExecRequest{
		Language: sandbox.Shell,
		Argv:     []string{"python3", "-c", `import sys; print("%d.%d" % sys.version_info[:2])`},
		Timeout:  time.Minute,
	})
	if err != nil {
		return fmt.Errorf("checking the Python version: %w", err)
	}
	got := strings.TrimSpace(string(er.Stdout))
	if er.ExitCode != 0 || got != want {
		return fmt.Errorf("image %s has Python %q, not %s: %w", image, got, want, sandbox.ErrInvalid)
	}
	return nil
}

// makeRunDir creates <log dir>/run_<stem>_<8 hex>.
func (r *Runner) makeRunDir(script string) (string, error) {
	if err := os.MkdirAll(r.opts.LogDir, 0o755); err != nil {
		return "", fmt.Errorf("creating log directory: %w", err)
	}
	stem := strings.TrimSuffix(filepath.Base(script), filepath.Ext(script))
	for attempt := 0; ; attempt++ {
		dir := filepath.Join(r.opts.LogDir, NewRunID(stem))
		err := os.Mkdir(dir, 0o755)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, os.ErrExist) || attempt == 3 {
			return "", fmt.Errorf("creating run directory: %w", err)
		}
	}
}

// NewRunID returns run_<stem>_<8 random hex digits>, with the characters
// of stem other than letters, digits, '.', '_' and '-' replaced by '_' and
// stem cut to 40 bytes, so the ID is one safe path component (it passes
// [sandbox.ValidateID]).
func NewRunID(stem string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("runner: crypto/rand failed: " + err.Error()) // never happens on Linux
	}
	clean := []byte(stem)
	for i, c := range clean {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			clean[i] = '_'
		}
	}
	if len(clean) > 40 {
		clean = clean[:40]
	}
	if len(clean) == 0 || strings.Trim(string(clean), ".") == "" {
		clean = []byte("script")
	}
	return "run_" + string(clean) + "_" + hex.EncodeToString(b[:])
}

// makeWorkspace creates the run's workspace, writable by the sandbox user,
// and copies the script into it as name.
func makeWorkspace(ws, script, name string) error {
	if err := os.Mkdir(ws, 0o755); err != nil {
		return fmt.Errorf("creating workspace: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(ws, sandboxUID, sandboxUID); err != nil {
			return fmt.Errorf("creating workspace: %w", err)
		}
	} else if err := os.Chmod(ws, 0o777); err != nil {
		return fmt.Errorf("creating workspace: %w", err)
	}
	b, err := os.ReadFile(script)
	if err != nil {
		return fmt.Errorf("reading script: %w", err)
	}
	if err := os.WriteFile(filepath.Join(ws, name), b, 0o644); err != nil {
		return fmt.Errorf("copying script: %w", err)
	}
	return nil
}

// sandboxPath joins an absolute sandbox path and a file name.
func sandboxPath(dir, name string) string { return strings.TrimSuffix(dir, "/") + "/" + name }
