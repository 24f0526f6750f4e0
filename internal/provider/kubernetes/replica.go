package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Several `warden serve` replicas share the sandboxes of one namespace
// (ADR 0016, item 9). Each replica holds a coordination.k8s.io Lease named
// after it, which says where it answers (annotationAddress) and, by its
// renew time, whether it lives; each pod names its replica
// (annotationReplica). A replica that does not hold a sandbox asks Owner
// where it is: forward to a live owner, or Adopt it when the owner's Lease
// has expired.
const (
	// annotationReplica names the replica that owns a pod.
	annotationReplica = "warden.dev/replica"
	// annotationAddress is a replica's base URL, on its Lease.
	annotationAddress = "warden.dev/address"
	// LabelReplica is the replica ID on its Lease.
	LabelReplica = "warden.dev/replica"
	// leasePrefix starts the name of every replica's Lease.
	leasePrefix = "warden-replica-"
	// envSecretSuffix ends the name of the Secret that keeps a
	// sandbox's environment variables for an adopter: <pod>-env.
	envSecretSuffix = "-env"
)

// ReplicaOptions configure a replica (Options.Replica).
type ReplicaOptions struct {
	// ID names the replica: a DNS label, unique among the replicas of
	// the namespace (the pod's name in a Deployment).
	ID string
	// LeaseDuration is how long a replica's Lease holds after its last
	// renewal; the Lease is renewed every third of it. Default 15s.
	LeaseDuration time.Duration
	// AdoptWindow is how long the pods of a replica whose Lease expired
	// wait to be adopted before any replica deletes them. Default 10m.
	AdoptWindow time.Duration
}

func (o ReplicaOptions) withDefaults() ReplicaOptions {
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.AdoptWindow <= 0 {
		o.AdoptWindow = 10 * time.Minute
	}
	return o
}

// ValidateReplicaID checks that id can name a replica and its Lease.
func ValidateReplicaID(id string) error {
	ok := id != "" && len(id) <= 63-len(leasePrefix)
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0 && i < len(id)-1
	}
	if !ok {
		return fmt.Errorf("replica ID %q: want 1 to %d lower-case letters, digits and inner dashes: %w", id, 63-len(leasePrefix), sandbox.ErrInvalid)
	}
	return nil
}

func leaseName(id string) string { return leasePrefix + id }

// replica is the Lease side of a provider with Options.Replica set.
type replica struct {
	opts ReplicaOptions

	mu         sync.Mutex
	address    string
	lease      *coordinationv1.Lease // as last written
	handedOver int                   // sandboxes left to the other replicas
	stop       context.CancelFunc
	done       chan struct{}
}

// ReplicaID is this provider's replica ID; "" when it is not a replica.
func (p *Provider) ReplicaID() string {
	if p.rep == nil {
		return ""
	}
	return p.rep.opts.ID
}

// StartReplica takes this replica's Lease, with address (the base URL at
// which it serves the API, such as http://10.0.0.7:8000) on it, and keeps
// renewing it until Close, which deletes it. A Lease of the same ID that
// another process holds is waited for until it expires: a replica that
// restarts under the same name takes over its Lease. It fails with
// ErrInvalid when the provider is not a replica, and ErrUnavailable when
// the Lease cannot be written (RBAC: leases in docs/kubernetes.md).
func (p *Provider) StartReplica(ctx context.Context, address string) error {
	r := p.rep
	if r == nil {
		return fmt.Errorf("the provider runs without a replica ID: %w", sandbox.ErrInvalid)
	}
	if !strings.HasPrefix(address, "http://") && !strings.HasPrefix(address, "https://") {
		return fmt.Errorf("replica address %q: want a base URL such as http://10.0.0.7:8000: %w", address, sandbox.ErrInvalid)
	}
	r.mu.Lock()
	r.address = strings.TrimRight(address, "/")
	r.mu.Unlock()
	deadline := time.Now().Add(2 * r.opts.LeaseDuration)
	for {
		held, err := p.acquire(ctx)
		if err != nil {
			return err
		}
		if held {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica ID %s: its Lease %s is held by another live process; give each replica its own ID (SANDBOX__KUBERNETES_REPLICA_ID): %w",
				r.opts.ID, leaseName(r.opts.ID), sandbox.ErrConflict)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.stop, r.done = cancel, make(chan struct{})
	go p.renewLoop(rctx)
	p.log.Info("replica lease taken", "replica", r.opts.ID, "address", address, "lease", leaseName(r.opts.ID))
	return nil
}

// acquire creates or takes this replica's Lease. It reports false when
// another live process holds it.
func (p *Provider) acquire(ctx context.Context) (bool, error) {
	r := p.rep
	leases := p.cs.CoordinationV1().Leases(p.opts.Namespace)
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	now := metav1.NewMicroTime(time.Now())
	secs := int32(r.opts.LeaseDuration / time.Second)
	r.mu.Lock()
	addr := r.address
	r.mu.Unlock()
	cur, err := leases.Get(ctx, leaseName(r.opts.ID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{
				Name:        leaseName(r.opts.ID),
				Namespace:   p.opts.Namespace,
				Labels:      map[string]string{LabelManagedBy: managedBy, LabelReplica: r.opts.ID},
				Annotations: map[string]string{annotationAddress: addr},
			},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: &p.owner, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now},
		}
		made, err := leases.Create(ctx, l, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return false, nil // raced: look again
		}
		if err != nil {
			return false, fmt.Errorf("creating Lease %s: %w", l.Name, convert(err))
		}
		r.setLease(made)
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading Lease %s: %w", leaseName(r.opts.ID), convert(err))
	}
	if holder(cur) != p.owner && !leaseExpired(cur, time.Now()) {
		return false, nil
	}
	l := cur.DeepCopy()
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[annotationAddress] = addr
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.AcquireTime, l.Spec.RenewTime = &p.owner, &secs, &now, &now
	made, err := leases.Update(ctx, l, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("taking Lease %s: %w", l.Name, convert(err))
	}
	r.setLease(made)
	return true, nil
}

