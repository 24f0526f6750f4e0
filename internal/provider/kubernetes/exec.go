package kubernetes

import (
	"context"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
)

// execFunc runs cmd in the sandbox container of a pod, with the given
// streams (stdin may be nil), until it ends or ctx is cancelled. Tests
// replace it.
type execFunc func(ctx context.Context, pod string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error

// remoteExec runs commands through the pods/exec subresource, over
// WebSocket (Kubernetes' default since 1.31) and, from API servers or
// proxies that cannot upgrade to it, SPDY.
func remoteExec(cs kubernetes.Interface, cfg *rest.Config, namespace string) execFunc {
	return func(ctx context.Context, pod string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
		req := cs.CoreV1().RESTClient().Post().Namespace(namespace).Resource("pods").Name(pod).SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{
				Container: containerName,
				Command:   cmd,
				Stdin:     stdin != nil,
				Stdout:    true,
				Stderr:    true,
			}, scheme.ParameterCodec)
		ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
		if err != nil {
			return fmt.Errorf("exec in pod %s: %w", pod, err)
		}
		spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
		if err != nil {
			return fmt.Errorf("exec in pod %s: %w", pod, err)
		}
		ex, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		if err != nil {
			return fmt.Errorf("exec in pod %s: %w", pod, err)
		}
		return ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	}
}
