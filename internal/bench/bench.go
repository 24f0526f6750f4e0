package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"slices"
	"time"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/warden-sandbox/warden/internal/provider/docker"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Cases, the groups of operations Run measures together.
const (
	// CaseExec measures round trips in a live sandbox or container.
	CaseExec = "exec"
	// CaseLifecycle measures create, first result, destroy.
	CaseLifecycle = "lifecycle"
	// CaseAPI measures what the HTTP API adds to an execution.
	CaseAPI = "api"
	// CaseBwrap measures the bubblewrap provider against the Docker
	// provider: exec, and create + first exec + destroy. It needs
	// [Options.Bwrap] and is not among the default cases.
	CaseBwrap = "bwrap"
	// CasePool measures warden serve's warm pool on the bubblewrap
	// provider: two clients at once, each creating, running and deleting.
	CasePool = "pool"
)

// AllCases lists the default cases in the order Run measures them.
func AllCases() []string { return []string{CaseExec, CaseLifecycle, CaseAPI} }

// KnownCases lists every case Run accepts.
func KnownCases() []string {
	return append(AllCases(), CaseBwrap, CasePool, CaseRunsc, CaseHumanEval, CaseIdle, CaseForkServer)
}

// Names of the measured operations ([Stats.Name]).
const (
	WardenExecPython  = "warden_exec_python"   // provider.Exec of `x = 1`
	WardenExecShell   = "warden_exec_shell"    // provider.Exec of shell `true`
	DockerExecCLI     = "docker_exec_cli"      // docker exec C python3 -c 'x = 1'
	DockerExecTrueCLI = "docker_exec_true_cli" // docker exec C true
	DockerExecSDK     = "docker_exec_sdk"      // the same exec through the SDK
	WardenLifecycle   = "warden_lifecycle"     // Create + Exec print(1) + Destroy
	WardenCreate      = "warden_create"        // its Create part
	WardenFirstExec   = "warden_first_exec"    // its Exec part
	WardenDestroy     = "warden_destroy"       // its Destroy part
	DockerRunCLI      = "docker_run_cli"       // docker run --rm ... python3 -c 'print(1)'
	DockerRunSDK      = "docker_run_sdk"       // the same run through the SDK
	DockerRunFloor    = "docker_run_sdk_floor" // the same, the removal off the measured path
	WardenExecLibrary = "warden_exec_library"  // provider.Exec of `x = 1`, in the api case
	WardenExecHTTP    = "warden_exec_http"     // the same through the HTTP API and the Go client

	// The bwrap case: each provider's exec and lifecycle, side by side.
	BwrapExecPython      = "bwrap_exec_python"           // bubblewrap provider.Exec of `x = 1`
	BwrapExecShell       = "bwrap_exec_shell"            // bubblewrap provider.Exec of shell `true`
	DockerProvExecPython = "docker_provider_exec_python" // Docker provider.Exec of `x = 1`
	DockerProvExecShell  = "docker_provider_exec_shell"  // Docker provider.Exec of shell `true`
	BwrapLifecycle       = "bwrap_lifecycle"             // bubblewrap Create + Exec print(1) + Destroy
	BwrapCreate          = "bwrap_create"
	BwrapFirstExec       = "bwrap_first_exec"
	BwrapDestroy         = "bwrap_destroy"
	DockerProvLifecycle  = "docker_provider_lifecycle" // Docker Create + Exec print(1) + Destroy
	DockerProvCreate     = "docker_provider_create"
	DockerProvFirstExec  = "docker_provider_first_exec"
	DockerProvDestroy    = "docker_provider_destroy"
	// The same lifecycle with networking enabled: bubblewrap's slirp4netns
	// against Docker's bridge.
	BwrapNetLifecycle      = "bwrap_net_lifecycle"
	BwrapNetCreate         = "bwrap_net_create"
	BwrapNetFirstExec      = "bwrap_net_first_exec"
	BwrapNetDestroy        = "bwrap_net_destroy"
	DockerProvNetLifecycle = "docker_provider_net_lifecycle"
	DockerProvNetCreate    = "docker_provider_net_create"
	DockerProvNetFirstExec = "docker_provider_net_first_exec"
	DockerProvNetDestroy   = "docker_provider_net_destroy"
	// The CPU time of a bubblewrap lifecycle (a part of it): the
	// sandbox's processes and Warden's own.
	BwrapLifecycleCPU = "bwrap_lifecycle_cpu"
	// The floor of a fresh sandbox, in the lifecycle rounds of the bwrap
	// case: the sandboxes' interpreter running print(1) in bare bwrap
	// (every namespace new, nothing else) and on the host.
	BareBwrapPython = "bare_bwrap_python"
	BareBwrapCPU    = "bare_bwrap_python_cpu"
	HostPython      = "host_python"
	HostPythonCPU   = "host_python_cpu"
	// The floor of a shell execution, in the exec rounds of the bwrap
	// case: bash -c true started on the host.
	HostBashTrue = "host_bash_true"
	// Idle memory ([MemStats]): sandboxes of each provider after one
	// execution, and plain interpreters.
	BwrapIdlePSS      = "bwrap_idle_pss"
	DockerProvIdlePSS = "docker_provider_idle_pss"
	HostPythonIdlePSS = "host_python_idle_pss"
	// The pool case: two clients at once through warden serve on the
	// bubblewrap provider, each creating a sandbox, running print(1) and
	// deleting it, with the warm pool and without; and the host's floor.
	PoolPair       = "pool_pair"        // the pair with the pool, then its refill
	PoolFirst      = "pool_first"       // the slower client's create → first result
	PoolDelete     = "pool_delete"      // the slower client's DELETE
	ColdPair       = "cold_pair"        // the pair without a pool
	ColdFirst      = "cold_first"       // the slower client's create → first result
	ColdDelete     = "cold_delete"      // the slower client's DELETE
	HostPythonPair = "host_python_pair" // two python3 -c 'print(1)' at once, the slower
)

