package bench

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// CaseHumanEval runs HumanEval's 164 programs (each a solution and its
// tests), each in its own fresh sandbox through warden serve's handler
// with its warm pool of two, two clients at once, on each provider of
// [Options.HumanEval] (default: the bubblewrap provider and the Docker
// provider; the fork server on request); the baseline is the host running
// the same programs as plain `python3 -c` subprocesses, two at once. One
// sample is one pass over all 164; every program must pass. It needs
// [Options.Bwrap] (and [Options.ForkServer] for the fork server) and is
// not among the default cases.
const CaseHumanEval = "humaneval"

// Operations of the humaneval case.
const (
	HumanEvalBwrap     = "humaneval_bwrap"          // a pass over the 164 through warden serve on bubblewrap, pool refill included
	HumanEvalBwrapRun  = "humaneval_bwrap_run"      // of which the 164 programs, first create to last delete
	HumanEvalDocker    = "humaneval_docker"         // the same on the Docker provider
	HumanEvalDockerRun = "humaneval_docker_run"     // of which the 164 programs
	HumanEvalFork      = "humaneval_forkserver"     // the same on the fork server provider
	HumanEvalForkRun   = "humaneval_forkserver_run" // of which the 164 programs
	HumanEvalHost      = "humaneval_host"           // the 164 as plain python3 -c subprocesses on the host
	// The 164 through POST /sandbox/run on the fork server: a one-shot
	// run each (sandbox.Runner), no pool.
	HumanEvalForkOneShot    = "humaneval_forkserver_oneshot"
	HumanEvalForkOneShotRun = "humaneval_forkserver_oneshot_run" // of which the 164 programs
)

// The providers the humaneval case can run on ([Options.HumanEval]).
const (
	HumanEvalOnBwrap      = "bubblewrap"
	HumanEvalOnDocker     = "docker"
	HumanEvalOnForkServer = "forkserver"
	// HumanEvalOnForkServerRun is the fork server through one-shot runs
	// (POST /sandbox/run) instead of create, execute and delete.
	HumanEvalOnForkServerRun = "forkserver-run"
)

// DefaultHumanEval is the humaneval case's providers by default.
func DefaultHumanEval() []string { return []string{HumanEvalOnBwrap, HumanEvalOnDocker} }

// humanEvalClients is the concurrency of every pass, Warden's and the
// host's alike.
const humanEvalClients = 2

// Default sample counts of the humaneval case: a pass on Docker takes
// tens of seconds on a 2-CPU machine.
const (
	defaultHumanEvalN      = 3
	defaultHumanEvalWarmup = 1
	humanEvalTimeout       = 15 * time.Minute
	humanEvalProgramLimit  = 60 * time.Second
)

//go:embed humaneval/HumanEval.jsonl
var humanEvalJSONL []byte

// humanEvalProblem is one line of HumanEval.jsonl (MIT licence, see
// humaneval/LICENSE).
type humanEvalProblem struct {
	TaskID     string `json:"task_id"`
	Prompt     string `json:"prompt"`
	Solution   string `json:"canonical_solution"`
	Test       string `json:"test"`
	EntryPoint string `json:"entry_point"`
}

// program is the problem's prompt, canonical solution and tests, then
// the call of check on the entry point: it exits 0 when the tests pass.
func (p humanEvalProblem) program() string {
	return p.Prompt + p.Solution + "\n\n" + p.Test + "\n\ncheck(" + p.EntryPoint + ")\n"
}

// humanEvalPrograms parses the embedded dataset.
func humanEvalPrograms() ([]humanEvalProblem, error) {
	var out []humanEvalProblem
	sc := bufio.NewScanner(bytes.NewReader(humanEvalJSONL))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var p humanEvalProblem
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("HumanEval line %d: %w", len(out)+1, err)
		}
		out = append(out, p)
	}
	return out, sc.Err()
}

func describeHumanEval(name string) (string, bool) {
	switch name {
	case HumanEvalBwrap:
		return "HumanEval's 164 programs, each in a fresh bubblewrap sandbox through warden serve (pool of 2), 2 clients, then the pool's refill", true
	case HumanEvalFork:
		return "HumanEval's 164 programs, each in a fresh fork server sandbox through warden serve (pool of 2), 2 clients, then the pool's refill", true
	case HumanEvalBwrapRun, HumanEvalDockerRun, HumanEvalForkRun:
		return "of which the 164 programs, first create to last delete", true
	case HumanEvalForkOneShot:
		return "HumanEval's 164 programs, each in a fresh fork server sandbox through warden serve's one-shot POST /sandbox/run, 2 clients", true
	case HumanEvalForkOneShotRun:
		return "of which the 164 programs, first run to last", true
	case HumanEvalDocker:
		return "HumanEval's 164 programs, each in a fresh Docker sandbox through warden serve (pool of 2), 2 clients, then the pool's refill", true
	case HumanEvalHost:
		return "HumanEval's 164 programs as plain `python3 -c` subprocesses on the host, 2 at once", true
	}
	return "", false
}

