package docker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/safedir"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Labels Warden puts on its containers.
const (
	LabelManaged   = "org.warden.managed"
	LabelSandbox   = "org.warden.sandbox"
	LabelOwner     = "org.warden.owner"
	LabelWorkspace = "org.warden.workspace" // set when Warden created the workspace dir
	labelUser      = "org.warden.label."    // prefix of user labels
)

// Options configure a Provider.
type Options struct {
	// Host is the Docker host ("" = DOCKER_HOST or the default socket).
	Host string
	// WorkspaceRoot is the host directory under which private workspaces
	// are created. Default: $TMPDIR/warden.
	WorkspaceRoot string
	// Timeout bounds the initial connection to the daemon. Default 5s.
	Timeout time.Duration
	// Runtime is the OCI runtime containers run under, by the name the
	// daemon knows it ("runsc" for gVisor); empty means the daemon's
	// default. New fails, saying which runtimes the daemon has, when it
	// does not list this one.
	Runtime string
	// KeepOrphans disables the removal, at start-up, of containers that a
	// Warden process which no longer runs left behind.
	KeepOrphans bool
	// Log receives operational messages. Default: discard.
	Log *slog.Logger
}

// Provider runs sandboxes as Docker containers. It is safe for concurrent
// use.
type Provider struct {
	kit.Base[ctrState]

	cli     *client.Client
	opts    Options
	log     *slog.Logger
	owner   string
	runtime Runtime

	mu       sync.Mutex
	images   map[string]bool   // images known to be present
	imageIDs map[string]string // their IDs, when they were found
	code     map[string][]byte // the compiled agent by image ID; nil: from source
	// compiling serializes compilations of the agent (agentCode).
	compiling sync.Mutex

	// start starts a created container; tests replace it to make a start
	// fail as the engine's sometimes does.
	start func(ctx context.Context, id string) error
}

var _ sandbox.Provider = (*Provider)(nil)

// ctrState is what the provider keeps of a sandbox besides its session.
type ctrState struct {
	containerID string
	ownsWS      bool    // Warden created the workspace directory
	end         *ending // under gVisor: watches the container stop
}

type box = kit.Sandbox[ctrState]

// New connects to the Docker daemon and, unless opts.KeepOrphans is set,
// removes the containers that dead Warden processes of this host left
// behind. It fails with sandbox.ErrUnavailable when the daemon cannot be
// reached within opts.Timeout, or does not have opts.Runtime.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.WorkspaceRoot == "" {
		opts.WorkspaceRoot = filepath.Join(os.TempDir(), "warden")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cli, err := newClient(opts.Host)
	if err != nil {
		return nil, fmt.Errorf("docker client: %v: %w", err, sandbox.ErrUnavailable)
	}
	if n, last := connect(ctx, cli, opts.Timeout, 0, 0); n == 0 || last.err != nil {
		cli.Close()
		if n == 0 { // ctx ended before the ping
			last.err = context.Cause(ctx)
		}
		return nil, fmt.Errorf("docker daemon at %s: %v: %w", cli.DaemonHost(), last.err, sandbox.ErrUnavailable)
	}
	pctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	rt, err := resolveRuntime(pctx, cli, opts.Runtime)
	if err != nil {
		cli.Close()
		return nil, err
	}
	p := &Provider{
		cli:      cli,
		opts:     opts,
		log:      log.With("provider", string(sandbox.ProviderDocker)),
		owner:    owner.ID(),
		runtime:  rt,
		images:   map[string]bool{},
		imageIDs: map[string]string{},
		code:     map[string][]byte{},
	}
	p.Teardown = p.teardown
	p.start = func(ctx context.Context, id string) error {
		_, err := p.cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
		return err
	}
	if !opts.KeepOrphans {
		if n, err := p.RemoveOrphans(ctx); err != nil {
			p.log.Warn("removing orphaned containers", "err", err)
		} else if n > 0 {
			p.log.Info("removed orphaned containers", "count", n)
		}
	}
	return p, nil
}

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return string(sandbox.ProviderDocker) }

