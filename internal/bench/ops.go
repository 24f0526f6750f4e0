package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Labels put on every container the benchmark starts itself. Warden
// sandboxes carry them too, with the provider's prefix for user labels
// (org.warden.label.bench=1).
const (
	LabelBench = "org.warden.bench"     // always "1"
	LabelRun   = "org.warden.bench.run" // one value per Run, for the final sweep
)

// The measured code. Each is the cheapest statement that still makes a
// full round trip through the interpreter or the shell.
const (
	pyStatement  = "x = 1"
	pyPrint      = "print(1)"
	shellCommand = "true"
)

// An op is one measured operation. fn performs it once; the caller times
// the whole call. fn may report the durations of named sub-steps (parts),
// in the order of op.parts.
type op struct {
	name  string
	parts []string
	fn    func(ctx context.Context) (parts []time.Duration, err error)
}

// pyReq and shellReq are the measured requests.
func pyReq() sandbox.ExecRequest {
	return sandbox.ExecRequest{Language: sandbox.Python, Code: pyStatement}
}

func shellReq() sandbox.ExecRequest {
	return sandbox.ExecRequest{Language: sandbox.Shell, Code: shellCommand}
}

// wardenExec runs req in the live sandbox id through provider.Exec and
// fails on anything but a clean exit.
func wardenExec(p sandbox.Provider, id sandbox.ID, name string, req sandbox.ExecRequest) op {
	return op{name: name, fn: func(ctx context.Context) ([]time.Duration, error) {
		res, err := p.Exec(ctx, id, req)
		if err != nil {
			return nil, err
		}
		return nil, checkResult(res)
	}}
}

func checkResult(res sandbox.ExecResult) error {
	if res.Error != nil || res.ExitCode != 0 || res.TimedOut {
		return fmt.Errorf("exit code %d, timed out %t: %s%s", res.ExitCode, res.TimedOut, res.ErrorTraceback(), tail(res.Stderr))
	}
	return nil
}

// wardenLifecycle creates a sandbox, runs print(1) in it and destroys it,
// reporting the three steps as parts (named create, first, destroy). With
// cpu, a fourth part is the CPU time the lifecycle cost: this process's
// own, plus that of the sandbox's processes just before it is destroyed.
func wardenLifecycle(p sandbox.Provider, spec sandbox.Spec, name, create, first, destroy string, cpu *cpuProbe) op {
	parts := []string{create, first, destroy}
	if cpu != nil {
		parts = append(parts, cpu.name)
	}
	return op{
		name:  name,
		parts: parts,
		fn: func(ctx context.Context) (_ []time.Duration, err error) {
			cpu0 := selfCPU()
			t0 := time.Now()
			info, err := p.Create(ctx, spec)
			if err != nil {
				return nil, fmt.Errorf("creating sandbox: %w", err)
			}
			t1 := time.Now()
			destroyed := false
			defer func() {
				if !destroyed {
					_ = p.Destroy(context.WithoutCancel(ctx), info.ID)
				}
			}()
			res, err := p.Exec(ctx, info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: pyPrint})
			if err != nil {
				return nil, err
			}
			if err := checkResult(res); err != nil {
				return nil, err
			}
			if got := strings.TrimSpace(string(res.Stdout)); got != "1" {
				return nil, fmt.Errorf("print(1) wrote %q", res.Stdout)
			}
			t2 := time.Now()
			var inside, probing time.Duration
			if cpu != nil {
				c := selfCPU()
				if inside, err = cpu.sandbox(ctx, info); err != nil {
					return nil, fmt.Errorf("measuring the sandbox's CPU time: %w", err)
				}
				probing = selfCPU() - c
			}
			destroyed = true
			if err := p.Destroy(ctx, info.ID); err != nil {
				return nil, fmt.Errorf("destroying sandbox: %w", err)
			}
			t3 := time.Now()
			out := []time.Duration{t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)}
			if cpu != nil {
				out = append(out, inside+selfCPU()-cpu0-probing)
			}
			return out, nil
		},
	}
}

