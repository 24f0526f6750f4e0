package docker

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Network modes of gVisor's runsc (its --network flag), in [Runtime.Network].
const (
	// GVisorNetSandbox is runsc's default: gVisor's own network stack
	// (netstack) answers the sandbox's socket calls.
	GVisorNetSandbox = "sandbox"
	// GVisorNetHost passes socket calls to the host kernel's network
	// stack, inside the container's own network namespace.
	GVisorNetHost = "host"
	// GVisorNetNone gives the sandbox a loopback interface only, whatever
	// Docker's network: networked sandboxes are refused.
	GVisorNetNone = "none"
)

// Runtime describes the OCI runtime a provider's containers run under.
type Runtime struct {
	// Name is the runtime's name as the daemon knows it ("runc", "runsc");
	// empty when no runtime was asked for and the daemon did not say
	// which is its default.
	Name string `json:"name"`
	// Default reports that none was asked for ([Options.Runtime] empty):
	// containers get the daemon's default runtime.
	Default bool `json:"default"`
	// Path and Args are how the daemon runs it, as its daemon.json says
	// (empty for the built-in runc and for shim v2 runtimes).
	Path string   `json:"path,omitempty"`
	Args []string `json:"args,omitempty"`
	// GVisor reports that the runtime is gVisor's runsc: the sandbox's
	// system calls go to gVisor's user-space kernel, not the host's.
	GVisor bool `json:"gvisor"`
	// Network is runsc's network mode (GVisorNet*), for gVisor only.
	Network string `json:"network,omitempty"`
}

// String describes the runtime in a few words, for `warden doctor` and
// /sandbox/status: "runtime runsc (gVisor: /usr/bin/runsc
// --network=host)" or "runtime runc (the daemon's default)".
func (r Runtime) String() string {
	name := r.Name
	if name == "" {
		name = "unknown"
	}
	var detail []string
	if r.GVisor {
		cmd := strings.Join(append([]string{r.Path}, r.Args...), " ")
		if r.Path == "" {
			cmd = "runsc"
		}
		detail = append(detail, "gVisor: "+cmd)
	}
	if r.Default {
		detail = append(detail, "the daemon's default")
	}
	if len(detail) == 0 {
		return "runtime " + name
	}
	return fmt.Sprintf("runtime %s (%s)", name, strings.Join(detail, "; "))
}

// isGVisor reports whether a runtime the daemon knows is gVisor's runsc,
// by its path (legacy runtimes) or shim type (io.containerd.runsc.v1).
func isGVisor(name string, rt system.Runtime) bool {
	switch {
	case rt.Path != "":
		return strings.HasPrefix(filepath.Base(rt.Path), "runsc")
	case rt.Type != "":
		return strings.Contains(rt.Type, "runsc")
	}
	return name == "runsc"
}

// gvisorNetwork returns runsc's --network mode from its arguments: the
// last one given wins, as with Go's flag package.
func gvisorNetwork(args []string) string {
	mode := GVisorNetSandbox
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "network" {
			continue
		}
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		mode = val
	}
	return mode
}

// resolveRuntime finds the runtime name among the daemon's, or the
// daemon's default when name is empty. A name the daemon does not list
// is an error that says which it has and how to register gVisor's runsc.
// When the daemon cannot say (an old or unusual daemon), an empty name is
// left to its default, as before runtimes could be chosen.
func resolveRuntime(ctx context.Context, cli *client.Client, name string) (Runtime, error) {
	res, err := cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		if name == "" {
			return Runtime{Default: true}, nil
		}
		return Runtime{}, fmt.Errorf("docker daemon at %s: reading its runtimes to find %q: %v: %w", cli.DaemonHost(), name, err, sandbox.ErrUnavailable)
	}
	info := res.Info
	r := Runtime{Name: name}
	if name == "" {
		r.Name, r.Default = info.DefaultRuntime, true
	}
	rt, ok := info.Runtimes[r.Name]
	if !ok && !r.Default {
		return Runtime{}, unknownRuntime(cli.DaemonHost(), name, info.Runtimes)
	}
	r.Path, r.Args = rt.Path, slices.Clone(rt.Args)
	if ok && isGVisor(r.Name, rt.Runtime) {
		r.GVisor = true
		r.Network = gvisorNetwork(rt.Args)
	}
	return r, nil
}