// humanEvalPairings compare the passes: a ratio above 1 means the
// sandboxed pass was faster than the host's plain subprocesses.
func humanEvalPairings() []pairing {
	return []pairing{
		{"HumanEval, 164 programs each in a fresh sandbox, 2 clients (bubblewrap)", HumanEvalBwrapRun, HumanEvalHost, "plain `python3 -c` subprocesses on the host, 2 at once"},
		{"HumanEval, 164 programs each in a fresh sandbox, 2 clients (Docker)", HumanEvalDockerRun, HumanEvalHost, "plain `python3 -c` subprocesses on the host, 2 at once"},
		{"HumanEval, 164 programs each in a fresh sandbox, 2 clients (fork server)", HumanEvalForkRun, HumanEvalHost, "plain `python3 -c` subprocesses on the host, 2 at once"},
		{"HumanEval, 164 programs each in a fresh sandbox, 2 clients (fork server)", HumanEvalForkRun, HumanEvalBwrapRun, "the same on bubblewrap"},
		{"HumanEval, 164 programs each in a fresh sandbox, 2 clients (fork server, one-shot runs)", HumanEvalForkOneShotRun, HumanEvalHost, "plain `python3 -c` subprocesses on the host, 2 at once"},
		{"HumanEval, 164 programs each in a fresh sandbox, 2 clients (fork server, one-shot runs)", HumanEvalForkOneShotRun, HumanEvalForkRun, "fork server, create + execute + delete"},
	}
}

// humanEvalCase is the humaneval case over the providers named in on:
// the bubblewrap provider bw, the run's Docker provider, the fork server
// fs: n passes of each after warmup ones.
func humanEvalCase(on []string, bw, fs sandbox.Provider, n, warmup int) caseRunner {
	return func(ctx context.Context, e env, _, _ int) (_ []Stats, err error) {
		probs, err := humanEvalPrograms()
		if err != nil {
			return nil, err
		}
		spec := e.spec()
		var ops []op
		for _, name := range on {
			var (
				p            sandbox.Provider
				opName, part string
				oneShot      bool
			)
			switch name {
			case HumanEvalOnBwrap:
				p, opName, part = bw, HumanEvalBwrap, HumanEvalBwrapRun
			case HumanEvalOnDocker:
				p, opName, part = e.p, HumanEvalDocker, HumanEvalDockerRun
			case HumanEvalOnForkServer:
				p, opName, part = fs, HumanEvalFork, HumanEvalForkRun
			case HumanEvalOnForkServerRun:
				p, opName, part, oneShot = fs, HumanEvalForkOneShot, HumanEvalForkOneShotRun, true
			}
			svc, err := newService(ctx, p, spec, poolSize)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			defer func() { err = errors.Join(err, svc.close(context.WithoutCancel(ctx))) }()
			ops = append(ops, svc.humanEvalOp(opName, part, probs, oneShot))
		}
		f, ferr := newFloor()
		if ferr != nil {
			return nil, fmt.Errorf("the host baseline needs python3: %w", ferr)
		}
		ops = append(ops, f.humanEvalOp(probs))
		fmt.Fprintf(e.log, "%s: %d passes of %d programs per operation after %d warm-up passes\n", CaseHumanEval, n, len(probs), warmup)
		return measure(ctx, e, CaseHumanEval, ops, n, warmup, 1, humanEvalTimeout)
	}
}

// humanEvalOp is one pass through the service: the programs, then the
// wait for the pool to fill again (so that every pass starts alike). With
// oneShot, each program is one POST /sandbox/run.
func (s *service) humanEvalOp(name, run string, probs []humanEvalProblem, oneShot bool) op {
	return op{name: name, parts: []string{run}, fn: func(ctx context.Context) ([]time.Duration, error) {
		start := time.Now()
		err := runAll(ctx, probs, func(ctx context.Context, p humanEvalProblem) error {
			if oneShot {
				res, err := s.c.Run(ctx, client.RunOptions{ExecuteOptions: client.ExecuteOptions{Language: api.Python, Code: p.program(), Timeout: humanEvalProgramLimit}})
				if err == nil && !res.Success {
					err = fmt.Errorf("exit code %d: %s", res.ExitCode, tail([]byte(res.Stderr)))
				}
				return err
			}
			sb, err := s.c.Create(ctx, client.CreateOptions{})
			if err != nil {
				return fmt.Errorf("creating: %w", err)
			}
			res, err := s.c.Execute(ctx, sb.ID, client.ExecuteOptions{Language: api.Python, Code: p.program(), Timeout: humanEvalProgramLimit})
			if err == nil && !res.Success {
				err = fmt.Errorf("exit code %d: %s", res.ExitCode, tail([]byte(res.Stderr)))
			}
			return errors.Join(err, s.c.Delete(context.WithoutCancel(ctx), sb.ID))
		})
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		return []time.Duration{d}, s.settle(ctx)
	}}
}

// humanEvalOp is the host's pass: each program a `python3 -c` of its own.
func (f floor) humanEvalOp(probs []humanEvalProblem) op {
	return op{name: HumanEvalHost, fn: func(ctx context.Context) ([]time.Duration, error) {
		return nil, runAll(ctx, probs, func(ctx context.Context, p humanEvalProblem) error {
			cmd := exec.CommandContext(ctx, f.python, "-c", p.program())
			cmd.Env = f.env()
			cmd.Dir = "/tmp"
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%w: %s", err, tail(out))
			}
			return nil
		})
	}}
}

// runAll runs fn on every problem, humanEvalClients at a time, and stops
// at the first failure, which it returns naming the problem.
func runAll(ctx context.Context, probs []humanEvalProblem, fn func(context.Context, humanEvalProblem) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range humanEvalClients {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(probs) || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, probs[i]); err != nil {
					cancel(fmt.Errorf("%s: %w", probs[i].TaskID, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}