// describe says in a few words what one sample of the named operation
// measures.
func describe(name string) string {
	switch name {
	case WardenExecPython:
		return "Warden exec `x = 1` (provider.Exec, Python)"
	case WardenExecShell:
		return "Warden exec `true` (provider.Exec, shell)"
	case DockerExecCLI:
		return "`docker exec C python3 -c 'x = 1'` (CLI)"
	case DockerExecTrueCLI:
		return "`docker exec C true` (CLI)"
	case DockerExecSDK:
		return "`python3 -c 'x = 1'` via SDK ExecCreate+Attach+Inspect"
	case WardenLifecycle:
		return "Warden Create + Exec `print(1)` + Destroy"
	case WardenCreate:
		return "of which Create"
	case WardenFirstExec:
		return "of which first Exec"
	case WardenDestroy:
		return "of which Destroy"
	case DockerRunCLI:
		return "`docker run --rm --network none IMG python3 -c 'print(1)'` (CLI)"
	case WardenExecLibrary:
		return "Warden exec `x = 1` through the Go library (provider.Exec)"
	case WardenExecHTTP:
		return "the same through the HTTP API (warden serve handler, Go client, loopback)"
	case DockerRunSDK:
		return "the same `docker run --rm` via SDK (create, wait, attach, start)"
	case DockerRunFloor:
		return "the same without the removal (create, attach, start, output, exit; removed afterwards, off the measured path): the floor of any lifecycle on Docker"
	case BwrapExecPython:
		return "bubblewrap provider exec `x = 1` (Python)"
	case BwrapExecShell:
		return "bubblewrap provider exec `true` (shell)"
	case DockerProvExecPython:
		return "Docker provider exec `x = 1` (Python)"
	case DockerProvExecShell:
		return "Docker provider exec `true` (shell)"
	case BwrapLifecycle:
		return "bubblewrap Create + Exec `print(1)` + Destroy"
	case DockerProvLifecycle:
		return "Docker provider Create + Exec `print(1)` + Destroy"
	case BwrapNetLifecycle:
		return "bubblewrap Create + Exec `print(1)` + Destroy, networking on (slirp4netns)"
	case DockerProvNetLifecycle:
		return "Docker provider Create + Exec `print(1)` + Destroy, networking on (bridge)"
	case BwrapCreate, DockerProvCreate, BwrapNetCreate, DockerProvNetCreate:
		return "of which Create"
	case BwrapFirstExec, DockerProvFirstExec, BwrapNetFirstExec, DockerProvNetFirstExec:
		return "of which first Exec"
	case BwrapDestroy, DockerProvDestroy, BwrapNetDestroy, DockerProvNetDestroy:
		return "of which Destroy"
	case PoolPair:
		return "two clients at once: create, `print(1)`, DELETE through warden serve with a warm pool of 2; then the wait for the refills and removals"
	case PoolFirst:
		return "of which the slower client's create → first result (pool hit)"
	case PoolDelete:
		return "of which the slower client's DELETE"
	case ColdPair:
		return "the same without a pool"
	case ColdFirst:
		return "of which the slower client's create → first result (a sandbox started)"
	case ColdDelete:
		return "of which the slower client's DELETE"
	case HostPythonPair:
		return "two plain `python3 -c 'print(1)'` at once on the host, the slower"
	case BwrapLifecycleCPU:
		return "its CPU time (the sandbox's processes and Warden's)"
	case BareBwrapPython:
		return "bare `bwrap --unshare-all ... python3 -c 'print(1)'` (no seccomp, Landlock, cgroup or agent)"
	case HostPython:
		return "plain `python3 -c 'print(1)'` on the host"
	case HostBashTrue:
		return "plain `bash -c true` on the host (os/exec)"
	case BareBwrapCPU, HostPythonCPU:
		return "its CPU time"
	case BwrapIdlePSS:
		return "an idle bubblewrap sandbox after `x = 1` (PSS of its processes)"
	case DockerProvIdlePSS:
		return "an idle Docker provider sandbox after `x = 1` (PSS of its processes)"
	case HostPythonIdlePSS:
		return "a plain idle `python3` on the host (PSS)"
	}
	if d, ok := describeRunsc(name); ok {
		return d
	}
	if d, ok := describeForkServer(name); ok {
		return d
	}
	if d, ok := describeHumanEval(name); ok {
		return d
	}
	if name == IdleBwrapPSS {
		return "an idle bubblewrap sandbox after `x = 1`, among many at once (PSS of its processes)"
	}
	return name
}

