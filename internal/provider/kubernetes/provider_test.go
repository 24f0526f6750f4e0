package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

func TestPodHardened(t *testing.T) {
	t.Parallel()
	c := newCluster(t, &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"})
	p := c.provider(Options{RuntimeClass: "gvisor", NodeSelector: map[string]string{"pool": "sandboxes"}})
	spec := sandbox.Spec{MemoryLimit: 256 << 20, CPULimit: 0.5, WorkspaceSize: 64 << 20, Labels: map[string]string{"team": "a b"}}.WithDefaults()
	pod := p.podFor("sb-0123456789abcdef", "warden-sb-0123456789abcdef", spec)
	ps, ctr := pod.Spec, pod.Spec.Containers[0]
	sc := ctr.SecurityContext
	checks := []struct {
		what string
		ok   bool
	}{
		{"pod runs as 1000:1000, non-root", *ps.SecurityContext.RunAsUser == 1000 && *ps.SecurityContext.RunAsGroup == 1000 && *ps.SecurityContext.RunAsNonRoot},
		{"seccomp RuntimeDefault", ps.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault},
		{"no service-account token", ps.AutomountServiceAccountToken != nil && !*ps.AutomountServiceAccountToken},
		{"no service links", ps.EnableServiceLinks != nil && !*ps.EnableServiceLinks},
		{"never restarted", ps.RestartPolicy == corev1.RestartPolicyNever},
		{"runtime class", ps.RuntimeClassName != nil && *ps.RuntimeClassName == "gvisor"},
		{"node selector", ps.NodeSelector["pool"] == "sandboxes"},
		{"all capabilities dropped", len(sc.Capabilities.Drop) == 1 && sc.Capabilities.Drop[0] == "ALL" && len(sc.Capabilities.Add) == 0},
		{"no privilege escalation", !*sc.AllowPrivilegeEscalation && !*sc.Privileged},
		{"read-only root", *sc.ReadOnlyRootFilesystem},
		{"memory limit", ctr.Resources.Limits.Memory().Value() == 256<<20},
		{"cpu limit", ctr.Resources.Limits.Cpu().MilliValue() == 500},
		{"pull policy IfNotPresent", ctr.ImagePullPolicy == corev1.PullIfNotPresent},
		{"image", ctr.Image == sandbox.DefaultImage},
		{"workspace emptyDir with size limit", ps.Volumes[0].EmptyDir != nil && ps.Volumes[0].EmptyDir.SizeLimit.Value() == 64<<20 && ctr.VolumeMounts[0].MountPath == "/workspace"},
		{"/tmp in memory with size limit", ps.Volumes[1].EmptyDir.Medium == corev1.StorageMediumMemory && ps.Volumes[1].EmptyDir.SizeLimit.Value() == spec.TmpSize && ctr.VolumeMounts[1].MountPath == "/tmp"},
		{"labels", pod.Labels[LabelManagedBy] == "warden" && pod.Labels[LabelSandbox] == "sb-0123456789abcdef" && pod.Labels[LabelNetwork] == "off" && pod.Labels[LabelOwner] != ""},
		{"owner annotation", pod.Annotations[annotationOwner] == owner.ID()},
		{"user labels as annotations", pod.Annotations[annotationUser+"team"] == "a b"},
		{"no host namespaces", !ps.HostNetwork && !ps.HostPID && !ps.HostIPC},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("pod spec: not %s", c.what)
		}
	}
	for _, e := range ctr.Env {
		if strings.HasPrefix(e.Name, "WARDEN_CT") {
			t.Errorf("user environment in the pod spec: %s", e.Name)
		}
	}
	spec.Network = true
	if got := p.podFor("sb-1", "x", spec).Labels[LabelNetwork]; got != "on" {
		t.Errorf("network label with network on = %q", got)
	}
}

func TestPodName(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ prefix, want string }{
		{"warden", "warden-sb-1"},
		{"My_Box.v2", "my-box-v2-sb-1"},
		{"__", "warden-sb-1"},
		{strings.Repeat("a", 50), strings.Repeat("a", 40) + "-sb-1"},
	} {
		if got := podName(c.prefix, "sb-1"); got != c.want {
			t.Errorf("podName(%q) = %q, want %q", c.prefix, got, c.want)
		}
	}
}

func TestLabelValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"12-34-host.example":    "12-34-host.example",
		"1-2-h/st":              "1-2-h_st",
		strings.Repeat("x", 70): strings.Repeat("x", 63),
	} {
		if got := labelValue(in); got != want {
			t.Errorf("labelValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCreateExecDestroy(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	p := c.provider(Options{})
	spec := hostSpec(t)
	spec.Env = map[string]string{"WARDEN_SECRET": "s3cret"}
	info, err := p.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if info.Workspace != "" {
		t.Errorf("Info.Workspace = %q, want none: the workspace is in the pod", info.Workspace)
	}
	pod, err := c.cs.CoreV1().Pods("warden").Get(t.Context(), info.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the sandbox's pod %s: %v", info.Name, err)
	}
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "WARDEN_SECRET" || strings.Contains(e.Value, "s3cret") {
			t.Errorf("the sandbox's environment is in its pod's spec: %v", e)
		}
	}
	run := func(req sandbox.ExecRequest) sandbox.ExecResult {
		t.Helper()
		r, err := p.Exec(t.Context(), info.ID, req)
		if err != nil {
			t.Fatalf("Exec(%q): %v", req.Code, err)
		}
		return r
	}
	run(sandbox.ExecRequest{Language: sandbox.Python, Code: "x = 41"})
	if r := run(sandbox.ExecRequest{Language: sandbox.Python, Code: "x + 1"}); r.ReturnValue == nil || *r.ReturnValue != "42" {
		t.Errorf("the Python session lost its state: %+v", r)
	}
	if r := run(sandbox.ExecRequest{Language: sandbox.Shell, Code: "echo $WARDEN_SECRET; pwd"}); string(r.Stdout) != "s3cret\n"+spec.WorkspacePath+"\n" {
		t.Errorf("shell stdout = %q", r.Stdout)
	}
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	if got := c.pods(); len(got) != 0 {
		t.Errorf("pods after Destroy: %v", got)
	}
	if _, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("Exec after Destroy = %v, want ErrNotFound", err)
	}
	if err := p.Destroy(t.Context(), info.ID); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("second Destroy = %v, want ErrNotFound", err)
	}
}

// TestCreateFailuresLeaveNothing: every failed create says why, in time,
// and leaves no pod.
func TestCreateFailuresLeaveNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mod  func(*sandbox.Spec)
		want error
		msg  string
	}{
		{"unpullable image", func(s *sandbox.Spec) { s.Image = imageUnpullable }, sandbox.ErrInvalid, "cannot be pulled"},
		{"never scheduled", func(s *sandbox.Spec) { s.Image = imageNeverStart }, sandbox.ErrUnavailable, "Insufficient memory"},
		{"workspace dir", func(s *sandbox.Spec) { s.WorkspaceDir = t.TempDir() }, sandbox.ErrInvalid, "workspace_dir"},
		{"mounts", func(s *sandbox.Spec) { s.Mounts = []sandbox.Mount{{Source: t.TempDir(), Target: "/data"}} }, sandbox.ErrInvalid, "mounts"},
		{"invalid spec", func(s *sandbox.Spec) { s.MemoryLimit = -1 }, sandbox.ErrInvalid, "memory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			p := c.provider(Options{StartTimeout: 500 * time.Millisecond})
			spec := hostSpec(t)
			tc.mod(&spec)
			start := time.Now()
			_, err := p.Create(t.Context(), spec)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Create = %v, want %v saying %q", err, tc.want, tc.msg)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Create took %s to fail", took)
			}
			if got := c.pods(); len(got) != 0 {
				t.Errorf("pods left by a failed create: %v", got)
			}
		})
	}
}

func TestCreateCancelledLeavesNothing(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	p := c.provider(Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	spec := hostSpec(t)
	spec.Image = imageNeverStart
	if _, err := p.Create(ctx, spec); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Create with a ctx that ends = %v, want its error", err)
	}
	if got := c.pods(); len(got) != 0 {
		t.Errorf("pods left by a cancelled create: %v", got)
	}
}

