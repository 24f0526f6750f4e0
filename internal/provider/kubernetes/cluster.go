package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Cluster describes the cluster a provider runs on, for `warden doctor`.
type Cluster struct {
	// Version is the API server's version ("" if it did not say).
	Version string `json:"version"`
	// Namespace holds the sandboxes' pods.
	Namespace string `json:"namespace"`
	// RuntimeClasses are the cluster's RuntimeClasses; nil when Warden
	// may not list them.
	RuntimeClasses []string `json:"runtime_classes"`
	// RuntimeClass is the one sandboxes use ("" for the default).
	RuntimeClass string `json:"runtime_class,omitempty"`
}

// String renders c on one line.
func (c Cluster) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Kubernetes %s, namespace %s", c.Version, c.Namespace)
	switch {
	case c.RuntimeClasses == nil:
		b.WriteString(", runtime classes not readable")
	case len(c.RuntimeClasses) == 0:
		b.WriteString(", no runtime classes")
	default:
		b.WriteString(", runtime classes " + strings.Join(c.RuntimeClasses, " "))
	}
	if c.RuntimeClass != "" {
		b.WriteString(", sandboxes under " + c.RuntimeClass)
	}
	return b.String()
}

// Cluster asks the API server for its version and RuntimeClasses.
func (p *Provider) Cluster(ctx context.Context) (Cluster, error) {
	c := Cluster{Namespace: p.opts.Namespace, RuntimeClass: p.opts.RuntimeClass}
	// ServerVersion takes no context: bound it by ctx from here.
	ver := make(chan string, 1)
	go func() {
		if v, err := p.cs.Discovery().ServerVersion(); err == nil {
			ver <- v.GitVersion
		}
		close(ver)
	}()
	select {
	case c.Version = <-ver:
	case <-ctx.Done():
		return c, fmt.Errorf("asking the API server its version: %w", ctx.Err())
	}
	list, err := p.cs.NodeV1().RuntimeClasses().List(ctx, metav1.ListOptions{})
	switch {
	case err == nil:
		c.RuntimeClasses = []string{}
		for _, rc := range list.Items {
			c.RuntimeClasses = append(c.RuntimeClasses, rc.Name)
		}
		slices.Sort(c.RuntimeClasses)
	case apierrors.IsForbidden(err):
	default:
		return c, fmt.Errorf("listing runtime classes: %w", convert(err))
	}
	return c, nil
}

// checkRuntimeClass fails when the cluster lists its RuntimeClasses and
// the configured one is not among them: every create would fail.
func (p *Provider) checkRuntimeClass(ctx context.Context) error {
	if p.opts.RuntimeClass == "" {
		return nil
	}
	_, err := p.cs.NodeV1().RuntimeClasses().Get(ctx, p.opts.RuntimeClass, metav1.GetOptions{})
	switch {
	case err == nil, apierrors.IsForbidden(err):
		return nil
	case apierrors.IsNotFound(err):
		have := "none"
		if list, err := p.cs.NodeV1().RuntimeClasses().List(ctx, metav1.ListOptions{}); err == nil && len(list.Items) > 0 {
			var names []string
			for _, rc := range list.Items {
				names = append(names, rc.Name)
			}
			have = strings.Join(names, ", ")
		}
		return fmt.Errorf("runtime class %q does not exist in the cluster (it has: %s): %w", p.opts.RuntimeClass, have, sandbox.ErrInvalid)
	default:
		return fmt.Errorf("reading runtime class %q: %w", p.opts.RuntimeClass, unreachable(ctx, err))
	}
}