func (r *replica) setLease(l *coordinationv1.Lease) {
	r.mu.Lock()
	r.lease = l
	r.mu.Unlock()
}

func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// leaseExpiry is when a Lease ends unless renewed.
func leaseExpiry(l *coordinationv1.Lease) time.Time {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return time.Time{}
	}
	return l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
}

// leaseExpired compares the holder's clock (the renew time it wrote) with
// ours: replicas' clocks are assumed synchronized to well within a Lease
// duration (NTP).
func leaseExpired(l *coordinationv1.Lease, now time.Time) bool {
	return !now.Before(leaseExpiry(l))
}

// renewLoop renews the Lease every third of its duration and, every
// minute, removes the pods of replicas gone longer than the adoption
// window.
func (p *Provider) renewLoop(ctx context.Context) {
	r := p.rep
	defer close(r.done)
	every := r.opts.LeaseDuration / 3
	renew := time.NewTicker(every)
	defer renew.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-renew.C:
			if err := p.renew(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				if time.Since(lastOK) > r.opts.LeaseDuration {
					p.log.Error("replica lease lapsed: other replicas may adopt this one's sandboxes", "replica", r.opts.ID, "err", err)
				} else {
					p.log.Warn("renewing the replica lease", "replica", r.opts.ID, "err", err)
				}
				continue
			}
			lastOK = time.Now()
		case <-sweep.C:
			if n, err := p.RemoveExpired(ctx); err != nil {
				p.log.Warn("removing the pods of replicas gone", "err", err)
			} else if n > 0 {
				p.log.Info("removed the pods of replicas gone", "count", n)
			}
		}
	}
}

// renew writes a new renew time on the Lease, or takes it again when it
// was lost (expired and changed meanwhile).
func (p *Provider) renew(ctx context.Context) error {
	r := p.rep
	r.mu.Lock()
	l := r.lease.DeepCopy()
	r.mu.Unlock()
	// A slow answer is still worth having: the next tick waits for it.
	cctx, cancel := context.WithTimeout(ctx, max(r.opts.LeaseDuration/3, p.opts.Timeout))
	defer cancel()
	now := metav1.NewMicroTime(time.Now())
	l.Spec.RenewTime = &now
	made, err := p.cs.CoordinationV1().Leases(p.opts.Namespace).Update(cctx, l, metav1.UpdateOptions{})
	if err == nil {
		r.setLease(made)
		return nil
	}
	if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
		return convert(err)
	}
	held, err := p.acquire(ctx)
	if err != nil {
		return err
	}
	if !held {
		return fmt.Errorf("lease %s is held by another process: %w", leaseName(r.opts.ID), sandbox.ErrConflict)
	}
	return nil
}

