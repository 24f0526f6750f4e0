package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// bwrapCase measures the bubblewrap provider against the Docker provider,
// both through the same provider interface and with the same default
// spec: exec of `x = 1` and `true` in a live sandbox (exec sample counts),
// then create + first exec of print(1) + destroy (lifecycle sample
// counts), and that lifecycle again with networking enabled when the
// bubblewrap provider can have it. The two providers' operations are
// interleaved in shuffled rounds, as in the other cases.
func bwrapCase(bw sandbox.Provider, n, warmup int) caseRunner {
	return func(ctx context.Context, e env, _, _ int) (_ []Stats, err error) {
		execN, execWarm := Options{N: n, Warmup: warmup}.rounds(CaseExec)
		lifeN, lifeWarm := Options{N: n, Warmup: warmup}.rounds(CaseLifecycle)
		fmt.Fprintf(e.log, "%s: exec %d samples (+%d warm-up), lifecycle %d samples (+%d warm-up)\n", CaseBwrap, execN, execWarm, lifeN, lifeWarm)

		spec := e.spec()
		dinfo, err := e.p.Create(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("creating docker sandbox: %w", err)
		}
		defer func() {
			if derr := e.p.Destroy(context.WithoutCancel(ctx), dinfo.ID); derr != nil {
				err = errors.Join(err, fmt.Errorf("destroying docker sandbox: %w", derr))
			}
		}()
		binfo, err := bw.Create(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("creating bubblewrap sandbox: %w", err)
		}
		defer func() {
			if derr := bw.Destroy(context.WithoutCancel(ctx), binfo.ID); derr != nil {
				err = errors.Join(err, fmt.Errorf("destroying bubblewrap sandbox: %w", derr))
			}
		}()
		execOps := []op{
			wardenExec(bw, binfo.ID, BwrapExecPython, pyReq()),
			wardenExec(e.p, dinfo.ID, DockerProvExecPython, pyReq()),
			wardenExec(bw, binfo.ID, BwrapExecShell, shellReq()),
			wardenExec(e.p, dinfo.ID, DockerProvExecShell, shellReq()),
		}
		floor, ferr := newFloor()
		if ferr != nil {
			fmt.Fprintf(e.log, "%s: no bare bwrap, python3 and bash baselines: %v\n", CaseBwrap, ferr)
		} else {
			execOps = append(execOps, floor.bashOp())
		}
		stats, err := measure(ctx, e, CaseBwrap, execOps, execN, execWarm, execBlock, execTimeout)
		if err != nil {
			return stats, err
		}
		bwRoot, dockerRoot := providerRoot(bw), containerRoot(e.p.Client())
		var bwCPU *cpuProbe
		if bwRoot != nil {
			bwCPU = &cpuProbe{name: BwrapLifecycleCPU, root: bwRoot}
		}
		lifeOps := []op{
			wardenLifecycle(bw, spec, BwrapLifecycle, BwrapCreate, BwrapFirstExec, BwrapDestroy, bwCPU),
			wardenLifecycle(e.p, spec, DockerProvLifecycle, DockerProvCreate, DockerProvFirstExec, DockerProvDestroy, nil),
		}
		if ferr == nil {
			lifeOps = append(lifeOps, floor.bwrapOp(), floor.pythonOp())
		}
		net := spec
		net.Network = true
		if probe, err := bw.Create(ctx, net); err == nil {
			_ = bw.Destroy(ctx, probe.ID)
			lifeOps = append(lifeOps,
				wardenLifecycle(bw, net, BwrapNetLifecycle, BwrapNetCreate, BwrapNetFirstExec, BwrapNetDestroy, nil),
				wardenLifecycle(e.p, net, DockerProvNetLifecycle, DockerProvNetCreate, DockerProvNetFirstExec, DockerProvNetDestroy, nil))
		} else if !errors.Is(err, sandbox.ErrUnsupported) {
			return stats, fmt.Errorf("creating a bubblewrap sandbox with networking: %w", err)
		} else {
			fmt.Fprintf(e.log, "%s: no networked lifecycle: %v\n", CaseBwrap, err)
		}
		more, err := measure(ctx, e, CaseBwrap, lifeOps, lifeN, lifeWarm, 1, lifecycleTimeout)
		stats = append(stats, more...)
		if err != nil {
			return stats, err
		}
		// Idle memory: a handful of sandboxes of each provider side by
		// side, and as many plain interpreters.
		k := min(lifeN, memSandboxes)
		var probes []memProbe
		if bwRoot != nil {
			probes = append(probes, memProbe{name: BwrapIdlePSS, p: bw, spec: spec, root: bwRoot})
		}
		probes = append(probes, memProbe{name: DockerProvIdlePSS, p: e.p, spec: spec, root: dockerRoot})
		for _, m := range probes {
			ms, err := m.measure(ctx, k)
			if err != nil {
				return stats, fmt.Errorf("%s: %w", m.name, err)
			}
			e.addMem(ms)
		}
		if ferr == nil {
			ms, err := floor.idlePython(ctx, k)
			if err != nil {
				return stats, fmt.Errorf("%s: %w", HostPythonIdlePSS, err)
			}
			e.addMem(ms)
		}
		return stats, nil
	}
}
