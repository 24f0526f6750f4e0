package provider

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/provider/kubernetes"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// openKubernetes opens the kubernetes provider on the configured cluster.
func (s *selector) openKubernetes(ctx context.Context) (sandbox.Provider, string, error) {
	c := s.cfg
	sel, err := config.ParseNodeSelector(c.KubernetesNodeSelector)
	if err != nil {
		return nil, "", fmt.Errorf("SANDBOX__KUBERNETES_NODE_SELECTOR: %v: %w", err, sandbox.ErrInvalid)
	}
	p, err := kubernetes.New(ctx, kubernetes.Options{
		Kubeconfig:      c.KubernetesKubeconfig,
		Context:         c.KubernetesContext,
		Namespace:       c.KubernetesNamespace,
		RuntimeClass:    c.KubernetesRuntimeClass,
		NodeSelector:    sel,
		ImagePullPolicy: corev1.PullPolicy(c.KubernetesImagePullPolicy),
		StartTimeout:    c.KubernetesStartTimeout,
		Replica: kubernetes.ReplicaOptions{
			ID:            c.KubernetesReplicaID,
			LeaseDuration: c.KubernetesLeaseDuration,
			AdoptWindow:   c.KubernetesAdoptWindow,
		},
		Log: s.log,
	})
	if err != nil {
		return nil, "", err
	}
	cl, err := p.Cluster(ctx)
	if err != nil {
		_ = p.Close(context.WithoutCancel(ctx))
		return nil, "", err
	}
	return p, cl.String(), nil
}