// pairing is a Warden operation and one of its plain-Docker baselines.
type pairing struct{ operation, warden, baseline, label string }

// pairings lists the comparisons a report makes, in its order.
func pairings() []pairing {
	return append([]pairing{
		{"exec `x = 1` (Python)", WardenExecPython, DockerExecCLI, "`docker exec C python3 -c 'x = 1'`"},
		{"exec `x = 1` (Python)", WardenExecPython, DockerExecSDK, "same exec via Docker SDK"},
		{"exec `true` (shell)", WardenExecShell, DockerExecTrueCLI, "`docker exec C true`"},
		{"create + `print(1)` + destroy", WardenLifecycle, DockerRunCLI, "`docker run --rm IMG python3 -c 'print(1)'`"},
		{"create + `print(1)` + destroy", WardenLifecycle, DockerRunSDK, "same run via Docker SDK"},
		{"create + `print(1)` + destroy", WardenLifecycle, DockerRunFloor, "the same run, removal off the path (the floor)"},
		{"`docker run`, removal off the path (the floor)", DockerRunFloor, DockerRunSDK, "`docker run --rm` via SDK"},
		{"exec `x = 1` over HTTP", WardenExecHTTP, WardenExecLibrary, "the same through the Go library"},
		{"bubblewrap exec `x = 1` (Python)", BwrapExecPython, DockerProvExecPython, "Docker provider exec `x = 1`"},
		{"bubblewrap exec `true` (shell)", BwrapExecShell, DockerProvExecShell, "Docker provider exec `true`"},
		{"bubblewrap exec `true` (shell)", BwrapExecShell, HostBashTrue, "plain `bash -c true` on the host"},
		{"bubblewrap create + `print(1)` + destroy", BwrapLifecycle, DockerProvLifecycle, "Docker provider create + `print(1)` + destroy"},
		{"bubblewrap create", BwrapCreate, DockerProvCreate, "Docker provider create"},
		{"bubblewrap first exec", BwrapFirstExec, DockerProvFirstExec, "Docker provider first exec"},
		{"bubblewrap destroy", BwrapDestroy, DockerProvDestroy, "Docker provider destroy"},
		{"bubblewrap create + `print(1)` + destroy, networking on", BwrapNetLifecycle, DockerProvNetLifecycle, "the same with Docker's bridge"},
		{"bubblewrap create, networking on", BwrapNetCreate, DockerProvNetCreate, "Docker provider create, networking on"},
		{"bubblewrap create + `print(1)` + destroy", BwrapLifecycle, BareBwrapPython, "bare `bwrap ... python3 -c 'print(1)'`"},
		{"pooled create → first result, 2 clients", PoolFirst, ColdFirst, "the same without a pool"},
		{"pooled create → first result, 2 clients", PoolFirst, HostPythonPair, "two plain `python3 -c 'print(1)'` at once"},
		{"bubblewrap create + `print(1)` + destroy", BwrapLifecycle, HostPython, "plain `python3 -c 'print(1)'`"},
		{"CPU of bubblewrap create + `print(1)` + destroy", BwrapLifecycleCPU, BareBwrapCPU, "CPU of bare `bwrap ... python3 -c 'print(1)'`"},
	}, append(append(runscPairings(), humanEvalPairings()...), forkServerPairings()...)...)
}

