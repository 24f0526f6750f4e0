package kubernetes

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// managedSelector selects every pod of Warden's.
const managedSelector = LabelManagedBy + "=" + managedBy

// RemoveOrphans deletes the Warden pods of the namespace whose owning
// process ran on this host and no longer runs. It returns how many it
// deleted. Pods of live Warden processes, and of other hosts (other
// replicas), are left alone: this host cannot tell whether they live.
func (p *Provider) RemoveOrphans(ctx context.Context) (int, error) {
	list, err := p.cs.CoreV1().Pods(p.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: managedSelector})
	if err != nil {
		return 0, fmt.Errorf("listing pods: %w", convert(err))
	}
	n := 0
	var errs []error
	for i := range list.Items {
		pod := &list.Items[i]
		if !orphan(pod) {
			continue
		}
		if err := p.deletePod(ctx, pod.Name, false); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// orphan reports whether a Warden pod's owner is known to be gone. A
// replica's pods are left to RemoveExpired, which reads its Lease: its
// process may run on another host, or on this one under a new ID.
func orphan(pod *corev1.Pod) bool {
	if pod.Annotations[annotationReplica] != "" {
		return false
	}
	id := pod.Annotations[annotationOwner]
	alive, ok := owner.Alive(id)
	return !ok || !alive
}

// ensureNetworkPolicy creates, unless it is there, the namespace's
// policy that denies all ingress and egress to pods labelled
// warden.dev/network=off.
func (p *Provider) ensureNetworkPolicy(ctx context.Context) error {
	pols := p.cs.NetworkingV1().NetworkPolicies(p.opts.Namespace)
	_, err := pols.Get(ctx, NetworkPolicyName, metav1.GetOptions{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading NetworkPolicy %s: %w", NetworkPolicyName, unreachable(ctx, err))
	}
	_, err = pols.Create(ctx, networkPolicy(p.opts.Namespace), metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating NetworkPolicy %s: %w", NetworkPolicyName, unreachable(ctx, err))
	}
	return nil
}

// networkPolicy denies everything to and from sandboxes without network:
// it selects them and allows nothing.
func networkPolicy(namespace string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{
			Name:      NetworkPolicyName,
			Namespace: namespace,
			Labels:    map[string]string{LabelManagedBy: managedBy},
		},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{LabelManagedBy: managedBy, LabelNetwork: "off"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	}
}

var _ = sandbox.ErrNotFound