// RegisterRunsc says how to make gVisor's runsc known to a Docker daemon.
const RegisterRunsc = `as root: apt-get install runsc; add "runsc": {"path": "/usr/bin/runsc"} to "runtimes" in /etc/docker/daemon.json, ` +
	`merged with what is there (with a runsc older than the fix of gVisor issue 10704, such as Debian 12's, on a recent kernel, ` +
	`add "runtimeArgs": ["--network=host"]); then make dockerd reload it (systemctl reload docker, or kill -HUP $(pidof dockerd)). ` +
	`scripts/test.sh does all this (ensure_runsc in scripts/lib.sh)`

// unknownRuntime is the error for a runtime the daemon does not list.
func unknownRuntime(host, name string, have map[string]system.RuntimeWithStatus) error {
	names := make([]string, 0, len(have))
	for n := range have {
		names = append(names, n)
	}
	slices.Sort(names)
	list := strings.Join(names, ", ")
	if list == "" {
		list = "none"
	}
	how := `register it under "runtimes" in /etc/docker/daemon.json and make dockerd reload it`
	if name == "runsc" || strings.Contains(name, "gvisor") {
		how = "to run sandboxes under gVisor, " + RegisterRunsc
	}
	return fmt.Errorf("the Docker daemon at %s has no runtime %q (SANDBOX__DOCKER_RUNTIME); it has: %s. Name one of those, or %s: %w",
		host, name, list, how, sandbox.ErrUnavailable)
}

// CheckRuntime tells whether the daemon p describes has the runtime name
// ("" always passes: the daemon's default). It is [New]'s check, for
// reporting before a provider is opened.
func (p Probe) CheckRuntime(name string) error {
	if name == "" || !p.Available || slices.Contains(p.Runtimes, name) || len(p.Runtimes) == 0 {
		return nil
	}
	have := make(map[string]system.RuntimeWithStatus, len(p.Runtimes))
	for _, n := range p.Runtimes {
		have[n] = system.RuntimeWithStatus{}
	}
	return unknownRuntime(p.Host, name, have)
}

// gvisorPidsFactor and gvisorPidsBase size the host's pids limit of a
// gVisor sandbox: runsc's ptrace platform uses several host threads per
// sandbox process (a stub process per address space, with a thread for
// each of the Sentry's threads that has run in it; a fork bomb stopped
// at 256 sandbox processes took up to about 2,000 host pids here), and
// the Sentry and Gofer have threads of their own. The sandbox's own limit
// is RLIMIT_NPROC, which gVisor's kernel enforces for the whole sandbox.
const (
	gvisorPidsFactor = 16
	gvisorPidsBase   = 1024
)

// applyRuntime adapts a container's definition to the provider's runtime.
// Under runc it changes nothing but the runtime's name. Under gVisor the
// pids cgroup limits the Sentry's host threads, not the sandbox's
// processes, and a Sentry that cannot create one dies with the whole
// sandbox; so the sandbox's process limit becomes RLIMIT_NPROC, which
// gVisor's kernel counts for the sandbox alone (under runc it would count
// every process of uid 1000 on the host), and the host limit is raised to
// what that many processes take there.
func (r Runtime) applyRuntime(hcfg *container.HostConfig, pidsLimit int64) {
	if !r.Default {
		hcfg.Runtime = r.Name
	}
	if !r.GVisor {
		return
	}
	hcfg.Ulimits = append(hcfg.Ulimits, &container.Ulimit{Name: "nproc", Soft: pidsLimit, Hard: pidsLimit})
	host := pidsLimit*gvisorPidsFactor + gvisorPidsBase
	hcfg.PidsLimit = &host
}