// Default sample counts and warm-up samples per case.
const (
	defaultExecN      = 200
	defaultLifecycleN = 20
	defaultExecWarmup = 5
	// execBlock is how many exec samples of one operation run in a row.
	execBlock              = 10
	defaultLifecycleWarmup = 2
)

// Bounds on one operation, so a wedged daemon fails the run instead of
// hanging it.
const (
	execTimeout      = time.Minute
	lifecycleTimeout = 3 * time.Minute
)

// Options configure Run.
type Options struct {
	// Image is the image of both the Warden sandboxes and the baseline
	// containers. Default: sandbox.DefaultImage.
	Image string
	// N is the number of samples per operation, warm-up excluded. Default
	// (0): 200 for the exec case, 20 for the lifecycle case.
	N int
	// Warmup is the number of samples of each operation run and discarded
	// before measuring.
	// Default (0): 5 for exec, 2 for lifecycle; negative: none.
	Warmup int
	// Cases selects the cases to run (CaseExec, CaseLifecycle). Default:
	// all, in that order.
	Cases []string
	// Log receives one line of progress now and then. Default: discard.
	Log io.Writer
	// DockerCLI is the docker CLI of the CLI baselines, a path or a name
	// looked up in PATH. Default: "docker". When it cannot be found, the
	// CLI baselines are skipped and the report says so.
	DockerCLI string
	// Seed seeds the random order of the operations within each round, for
	// a reproducible schedule. Default (0): a random seed, recorded in the
	// report.
	Seed uint64
	// CLIEnv is added to the environment of the docker CLI, which is
	// otherwise only DOCKER_HOST, set to the provider's daemon (e.g.
	// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for a TLS daemon).
	CLIEnv []string
	// Bwrap is the bubblewrap provider the bwrap case measures against
	// the Docker provider. Run neither opens nor closes it.
	Bwrap sandbox.Provider
	// ForkServer is the fork server provider the forkserver case measures
	// against the bubblewrap provider, and the humaneval case runs on when
	// HumanEval names it. Run neither opens nor closes it.
	ForkServer sandbox.Provider
	// HumanEval names the providers the humaneval case runs on, in order:
	// bubblewrap, docker, forkserver. Default: [DefaultHumanEval].
	HumanEval []string
	// Runsc is the name of gVisor's runtime on the daemon, for the runsc
	// case. Default: runsc.
	Runsc string
	// Idle is the number of sandboxes of the idle case. Default:
	// [DefaultIdle].
	Idle int
}

