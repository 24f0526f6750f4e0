package kubernetes

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Labels and annotations Warden puts on its pods.
const (
	// LabelManagedBy (value "warden") marks every pod of Warden's.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "warden"
	// LabelSandbox is the sandbox's ID.
	LabelSandbox = "warden.dev/sandbox"
	// LabelOwner names the Warden process that owns the pod (see
	// owner.Tag), so orphans can be told from live sandboxes.
	LabelOwner = "warden.dev/owner"
	// LabelNetwork is "off" for pods the deny-all NetworkPolicy selects.
	LabelNetwork = "warden.dev/network"
	// annotationOwner is the full owner.ID of the owning process.
	annotationOwner = "warden.dev/owner"
	// annotationUser prefixes the user's labels, kept as annotations
	// because their values need not be valid label values.
	annotationUser = "warden.dev/label."
	// NetworkPolicyName is the namespace's policy that cuts pods labelled
	// warden.dev/network=off off the network.
	NetworkPolicyName = "warden-sandbox-network-off"
	containerName     = "sandbox"
	// sandboxUID runs everything in the pod: the init and the agent
	// (which Kubernetes' exec cannot run as another user than the
	// container's). kill(-1) by the sandbox user spares the init, PID 1 of
	// the container's PID namespace.
	sandboxUID = 1000
)

// initProgram is the container's main process: it reaps the orphans the
// agent leaves when it dies, and ends on a SIGTERM from outside the
// container (the kubelet's, si_pid 0) but not on one from the sandbox.
const initProgram = `import os, signal
S = {signal.SIGCHLD, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, S)
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass
    i = signal.sigwaitinfo(S)
    if i.si_signo == signal.SIGTERM and i.si_pid == 0:
        break
`

// podName is the pod's name: the prefix made a DNS label, and the ID.
func podName(prefix string, id sandbox.ID) string {
	var b strings.Builder
	for _, c := range strings.ToLower(prefix) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	p := strings.Trim(b.String(), "-")
	if len(p) > 40 {
		p = strings.TrimRight(p[:40], "-")
	}
	if p == "" {
		p = sandbox.DefaultNamePrefix
	}
	return p + "-" + strings.ToLower(string(id))
}

// labelValue makes s a valid label value: at most 63 characters of
// [A-Za-z0-9_.-], starting and ending with an alphanumeric.
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 63 {
		b = b[:63]
	}
	return strings.Trim(string(b), "-_.")
}

func ptr[T any](v T) *T { return &v }

// podFor is the hardened pod of a sandbox.
func (p *Provider) podFor(id sandbox.ID, name string, spec sandbox.Spec) *corev1.Pod {
	network := "off"
	if spec.Network {
		network = "on"
	}
	labels := map[string]string{
		LabelManagedBy: managedBy,
		LabelSandbox:   string(id),
		LabelOwner:     labelValue(owner.TagOf(p.owner)),
		LabelNetwork:   network,
	}
	annotations := map[string]string{annotationOwner: p.owner, annotationSpec: encodeSpec(spec)}
	if p.rep != nil {
		annotations[annotationReplica] = p.rep.opts.ID
	}
	for k, v := range spec.Labels {
		annotations[annotationUser+k] = v
	}
	var env []corev1.EnvVar
	for _, kv := range agent.BaseEnv(spec.WorkspacePath) {
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, corev1.EnvVar{Name: k, Value: v})
	}
	cpu := resource.NewMilliQuantity(int64(spec.CPULimit*1000), resource.DecimalSI)
	mem := resource.NewQuantity(spec.MemoryLimit, resource.BinarySI)
	workspace := &corev1.EmptyDirVolumeSource{}
	if spec.WorkspaceSize > 0 {
		workspace.SizeLimit = resource.NewQuantity(spec.WorkspaceSize, resource.BinarySI)
	}
	seccomp := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   p.opts.Namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr(false),
			EnableServiceLinks:            ptr(false),
			Hostname:                      "sandbox",
			TerminationGracePeriodSeconds: ptr(int64(1)),
			NodeSelector:                  p.opts.NodeSelector,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser:      ptr(int64(sandboxUID)),
				RunAsGroup:     ptr(int64(sandboxUID)),
				RunAsNonRoot:   ptr(true),
				FSGroup:        ptr(int64(sandboxUID)),
				SeccompProfile: seccomp,
			},
			// A sandbox cannot move: when its node is lost, end it
			// within half a minute rather than Kubernetes' five.
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(30))},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(30))},
			},
			Containers: []corev1.Container{{
				Name:            containerName,
				Image:           spec.Image,
				ImagePullPolicy: p.opts.ImagePullPolicy,
				Command:         []string{"python3", "-I", "-S", "-c", initProgram},
				WorkingDir:      spec.WorkspacePath,
				Env:             env,
				Resources: corev1.ResourceRequirements{
					Limits: corev1.ResourceList{corev1.ResourceCPU: *cpu, corev1.ResourceMemory: *mem},
					// Small requests, so that idle sandboxes do not
					// reserve a node: the limits bound what they use.
					Requests: corev1.ResourceList{
						corev1.ResourceCPU:    resource.MustParse("10m"),
						corev1.ResourceMemory: resource.MustParse("32Mi"),
					},
				},
				SecurityContext: &corev1.SecurityContext{
					Privileged:               ptr(false),
					AllowPrivilegeEscalation: ptr(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
					ReadOnlyRootFilesystem:   ptr(true),
					RunAsNonRoot:             ptr(true),
					SeccompProfile:           seccomp,
				},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "workspace", MountPath: spec.WorkspacePath},
					{Name: "tmp", MountPath: "/tmp"},
				},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			}},
			Volumes: []corev1.Volume{
				{Name: "workspace", VolumeSource: corev1.VolumeSource{EmptyDir: workspace}},
				{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
					Medium:    corev1.StorageMediumMemory,
					SizeLimit: resource.NewQuantity(spec.TmpSize, resource.BinarySI),
				}}},
			},
		},
	}
	if p.opts.RuntimeClass != "" {
		pod.Spec.RuntimeClassName = ptr(p.opts.RuntimeClass)
	}
	return pod
}