// Runtime returns the OCI runtime the provider's containers run under.
func (p *Provider) Runtime() Runtime { return p.runtime }

// WithRuntime opens another provider on the same daemon, with the same
// options but the runtime name (see [Options.Runtime]); it leaves the
// containers of this one alone.
func (p *Provider) WithRuntime(ctx context.Context, name string) (*Provider, error) {
	opts := p.opts
	opts.Runtime = name
	opts.KeepOrphans = true
	if opts.Host == "" {
		opts.Host = p.cli.DaemonHost()
	}
	return New(ctx, opts)
}

// Capabilities implements sandbox.Provider. Under gVisor with runsc's
// --network=none, sandboxes cannot have a network.
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{
		Isolation:     sandbox.IsolationContainer,
		NetworkToggle: !p.noNetwork(),
		MemoryLimit:   true,
		CPULimit:      true,
		PidsLimit:     true,
		Mounts:        true,
		Images:        true,
	}
}

// Client returns the Docker client, for image management.
func (p *Provider) Client() *client.Client { return p.cli }

// Create implements sandbox.Provider.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (info sandbox.Info, err error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return sandbox.Info{}, err
	}
	for _, m := range spec.Mounts {
		if st, err := os.Stat(m.Source); err != nil || !st.IsDir() {
			return sandbox.Info{}, fmt.Errorf("mount source %q is not an existing directory: %w", m.Source, sandbox.ErrInvalid)
		}
	}
	if spec.Network && p.noNetwork() {
		return sandbox.Info{}, fmt.Errorf("networking: the Docker runtime %s runs gVisor with --network=none, so its sandboxes have no network: %w", p.runtime.Name, sandbox.ErrUnsupported)
	}
	if err := p.ensureImage(ctx, spec.Image, spec.AutoPullImage); err != nil {
		return sandbox.Info{}, err
	}
	id := sandbox.NewID()
	b := &box{Info: sandbox.Info{ID: id, Provider: p.Name(), Name: spec.NamePrefix + "-" + string(id), Spec: spec, WorkspaceUID: 1000, WorkspaceGID: 1000}}

	// Undo everything on failure; teardown must outlive a cancelled ctx.
	var cleanups []func()
	defer func() {
		if err != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()

	ws := spec.WorkspaceDir
	if ws == "" {
		ws, err = makeWorkspace(p.opts.WorkspaceRoot, string(id))
		if err != nil {
			return sandbox.Info{}, err
		}
		b.Box.ownsWS = true
		cleanups = append(cleanups, func() { _ = os.RemoveAll(ws) })
	} else if st, serr := os.Stat(ws); serr != nil || !st.IsDir() {
		return sandbox.Info{}, fmt.Errorf("workspace_dir %q is not an existing directory: %w", ws, sandbox.ErrInvalid)
	}
	b.Info.Workspace = ws

	cfg, hcfg := p.containerConfig(b, spec, ws)
	created, err := p.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg, HostConfig: hcfg, Name: b.Info.Name})
	if err != nil {
		return sandbox.Info{}, fmt.Errorf("creating container: %w", convert(err))
	}
	b.Box.containerID = created.ID
	cleanups = append(cleanups, func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, _ = p.cli.ContainerRemove(rctx, created.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	})
	if err := p.startContainer(ctx, created.ID); err != nil {
		return sandbox.Info{}, fmt.Errorf("starting container: %w", p.runtime.startError(convert(err)))
	}
	if rootTmpfs(hcfg) {
		if err := p.openRoot(ctx, created.ID); err != nil {
			return sandbox.Info{}, err
		}
	}
	l := &launcher{cli: p.cli, containerID: created.ID, workspace: spec.WorkspacePath,
		code: p.agentCode(ctx, spec.Image, created.ID)}
	if p.runtime.GVisor {
		b.Box.end = p.watch(created.ID, b.Info.Name, l)
		cleanups = append(cleanups, b.Box.end.stop)
	}
	b.Session = kit.NewSession(l, spec, spec.WorkspacePath)
	cleanups = append(cleanups, func() { _ = b.Session.Close() })
	if _, err := b.Session.Start(ctx); err != nil {
		return sandbox.Info{}, fmt.Errorf("image %s: %w", spec.Image, err)
	}
	p.Boxes.Add(b)
	p.log.Debug("created sandbox", "sandbox_id", id, "container", b.Info.Name)
	return b.Info, nil
}

