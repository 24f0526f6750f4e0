package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Options configure a Provider.
type Options struct {
	// Kubeconfig is the kubeconfig file to use. Empty means the in-cluster
	// configuration when Warden runs in a pod, else client-go's defaults
	// ($KUBECONFIG, then ~/.kube/config).
	Kubeconfig string
	// Context is the kubeconfig context; empty means its current one.
	Context string
	// Namespace holds the sandboxes' pods; it must exist. Default "warden".
	Namespace string
	// RuntimeClass, if set, is the RuntimeClass of every pod (gVisor's
	// "gvisor", say); the cluster must have it.
	RuntimeClass string
	// NodeSelector restricts the nodes pods run on.
	NodeSelector map[string]string
	// ImagePullPolicy is Always, IfNotPresent or Never. Default
	// IfNotPresent, even for :latest tags, so that images loaded onto
	// the nodes work without a registry.
	ImagePullPolicy corev1.PullPolicy
	// Timeout bounds reaching the API server when the provider opens.
	// Default 10s.
	Timeout time.Duration
	// StartTimeout bounds a pod's scheduling, image pull and start.
	// Default 2m.
	StartTimeout time.Duration
	// KeepOrphans disables the removal, at start-up, of the pods that a
	// Warden process of this host which no longer runs left behind.
	KeepOrphans bool
	// Replica, when its ID is set, makes the provider one of several
	// `warden serve` replicas sharing the namespace's sandboxes: its pods
	// name it, their environment is kept in a Secret for an adopter, and
	// StartReplica takes its Lease (see replica.go).
	Replica ReplicaOptions
	// Log receives operational messages. Default: discard.
	Log *slog.Logger
}

// Provider runs sandboxes as Kubernetes pods. It is safe for concurrent
// use.
type Provider struct {
	cs    kubernetes.Interface
	exec  execFunc
	opts  Options
	log   *slog.Logger
	owner string   // owner.ID() of this process
	rep   *replica // nil unless Options.Replica.ID is set
	// tearing counts, per pod, the Destroys under way: its sandbox is
	// leaving Boxes (or put back when the teardown failed), the pod is not
	// yet gone from the cluster, and it is not adoptable.
	tearingMu sync.Mutex
	tearing   map[string]int
	// hookOwnerChecked, in tests, runs in ownerOf after it found the
	// sandbox missing from Boxes.
	hookOwnerChecked func()

	kit.Base[*podState]
}

var _ sandbox.Provider = (*Provider)(nil)

// podState is what the provider keeps of a sandbox besides its session.
type podState struct {
	pod string // the pod's name

	mu  sync.Mutex
	why string // set once the pod is known dead: why
	oom bool
	// adopted is set on a sandbox taken over from another Warden process
	// until its first execution, whose result says the session restarted.
	adopted string
}

// takeAdopted returns, once, why the session of an adopted sandbox
// restarted.
func (s *podState) takeAdopted() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.adopted
	s.adopted = ""
	return a
}

func (s *podState) ended() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.why, s.oom
}

func (s *podState) end(why string, oom bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.why == "" {
		s.why, s.oom = why, oom
	}
}

type box = kit.Sandbox[*podState]

// New connects to the cluster, checks that the namespace exists, makes
// sure the NetworkPolicy that cuts sandboxes off the network is there and,
// unless opts.KeepOrphans is set, removes the pods that dead Warden
// processes of this host left behind. It fails with sandbox.ErrUnavailable
// when the API server cannot be reached within opts.Timeout, and with
// sandbox.ErrInvalid when the namespace does not exist.
func New(ctx context.Context, opts Options) (*Provider, error) {
	cfg, err := restConfig(opts)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %v: %w", err, sandbox.ErrUnavailable)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %v: %w", err, sandbox.ErrUnavailable)
	}
	return newProvider(ctx, cs, remoteExec(cs, cfg, opts.namespace()), opts)
}