func (o Options) withDefaults() Options {
	if o.Image == "" {
		o.Image = sandbox.DefaultImage
	}
	if len(o.Cases) == 0 {
		o.Cases = AllCases()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Runsc == "" {
		o.Runsc = DefaultRunsc
	}
	if o.Idle == 0 {
		o.Idle = DefaultIdle
	}
	if len(o.HumanEval) == 0 {
		o.HumanEval = DefaultHumanEval()
	}
	return o
}

func (o Options) validate() error {
	var errs []error
	if o.Idle < 0 {
		errs = append(errs, fmt.Errorf("idle %d is negative: %w", o.Idle, sandbox.ErrInvalid))
	}
	if o.N < 0 {
		errs = append(errs, fmt.Errorf("n %d is negative: %w", o.N, sandbox.ErrInvalid))
	}
	for _, c := range o.Cases {
		if !slices.Contains(KnownCases(), c) {
			errs = append(errs, fmt.Errorf("case %q is not one of %q: %w", c, KnownCases(), sandbox.ErrInvalid))
		}
		if c == CaseForkServer && o.ForkServer == nil {
			errs = append(errs, fmt.Errorf("case %s needs a fork server provider: %w", c, sandbox.ErrInvalid))
		}
		if (c == CaseBwrap || c == CasePool || c == CaseIdle || c == CaseForkServer) && o.Bwrap == nil {
			errs = append(errs, fmt.Errorf("case %s needs a bubblewrap provider: %w", c, sandbox.ErrInvalid))
		}
		if c != CaseHumanEval {
			continue
		}
		seen := map[string]bool{}
		for _, on := range o.HumanEval {
			switch {
			case seen[on]:
				errs = append(errs, fmt.Errorf("case %s names provider %q twice: %w", c, on, sandbox.ErrInvalid))
			case on == HumanEvalOnBwrap && o.Bwrap == nil:
				errs = append(errs, fmt.Errorf("case %s needs a bubblewrap provider: %w", c, sandbox.ErrInvalid))
			case (on == HumanEvalOnForkServer || on == HumanEvalOnForkServerRun) && o.ForkServer == nil:
				errs = append(errs, fmt.Errorf("case %s on the fork server needs a fork server provider: %w", c, sandbox.ErrInvalid))
			case on != HumanEvalOnBwrap && on != HumanEvalOnDocker && on != HumanEvalOnForkServer && on != HumanEvalOnForkServerRun:
				errs = append(errs, fmt.Errorf("case %s: provider %q is not one of bubblewrap, docker, forkserver, forkserver-run: %w", c, on, sandbox.ErrInvalid))
			}
			seen[on] = true
		}
	}
	return errors.Join(errs...)
}

// rounds returns the sample count and warm-up samples of a case.
func (o Options) rounds(kase string) (n, warmup int) {
	if kase == CaseIdle { // one measurement of that many sandboxes
		return cmp.Or(o.Idle, DefaultIdle), 0
	}
	n, warmup = defaultExecN, defaultExecWarmup
	switch kase {
	case CaseLifecycle, CasePool, CaseForkServer:
		n, warmup = defaultLifecycleN, defaultLifecycleWarmup
	case CaseHumanEval:
		n, warmup = defaultHumanEvalN, defaultHumanEvalWarmup
	}
	if o.N > 0 {
		n = o.N
	}
	switch {
	case o.Warmup > 0:
		warmup = o.Warmup
	case o.Warmup < 0:
		warmup = 0
	}
	return n, warmup
}

// Run measures the selected cases on p's Docker engine and returns the
// report. Within a case, Warden and baseline operations alternate: each
// round runs every operation once, in a new random order, so that drift of
// a noisy machine affects all of them alike and no operation always
// follows the same one (whose after-effects, such as a daemon still
// cleaning up an exec, would then weigh on it alone).
//
// Run removes everything it starts: its sandboxes through p, its own
// containers (labelled [LabelBench]) directly, also when it fails or ctx
// is cancelled. It leaves p open. On error, the report holds what was
// measured until then. Run is not meant to run concurrently with other
// load on the same engine, which would skew the figures.
func Run(ctx context.Context, p *docker.Provider, opts Options) (rep Report, err error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return Report{}, err
	}
	cli := p.Client()
	img, ierr := cli.ImageInspect(ctx, opts.Image)
	if ierr != nil {
		if cerrdefs.IsNotFound(ierr) {
			return Report{}, fmt.Errorf("image %q is not on the Docker engine; build it with `warden image build`: %w", opts.Image, sandbox.ErrInvalid)
		}
		return Report{}, fmt.Errorf("image %q: %v", opts.Image, ierr)
	}
	runID := newRunID()
	if opts.Seed == 0 {
		opts.Seed = mrand.Uint64() >> 11 // exact in JSON readers that use float64
	}
	rep = Report{Date: time.Now().UTC(), Image: opts.Image, ImageID: img.ID, RunID: runID, Seed: opts.Seed}
	rng := mrand.New(mrand.NewPCG(opts.Seed, 0))

	dcli, cerr := newDockerCLI(opts.DockerCLI, cli, opts.CLIEnv)
	if cerr != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("docker CLI not found (%v): the CLI baselines were skipped", cerr))
		dcli = nil
	}
	rep.Machine = machineInfo(ctx, cli, dcli)

	defer func() {
		if serr := sweep(ctx, cli, runID); serr != nil {
			err = errors.Join(err, serr)
		}
		rep.Comparisons = compare(rep.Stats)
	}()
	for _, kase := range opts.Cases {
		n, warmup := opts.rounds(kase)
		var r caseRunner
		switch kase {
		case CaseExec:
			r = execCase
		case CaseLifecycle:
			r = lifecycleCase
		case CaseAPI:
			r = apiCase
		case CaseBwrap:
			r = bwrapCase(opts.Bwrap, opts.N, opts.Warmup)
		case CasePool:
			r = poolCase(opts.Bwrap)
		case CaseRunsc:
			r = runscCase(opts.Runsc, opts.N, opts.Warmup)
		case CaseHumanEval:
			r = humanEvalCase(opts.HumanEval, opts.Bwrap, opts.ForkServer, n, warmup)
		case CaseIdle:
			r = idleCase(opts.Bwrap, opts.Idle)
		case CaseForkServer:
			r = forkServerCase(opts.ForkServer, opts.Bwrap)
		}
		start := time.Now()
		fmt.Fprintf(opts.Log, "%s: %d samples per operation after %d warm-up samples\n", kase, n, warmup)
		note := func(s string) { rep.Notes = append(rep.Notes, s) }
		var mem []MemStats
		stats, err := r(ctx, env{p: p, dcli: dcli, image: opts.Image, runID: runID, log: opts.Log, rng: rng, note: note, mem: &mem}, n, warmup)
		elapsed := time.Since(start)
		rep.Stats = append(rep.Stats, stats...)
		rep.Memory = append(rep.Memory, mem...)
		rep.Cases = append(rep.Cases, CaseInfo{Name: kase, N: n, Warmup: warmup, Elapsed: elapsed, ElapsedS: elapsed.Seconds()})
		if err != nil {
			return rep, fmt.Errorf("case %s: %w", kase, err)
		}
		fmt.Fprintf(opts.Log, "%s: done in %s\n", kase, elapsed.Round(time.Second))
	}
	return rep, nil
}