// startAttempts bounds the starts of one container.
const startAttempts = 3

// startContainer starts a created container, and starts it again when the
// OCI runtime failed to create its first process (errRuntimeCreate),
// which leaves the container as it was. Software on the host that
// unmounts the container's root filesystem under runc (a root
// slirp4netns --enable-sandbox, for one) causes that failure, and a
// second start works; no other failure is retried.
func (p *Provider) startContainer(ctx context.Context, id string) error {
	var err error
	for attempt := 1; attempt <= startAttempts; attempt++ {
		if err = p.start(ctx, id); err == nil || !runtimeCreateFailed(err) || attempt == startAttempts {
			return err
		}
		p.log.Warn("the container runtime failed to start a sandbox's container; starting it again", "container", id, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
	return err
}

// runtimeCreateFailed tells a failure of the OCI runtime to create the
// container's process, which leaves the container as it was, created.
func runtimeCreateFailed(err error) bool {
	return errors.Is(startFailure(err), errRuntimeCreate)
}

// Failures of a container start that Warden handles, as startFailure
// classifies them.
var (
	// errRuntimeCreate: the OCI runtime could not create the container's
	// first process; the container is still created and can be started
	// again.
	errRuntimeCreate = errors.New("the OCI runtime failed to create the container's process")
	// errRootNetns: runsc took the container's network namespace for the
	// host's (gVisor issue 10704).
	errRootNetns = errors.New("runsc cannot run its network stack in this network namespace")
)

// startFailure classifies an error of ContainerStart. The engine passes
// the OCI runtime's failures on as text only, so this is the one place
// that reads an error's text: the result matches errRuntimeCreate or
// errRootNetns with errors.Is when the text says so, and wraps err.
func startFailure(err error) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	msg := err.Error()
	if strings.Contains(msg, "OCI runtime create failed") {
		errs = append(errs, errRuntimeCreate)
	}
	if strings.Contains(msg, "cannot run with network enabled in root network namespace") {
		errs = append(errs, errRootNetns)
	}
	if len(errs) == 1 {
		return err
	}
	return &classified{errs}
}

// classified is an engine error (first) with the classes startFailure
// found in it.
type classified struct{ errs []error }

func (c *classified) Error() string   { return c.errs[0].Error() }
func (c *classified) Unwrap() []error { return c.errs }

// containerConfig is the hardened container definition of a sandbox.
func (p *Provider) containerConfig(b *box, spec sandbox.Spec, ws string) (*container.Config, *container.HostConfig) {
	labels := map[string]string{
		LabelManaged: "1",
		LabelSandbox: string(b.Info.ID),
		LabelOwner:   p.owner,
	}
	if b.Box.ownsWS {
		labels[LabelWorkspace] = ws
	}
	for k, v := range spec.Labels {
		labels[labelUser+k] = v
	}
	network := container.NetworkMode("none")
	if spec.Network {
		network = "bridge"
	}
	mounts := []mount.Mount{{Type: mount.TypeBind, Source: ws, Target: spec.WorkspacePath}}
	for _, m := range spec.Mounts {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	init := true
	pids := spec.PidsLimit
	cfg := &container.Config{
		Image:      spec.Image,
		Cmd:        []string{"sleep", "infinity"},
		User:       initUser,
		WorkingDir: spec.WorkspacePath,
		Hostname:   "sandbox",
		Labels:     labels,
	}
	hcfg := &container.HostConfig{
		Init:           &init,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": fmt.Sprintf("rw,nosuid,nodev,exec,size=%d,mode=1777", spec.TmpSize)},
		NetworkMode:    network,
		IpcMode:        "private",
		LogConfig:      container.LogConfig{Type: "none"},
		Mounts:         mounts,
		Resources: container.Resources{
			Memory:     spec.MemoryLimit,
			MemorySwap: spec.MemoryLimit, // no swap on top of the limit
			NanoCPUs:   int64(spec.CPULimit * 1e9),
			PidsLimit:  &pids,
		},
	}
	// Images keep /root for root alone (0700): a directory mounted below
	// it, as `warden exec --read-dir` does with one of root's, would be out
	// of the sandbox user's reach. Such a sandbox gets an empty /root of
	// its own, which openRoot makes passable once the container runs (runc
	// gives a tmpfs the mode of the directory it covers).
	for _, m := range mounts {
		if strings.HasPrefix(m.Target, "/root/") {
			hcfg.Mounts = append(hcfg.Mounts, mount.Mount{Type: mount.TypeTmpfs, Target: "/root",
				TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o755}})
			break
		}
	}
	p.runtime.applyRuntime(hcfg, pids)
	return cfg, hcfg
}

// noNetwork reports that the runtime gives sandboxes no network at all.
func (p *Provider) noNetwork() bool {
	return p.runtime.GVisor && p.runtime.Network == GVisorNetNone
}

func (p *Provider) ensureImage(ctx context.Context, image string, pull bool) error {
	p.mu.Lock()
	ok := p.images[image]
	p.mu.Unlock()
	if ok {
		return nil
	}
	img, err := p.cli.ImageInspect(ctx, image)
	if err != nil && cerrdefs.IsNotFound(err) && pull {
		var rc io.ReadCloser
		rc, err = p.cli.ImagePull(ctx, image, client.ImagePullOptions{})
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err == nil {
			img, err = p.cli.ImageInspect(ctx, image)
		}
	}
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("image %q is not on the Docker engine; build it with `warden image build`, load it with `docker load`, or let Warden pull it (SANDBOX__AUTO_PULL_IMAGE=true; auto_pull_image in the API): %w", image, sandbox.ErrInvalid)
		}
		return fmt.Errorf("image %q: %w", image, convert(err))
	}
	p.mu.Lock()
	p.images[image] = true
	p.imageIDs[image] = img.ID
	p.mu.Unlock()
	return nil
}