func TestNewMissingNamespace(t *testing.T) {
	t.Parallel()
	_, err := newProvider(t.Context(), fake.NewClientset(), nil, Options{Namespace: "nope"})
	if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), `namespace "nope" does not exist`) {
		t.Errorf("New in a missing namespace = %v, want ErrInvalid saying so", err)
	}
}

func TestNewUnreachable(t *testing.T) {
	t.Parallel()
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := New(t.Context(), Options{Kubeconfig: kc, Timeout: 3 * time.Second})
	if !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("New against a closed port = %v, want ErrUnavailable", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("New took %s to fail", took)
	}
	_, err = New(t.Context(), Options{Kubeconfig: filepath.Join(t.TempDir(), "missing")})
	if !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("New with a missing kubeconfig = %v, want ErrUnavailable", err)
	}
}

func TestNetworkPolicy(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.provider(Options{})
	c.provider(Options{}) // a second one finds it there
	pol, err := c.cs.NetworkingV1().NetworkPolicies("warden").Get(t.Context(), NetworkPolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel := pol.Spec.PodSelector.MatchLabels
	if sel[LabelNetwork] != "off" || sel[LabelManagedBy] != "warden" || len(pol.Spec.Ingress) != 0 || len(pol.Spec.Egress) != 0 || len(pol.Spec.PolicyTypes) != 2 {
		t.Errorf("NetworkPolicy = %+v, want deny-all for warden pods labelled network=off", pol.Spec)
	}
}

// TestPodDeathReported: a pod that dies under a sandbox (OOM-killed,
// evicted, deleted) is reported by the execution running, and the next
// ones fail with ErrConflict, at once.
func TestPodDeathReported(t *testing.T) {
	t.Parallel()
	requirePython(t)
	for _, tc := range []struct {
		name    string
		kill    func(c *cluster, pod *corev1.Pod)
		want    string
		wantOOM bool
	}{
		{"oom", func(c *cluster, pod *corev1.Pod) {
			pod.Status.Phase = corev1.PodFailed
			pod.Status.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", ExitCode: 137}}
			c.update(pod)
		}, "out of memory", true},
		{"evicted", func(c *cluster, pod *corev1.Pod) {
			pod.Status.Phase = corev1.PodFailed
			pod.Status.Reason, pod.Status.Message = "Evicted", "Pod ephemeral local storage usage exceeds the total limit of containers 64Mi."
			c.update(pod)
		}, "Evicted", false},
		{"deleted", func(c *cluster, pod *corev1.Pod) {
			if err := c.cs.CoreV1().Pods("warden").Delete(context.Background(), pod.Name, metav1.DeleteOptions{}); err != nil {
				c.t.Fatal(err)
			}
		}, "was deleted", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newCluster(t)
			p := c.provider(Options{})
			info, err := p.Create(t.Context(), hostSpec(t))
			if err != nil {
				t.Fatal(err)
			}
			pod, err := c.cs.CoreV1().Pods("warden").Get(t.Context(), info.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				time.Sleep(300 * time.Millisecond)
				tc.kill(c, pod)
				c.kill(info.Name) // the container's processes die with it
			}()
			start := time.Now()
			r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "sleep 30", Timeout: 5 * time.Second})
			if err != nil {
				t.Fatalf("Exec when the pod died = %v, want a result", err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Exec took %s to report the death", took)
			}
			if r.OOMKilled != tc.wantOOM || !strings.Contains(strings.Join(r.Notes, "\n"), tc.want) {
				t.Errorf("Exec when the pod died = exit %d, oom %v, notes %q; want oom %v and a note saying %q", r.ExitCode, r.OOMKilled, r.Notes, tc.wantOOM, tc.want)
			}
			_, err = p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"})
			if !errors.Is(err, sandbox.ErrConflict) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Exec after the death = %v, want ErrConflict saying %q", err, tc.want)
			}
			if err := p.Destroy(t.Context(), info.ID); err != nil {
				t.Errorf("Destroy of a dead sandbox: %v", err)
			}
		})
	}
}