// HandOver leaves sandbox id, with its pod, to the other replicas: this
// provider forgets it and ends its agent (the Python session is lost; the
// workspace and the pod stay), and Close then marks the Lease expired so
// that the next request for it, through any replica, adopts it. This is
// what `warden serve` does with its sandboxes when it stops (a rolling
// update, a scale-down).
func (p *Provider) HandOver(ctx context.Context, id sandbox.ID) error {
	if p.rep == nil || p.rep.stop == nil {
		return fmt.Errorf("the provider is no replica with a Lease: %w", sandbox.ErrInvalid)
	}
	b, err := p.Boxes.Remove(id)
	if err != nil {
		return err
	}
	_ = b.Session.Close()
	p.rep.mu.Lock()
	p.rep.handedOver++
	p.rep.mu.Unlock()
	p.log.Info("sandbox handed over", "sandbox_id", id, "pod", b.Box.pod)
	return nil
}

// closeReplica stops renewing the Lease and deletes it or, when sandboxes
// were handed over, marks it expired: their pods are then adoptable at
// once, and removed after the adoption window as those of a replica that
// died.
func (p *Provider) closeReplica(ctx context.Context) {
	r := p.rep
	if r == nil || !p.stopRenewing() {
		return
	}
	r.mu.Lock()
	l, handed := r.lease.DeepCopy(), r.handedOver
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.Timeout)
	defer cancel()
	leases := p.cs.CoordinationV1().Leases(p.opts.Namespace)
	// The last renewal may have been written although its answer was
	// lost (a timeout): on a conflict, read the Lease again; leave it if
	// another process holds it now.
	for attempt := 0; attempt < 3; attempt++ {
		var err error
		if handed > 0 {
			past := metav1.NewMicroTime(time.Now().Add(-r.opts.LeaseDuration))
			l.Spec.RenewTime = &past
			_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		} else {
			rv := l.ResourceVersion
			err = leases.Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		}
		if err == nil || apierrors.IsNotFound(err) {
			return
		}
		if !apierrors.IsConflict(err) {
			p.log.Warn("releasing the replica lease", "lease", l.Name, "err", err)
			return
		}
		cur, gerr := leases.Get(ctx, l.Name, metav1.GetOptions{})
		if gerr != nil || holder(cur) != p.owner {
			return
		}
		l = cur
	}
}

// stopRenewing ends the renewal of the Lease, leaving it to expire; it
// reports whether it was renewed.
func (p *Provider) stopRenewing() bool {
	r := p.rep
	if r == nil || r.stop == nil {
		return false
	}
	r.stop()
	<-r.done
	return true
}

// Owner says where a sandbox this provider does not hold lives.
type Owner struct {
	// Replica is the ID of the replica that owns the sandbox's pod.
	Replica string
	// Address is the live owner's base URL; "" when Adoptable.
	Address string
	// Adoptable is true when this replica may adopt the sandbox: its
	// owner's Lease has expired, or its owner is this replica (restarted
	// under the same ID) which no longer holds it.
	Adoptable bool
	// Expires is when the live owner's Lease ends unless renewed.
	Expires time.Time
}

// Owner finds sandbox id's pod and its owner. It fails with ErrNotFound
// when no pod has that ID (or it is being deleted), ErrConflict when the
// pod is not a replica's, and ErrInvalid when the provider is not a
// replica.
func (p *Provider) Owner(ctx context.Context, id sandbox.ID) (Owner, error) {
	if p.rep == nil {
		return Owner{}, fmt.Errorf("the provider runs without a replica ID: %w", sandbox.ErrInvalid)
	}
	if err := sandbox.ValidateID(string(id)); err != nil {
		return Owner{}, err
	}
	pod, err := p.findPod(ctx, id)
	if err != nil {
		return Owner{}, err
	}
	return p.ownerOf(ctx, pod)
}

// findPod returns the live pod of sandbox id.
func (p *Provider) findPod(ctx context.Context, id sandbox.ID) (*corev1.Pod, error) {
	list, err := p.cs.CoreV1().Pods(p.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: managedSelector + "," + LabelSandbox + "=" + string(id)})
	if err != nil {
		return nil, fmt.Errorf("finding sandbox %s: %w", id, convert(err))
	}
	if len(list.Items) != 1 || list.Items[0].DeletionTimestamp != nil {
		return nil, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	}
	return list.Items[0].DeepCopy(), nil
}