// Exec implements sandbox.Provider. Under gVisor a sandbox whose
// container has stopped (out of memory, say) says so instead of running.
func (p *Provider) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	var end *ending
	var cid string
	if b, err := p.Boxes.Get(id); err == nil {
		end, cid = b.Box.end, b.Box.containerID
	}
	if why, _ := end.ended(); why != "" {
		return sandbox.ExecResult{}, fmt.Errorf("sandbox %s: %s; destroy it and create another: %w", id, why, sandbox.ErrConflict)
	}
	r, err := p.Base.Exec(ctx, id, req)
	if r.ExitCode == 137 && r.Error != nil && r.Error.Name == "SandboxError" {
		end.settle(ctx, p.cli, cid)
	}
	if why, oom := end.ended(); why != "" {
		r.OOMKilled = r.OOMKilled || oom
		r.Notes = append(r.Notes, why+"; the sandbox cannot run anything more")
	}
	return r, err
}

// teardown removes the container and, if Warden created it, the
// workspace directory. A container that cannot be removed keeps its
// sandbox registered, so Destroy can be retried instead of leaking a
// running container nobody can reach.
func (p *Provider) teardown(ctx context.Context, b *box) error {
	b.Box.end.stop()
	_ = b.Session.Close()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
	defer cancel()
	if _, err := p.cli.ContainerRemove(ctx, b.Box.containerID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return kit.Retry(fmt.Errorf("removing container %s: %w", b.Info.Name, convert(err)))
	}
	if b.Box.ownsWS {
		if err := os.RemoveAll(b.Info.Workspace); err != nil {
			return fmt.Errorf("removing workspace: %w", err)
		}
	}
	return nil
}

// Close destroys every sandbox of this provider and closes the client.
func (p *Provider) Close(ctx context.Context) error {
	err := p.Base.Close(ctx)
	return errors.Join(err, p.cli.Close())
}