// env is what a case needs.
type env struct {
	p     *docker.Provider
	dcli  *dockerCLI // nil without a docker CLI
	image string
	runID string
	log   io.Writer
	rng   *mrand.Rand  // orders the operations of a round
	note  func(string) // adds a note to the report
	mem   *[]MemStats  // the case's memory measurements
}

// addMem records a memory measurement of the case.
func (e env) addMem(m MemStats) { *e.mem = append(*e.mem, m) }

func (e env) spec() sandbox.Spec {
	return sandbox.Spec{Image: e.image, Labels: map[string]string{"bench": "1", "bench.run": e.runID}}
}

// addNote adds a note to the report.
func (e env) addNote(s string) {
	if e.note != nil {
		e.note(s)
	}
}

type caseRunner func(ctx context.Context, e env, n, warmup int) ([]Stats, error)

func execCase(ctx context.Context, e env, n, warmup int) (_ []Stats, err error) {
	info, err := e.p.Create(ctx, e.spec())
	if err != nil {
		return nil, fmt.Errorf("creating sandbox: %w", err)
	}
	defer func() {
		if derr := e.p.Destroy(context.WithoutCancel(ctx), info.ID); derr != nil {
			err = errors.Join(err, fmt.Errorf("destroying sandbox: %w", derr))
		}
	}()
	cid, remove, err := startBaseline(ctx, e.p.Client(), e.image, e.runID)
	if err != nil {
		return nil, err
	}
	defer remove()

	ops := []op{
		wardenExec(e.p, info.ID, WardenExecPython, pyReq()),
		wardenExec(e.p, info.ID, WardenExecShell, shellReq()),
		sdkExec(e.p.Client(), DockerExecSDK, cid, "python3", "-c", pyStatement),
	}
	if e.dcli != nil {
		ops = append(ops,
			e.dcli.exec(DockerExecCLI, cid, "python3", "-c", pyStatement),
			e.dcli.exec(DockerExecTrueCLI, cid, shellCommand))
	}
	return measure(ctx, e, CaseExec, ops, n, warmup, execBlock, execTimeout)
}

