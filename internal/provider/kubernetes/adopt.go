package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/provider/kit"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// annotationSpec keeps a sandbox's spec on its pod, without its
// environment variables (which may be secrets), so that another Warden
// process can adopt it.
const annotationSpec = "warden.dev/spec"

// storedSpec is the JSON of annotationSpec.
type storedSpec struct {
	Spec    sandbox.Spec `json:"spec"`
	Timeout float64      `json:"timeout_seconds"` // Spec.Timeout has no JSON form
}

func encodeSpec(spec sandbox.Spec) string {
	spec.Env = nil
	b, _ := json.Marshal(storedSpec{Spec: spec, Timeout: spec.Timeout.Seconds()})
	return string(b)
}

// Adopt makes this provider the owner of sandbox id, whose pod another
// Warden process created (a replica that died, say): its workspace and
// files are kept, a new agent is started (the old one's processes are
// killed first), and the Python session starts empty; the environment
// variables set through the API are not carried over. It fails with
// ErrNotFound when no live pod has that ID, and ErrConflict when another
// process adopted it meanwhile. Adopting a sandbox of a live owner takes
// it away from that owner; a replica (Options.Replica) refuses to, with
// ErrConflict: it adopts only sandboxes whose replica's Lease has expired,
// or its own (a restart under the same ID), and it restores the
// environment variables kept in the sandbox's Secret.
func (p *Provider) Adopt(ctx context.Context, id sandbox.ID) (sandbox.Info, error) {
	if err := sandbox.ValidateID(string(id)); err != nil {
		return sandbox.Info{}, err
	}
	if info, err := p.Boxes.Info(id); err == nil {
		return info, nil
	}
	pods := p.cs.CoreV1().Pods(p.opts.Namespace)
	list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: managedSelector + "," + LabelSandbox + "=" + string(id)})
	if err != nil {
		return sandbox.Info{}, fmt.Errorf("finding sandbox %s: %w", id, convert(err))
	}
	if len(list.Items) != 1 {
		return sandbox.Info{}, fmt.Errorf("sandbox %s: no pod: %w", id, sandbox.ErrNotFound)
	}
	pod := list.Items[0].DeepCopy()
	from := pod.Annotations[annotationReplica]
	if from == "" {
		from = pod.Annotations[annotationOwner]
	}
	var env map[string]string
	if p.rep != nil {
		// Checked on the version the update below is conditional on.
		o, err := p.ownerOf(ctx, pod)
		if err != nil {
			return sandbox.Info{}, err
		}
		if !o.Adoptable {
			return sandbox.Info{}, fmt.Errorf("sandbox %s: its replica %s lives (at %s): %w", id, o.Replica, o.Address, sandbox.ErrConflict)
		}
		if env, err = p.loadEnv(ctx, pod.Name); err != nil {
			return sandbox.Info{}, fmt.Errorf("sandbox %s: %w", id, err)
		}
	}
	if why := podEnded(pod); why != "" {
		return sandbox.Info{}, fmt.Errorf("sandbox %s: its pod %s %s: %w", id, pod.Name, why, sandbox.ErrConflict)
	}
	var st storedSpec
	if err := json.Unmarshal([]byte(pod.Annotations[annotationSpec]), &st); err != nil {
		return sandbox.Info{}, fmt.Errorf("sandbox %s: pod %s has no readable spec: %v: %w", id, pod.Name, err, sandbox.ErrConflict)
	}
	spec := st.Spec
	spec.Timeout = time.Duration(st.Timeout * float64(time.Second))
	// Take it over: the update fails if another process changed the pod
	// since we read it, so that one adopter wins.
	pod.Labels[LabelOwner] = labelValue(owner.TagOf(p.owner))
	pod.Annotations[annotationOwner] = p.owner
	if p.rep != nil {
		pod.Annotations[annotationReplica] = p.rep.opts.ID
	}
	if _, err := pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return sandbox.Info{}, fmt.Errorf("sandbox %s: adopted by another process meanwhile: %w", id, sandbox.ErrConflict)
		}
		return sandbox.Info{}, fmt.Errorf("adopting pod %s: %w", pod.Name, convert(err))
	}
	l := &launcher{p: p, pod: pod.Name}
	if err := l.Reset(ctx); err != nil {
		p.log.Warn("resetting an adopted sandbox", "sandbox_id", id, "err", err)
	}
	b := &box{Info: sandbox.Info{ID: id, Provider: p.Name(), Name: pod.Name, Spec: spec, WorkspaceUID: -1, WorkspaceGID: -1}, Box: &podState{pod: pod.Name}}
	b.Box.adopted = "the sandbox's session was restarted: its Warden replica " + from + " went away and this one took the sandbox over; " +
		"Python variables and imports are lost, the workspace's files and the environment variables are kept"
	if p.rep == nil {
		b.Box.adopted = "the sandbox's session was restarted: its Warden process " + from + " went away and this one took the sandbox over; " +
			"Python variables and imports are lost, the workspace's files are kept, the environment variables set through the API are not"
	}
	spec.Env = env // not kept in the pod's annotation; a replica's are in a Secret
	b.Session = kit.NewSession(l, spec, spec.WorkspacePath)
	if _, err := b.Session.Start(ctx); err != nil {
		_ = b.Session.Close()
		return sandbox.Info{}, fmt.Errorf("sandbox %s: %w", id, err)
	}
	p.Boxes.Add(b)
	p.log.Info("adopted sandbox", "sandbox_id", id, "pod", pod.Name, "from", from)
	return b.Info, nil
}