// RemoveOrphans removes the Warden containers of this host whose owning
// process no longer runs, with the workspaces Warden created for them. It
// returns how many it removed. Containers of live Warden processes, and
// of other hosts sharing the daemon, are left alone.
func (p *Provider) RemoveOrphans(ctx context.Context) (int, error) {
	list, err := p.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelManaged+"=1"),
	})
	if err != nil {
		return 0, fmt.Errorf("listing containers: %w", convert(err))
	}
	n := 0
	var errs []error
	for _, c := range list.Items {
		if ownerAlive(c.Labels[LabelOwner]) {
			continue
		}
		if _, err := p.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, convert(err))
			continue
		}
		if ws := c.Labels[LabelWorkspace]; ws != "" && strings.HasPrefix(ws, p.opts.WorkspaceRoot+string(filepath.Separator)) {
			_ = os.RemoveAll(ws)
		}
		n++
	}
	return n, errors.Join(errs...)
}

// makeWorkspace creates a private workspace directory that the sandbox
// user (uid 1000) can write, whatever the host user is.
func makeWorkspace(root, id string) (string, error) {
	if err := safedir.EnsureRoot(root); err != nil {
		return "", fmt.Errorf("%w: %w", err, sandbox.ErrInvalid)
	}
	dir := filepath.Join(root, id)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating workspace: %w", err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(dir, 1000, 1000); err != nil {
			return "", fmt.Errorf("creating workspace: %w", err)
		}
	} else if err := os.Chmod(dir, 0o777); err != nil {
		return "", fmt.Errorf("creating workspace: %w", err)
	}
	return dir, nil
}

// ownerAlive reports whether the process named by an owner label still
// runs. Owners on other hosts are assumed alive: we cannot tell.
func ownerAlive(id string) bool {
	alive, ok := owner.Alive(id)
	return ok && alive // a label we cannot read names no live owner
}

// convert maps Docker SDK errors to Warden's error classes. The SDK's own
// types do not leave this package.
func convert(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("%v: %w", err, sandbox.ErrNotFound)
	case cerrdefs.IsInvalidArgument(err):
		return fmt.Errorf("%v: %w", err, sandbox.ErrInvalid)
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("%v: %w", err, sandbox.ErrConflict)
	case cerrdefs.IsUnavailable(err), client.IsErrConnectionFailed(err):
		return fmt.Errorf("%v: %w", err, sandbox.ErrUnavailable)
	default:
		return fmt.Errorf("%v", err)
	}
}

// rootTmpfs reports whether containerConfig gave the sandbox a /root of
// its own.
func rootTmpfs(hcfg *container.HostConfig) bool {
	for _, m := range hcfg.Mounts {
		if m.Type == mount.TypeTmpfs && m.Target == "/root" {
			return true
		}
	}
	return false
}

// openRoot makes the sandbox's own /root (a tmpfs of root's) passable by
// its user: mode 0755, set by root in the container before any of the
// sandbox's code runs (root there has no capability; it owns the tmpfs).
func (p *Provider) openRoot(ctx context.Context, id string) error {
	ex, err := p.cli.ExecCreate(ctx, id, client.ExecCreateOptions{User: "0:0", Cmd: []string{"chmod", "0755", "/root"}})
	if err != nil {
		return fmt.Errorf("opening /root to the sandbox's user: %w", convert(err))
	}
	if _, err := p.cli.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true}); err != nil {
		return fmt.Errorf("opening /root to the sandbox's user: %w", convert(err))
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ins, err := p.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return fmt.Errorf("opening /root to the sandbox's user: %w", convert(err))
		}
		if !ins.Running {
			if ins.ExitCode != 0 {
				return fmt.Errorf("opening /root to the sandbox's user: chmod exited with %d", ins.ExitCode)
			}
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("opening /root to the sandbox's user: chmod did not end: %w", cmp.Or(ctx.Err(), context.DeadlineExceeded))
		}
	}
}