func (p *Provider) ownerOf(ctx context.Context, pod *corev1.Pod) (Owner, error) {
	rid := pod.Annotations[annotationReplica]
	if rid == "" {
		return Owner{}, fmt.Errorf("pod %s belongs to a Warden that does not run as a replica (%s): %w", pod.Name, pod.Annotations[annotationOwner], sandbox.ErrConflict)
	}
	if rid == p.rep.opts.ID {
		// A sandbox held by this provider, and not by the service (a
		// warm pool's), is not the caller's to use; one being destroyed
		// is not there. In this order: Destroy marks the pod before the
		// sandbox leaves Boxes, and a failed teardown puts it back before
		// the mark goes.
		id := sandbox.ID(pod.Labels[LabelSandbox])
		held := func() bool { _, err := p.Boxes.Info(id); return err == nil }
		if held() {
			return Owner{}, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
		}
		if p.hookOwnerChecked != nil {
			p.hookOwnerChecked()
		}
		if p.isTearing(pod.Name) || held() {
			return Owner{}, fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
		}
		return Owner{Replica: rid, Adoptable: true}, nil
	}
	l, err := p.cs.CoordinationV1().Leases(p.opts.Namespace).Get(ctx, leaseName(rid), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Owner{Replica: rid, Adoptable: true}, nil
	}
	if err != nil {
		return Owner{}, fmt.Errorf("reading the Lease of replica %s: %w", rid, convert(err))
	}
	if leaseExpired(l, time.Now()) || l.Annotations[annotationAddress] == "" {
		return Owner{Replica: rid, Adoptable: true}, nil
	}
	return Owner{Replica: rid, Address: l.Annotations[annotationAddress], Expires: leaseExpiry(l)}, nil
}

// Peers returns the live replicas other than this one: ID -> address.
func (p *Provider) Peers(ctx context.Context) (map[string]string, error) {
	if p.rep == nil {
		return nil, nil
	}
	list, err := p.cs.CoordinationV1().Leases(p.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return nil, fmt.Errorf("listing replicas: %w", convert(err))
	}
	out := map[string]string{}
	now := time.Now()
	for i := range list.Items {
		l := &list.Items[i]
		id, addr := l.Labels[LabelReplica], l.Annotations[annotationAddress]
		if id == "" || id == p.rep.opts.ID || addr == "" || leaseExpired(l, now) {
			continue
		}
		out[id] = addr
	}
	return out, nil
}

// Release deletes the pod of sandbox id, whose owner's Lease has expired
// (or which is this replica's and no longer held): what deleting a
// sandbox through a replica that cannot reach its owner does, without
// adopting it first. It fails with ErrConflict when the owner lives.
func (p *Provider) Release(ctx context.Context, id sandbox.ID) error {
	if p.rep == nil {
		return fmt.Errorf("the provider runs without a replica ID: %w", sandbox.ErrInvalid)
	}
	pod, err := p.findPod(ctx, id)
	if err != nil {
		return err
	}
	o, err := p.ownerOf(ctx, pod)
	if err != nil {
		return err
	}
	if !o.Adoptable {
		return fmt.Errorf("sandbox %s: its replica %s lives: %w", id, o.Replica, sandbox.ErrConflict)
	}
	rv := pod.ResourceVersion
	grace := int64(1)
	err = p.cs.CoreV1().Pods(p.opts.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace, Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
	switch {
	case apierrors.IsConflict(err):
		return fmt.Errorf("sandbox %s: adopted by another replica meanwhile: %w", id, sandbox.ErrConflict)
	case apierrors.IsNotFound(err):
		return fmt.Errorf("sandbox %s: %w", id, sandbox.ErrNotFound)
	case err != nil:
		return fmt.Errorf("deleting pod %s: %w", pod.Name, convert(err))
	}
	p.deleteEnvSecret(ctx, pod.Name)
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return p.waitGone(wctx, pod.Name)
}

// RemoveExpired deletes the pods of replicas whose Lease expired more than
// the adoption window ago (or is missing, for pods older than the
// window), and then those replicas' Leases. A live replica's pods are
// never touched, however recently it started.
func (p *Provider) RemoveExpired(ctx context.Context) (int, error) {
	if p.rep == nil {
		return 0, nil
	}
	window := p.rep.opts.AdoptWindow
	now := time.Now()
	leases, err := p.cs.CoordinationV1().Leases(p.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return 0, fmt.Errorf("listing replicas: %w", convert(err))
	}
	byID := map[string]*coordinationv1.Lease{}
	for i := range leases.Items {
		byID[leases.Items[i].Labels[LabelReplica]] = &leases.Items[i]
	}
	list, err := p.cs.CoreV1().Pods(p.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return 0, fmt.Errorf("listing pods: %w", convert(err))
	}
	n := 0
	var errs []error
	kept := map[string]bool{} // replicas with pods left
	for i := range list.Items {
		pod := &list.Items[i]
		rid := pod.Annotations[annotationReplica]
		if rid == "" || rid == p.rep.opts.ID {
			continue
		}
		var gone time.Time // since when its replica is gone
		if l := byID[rid]; l != nil {
			gone = leaseExpiry(l)
		} else {
			gone = pod.CreationTimestamp.Time
		}
		if now.Sub(gone) <= window {
			kept[rid] = true
			continue
		}
		rv := pod.ResourceVersion
		zero := int64(0)
		err := p.cs.CoreV1().Pods(p.opts.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) {
			if !apierrors.IsConflict(err) { // adopted meanwhile
				errs = append(errs, fmt.Errorf("deleting pod %s: %w", pod.Name, convert(err)))
				kept[rid] = true
			}
			continue
		}
		p.deleteEnvSecret(ctx, pod.Name)
		p.log.Info("removed the pod of a replica gone", "pod", pod.Name, "replica", rid, "gone_since", gone)
		n++
	}
	for rid, l := range byID {
		if rid == "" || rid == p.rep.opts.ID || kept[rid] || now.Sub(leaseExpiry(l)) <= window {
			continue
		}
		rv := l.ResourceVersion
		err := p.cs.CoordinationV1().Leases(p.opts.Namespace).Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			errs = append(errs, fmt.Errorf("deleting Lease %s: %w", l.Name, convert(err)))
		}
	}
	return n, errors.Join(errs...)
}