// wardenRun is p's one-shot run of print(1) (sandbox.Run): a fresh
// sandbox made for it and removed before Run returns; its part first is
// the time to the output's arrival (OnOutput), the first result.
func wardenRun(p sandbox.Provider, spec sandbox.Spec, name, first string) op {
	return op{name: name, parts: []string{first}, fn: func(ctx context.Context) ([]time.Duration, error) {
		var mu sync.Mutex
		var out time.Time // the first output's arrival
		req := sandbox.ExecRequest{Language: sandbox.Python, Code: pyPrint, OnOutput: func(sandbox.Stream, []byte) {
			mu.Lock()
			if out.IsZero() {
				out = time.Now()
			}
			mu.Unlock()
		}}
		t0 := time.Now()
		res, err := sandbox.Run(ctx, p, spec, req)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if out.IsZero() {
			return nil, errors.New("print(1): no output as it ran")
		}
		if err := checkResult(res); err != nil {
			return nil, err
		}
		if got := strings.TrimSpace(string(res.Stdout)); got != "1" {
			return nil, fmt.Errorf("print(1) wrote %q", res.Stdout)
		}
		return []time.Duration{out.Sub(t0)}, nil
	}}
}

// cpuProbe measures the CPU time of a sandbox's processes, all of which
// descend from its root (the Docker provider's agent does not): a
// lifecycle's part named name.
type cpuProbe struct {
	name string
	root rootFunc
}

// rootFunc returns the host PID at the root of a sandbox's processes.
type rootFunc func(ctx context.Context, info sandbox.Info) (int, error)

// sandbox returns the CPU time the live sandbox info's processes used.
func (c *cpuProbe) sandbox(ctx context.Context, info sandbox.Info) (time.Duration, error) {
	root, err := c.root(ctx, info)
	if err != nil {
		return 0, err
	}
	return treeCPU(root), nil
}

// hostPIDer is a provider that tells the host PID at the root of a
// sandbox's process tree (the bubblewrap provider).
type hostPIDer interface {
	HostPID(id sandbox.ID) (int, error)
}

// providerRoot is the rootFunc of a provider that is a hostPIDer.
func providerRoot(p sandbox.Provider) rootFunc {
	h, ok := p.(hostPIDer)
	if !ok {
		return nil
	}
	return func(_ context.Context, info sandbox.Info) (int, error) {
		pid, err := h.HostPID(info.ID)
		if err == nil && pid <= 0 {
			err = fmt.Errorf("sandbox %s runs no process", info.ID)
		}
		return pid, err
	}
}

// containerRoot is the rootFunc of the Docker provider: the container's
// first process, in whose PID namespace the agent runs.
func containerRoot(cli *client.Client) rootFunc {
	return func(ctx context.Context, info sandbox.Info) (int, error) {
		c, err := cli.ContainerInspect(ctx, info.Name, client.ContainerInspectOptions{})
		if err != nil {
			return 0, sdkErr(ctx, "inspecting container", err)
		}
		if c.Container.State == nil || c.Container.State.Pid <= 0 {
			return 0, fmt.Errorf("container %s is not running", info.Name)
		}
		return c.Container.State.Pid, nil
	}
}

// dockerCLI runs the docker CLI as a baseline, with its output discarded
// (but for the tail of stderr, kept for error messages).
type dockerCLI struct {
	path string   // absolute path of the binary
	env  []string // its whole environment
}

// newDockerCLI finds the docker CLI (path "" means "docker" on PATH) and
// points it at the daemon host of cli, so that both baselines and Warden
// talk to the same engine. extraEnv is appended to its environment.
func newDockerCLI(path string, cli *client.Client, extraEnv []string) (*dockerCLI, error) {
	if path == "" {
		path = "docker"
	}
	abs, err := exec.LookPath(path)
	if err != nil {
		return nil, err
	}
	env := append([]string{"DOCKER_HOST=" + cli.DaemonHost()}, extraEnv...)
	return &dockerCLI{path: abs, env: env}, nil
}

func (d *dockerCLI) run(ctx context.Context, args ...string) error {
	_, err := d.output(ctx, false, args...)
	return err
}

