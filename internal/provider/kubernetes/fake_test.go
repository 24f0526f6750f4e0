package kubernetes

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Images the fake kubelet treats specially.
const (
	imageUnpullable = "registry.invalid/nothing:1"
	imageNeverStart = "example/pending:1"
)

// cluster is a fake API server (client-go's fake clientset) with a fake
// kubelet: pods start at once (or never, or fail to pull their image,
// according to their image), and exec runs the command on this host, in a
// directory of the test's standing for the pod's workspace.
type cluster struct {
	t  *testing.T
	cs *fake.Clientset

	mu    sync.Mutex
	dirs  map[string]string      // pod -> its working directory, on the host
	procs map[string][]*exec.Cmd // pod -> agents started
}

func newCluster(t *testing.T, objs ...runtime.Object) *cluster {
	t.Helper()
	objs = append([]runtime.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "warden"}}}, objs...)
	c := &cluster{t: t, cs: fake.NewClientset(objs...), dirs: map[string]string{}, procs: map[string][]*exec.Cmd{}}
	c.cs.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
		st := corev1.ContainerStatus{Name: containerName, Image: pod.Spec.Containers[0].Image}
		switch st.Image {
		case imageUnpullable:
			pod.Status.Phase = corev1.PodPending
			st.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "failed to resolve reference " + st.Image}
		case imageNeverStart:
			pod.Status.Phase = corev1.PodPending
			pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available: 1 Insufficient memory."}}
			return false, nil, nil
		default:
			pod.Status.Phase = corev1.PodRunning
			st.State.Running = &corev1.ContainerStateRunning{}
			c.mu.Lock()
			c.dirs[pod.Name] = pod.Spec.Containers[0].WorkingDir
			c.mu.Unlock()
		}
		pod.Status.ContainerStatuses = []corev1.ContainerStatus{st}
		return false, nil, nil // the tracker stores the pod
	})
	t.Cleanup(c.killAll)
	return c
}

// exec is the fake kubelet's exec: the agent runs as a host process in
// its own process group; the reset command kills the pod's agents'
// groups (never kill(-1) on the host).
func (c *cluster) exec(ctx context.Context, pod string, cmd []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if _, err := c.cs.CoreV1().Pods("warden").Get(ctx, pod, metav1.GetOptions{}); err != nil {
		return err
	}
	if slices.Equal(cmd, resetCommand) {
		c.kill(pod)
		return nil
	}
	c.mu.Lock()
	dir := c.dirs[pod]
	c.mu.Unlock()
	x := exec.CommandContext(ctx, cmd[0], cmd[1:]...)
	x.Dir = dir
	x.Env = agent.BaseEnv(dir)
	x.Stdout, x.Stderr = stdout, stderr
	if stdin != nil {
		// An *os.File, so that Wait does not wait on a copy from stdin
		// that only the host's Close would end.
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer r.Close()
		go func() {
			_, _ = io.Copy(w, stdin)
			w.Close()
		}()
		x.Stdin = r
	}
	x.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	x.Cancel = func() error { return syscall.Kill(-x.Process.Pid, syscall.SIGKILL) }
	x.WaitDelay = time.Second
	if err := x.Start(); err != nil {
		return err
	}
	c.mu.Lock()
	c.procs[pod] = append(c.procs[pod], x)
	c.mu.Unlock()
	return x.Wait()
}

// kill ends the process groups of the pod's agents, as a reset does.
func (c *cluster) kill(pod string) {
	c.mu.Lock()
	procs := c.procs[pod]
	c.procs[pod] = nil
	c.mu.Unlock()
	for _, x := range procs {
		_ = syscall.Kill(-x.Process.Pid, syscall.SIGKILL)
	}
}

// killAll ends every process the pods' agents started, as the end of
// their containers would: their process groups, and the processes that
// left them (the worker's snapshot has a group of its own, background
// processes a session), found by a pod's workspace in their environment.
// Without the second part each test run left host processes behind.
func (c *cluster) killAll() {
	c.mu.Lock()
	pods := make([]string, 0, len(c.procs))
	for p := range c.procs {
		pods = append(pods, p)
	}
	marks := make([][]byte, 0, len(c.dirs))
	for _, dir := range c.dirs {
		if dir != "" {
			marks = append(marks, []byte("\x00WARDEN_WORKSPACE="+dir+"\x00"))
		}
	}
	c.mu.Unlock()
	for _, p := range pods {
		c.kill(p)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		env = append([]byte{0}, env...)
		for _, m := range marks {
			if bytes.Contains(env, m) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				break
			}
		}
	}
}

// provider opens a provider on the fake cluster.
func (c *cluster) provider(opts Options) *Provider {
	c.t.Helper()
	p, err := newProvider(c.t.Context(), c.cs, c.exec, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// pods returns the names of the pods in the namespace.
func (c *cluster) pods() []string {
	c.t.Helper()
	list, err := c.cs.CoreV1().Pods("warden").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	return out
}

// hostSpec is a spec whose workspace path is a directory of the test's:
// the agent runs on this host, where /workspace does not exist.
func hostSpec(t *testing.T) sandbox.Spec {
	return sandbox.Spec{WorkspacePath: t.TempDir()}
}

func requirePython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on this host to run the agent")
	}
}