// startError explains a runsc that cannot start containers with its
// own network stack: releases older than the fix of gVisor issue 10704
// (Debian 12's among them) take any network namespace of a recent kernel
// for the host's, which also shows net.core.rmem_default.
func (r Runtime) startError(err error) error {
	if r.GVisor && errors.Is(startFailure(err), errRootNetns) {
		return fmt.Errorf("%w (runtime %s: this runsc cannot run its own network stack on this kernel, gVisor issue 10704; "+
			"register it with \"runtimeArgs\": [\"--network=host\"] in /etc/docker/daemon.json and reload dockerd, or install a newer runsc)", err, r.Name)
	}
	return err
}

// ending watches a gVisor sandbox's container and records why it stopped
// on its own. When a gVisor sandbox goes past its memory limit, the
// host's OOM killer ends gVisor's kernel (the Sentry), the one host
// process that holds all of the sandbox's memory, and with it the whole
// sandbox; runsc then leaves the agent's exec connection open, so without
// the watcher an execution would wait for its timeout. A nil *ending
// watches nothing.
type ending struct {
	cancel  context.CancelFunc
	done    chan struct{} // closed when the watcher returns
	stopped chan struct{} // closed when why is known

	mu  sync.Mutex
	why string
	oom bool
}

// watch starts watching the container id (named name) of a sandbox whose
// agent l starts.
func (p *Provider) watch(id, name string, l *launcher) *ending {
	ctx, cancel := context.WithCancel(context.Background())
	e := &ending{cancel: cancel, done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(e.done)
		w := p.cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		var code int64
		select {
		case r := <-w.Result:
			code = r.StatusCode
		case <-w.Error:
			return // stopped watching, or the daemon went away: nothing is known
		}
		if ctx.Err() != nil {
			return
		}
		oomKilled := func() (bool, error) {
			ictx, icancel := context.WithTimeout(ctx, 10*time.Second)
			defer icancel()
			ins, err := p.cli.ContainerInspect(ictx, id, client.ContainerInspectOptions{})
			return err == nil && ins.Container.State != nil && ins.Container.State.OOMKilled, err
		}
		oom, err := oomKilled()
		// The daemon may learn of the OOM kill (containerd's event) after
		// the exit: a 137 is looked at again for three seconds (CI saw it
		// come later than one under load).
		for i := 0; i < 30 && !oom && code == 137 && err == nil; i++ {
			select {
			case <-time.After(100 * time.Millisecond):
			case <-ctx.Done():
				return
			}
			oom, err = oomKilled()
		}
		if ctx.Err() != nil {
			return
		}
		why := fmt.Sprintf("the sandbox's container stopped (exit status %d)", code)
		if oom {
			why = "the sandbox went past its memory limit: under gVisor that limit holds for the whole sandbox, " +
				"and the host's OOM killer stopped gVisor's kernel and with it the sandbox's container"
		}
		e.mu.Lock()
		e.why, e.oom = why, oom
		e.mu.Unlock()
		close(e.stopped)
		l.drop()
		p.log.Warn("a sandbox's container stopped", "container", name, "oom_killed", oom, "status", code)
	}()
	return e
}

// ended returns why the container stopped, and whether for memory; ""
// while it runs.
func (e *ending) ended() (why string, oom bool) {
	if e == nil {
		return "", false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.why, e.oom
}

// runningGrace is how long settle waits for the end of a container the
// daemon still reports running.
const runningGrace = 1500 * time.Millisecond

// settle waits, after an execution whose agent died, until the watcher
// knows why if the container id has stopped: the agent's connection may
// break before the daemon reports the container's end.
func (e *ending) settle(ctx context.Context, cli *client.Client, id string) {
	if e == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	ins, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err == nil && ins.Container.State != nil && ins.Container.State.Running {
		// Most likely an agent killed inside a running sandbox; but on a
		// loaded machine the daemon may not have seen gVisor's end yet
		// (TestMemoryLimitGVisor once got no note): give it a moment.
		select {
		case <-e.stopped:
		case <-e.done:
		case <-time.After(runningGrace):
		}
		return
	}
	select {
	case <-e.stopped:
	case <-e.done:
	case <-ctx.Done():
	}
}

// stop stops watching and waits for the watcher to finish.
func (e *ending) stop() {
	if e == nil {
		return
	}
	e.cancel()
	<-e.done
}