// restConfig loads the client configuration opts asks for.
func restConfig(opts Options) (*rest.Config, error) {
	var cfg *rest.Config
	if opts.Kubeconfig == "" && opts.Context == "" {
		cfg, _ = rest.InClusterConfig() // nil outside a pod
	}
	if cfg == nil {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = opts.Kubeconfig
		var err error
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: opts.Context}).ClientConfig()
		if err != nil {
			return nil, err
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.UserAgent = "warden"
	// Every sandbox costs a few requests; client-go's default of 5 a
	// second would queue a burst of creates.
	cfg.QPS, cfg.Burst = 50, 100
	return cfg, nil
}

func (o Options) namespace() string {
	if o.Namespace == "" {
		return "warden"
	}
	return o.Namespace
}

// newProvider opens a provider on a clientset; tests pass a fake one and
// an exec that runs the agent on the host.
func newProvider(ctx context.Context, cs kubernetes.Interface, exec execFunc, opts Options) (*Provider, error) {
	opts.Namespace = opts.namespace()
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 2 * time.Minute
	}
	if opts.ImagePullPolicy == "" {
		opts.ImagePullPolicy = corev1.PullIfNotPresent
	}
	switch opts.ImagePullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return nil, fmt.Errorf("image pull policy %q: want Always, IfNotPresent or Never: %w", opts.ImagePullPolicy, sandbox.ErrInvalid)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Provider{cs: cs, exec: exec, opts: opts, log: log.With("provider", string(sandbox.ProviderKubernetes), "namespace", opts.Namespace), owner: owner.ID()}
	p.Teardown = p.teardown
	if opts.Replica.ID != "" {
		if err := ValidateReplicaID(opts.Replica.ID); err != nil {
			return nil, err
		}
		p.rep = &replica{opts: opts.Replica.withDefaults()}
	}

	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	if _, err := cs.CoreV1().Namespaces().Get(cctx, opts.Namespace, metav1.GetOptions{}); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return nil, fmt.Errorf("namespace %q does not exist; create it (kubectl create namespace %s) or set SANDBOX__KUBERNETES_NAMESPACE: %w", opts.Namespace, opts.Namespace, sandbox.ErrInvalid)
		case apierrors.IsForbidden(err):
			// Warden may lack the right to read namespaces; creating a
			// pod will tell.
		default:
			return nil, fmt.Errorf("kubernetes API server: %w", unreachable(cctx, err))
		}
	}
	if err := p.checkRuntimeClass(cctx); err != nil {
		return nil, err
	}
	if err := p.ensureNetworkPolicy(cctx); err != nil {
		return nil, err
	}
	if !opts.KeepOrphans {
		kit.SweepOrphans(ctx, p.log, "pods", p.RemoveOrphans)
	}
	return p, nil
}

// unreachable classifies an error from a first request to the API server.
func unreachable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("no answer: %v: %w", err, sandbox.ErrUnavailable)
	}
	return convert(err)
}

// Name implements sandbox.Provider.
func (p *Provider) Name() string { return string(sandbox.ProviderKubernetes) }

// Namespace is the namespace of the provider's pods.
func (p *Provider) Namespace() string { return p.opts.Namespace }

// Capabilities implements sandbox.Provider. There is no per-sandbox
// process limit (the kubelet's podPidsLimit bounds every pod of a node),
// no host mounts (pods run on other machines) and the workspace's size
// limit is enforced by eviction, not by the kernel.
func (p *Provider) Capabilities() sandbox.Capabilities {
	return sandbox.Capabilities{
		Isolation:     sandbox.IsolationContainer,
		NetworkToggle: true,
		MemoryLimit:   true,
		CPULimit:      true,
		Images:        true,
	}
}