// envSecret is the Secret that keeps the environment variables of a
// replica's sandbox for an adopter; the pod owns it, so it goes with the
// pod (and the provider deletes it too).
func (p *Provider) saveEnv(ctx context.Context, pod *corev1.Pod, env map[string]string) error {
	if p.rep == nil {
		return nil
	}
	secrets := p.cs.CoreV1().Secrets(p.opts.Namespace)
	name := pod.Name + envSecretSuffix
	if len(env) == 0 {
		err := secrets.Delete(ctx, name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting Secret %s: %w", name, convert(err))
		}
		return nil
	}
	data := make(map[string][]byte, len(env))
	for k, v := range env {
		data[k] = []byte(v)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: p.opts.Namespace,
			Labels: map[string]string{LabelManagedBy: managedBy, LabelSandbox: pod.Labels[LabelSandbox]},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if pod.UID != "" {
		s.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}
	}
	_, err := secrets.Update(ctx, s, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		_, err = secrets.Create(ctx, s, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("saving the environment in Secret %s: %w", name, convert(err))
	}
	return nil
}

// loadEnv reads what saveEnv kept; none when there is no Secret.
func (p *Provider) loadEnv(ctx context.Context, pod string) (map[string]string, error) {
	s, err := p.cs.CoreV1().Secrets(p.opts.Namespace).Get(ctx, pod+envSecretSuffix, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", pod+envSecretSuffix, convert(err))
	}
	env := make(map[string]string, len(s.Data))
	for k, v := range s.Data {
		env[k] = string(v)
	}
	return env, nil
}

func (p *Provider) deleteEnvSecret(ctx context.Context, pod string) {
	if p.rep == nil {
		return
	}
	err := p.cs.CoreV1().Secrets(p.opts.Namespace).Delete(ctx, pod+envSecretSuffix, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		p.log.Warn("deleting a sandbox's environment Secret", "secret", pod+envSecretSuffix, "err", err)
	}
}

// UpdateEnv implements sandbox.Provider; a replica keeps the result in
// the sandbox's Secret, for an adopter.
func (p *Provider) UpdateEnv(ctx context.Context, id sandbox.ID, u sandbox.EnvUpdate) (map[string]string, error) {
	env, err := p.Base.UpdateEnv(ctx, id, u)
	if err != nil || p.rep == nil {
		return env, err
	}
	b, gerr := p.Boxes.Get(id)
	if gerr != nil {
		return env, err
	}
	pod, gerr := p.cs.CoreV1().Pods(p.opts.Namespace).Get(ctx, b.Box.pod, metav1.GetOptions{})
	if gerr == nil {
		gerr = p.saveEnv(ctx, pod, env)
	}
	if gerr != nil {
		p.log.Warn("keeping a sandbox's environment for adoption", "sandbox_id", id, "err", gerr)
	}
	return env, nil
}