// output runs the CLI with args. Stdout is kept only if keep is set.
func (d *dockerCLI) output(ctx context.Context, keep bool, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, d.path, args...)
	cmd.Env = d.env
	setProcessGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	var stdout bytes.Buffer
	if keep {
		cmd.Stdout = &stdout
	}
	stderr := &agent.TailBuffer{Max: 2 << 10}
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("docker %s: %v%s", strings.Join(args, " "), err, tail(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// cliExec is `docker exec <container> argv...`.
func (d *dockerCLI) exec(name, containerID string, argv ...string) op {
	args := append([]string{"exec", containerID}, argv...)
	return op{name: name, fn: func(ctx context.Context) ([]time.Duration, error) {
		return nil, d.run(ctx, args...)
	}}
}

// runOnce is `docker run --rm --network none <image> python3 -c 'print(1)'`.
func (d *dockerCLI) runOnce(image, runID string) op {
	args := []string{"run", "--rm", "--network", "none",
		"--label", LabelBench + "=1", "--label", LabelRun + "=" + runID,
		image, "python3", "-c", pyPrint}
	return op{name: DockerRunCLI, fn: func(ctx context.Context) ([]time.Duration, error) {
		return nil, d.run(ctx, args...)
	}}
}

// sdkExec is what `docker exec` does, through the Go SDK: create the exec,
// attach to it, read its output to EOF, inspect it for the exit code.
func sdkExec(cli *client.Client, name, containerID string, argv ...string) op {
	return op{name: name, fn: func(ctx context.Context) ([]time.Duration, error) {
		ex, err := cli.ExecCreate(ctx, containerID, client.ExecCreateOptions{AttachStdout: true, AttachStderr: true, Cmd: argv})
		if err != nil {
			return nil, sdkErr(ctx, "creating exec", err)
		}
		att, err := cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
		if err != nil {
			return nil, sdkErr(ctx, "attaching to exec", err)
		}
		err = drain(ctx, att.HijackedResponse)
		if err != nil {
			return nil, fmt.Errorf("reading exec output: %w", err)
		}
		ins, err := cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return nil, sdkErr(ctx, "inspecting exec", err)
		}
		if ins.ExitCode != 0 {
			return nil, fmt.Errorf("exec %q: exit code %d", argv, ins.ExitCode)
		}
		return nil, nil
	}}
}

// sdkRun is what `docker run --rm --network none` does, through the Go
// SDK: create the container (auto-removed), wait for its removal, attach,
// start, read its output to EOF and collect the exit status.
func sdkRun(cli *client.Client, image, runID string) op {
	return op{name: DockerRunSDK, fn: func(ctx context.Context) (_ []time.Duration, err error) {
		id, err := createPrint(ctx, cli, image, runID, true)
		if err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				removeContainer(ctx, cli, id)
			}
		}()
		// Like the CLI: wait first, so the removal cannot be missed.
		wctx, cancelWait := context.WithCancel(ctx)
		defer cancelWait()
		wait := cli.ContainerWait(wctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionRemoved})
		consumed := false
		defer func() {
			if !consumed {
				// Unblock ContainerWait's goroutine whatever it sends.
				cancelWait()
				go func() {
					select {
					case <-wait.Result:
					case <-wait.Error:
					}
				}()
			}
		}()
		if err := attachStartDrain(ctx, cli, id); err != nil {
			return nil, err
		}
		select {
		case res := <-wait.Result:
			consumed = true
			if res.StatusCode != 0 {
				return nil, fmt.Errorf("container exited with status %d", res.StatusCode)
			}
		case err := <-wait.Error:
			consumed = true
			return nil, sdkErr(ctx, "waiting for container", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, nil
	}}
}