// Create implements sandbox.Provider. Nothing it made is left in the
// cluster when it fails.
func (p *Provider) Create(ctx context.Context, spec sandbox.Spec) (info sandbox.Info, err error) {
	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		return sandbox.Info{}, err
	}
	if spec.WorkspaceDir != "" {
		return sandbox.Info{}, fmt.Errorf("workspace_dir %q: a pod's workspace lives on its node, not on Warden's host: %w", spec.WorkspaceDir, sandbox.ErrInvalid)
	}
	if len(spec.Mounts) > 0 {
		return sandbox.Info{}, fmt.Errorf("mounts: pods cannot mount directories of Warden's host: %w", sandbox.ErrInvalid)
	}
	id := sandbox.NewID()
	name := podName(spec.NamePrefix, id)
	b := &box{Info: sandbox.Info{ID: id, Provider: p.Name(), Name: name, Spec: spec, WorkspaceUID: -1, WorkspaceGID: -1}, Box: &podState{pod: name}}

	pods := p.cs.CoreV1().Pods(p.opts.Namespace)
	made, err := pods.Create(ctx, p.podFor(id, name, spec), metav1.CreateOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return sandbox.Info{}, fmt.Errorf("creating pod: namespace %q does not exist: %w", p.opts.Namespace, sandbox.ErrInvalid)
		}
		return sandbox.Info{}, fmt.Errorf("creating pod %s: %w", name, convert(err))
	}
	defer func() {
		if err != nil {
			if derr := p.deletePod(context.WithoutCancel(ctx), name, false); derr != nil {
				p.log.Warn("removing the pod of a failed create", "pod", name, "err", derr)
			}
		}
	}()
	if err := p.saveEnv(ctx, made, spec.Env); err != nil {
		return sandbox.Info{}, err
	}
	if err := p.waitStarted(ctx, name, spec.Image); err != nil {
		return sandbox.Info{}, err
	}
	b.Session = kit.NewSession(&launcher{p: p, pod: name}, spec, spec.WorkspacePath)
	if _, err := b.Session.Start(ctx); err != nil {
		_ = b.Session.Close()
		if why, _ := p.diagnose(context.WithoutCancel(ctx), name); why != "" {
			return sandbox.Info{}, fmt.Errorf("pod %s: %s: %w", name, why, sandbox.ErrUnavailable)
		}
		return sandbox.Info{}, fmt.Errorf("image %s: %w", spec.Image, err)
	}
	p.Boxes.Add(b)
	p.log.Debug("created sandbox", "sandbox_id", id, "pod", name)
	return b.Info, nil
}

// Exec implements sandbox.Provider. When the sandbox's pod died (out of
// memory, evicted, deleted, its node lost) the result says so in a note,
// and later executions fail with sandbox.ErrConflict.
func (p *Provider) Exec(ctx context.Context, id sandbox.ID, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
	b, err := p.Boxes.Get(id)
	if err != nil {
		return sandbox.ExecResult{}, err
	}
	if why, _ := b.Box.ended(); why != "" {
		return sandbox.ExecResult{}, fmt.Errorf("sandbox %s: %s; destroy it and create another: %w", id, why, sandbox.ErrConflict)
	}
	r, err := p.Base.Exec(ctx, id, req)
	if why := b.Box.takeAdopted(); why != "" {
		r.Notes = append(r.Notes, why)
	}
	lost := r.Error != nil && r.Error.Name == "SandboxError"
	failed := err != nil && ctx.Err() == nil && !errors.Is(err, sandbox.ErrNotFound) && !errors.Is(err, sandbox.ErrInvalid)
	if !lost && !failed {
		return r, err
	}
	why, oom := p.diagnose(context.WithoutCancel(ctx), b.Box.pod)
	if why == "" {
		return r, err
	}
	b.Box.end(why, oom)
	if err != nil {
		return r, fmt.Errorf("sandbox %s: %s; destroy it and create another: %w", id, why, sandbox.ErrConflict)
	}
	r.OOMKilled = r.OOMKilled || oom
	r.Notes = append(r.Notes, why+"; the sandbox cannot run anything more")
	return r, nil
}

// Destroy implements sandbox.Provider (kit.Base's). The pod is marked
// as being torn down before its sandbox leaves Boxes, until it is gone
// or, when the teardown failed, its sandbox is back in Boxes: in
// between, Owner would take it for a pod this replica left and the
// service adopt it back.
func (p *Provider) Destroy(ctx context.Context, id sandbox.ID) error {
	b, err := p.Boxes.Get(id)
	if err != nil {
		return err
	}
	p.markTearing(b.Box.pod, 1)
	defer p.markTearing(b.Box.pod, -1)
	return p.Base.Destroy(ctx, id)
}

