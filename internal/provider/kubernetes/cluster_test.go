package kubernetes_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/warden-sandbox/warden/internal/provider/kubernetes"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/sandbox/sandboxtest"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// These tests run against a real cluster: the one WARDEN_TEST_KUBECONFIG
// names (scripts/k8s/up.sh prints its kubeconfig's path), in the
// namespace WARDEN_TEST_K8S_NAMESPACE (default warden), with the runtime
// image loaded on its nodes. Without it they are skipped, unless
// WARDEN_REQUIRE_KUBERNETES=1, which makes them fail.

// hostWorkspace is why the cases that read the workspace from the host
// cannot run: pods keep their workspace on their node.
const hostWorkspace = "the workspace is an emptyDir in the pod, on its node: there is no host directory behind it " +
	"(Info.Workspace is empty) for the case to read; TestClusterInSandbox checks the same from inside"

// clusterSkips are the conformance cases a Kubernetes cluster cannot pass
// by nature, with why.
var clusterSkips = map[string]string{
	"FilesShared":                 hostWorkspace,
	"WorkspaceDirKept":            "a pod cannot use a directory of Warden's host as its workspace; workspace_dir is refused with ErrInvalid",
	"Destroy":                     hostWorkspace,
	"DestroyKillsProcesses":       hostWorkspace,
	"DestroyEndsProcesses":        hostWorkspace,
	"TimeoutKillsBackgroundChild": hostWorkspace,
	"Network": "a pod always has its CNI interface besides lo; network off is a NetworkPolicy, which only an enforcing CNI " +
		"applies (the test cluster's bridge plugin does not); TestClusterNetworkPolicy checks the policy selects offline pods",
}

func clusterOptions(t *testing.T) kubernetes.Options {
	t.Helper()
	kc := os.Getenv("WARDEN_TEST_KUBECONFIG")
	if kc == "" {
		if testutil.Required("WARDEN_REQUIRE_KUBERNETES") {
			t.Fatal("WARDEN_TEST_KUBECONFIG is not set, and WARDEN_REQUIRE_KUBERNETES=1 requires a cluster (scripts/k8s/up.sh prints its kubeconfig)")
		}
		t.Skip("no cluster: set WARDEN_TEST_KUBECONFIG (scripts/k8s/up.sh prints it)")
	}
	ns := os.Getenv("WARDEN_TEST_K8S_NAMESPACE")
	return kubernetes.Options{Kubeconfig: kc, Namespace: ns, StartTimeout: time.Minute}
}

func openCluster(t *testing.T, opts kubernetes.Options) *kubernetes.Provider {
	t.Helper()
	p, err := kubernetes.New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

func TestClusterConformance(t *testing.T) {
	t.Parallel()
	opts := clusterOptions(t)
	opts.KeepOrphans = true // the other tests' pods are not orphans
	sandboxtest.Config{Spec: sandbox.Spec{Image: testutil.Image()}, RuntimeImage: true, Skip: clusterSkips}.Run(t, func(t *testing.T) sandbox.Provider {
		p, err := kubernetes.New(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}

// clientset is a client of the test cluster, to look at pods.
func clientset(t *testing.T, opts kubernetes.Options) k8s.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", opts.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func exec(t *testing.T, p sandbox.Provider, id sandbox.ID, lang sandbox.Language, code string) sandbox.ExecResult {
	t.Helper()
	r, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: lang, Code: code, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("Exec(%q): %v", code, err)
	}
	return r
}

// TestClusterInSandbox checks from inside a pod what the skipped
// conformance cases check on the host: files shared between Python and
// shell, a timed-out command's background child gone, the hardening.
func TestClusterInSandbox(t *testing.T) {
	t.Parallel()
	opts := clusterOptions(t)
	opts.KeepOrphans = true
	p := openCluster(t, opts)
	info, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	exec(t, p, info.ID, sandbox.Python, "open('from_py.txt', 'w').write('py data')")
	if r := exec(t, p, info.ID, sandbox.Shell, "cat from_py.txt"); string(r.Stdout) != "py data" {
		t.Errorf("shell reads Python's file: %q", r.Stdout)
	}
	r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Timeout: time.Second,
		Code: "(trap '' INT TERM HUP; while :; do echo tick >> ticks; sleep 0.05; done) & sleep 30"})
	if err != nil || !r.TimedOut {
		t.Fatalf("timed-out command = %+v, %v", r, err)
	}
	size := func() int {
		r := exec(t, p, info.ID, sandbox.Shell, "stat -c %s ticks")
		n, _ := strconv.Atoi(strings.TrimSpace(string(r.Stdout)))
		return n
	}
	before := size()
	time.Sleep(time.Second)
	if after := size(); before == 0 || after != before {
		t.Errorf("ticks %d then %d bytes: the timed-out command's child still runs", before, after)
	}
	for _, c := range []struct{ cmd, want string }{
		{"id -u; id -g", "1000\n1000\n"},
		{"grep CapEff /proc/self/status", "CapEff:\t0000000000000000\n"},
		{"grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t1\n"},
		{"grep Seccomp: /proc/self/status", "Seccomp:\t2\n"},
		{"touch /usr/x 2>/dev/null || echo read-only", "read-only\n"},
		{"test -e /var/run/secrets/kubernetes.io/serviceaccount/token || echo no token", "no token\n"},
		// Service links are off: the API server's KUBERNETES_SERVICE_*
		// variables, which Kubernetes always sets, are the only ones.
		{"env | grep _SERVICE_HOST= | cut -d= -f1", "KUBERNETES_SERVICE_HOST\n"},
	} {
		if r := exec(t, p, info.ID, sandbox.Shell, c.cmd); string(r.Stdout) != c.want {
			t.Errorf("%s = %q, want %q", c.cmd, r.Stdout, c.want)
		}
	}
	if err := p.Destroy(t.Context(), info.ID); err != nil {
		t.Fatal(err)
	}
	cs := clientset(t, opts)
	if _, err := cs.CoreV1().Pods(p.Namespace()).Get(t.Context(), info.Name, metav1.GetOptions{}); err == nil {
		t.Errorf("pod %s still there after Destroy", info.Name)
	}
}