func (c *cluster) update(pod *corev1.Pod) {
	c.t.Helper()
	if _, err := c.cs.CoreV1().Pods("warden").UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func TestRemoveOrphans(t *testing.T) {
	t.Parallel()
	host, _ := os.Hostname()
	dead := fmt.Sprintf("%s/%d/%d", host, 999999999, 1)
	pod := func(name, ownerID string, managed bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "warden", Annotations: map[string]string{annotationOwner: ownerID}, Labels: map[string]string{}}}
		if managed {
			p.Labels[LabelManagedBy] = managedBy
		}
		return p
	}
	c := newCluster(t,
		pod("dead-owner", dead, true),
		pod("live-owner", owner.ID(), true),
		pod("other-host", "elsewhere.example/1/2", true),
		pod("no-owner", "", true),
		pod("not-ours", dead, false),
	)
	p := c.provider(Options{KeepOrphans: true})
	n, err := p.RemoveOrphans(t.Context())
	if err != nil || n != 2 {
		t.Errorf("RemoveOrphans = %d, %v; want 2 (dead-owner, no-owner)", n, err)
	}
	got := strings.Join(c.pods(), " ")
	for _, name := range []string{"live-owner", "other-host", "not-ours"} {
		if !strings.Contains(got, name) {
			t.Errorf("RemoveOrphans removed %s", name)
		}
	}
	if strings.Contains(got, "dead-owner") || strings.Contains(got, "no-owner ") {
		t.Errorf("pods after RemoveOrphans: %s", got)
	}
}

func TestConvert(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want error
	}{
		{context.Canceled, context.Canceled},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), sandbox.ErrUnavailable},
	} {
		if got := convert(tc.err); !errors.Is(got, tc.want) {
			t.Errorf("convert(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRuntimeClass(t *testing.T) {
	t.Parallel()
	gvisor := &nodev1.RuntimeClass{ObjectMeta: metav1.ObjectMeta{Name: "gvisor"}, Handler: "runsc"}
	c := newCluster(t, gvisor)
	if _, err := newProvider(t.Context(), c.cs, c.exec, Options{RuntimeClass: "kata"}); !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), "gvisor") {
		t.Errorf("New with a missing runtime class = %v, want ErrInvalid listing gvisor", err)
	}
	p := c.provider(Options{RuntimeClass: "gvisor"})
	cl, err := p.Cluster(t.Context())
	if err != nil || len(cl.RuntimeClasses) != 1 || cl.RuntimeClasses[0] != "gvisor" || cl.RuntimeClass != "gvisor" {
		t.Errorf("Cluster() = %+v, %v", cl, err)
	}
	if s := cl.String(); !strings.Contains(s, "runtime classes gvisor") {
		t.Errorf("Cluster().String() = %q", s)
	}
}

// TestAdopt: a sandbox whose owner died is taken over by another
// provider (another replica): its files are there, its session is new,
// and a second adopter loses.
func TestAdopt(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	a := c.provider(Options{})
	spec := hostSpec(t)
	spec.Timeout = 42 * time.Second
	spec.Env = map[string]string{"TOKEN": "secret"}
	info, err := a.Create(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	pod, err := c.cs.CoreV1().Pods("warden").Get(t.Context(), info.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(pod.Annotations[annotationSpec], "secret") {
		t.Errorf("the spec annotation carries the environment: %s", pod.Annotations[annotationSpec])
	}
	if _, err := a.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "echo kept > adopt.txt"}); err != nil {
		t.Fatal(err)
	}
	b := c.provider(Options{KeepOrphans: true})
	if _, err := b.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "true"}); !errors.Is(err, sandbox.ErrNotFound) {
		t.Fatalf("Exec before Adopt = %v, want ErrNotFound", err)
	}
	got, err := b.Adopt(t.Context(), info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != info.Name || got.Spec.Timeout != 42*time.Second || got.Spec.WorkspacePath != spec.WorkspacePath {
		t.Errorf("Adopt = %+v, want the sandbox's name and spec", got)
	}
	r, err := b.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "cat adopt.txt"})
	if err != nil || string(r.Stdout) != "kept\n" {
		t.Errorf("the adopter reads the workspace = %q, %v", r.Stdout, err)
	}
	if _, err := b.Adopt(t.Context(), "sb-0000000000000000"); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("Adopt of an unknown sandbox = %v, want ErrNotFound", err)
	}
	if err := b.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	if got := c.pods(); len(got) != 0 {
		t.Errorf("pods after the adopter's Destroy: %v", got)
	}
}