// markTearing counts a Destroy of pod in (1) or out (-1).
func (p *Provider) markTearing(pod string, d int) {
	p.tearingMu.Lock()
	defer p.tearingMu.Unlock()
	if p.tearing == nil {
		p.tearing = map[string]int{}
	}
	if p.tearing[pod] += d; p.tearing[pod] <= 0 {
		delete(p.tearing, pod)
	}
}

func (p *Provider) isTearing(pod string) bool {
	p.tearingMu.Lock()
	defer p.tearingMu.Unlock()
	return p.tearing[pod] > 0
}

// teardown ends the agent and deletes the pod (kit.Base's Destroy),
// waiting (up to a minute) until the kubelet has stopped its processes.
// A pod that could not be deleted keeps the sandbox known, so that Destroy
// can be tried again instead of leaking a pod nobody can reach.
func (p *Provider) teardown(ctx context.Context, b *box) error {
	_ = b.Session.Close()
	if p.rep != nil && p.takenOver(context.WithoutCancel(ctx), b.Box.pod) {
		return nil
	}
	if err := p.deletePod(context.WithoutCancel(ctx), b.Box.pod, true); err != nil {
		return kit.Retry(err)
	}
	p.deleteEnvSecret(context.WithoutCancel(ctx), b.Box.pod)
	return nil
}

// takenOver reports whether another replica adopted the pod (while this
// one could not renew its Lease): then it is not this one's to delete,
// whatever its registry says. The check and the delete are not atomic; a
// replica whose Lease lapsed is the rare case it guards against.
func (p *Provider) takenOver(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	pod, err := p.cs.CoreV1().Pods(p.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil || pod.Annotations[annotationOwner] == p.owner && pod.Annotations[annotationReplica] == p.rep.opts.ID {
		return false
	}
	p.log.Warn("not deleting a pod another replica took over", "pod", name, "replica", pod.Annotations[annotationReplica])
	return true
}

// Close implements sandbox.Provider: it destroys every sandbox and, for a
// replica, deletes its Lease.
func (p *Provider) Close(ctx context.Context) error {
	err := p.Boxes.DestroyAll(ctx, p.Destroy) // Base.Close, with this Destroy
	p.closeReplica(ctx)
	return err
}

// deletePod deletes a pod. With wait it waits until the pod is gone (its
// containers stopped), for at most a minute.
func (p *Provider) deletePod(ctx context.Context, name string, wait bool) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	pods := p.cs.CoreV1().Pods(p.opts.Namespace)
	grace := int64(0)
	if wait {
		// A grace period of 0 removes the object at once, whatever the
		// kubelet does; 1 leaves it until the containers are gone. The
		// pod's init ends on SIGTERM, so this costs no second.
		grace = 1
	}
	err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting pod %s: %w", name, convert(err))
	}
	if !wait {
		return nil
	}
	return p.waitGone(ctx, name)
}

// convert maps API errors to Warden's error classes; client-go's types do
// not leave this package.
func convert(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case apierrors.IsNotFound(err):
		return fmt.Errorf("%v: %w", err, sandbox.ErrNotFound)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return fmt.Errorf("%v: %w", err, sandbox.ErrInvalid)
	case apierrors.IsAlreadyExists(err), apierrors.IsConflict(err):
		return fmt.Errorf("%v: %w", err, sandbox.ErrConflict)
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		// RBAC or admission refused: the operator's configuration, not
		// the caller's request.
		return fmt.Errorf("%v (see the RBAC rules in docs/kubernetes.md): %w", err, sandbox.ErrUnavailable)
	case apierrors.IsTooManyRequests(err):
		return fmt.Errorf("%v: %w", err, sandbox.ErrLimit)
	default:
		var st apierrors.APIStatus
		if errors.As(err, &st) {
			return fmt.Errorf("%v", err)
		}
		// Transport errors: connection refused, TLS, DNS.
		return fmt.Errorf("%v: %w", err, sandbox.ErrUnavailable)
	}
}
