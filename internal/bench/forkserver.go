package bench

import (
	"context"
	"fmt"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// CaseForkServer measures a fresh sandbox of the fork server provider
// (create → print(1) → destroy) against the bubblewrap provider's and the
// bare-bwrap and host floors, in shuffled rounds of one run. It needs
// [Options.ForkServer] and [Options.Bwrap] and is not among the default
// cases.
const CaseForkServer = "forkserver"

// Names of the fork server case's operations.
const (
	ForkLifecycle    = "forkserver_lifecycle" // fork server Create + Exec print(1) + Destroy
	ForkCreate       = "forkserver_create"
	ForkFirstExec    = "forkserver_first_exec"
	ForkDestroy      = "forkserver_destroy"
	ForkLifecycleCPU = "forkserver_lifecycle_cpu"
	// ForkRun is the fork server's one-shot path (sandbox.Runner): a
	// fresh sandbox for print(1), gone when Run returns.
	ForkRun = "forkserver_run"
	// ForkRunFirst is the part of ForkRun until print(1)'s output arrives:
	// create → first result.
	ForkRunFirst = "forkserver_run_first_output"
	// Idle memory ([MemStats]): fork server sandboxes after one execution.
	ForkIdlePSS = "forkserver_idle_pss"
)

func describeForkServer(name string) (string, bool) {
	switch name {
	case ForkLifecycle:
		return "fork server Create + Exec `print(1)` + Destroy (fresh namespaces, cgroup, seccomp, Landlock)", true
	case ForkCreate:
		return "of which Create (fork from the server to the agent's hello)", true
	case ForkFirstExec:
		return "of which the first Exec `print(1)`", true
	case ForkDestroy:
		return "of which Destroy", true
	case ForkRun:
		return "fork server one-shot Run `print(1)` (a fresh sandbox made for it, removed before Run returns)", true
	case ForkRunFirst:
		return "of which the time to its output (create → first result)", true
	case ForkLifecycleCPU:
		return "its CPU time (the sandbox's processes and Warden's; not the server's fork)", true
	case ForkIdlePSS:
		return "an idle fork server sandbox after `x = 1` (PSS of its processes; the server itself not counted)", true
	}
	return "", false
}

func forkServerPairings() []pairing {
	return []pairing{
		{"fork server create + `print(1)` + destroy", ForkLifecycle, BareBwrapPython, "bare `bwrap ... python3 -c 'print(1)'`"},
		{"fork server create + `print(1)` + destroy", ForkLifecycle, BwrapLifecycle, "bubblewrap provider create + `print(1)` + destroy"},
		{"fork server create + `print(1)` + destroy", ForkLifecycle, HostPython, "plain `python3 -c 'print(1)'`"},
		{"fork server create", ForkCreate, BwrapCreate, "bubblewrap provider create"},
		{"fork server one-shot run `print(1)`", ForkRun, BareBwrapPython, "bare `bwrap ... python3 -c 'print(1)'`"},
		{"fork server one-shot run `print(1)`", ForkRun, HostPython, "plain `python3 -c 'print(1)'`"},
		{"fork server one-shot run `print(1)`", ForkRun, ForkLifecycle, "fork server create + `print(1)` + destroy"},
		{"fork server one-shot run `print(1)`, to its output", ForkRunFirst, HostPython, "plain `python3 -c 'print(1)'`"},
		{"CPU of fork server create + `print(1)` + destroy", ForkLifecycleCPU, BareBwrapCPU, "CPU of bare `bwrap ... python3 -c 'print(1)'`"},
		{"CPU of fork server create + `print(1)` + destroy", ForkLifecycleCPU, BwrapLifecycleCPU, "CPU of the bubblewrap provider's"},
	}
}

// forkServerCase interleaves the fork server's lifecycle with the
// bubblewrap provider's and the floors'.
func forkServerCase(fs, bw sandbox.Provider) caseRunner {
	return func(ctx context.Context, e env, n, warmup int) ([]Stats, error) {
		spec := e.spec()
		var fsCPU, bwCPU *cpuProbe
		if r := providerRoot(fs); r != nil {
			fsCPU = &cpuProbe{name: ForkLifecycleCPU, root: r}
		}
		if r := providerRoot(bw); r != nil {
			bwCPU = &cpuProbe{name: BwrapLifecycleCPU, root: r}
		}
		ops := []op{
			wardenLifecycle(fs, spec, ForkLifecycle, ForkCreate, ForkFirstExec, ForkDestroy, fsCPU),
			wardenLifecycle(bw, spec, BwrapLifecycle, BwrapCreate, BwrapFirstExec, BwrapDestroy, bwCPU),
		}
		if _, ok := fs.(sandbox.Runner); ok {
			ops = append(ops, wardenRun(fs, spec, ForkRun, ForkRunFirst))
		}
		if floor, err := newFloor(); err != nil {
			fmt.Fprintf(e.log, "%s: no bare bwrap and python3 baselines: %v\n", CaseForkServer, err)
		} else {
			ops = append(ops, floor.bwrapOp(), floor.pythonOp())
		}
		stats, err := measure(ctx, e, CaseForkServer, ops, n, warmup, 1, lifecycleTimeout)
		if err != nil {
			return stats, err
		}
		// Idle memory: a handful of sandboxes of each provider side by side.
		k := min(n, memSandboxes)
		for _, m := range []memProbe{
			{name: ForkIdlePSS, kase: CaseForkServer, p: fs, spec: spec, root: providerRoot(fs)},
			{name: BwrapIdlePSS, kase: CaseForkServer, p: bw, spec: spec, root: providerRoot(bw)},
		} {
			if m.root == nil {
				continue
			}
			ms, err := m.measure(ctx, k)
			if err != nil {
				return stats, fmt.Errorf("%s: %w", m.name, err)
			}
			e.addMem(ms)
		}
		return stats, nil
	}
}
