package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// errPodGone is returned by watchPod's check when the pod was deleted.
var errPodGone = errors.New("pod deleted")

// watchPod calls check with the pod's state, then with every change of
// it, until check returns done or an error, the pod is deleted (check
// gets nil) or ctx ends. It reads the pod, then watches from that version,
// so no change is missed between the two.
func (p *Provider) watchPod(ctx context.Context, name string, check func(*corev1.Pod) (bool, error)) error {
	pods := p.cs.CoreV1().Pods(p.opts.Namespace)
	for {
		pod, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err := check(nil)
			return err
		}
		if err != nil {
			return convert(err)
		}
		if done, err := check(pod); done || err != nil {
			return err
		}
		w, err := pods.Watch(ctx, metav1.ListOptions{
			FieldSelector:   fields.OneTermEqualSelector("metadata.name", name).String(),
			ResourceVersion: pod.ResourceVersion,
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return convert(err)
		}
		done, err := p.drainWatch(ctx, w, name, check)
		w.Stop()
		if done || err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// The watch ended (a timeout of the server's, an expired
		// version): read the pod again and watch anew.
	}
}

func (p *Provider) drainWatch(ctx context.Context, w watch.Interface, name string, check func(*corev1.Pod) (bool, error)) (bool, error) {
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return false, nil
			}
			pod, isPod := ev.Object.(*corev1.Pod)
			switch {
			case ev.Type == watch.Error:
				return false, nil // read again
			case !isPod || pod.Name != name:
				continue
			case ev.Type == watch.Deleted:
				_, err := check(nil)
				return true, err
			}
			if done, err := check(pod); done || err != nil {
				return done, err
			}
		}
	}
}

// waitStarted waits until the pod's container runs. It fails at once, with
// the kubelet's reason, when the pod cannot start (an image the node
// cannot pull wraps sandbox.ErrInvalid), and after opts.StartTimeout with
// what the pod was waiting for (unschedulable, say).
func (p *Provider) waitStarted(ctx context.Context, name, image string) error {
	wctx, cancel := context.WithTimeout(ctx, p.opts.StartTimeout)
	defer cancel()
	last := "not scheduled yet"
	err := p.watchPod(wctx, name, func(pod *corev1.Pod) (bool, error) {
		if pod == nil {
			return true, fmt.Errorf("pod %s was deleted while starting: %w", name, sandbox.ErrUnavailable)
		}
		started, why, err := startState(pod, image)
		last = why
		return started, err
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("starting pod %s: %w", name, ctx.Err())
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("pod %s did not start within %s: %s: %w", name, p.opts.StartTimeout, last, sandbox.ErrUnavailable)
	default:
		return err
	}
}

// imageReasons are the kubelet's reasons for a container that waits on
// an image it cannot get.
var imageReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "ErrImageNeverPull": true,
	"InvalidImageName": true, "ImageInspectError": true, "RegistryUnavailable": true,
}

// startReasons are the kubelet's reasons for a container that cannot be
// started as specified.
var startReasons = map[string]bool{
	"CreateContainerConfigError": true, "CreateContainerError": true,
	"RunContainerError": true, "PreCreateHookError": true, "PreStartHookError": true,
}

// startState says whether the pod's container runs, what it waits for,
// and an error when it will never run.
func startState(pod *corev1.Pod, image string) (bool, string, error) {
	if why := podEnded(pod); why != "" {
		return false, why, fmt.Errorf("pod %s %s: %w", pod.Name, why, sandbox.ErrUnavailable)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != containerName {
			continue
		}
		switch {
		case cs.State.Running != nil:
			return true, "running", nil
		case cs.State.Waiting != nil:
			w := cs.State.Waiting
			why := strings.TrimSpace(w.Reason + ": " + w.Message)
			if imageReasons[w.Reason] {
				return false, why, fmt.Errorf("image %q cannot be pulled by node %s (%s); load it onto the nodes or push it to a registry they reach: %w", image, pod.Spec.NodeName, why, sandbox.ErrInvalid)
			}
			if startReasons[w.Reason] {
				return false, why, fmt.Errorf("pod %s cannot start: %s: %w", pod.Name, why, sandbox.ErrUnavailable)
			}
			return false, why, nil
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return false, strings.TrimSpace(c.Reason + ": " + c.Message), nil
		}
	}
	return false, "phase " + string(pod.Status.Phase), nil
}