// sdkRunFloor is sdkRun without the removal on the measured path: create
// (not auto-removed), attach, start, read the output to EOF, wait for the
// exit; the container is removed afterwards, in the background. It is the
// least any lifecycle on Docker costs whose removal is off the request
// path (issue 13, target 3): a Warden sandbox needs the same create and
// start, and an interpreter besides.
func sdkRunFloor(cli *client.Client, image, runID string) op {
	return op{name: DockerRunFloor, fn: func(ctx context.Context) (_ []time.Duration, err error) {
		id, err := createPrint(ctx, cli, image, runID, false)
		if err != nil {
			return nil, err
		}
		defer func() { go removeContainer(ctx, cli, id) }()
		if err := attachStartDrain(ctx, cli, id); err != nil {
			return nil, err
		}
		// The output ended with the process: the exit status is there
		// (not-running: whether or not it was seen running).
		wait := cli.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		select {
		case res := <-wait.Result:
			if res.StatusCode != 0 {
				return nil, fmt.Errorf("container exited with status %d", res.StatusCode)
			}
		case err := <-wait.Error:
			return nil, sdkErr(ctx, "waiting for container", err)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, nil
	}}
}

// createPrint creates the baselines' container: the image running
// print(1), without network, labelled for the sweep.
func createPrint(ctx context.Context, cli *client.Client, image, runID string, autoRemove bool) (string, error) {
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:        image,
			Cmd:          []string{"python3", "-c", pyPrint},
			AttachStdout: true,
			AttachStderr: true,
			Labels:       map[string]string{LabelBench: "1", LabelRun: runID},
		},
		HostConfig: &container.HostConfig{AutoRemove: autoRemove, NetworkMode: "none"},
	})
	if err != nil {
		return "", sdkErr(ctx, "creating container", err)
	}
	return created.ID, nil
}

// attachStartDrain attaches to a created container, starts it and reads
// its output to EOF, as `docker run` does.
func attachStartDrain(ctx context.Context, cli *client.Client, id string) error {
	att, err := cli.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		return sdkErr(ctx, "attaching to container", err)
	}
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		att.Close()
		return sdkErr(ctx, "starting container", err)
	}
	if err := drain(ctx, att.HijackedResponse); err != nil {
		return fmt.Errorf("reading container output: %w", err)
	}
	return nil
}

// sdkErr wraps an error of the Docker SDK with what, as text (its types
// stay private), unless ctx ended, which it reports as such.
func sdkErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	return fmt.Errorf("%s: %v", what, err)
}

// drain reads a hijacked stream to EOF and closes it; ctx cancellation
// closes it early.
func drain(ctx context.Context, h client.HijackedResponse) error {
	stop := context.AfterFunc(ctx, h.Close)
	defer stop()
	defer h.Close()
	if _, err := io.Copy(io.Discard, h.Reader); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	return nil
}

// startBaseline starts the plain long-lived container of the exec
// baselines, the equivalent of
//
//	docker run -d --rm --network none <image> sleep infinity
//
// and returns its ID and a function that removes it, which the caller
// must call (it outlives ctx).
func startBaseline(ctx context.Context, cli *client.Client, image, runID string) (id string, remove func(), err error) {
	created, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{
			Image:  image,
			Cmd:    []string{"sleep", "infinity"},
			Labels: map[string]string{LabelBench: "1", LabelRun: runID},
		},
		HostConfig: &container.HostConfig{AutoRemove: true, NetworkMode: "none"},
	})
	if err != nil {
		return "", nil, sdkErr(ctx, "creating baseline container", err)
	}
	id = created.ID
	remove = func() { removeContainer(ctx, cli, id) }
	if _, err := cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		remove()
		return "", nil, sdkErr(ctx, "starting baseline container", err)
	}
	return id, remove, nil
}

// removeContainer force-removes a container, even after ctx is cancelled.
func removeContainer(ctx context.Context, cli *client.Client, id string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, _ = cli.ContainerRemove(rctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
}

// sweep force-removes every container left with the run label runID (for
// instance by a `docker run` killed on cancellation), and waits until
// they are gone: one being auto-removed is not gone yet, and one whose
// creation request was in flight when its client died may appear late.
func sweep(ctx context.Context, cli *client.Client, runID string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	filter := client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", LabelRun+"="+runID)}
	quiet := 0 // consecutive empty listings
	for {
		list, err := cli.ContainerList(ctx, filter)
		if err != nil {
			return sdkErr(ctx, "listing benchmark containers", err)
		}
		if len(list.Items) == 0 {
			if quiet++; quiet == 2 {
				return nil
			}
		} else {
			quiet = 0
		}
		var errs []error
		for _, c := range list.Items {
			_, err := cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			// Gone already, or being removed by the daemon (--rm): both fine.
			if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
				errs = append(errs, fmt.Errorf("removing benchmark container %.12s: %v", c.ID, err))
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("benchmark containers of run %s still there: %w", runID, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tail formats the end of a process's stderr for an error message.
func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ""
	}
	if len(s) > 500 {
		s = "..." + s[len(s)-500:]
	}
	return ": " + s
}
