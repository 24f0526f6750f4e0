package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// CaseRunsc measures the Docker provider with its containers under
// gVisor's runsc against the same provider under runc, and against plain
// `docker exec` and `docker run --rm` of runsc containers: exec of `x =
// 1` and `true` (exec sample counts), and create + first exec + destroy
// (lifecycle sample counts). When the daemon has no runtime
// [Options.Runsc] it measures nothing and a note of the report says why.
// It is not among the default cases.
const CaseRunsc = "runsc"

// Operations of the runsc case.
const (
	RunscExecPython    = "runsc_exec_python"     // Docker provider under runsc, provider.Exec of `x = 1`
	RunscExecShell     = "runsc_exec_shell"      // the same, shell `true`
	RuncExecPython     = "runc_exec_python"      // Docker provider under runc, provider.Exec of `x = 1`
	RuncExecShell      = "runc_exec_shell"       // the same, shell `true`
	RunscDockerExecCLI = "runsc_docker_exec_cli" // docker exec C python3 -c 'x = 1', C under runsc
	RunscLifecycle     = "runsc_lifecycle"       // Create + Exec print(1) + Destroy under runsc
	RunscCreate        = "runsc_create"
	RunscFirstExec     = "runsc_first_exec"
	RunscDestroy       = "runsc_destroy"
	RuncLifecycle      = "runc_lifecycle" // the same under runc
	RuncCreate         = "runc_create"
	RuncFirstExec      = "runc_first_exec"
	RuncDestroy        = "runc_destroy"
	RunscDockerRunCLI  = "runsc_docker_run_cli" // docker run --rm --runtime runsc --network none IMG python3 -c 'print(1)'
)

const (
	// DefaultRunsc is the default of [Options.Runsc].
	DefaultRunsc = "runsc"
	// runcRuntime is the baseline's runtime when the provider's own is
	// gVisor.
	runcRuntime = "runc"
	// RunscSkipped begins the report's note when the runsc case could
	// not run.
	RunscSkipped = "runsc case skipped: "
	underGVisor  = "Docker provider under gVisor"
)

func describeRunsc(name string) (string, bool) {
	switch name {
	case RunscExecPython:
		return underGVisor + " exec `x = 1` (Python)", true
	case RunscExecShell:
		return underGVisor + " exec `true` (shell)", true
	case RuncExecPython:
		return "Docker provider under runc exec `x = 1` (Python)", true
	case RuncExecShell:
		return "Docker provider under runc exec `true` (shell)", true
	case RunscDockerExecCLI:
		return "`docker exec C python3 -c 'x = 1'` (CLI), C under runsc", true
	case RunscLifecycle:
		return underGVisor + " Create + Exec `print(1)` + Destroy", true
	case RuncLifecycle:
		return "Docker provider under runc Create + Exec `print(1)` + Destroy", true
	case RunscCreate, RuncCreate:
		return "of which Create", true
	case RunscFirstExec, RuncFirstExec:
		return "of which first Exec", true
	case RunscDestroy, RuncDestroy:
		return "of which Destroy", true
	case RunscDockerRunCLI:
		return "`docker run --rm --runtime runsc --network none IMG python3 -c 'print(1)'` (CLI)", true
	}
	return "", false
}

// runscPairings are the comparisons of the runsc case: gVisor's cost
// against runc, and Warden against plain Docker, both under runsc.
func runscPairings() []pairing {
	return []pairing{
		{"gVisor exec `x = 1` (Python)", RunscExecPython, RuncExecPython, "the same under runc"},
		{"gVisor exec `x = 1` (Python)", RunscExecPython, RunscDockerExecCLI, "`docker exec C python3 -c 'x = 1'`, C under runsc"},
		{"gVisor exec `true` (shell)", RunscExecShell, RuncExecShell, "the same under runc"},
		{"gVisor create + `print(1)` + destroy", RunscLifecycle, RuncLifecycle, "the same under runc"},
		{"gVisor create + `print(1)` + destroy", RunscLifecycle, RunscDockerRunCLI, "`docker run --rm --runtime runsc IMG python3 -c 'print(1)'`"},
	}
}