// podEnded says why the pod, or its container, ended; "" if it did not.
func podEnded(pod *corev1.Pod) string {
	if pod.DeletionTimestamp != nil {
		return "is being deleted"
	}
	// The pod's own reason (Evicted, NodeLost, ...) says more than its
	// container's (Completed, Error): an eviction stops the container
	// with a plain SIGTERM.
	if (pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded) && pod.Status.Reason != "" {
		why := "ended: " + pod.Status.Reason
		if pod.Status.Message != "" {
			why += ": " + bound(pod.Status.Message, 512)
		}
		return why
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == containerName && cs.State.Terminated != nil {
			t := cs.State.Terminated
			why := "ended: " + t.Reason
			if t.Reason == "OOMKilled" {
				why = "was killed: out of memory (its init died)"
			}
			if t.Message != "" {
				why += ": " + bound(t.Message, 512)
			}
			return why
		}
	}
	switch pod.Status.Phase {
	case corev1.PodFailed, corev1.PodSucceeded:
		why := "ended"
		if pod.Status.Reason != "" {
			why += ": " + pod.Status.Reason // Evicted, NodeLost, ...
		}
		if pod.Status.Message != "" {
			why += ": " + bound(pod.Status.Message, 512)
		}
		return why
	}
	return ""
}

// diagnose says why a sandbox's pod can run nothing more, "" when it
// still can (or the API cannot tell), and whether it ran out of memory.
// The kubelet reports a container's end a moment after it happened: when
// the pod still looks alive, an exec of `true` tells whether its container
// runs, and if it does not, diagnose waits up to 15 s for the kubelet's
// reason.
func (p *Provider) diagnose(ctx context.Context, name string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	why, oom, known := p.podDeath(ctx, name)
	if known && !oom {
		// The container's end shows before the pod's phase and reason
		// (an eviction's, say, which stops the container with a plain
		// SIGTERM: "Completed"): give the kubelet a moment to say why.
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		_ = p.watchPod(wctx, name, func(pod *corev1.Pod) (bool, error) {
			return pod == nil || pod.DeletionTimestamp != nil ||
				pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded, nil
		})
		wcancel()
		if w, o, k := p.podDeath(ctx, name); k {
			why, oom = w, o
		}
	}
	if known {
		return why, oom
	}
	pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
	perr := p.exec(pctx, name, []string{"true"}, nil, io.Discard, io.Discard)
	pcancel()
	if perr == nil || ctx.Err() != nil {
		return "", false
	}
	wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
	defer wcancel()
	_ = p.watchPod(wctx, name, func(pod *corev1.Pod) (bool, error) {
		return pod == nil || podEnded(pod) != "", nil
	})
	if why, oom, known := p.podDeath(ctx, name); known {
		return why, oom
	}
	return "its pod " + name + "'s container does not run (" + bound(perr.Error(), 256) + ")", false
}

// podDeath reads the pod: known is false when it looks alive.
func (p *Provider) podDeath(ctx context.Context, name string) (why string, oom, known bool) {
	pod, err := p.cs.CoreV1().Pods(p.opts.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "its pod " + name + " was deleted", false, true
	}
	if err != nil {
		return "", false, false
	}
	// The kubelet marks a pod it evicts (DisruptionTarget) before it
	// stops the container, and sets the pod's phase and reason after:
	// in between, the container's end alone would hide why.
	var evicted string
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			evicted = "evicted: " + c.Reason + ": " + bound(c.Message, 256)
		}
	}
	ended := podEnded(pod)
	switch {
	case ended != "" && evicted != "" && !strings.Contains(ended, "Evicted"):
		return "its pod " + name + " " + ended + " (" + evicted + ")", strings.Contains(ended, "out of memory"), true
	case ended != "":
		return "its pod " + name + " " + ended, strings.Contains(ended, "out of memory"), true
	case evicted != "":
		return "its pod " + name + " is being " + evicted, false, true
	}
	return "", false, false
}

// waitGone waits until the pod no longer exists.
func (p *Provider) waitGone(ctx context.Context, name string) error {
	err := p.watchPod(ctx, name, func(pod *corev1.Pod) (bool, error) { return pod == nil, nil })
	if err != nil {
		return fmt.Errorf("waiting for pod %s to go: %w", name, err)
	}
	return nil
}

func bound(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