func TestClusterNetworkPolicy(t *testing.T) {
	t.Parallel()
	opts := clusterOptions(t)
	opts.KeepOrphans = true
	p := openCluster(t, opts)
	cs := clientset(t, opts)
	pol, err := cs.NetworkingV1().NetworkPolicies(p.Namespace()).Get(t.Context(), kubernetes.NetworkPolicyName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sel := labels.SelectorFromSet(pol.Spec.PodSelector.MatchLabels)
	for _, network := range []bool{false, true} {
		info, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image(), Network: network}.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		pod, err := cs.CoreV1().Pods(p.Namespace()).Get(t.Context(), info.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := sel.Matches(labels.Set(pod.Labels)); got == network {
			t.Errorf("network %v: the deny-all policy selects the pod: %v", network, got)
		}
	}
}

// TestClusterFaults: bad input and faults give a clear error or a
// reported death, in time, and leave no pod.
func TestClusterFaults(t *testing.T) {
	t.Parallel()
	opts := clusterOptions(t)
	opts.KeepOrphans = true
	cs := clientset(t, opts)
	t.Run("MissingNamespace", func(t *testing.T) {
		t.Parallel()
		o := opts
		o.Namespace = "warden-no-such-namespace"
		if _, err := kubernetes.New(t.Context(), o); !errors.Is(err, sandbox.ErrInvalid) {
			t.Errorf("New in a missing namespace = %v, want ErrInvalid", err)
		}
	})
	t.Run("UnpullableImage", func(t *testing.T) {
		t.Parallel()
		o := opts
		o.ImagePullPolicy = "Never" // the same failure, without a lookup on the network
		p := openCluster(t, o)
		start := time.Now()
		_, err := p.Create(t.Context(), sandbox.Spec{Image: "registry.invalid/warden/nothing:1"}.WithDefaults())
		if !errors.Is(err, sandbox.ErrInvalid) || !strings.Contains(err.Error(), "cannot be pulled") {
			t.Errorf("Create with an unpullable image = %v, want ErrInvalid saying it cannot be pulled", err)
		}
		t.Logf("failed in %s: %v", time.Since(start).Round(time.Millisecond), err)
		wantNoPods(t, cs, p)
	})
	t.Run("PodDeleted", func(t *testing.T) {
		t.Parallel()
		p := openCluster(t, opts)
		info, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()}.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(time.Second)
			zero := int64(0)
			_ = cs.CoreV1().Pods(p.Namespace()).Delete(context.Background(), info.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		}()
		start := time.Now()
		r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "sleep 60", Timeout: 90 * time.Second})
		t.Logf("reported in %s: %+v, %v", time.Since(start).Round(time.Millisecond), r.Notes, err)
		if err == nil && !strings.Contains(strings.Join(r.Notes, " "), "deleted") {
			t.Errorf("Exec when the pod was deleted = %+v, want a note saying so", r)
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("the death took %s to be reported", took)
		}
		if _, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "1"}); !errors.Is(err, sandbox.ErrConflict) {
			t.Errorf("Exec after the pod died = %v, want ErrConflict", err)
		}
	})
	t.Run("WholeContainerOOM", func(t *testing.T) {
		t.Parallel()
		p := openCluster(t, opts)
		info, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image(), MemoryLimit: 64 << 20}.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		// Many processes, none worth killing alone: the kernel ends them
		// one after the other. Which it picks decides whether the pod
		// ends (its PID 1, the reaper, must go for that): the reaper's
		// OOM score, raised as the sandbox user may, makes it the
		// first pick after a snapshot's, so that the whole container is
		// OOM-killed every time.
		r, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Timeout: 60 * time.Second,
			Code: "echo 1000 > /proc/1/oom_score_adj; for i in $(seq 1 40); do python3 -c 'b = bytearray(8 << 20); import time; time.sleep(60)' & done; wait"})
		t.Logf("result: exit %d oom %v notes %q err %v", r.ExitCode, r.OOMKilled, r.Notes, err)
		if !r.OOMKilled || !strings.Contains(strings.Join(r.Notes, " "), "out of memory") {
			t.Errorf("an OOM-killed pod = exit %d, oom %v, notes %q, %v; want OOMKilled and a note saying so", r.ExitCode, r.OOMKilled, r.Notes, err)
		}
		if _, err := p.Exec(t.Context(), info.ID, sandbox.ExecRequest{Language: sandbox.Shell, Code: "echo alive"}); !errors.Is(err, sandbox.ErrConflict) {
			t.Errorf("Exec after the pod's OOM kill = %v, want ErrConflict", err)
		}
	})
}

func wantNoPods(t *testing.T, cs k8s.Interface, p *kubernetes.Provider) {
	t.Helper()
	list, err := cs.CoreV1().Pods(p.Namespace()).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, pod := range list.Items {
		if strings.Contains(pod.Spec.Containers[0].Image, "registry.invalid") {
			t.Errorf("pod %s left by a failed create", pod.Name)
		}
	}
}