func lifecycleCase(ctx context.Context, e env, n, warmup int) ([]Stats, error) {
	ops := []op{
		wardenLifecycle(e.p, e.spec(), WardenLifecycle, WardenCreate, WardenFirstExec, WardenDestroy, nil),
		sdkRun(e.p.Client(), e.image, e.runID),
		sdkRunFloor(e.p.Client(), e.image, e.runID),
	}
	if e.dcli != nil {
		ops = append(ops, e.dcli.runOnce(e.image, e.runID))
	}
	return measure(ctx, e, CaseLifecycle, ops, n, warmup, 1, lifecycleTimeout)
}

// measure runs warmup+n samples of every op and summarizes all but the
// warm-up ones. Samples come in rounds: each round runs every op, in an order
// shuffled by e.rng, block times in a row. Shuffled rounds spread the drift
// of this noisy VM over all ops; blocks keep the daemon work an op leaves
// behind (a finished `docker exec` is cleaned up after it returns) from
// landing on every sample of the next op, only on the first of a block. On
// error it returns the stats of the samples taken so far.
func measure(ctx context.Context, e env, kase string, ops []op, n, warmup, block int, timeout time.Duration) ([]Stats, error) {
	samples := map[string][]time.Duration{}
	summary := func() []Stats {
		var out []Stats
		for _, o := range ops {
			out = append(out, summarize(o.name, kase, describe(o.name), samples[o.name]))
			for _, part := range o.parts {
				s := summarize(part, kase, describe(part), samples[part])
				s.Parent = o.name
				out = append(out, s)
			}
		}
		return out
	}
	block = max(block, 1)
	total := warmup + n
	rounds := (total + block - 1) / block
	step := max(rounds/10, 1)
	order := make([]int, len(ops))
	for r := range rounds {
		for i := range order {
			order[i] = i
		}
		e.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		for _, k := range order {
			o := ops[k]
			for j := range block {
				idx := r*block + j // this op's sample number
				if idx >= total {
					break
				}
				if err := ctx.Err(); err != nil {
					return summary(), err
				}
				octx, cancel := context.WithTimeout(ctx, timeout)
				start := time.Now()
				parts, err := o.fn(octx)
				d := time.Since(start)
				cancel()
				if err != nil {
					if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
						err = fmt.Errorf("%w (%v)", ctx.Err(), err)
					}
					return summary(), fmt.Errorf("%s, round %d: %w", o.name, r+1, err)
				}
				if idx < warmup {
					continue
				}
				samples[o.name] = append(samples[o.name], d)
				for i, part := range o.parts {
					samples[part] = append(samples[part], parts[i])
				}
			}
		}
		if (r+1)%step == 0 || r+1 == rounds {
			fmt.Fprintf(e.log, "%s: round %d/%d\n", kase, r+1, rounds)
		}
	}
	return summary(), nil
}

// compare builds the comparisons for which both sides were measured.
func compare(stats []Stats) []Comparison {
	byName := map[string]Stats{}
	for _, s := range stats {
		byName[s.Name] = s
	}
	var out []Comparison
	for _, c := range pairings() {
		w, okw := byName[c.warden]
		b, okb := byName[c.baseline]
		if !okw || !okb || w.N == 0 || b.N == 0 {
			continue
		}
		out = append(out, Comparison{
			Operation:        c.operation,
			Warden:           c.warden,
			Baseline:         c.baseline,
			BaselineLabel:    c.label,
			WardenMedian:     w.Median,
			BaselineMedian:   b.Median,
			WardenMedianMS:   w.MedianMS,
			BaselineMedianMS: b.MedianMS,
			Ratio:            ratio(b.Median, w.Median),
		})
	}
	return out
}

func newRunID() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // documented never to fail
	return hex.EncodeToString(b[:])
}