// runscCase is the runsc case; name is the runtime's name on the daemon.
func runscCase(name string, n, warmup int) caseRunner {
	return func(ctx context.Context, e env, _, _ int) (_ []Stats, err error) {
		gv, err := e.p.WithRuntime(ctx, name)
		if errors.Is(err, sandbox.ErrUnavailable) && ctx.Err() == nil {
			e.addNote(RunscSkipped + err.Error())
			fmt.Fprintf(e.log, "%s: skipped: %v\n", CaseRunsc, err)
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		defer func() { err = errors.Join(err, gv.Close(context.WithoutCancel(ctx))) }()
		if !gv.Runtime().GVisor {
			return nil, fmt.Errorf("%s is not gVisor's runsc: %w", gv.Runtime(), sandbox.ErrInvalid)
		}
		base := e.p
		if base.Runtime().GVisor {
			if base, err = e.p.WithRuntime(ctx, runcRuntime); err != nil {
				return nil, err
			}
			defer func() { err = errors.Join(err, base.Close(context.WithoutCancel(ctx))) }()
		}
		e.addNote(fmt.Sprintf("runsc case: %s, against %s", gv.Runtime(), base.Runtime()))

		execN, execWarm := Options{N: n, Warmup: warmup}.rounds(CaseExec)
		lifeN, lifeWarm := Options{N: n, Warmup: warmup}.rounds(CaseLifecycle)
		fmt.Fprintf(e.log, "%s: exec %d samples (+%d warm-up), lifecycle %d samples (+%d warm-up)\n", CaseRunsc, execN, execWarm, lifeN, lifeWarm)

		spec := e.spec()
		ginfo, err := gv.Create(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("creating a sandbox under %s: %w", name, err)
		}
		defer func() {
			if derr := gv.Destroy(context.WithoutCancel(ctx), ginfo.ID); derr != nil {
				err = errors.Join(err, fmt.Errorf("destroying the sandbox under %s: %w", name, derr))
			}
		}()
		binfo, err := base.Create(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("creating a sandbox under runc: %w", err)
		}
		defer func() {
			if derr := base.Destroy(context.WithoutCancel(ctx), binfo.ID); derr != nil {
				err = errors.Join(err, fmt.Errorf("destroying the sandbox under runc: %w", derr))
			}
		}()
		execOps := []op{
			wardenExec(gv, ginfo.ID, RunscExecPython, pyReq()),
			wardenExec(base, binfo.ID, RuncExecPython, pyReq()),
			wardenExec(gv, ginfo.ID, RunscExecShell, shellReq()),
			wardenExec(base, binfo.ID, RuncExecShell, shellReq()),
		}
		if e.dcli != nil {
			cid, remove, err := startRunscBaseline(ctx, e.p.Client(), e.image, e.runID, name)
			if err != nil {
				return nil, err
			}
			defer remove()
			execOps = append(execOps, e.dcli.exec(RunscDockerExecCLI, cid, "python3", "-c", pyStatement))
		}
		stats, err := measure(ctx, e, CaseRunsc, execOps, execN, execWarm, execBlock, execTimeout)
		if err != nil {
			return stats, err
		}
		lifeOps := []op{
			wardenLifecycle(gv, spec, RunscLifecycle, RunscCreate, RunscFirstExec, RunscDestroy, nil),
			wardenLifecycle(base, spec, RuncLifecycle, RuncCreate, RuncFirstExec, RuncDestroy, nil),
		}
		if e.dcli != nil {
			lifeOps = append(lifeOps, e.dcli.runOnceUnder(RunscDockerRunCLI, name, e.image, e.runID))
		}
		more, err := measure(ctx, e, CaseRunsc, lifeOps, lifeN, lifeWarm, 1, lifecycleTimeout)
		return append(stats, more...), err
	}
}

// startRunscBaseline is startBaseline's container under the runtime.
func startRunscBaseline(ctx context.Context, cli *client.Client, image, runID, runtime string) (id string, remove func(), err error) {
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:  image,
			Cmd:    []string{"sleep", "infinity"},
			Labels: map[string]string{LabelBench: "1", LabelRun: runID},
		},
		HostConfig: &container.HostConfig{AutoRemove: true, NetworkMode: "none", Runtime: runtime},
	})
	if err != nil {
		return "", nil, sdkErr(ctx, "creating the runsc baseline container", err)
	}
	remove = func() { removeContainer(ctx, cli, created.ID) }
	if _, err := cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		remove()
		return "", nil, sdkErr(ctx, "starting the runsc baseline container", err)
	}
	return created.ID, remove, nil
}

// runOnceUnder is runOnce under the runtime.
func (d *dockerCLI) runOnceUnder(name, runtime, image, runID string) op {
	args := []string{"run", "--rm", "--runtime", runtime, "--network", "none",
		"--label", LabelBench + "=1", "--label", LabelRun + "=" + runID,
		image, "python3", "-c", pyPrint}
	return op{name: name, fn: func(ctx context.Context) ([]time.Duration, error) {
		return nil, d.run(ctx, args...)
	}}
}
