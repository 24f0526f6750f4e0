package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestClusterReplicas runs two real `warden serve` replicas on loopback
// against the real cluster that WARDEN_TEST_KUBECONFIG names
// (scripts/k8s/up.sh; scripts/k8s/ci.sh runs it): a sandbox created
// through A is used through B, which forwards to A (the Python session is
// kept); A is killed with SIGKILL; B then adopts the sandbox once A's
// Lease has expired (the workspace and environment are kept, the session
// restarts and the result says so); deleting it through B leaves no pod
// and no Secret. Then B stops gracefully, as in a rolling update, and a
// third replica C adopts B's sandbox at once; C's stop, with no sandbox,
// deletes its Lease.
func TestClusterReplicas(t *testing.T) {
	kc := os.Getenv("WARDEN_TEST_KUBECONFIG")
	if kc == "" {
		if testutil.Required("WARDEN_REQUIRE_KUBERNETES") {
			t.Fatal("WARDEN_TEST_KUBECONFIG is not set, and WARDEN_REQUIRE_KUBERNETES=1 requires a cluster (scripts/k8s/up.sh prints its kubeconfig)")
		}
		t.Skip("no cluster: set WARDEN_TEST_KUBECONFIG (scripts/k8s/up.sh prints it)")
	}
	ns := os.Getenv("WARDEN_TEST_K8S_NAMESPACE")
	if ns == "" {
		ns = "warden"
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := k8s.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	bin := buildWarden(t)
	var suffix [3]byte
	_, _ = rand.Read(suffix[:])
	run := hex.EncodeToString(suffix[:])
	const key = "replica-test-key"
	env := []string{"SANDBOX__PROVIDER=kubernetes", "SANDBOX__KUBERNETES_KUBECONFIG=" + kc, "SANDBOX__KUBERNETES_NAMESPACE=" + ns,
		"SANDBOX__IMAGE=" + testutil.Image(), "SANDBOX__WARM_POOL_SIZE=0", "SANDBOX__KUBERNETES_LEASE_DURATION=5s",
		"API__HOST=127.0.0.1", "API__KEYS=" + key, "LOG__LEVEL=info", "LOG__FORMAT=text"}
	idA, idB, idC := "test-a-"+run, "test-b-"+run, "test-c-"+run
	a := startReplica(t, bin, append(env, "SANDBOX__KUBERNETES_REPLICA_ID="+idA)...)
	b := startReplica(t, bin, append(env, "SANDBOX__KUBERNETES_REPLICA_ID="+idB)...)
	t.Cleanup(func() {
		// The Leases of A (killed) and B (which handed a sandbox over)
		// stay, expired, until the adoption window passes.
		for _, id := range []string{idA, idB, idC} {
			_ = cs.CoordinationV1().Leases(ns).Delete(context.Background(), "warden-replica-"+id, metav1.DeleteOptions{})
		}
	})
	call := func(w *replicaProc, method, path, body string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, w.url+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, out
	}
	execute := func(w *replicaProc, id, lang, code string) (int, api.ExecResult, []byte) {
		t.Helper()
		body, _ := json.Marshal(map[string]string{"language": lang, "code": code})
		st, out := call(w, http.MethodPost, "/sandbox/"+id+"/execute", string(body))
		var res api.ExecResult
		if st == http.StatusOK {
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatal(err)
			}
		}
		return st, res, out
	}
	mustExec := func(w *replicaProc, id, lang, code string) api.ExecResult {
		t.Helper()
		st, res, out := execute(w, id, lang, code)
		if st != http.StatusOK {
			t.Fatalf("execute %q through %s: %d %s", code, w.url, st, out)
		}
		return res
	}

	st, out := call(a, http.MethodPost, "/sandbox/create", `{"environment_variables":{"TOKEN":"s3cret"}}`)
	var box api.Sandbox
	if st != http.StatusCreated || json.Unmarshal(out, &box) != nil {
		t.Fatalf("create through A: %d %s\n%s", st, out, a.log())
	}
	id := box.ID
	t.Cleanup(func() {
		_ = cs.CoreV1().Pods(ns).Delete(context.Background(), box.Name, metav1.DeleteOptions{})
	})

	// Through B, served by A.
	mustExec(b, id, "python", "x = 41")
	if r := mustExec(b, id, "python", "print(x + 1)"); r.Stdout != "42\n" {
		t.Errorf("through B, the session of A: %q %+v", r.Stdout, r.Error)
	}
	mustExec(b, id, "shell", "echo kept > /workspace/note.txt")
	if st, out := call(b, http.MethodGet, "/sandbox", ""); st != http.StatusOK || !strings.Contains(string(out), id) {
		t.Errorf("GET /sandbox through B: %d %s", st, out)
	}

	// A dies; B answers 503 (quickly) until A's Lease (5 s) expires, then
	// adopts the sandbox.
	a.kill()
	killed := time.Now()
	var r api.ExecResult
	unavailable := 0
	for {
		st, res, out := execute(b, id, "python", "print(x)")
		if st == http.StatusOK {
			r = res
			break
		}
		if st != http.StatusServiceUnavailable || time.Since(killed) > 2*time.Minute {
			t.Fatalf("after A's kill, execute through B: %d %s\n%s", st, out, b.log())
		}
		unavailable++
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("B adopted the sandbox %v after A's kill (%d answers 503 before)", time.Since(killed).Round(100*time.Millisecond), unavailable)
	if r.Error == nil || r.Error.Name != "NameError" {
		t.Errorf("after adoption, print(x) = %q %+v, want a NameError (the session restarted)", r.Stdout, r.Error)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "session was restarted") {
		t.Errorf("notes after adoption: %q", r.Notes)
	}
	if r := mustExec(b, id, "shell", `cat /workspace/note.txt; echo "$TOKEN"`); r.Stdout != "kept\ns3cret\n" {
		t.Errorf("workspace and environment after adoption: %q", r.Stdout)
	}
	pod, err := cs.CoreV1().Pods(ns).Get(ctx, box.Name, metav1.GetOptions{})
	if err != nil || pod.Annotations["warden.dev/replica"] != idB {
		t.Errorf("the pod after adoption: %v, replica %q", err, pod.Annotations["warden.dev/replica"])
	}

	if st, out := call(b, http.MethodDelete, "/sandbox/"+id, ""); st != http.StatusOK {
		t.Fatalf("delete through B: %d %s", st, out)
	}
	gone := func(pod string) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			_, perr := cs.CoreV1().Pods(ns).Get(ctx, pod, metav1.GetOptions{})
			_, serr := cs.CoreV1().Secrets(ns).Get(ctx, pod+"-env", metav1.GetOptions{})
			if apierrors.IsNotFound(perr) && apierrors.IsNotFound(serr) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("a minute after the delete: pod %v, Secret %v", perr, serr)
			}
		}
	}
	gone(box.Name)

	// A rolling update: B stops (SIGTERM) and leaves its sandbox to C,
	// which adopts it at the first request, without waiting for a Lease.
	c := startReplica(t, bin, append(env, "SANDBOX__KUBERNETES_REPLICA_ID="+idC)...)
	st, out = call(b, http.MethodPost, "/sandbox/create", `{}`)
	var box2 api.Sandbox
	if st != http.StatusCreated || json.Unmarshal(out, &box2) != nil {
		t.Fatalf("create through B: %d %s", st, out)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Pods(ns).Delete(context.Background(), box2.Name, metav1.DeleteOptions{})
	})
	mustExec(b, box2.ID, "shell", "echo handed > /workspace/note.txt")
	b.stop()
	if !strings.Contains(b.log(), "sandboxes left to the other replicas") {
		t.Errorf("B's stop:\n%s", b.log())
	}
	if r := mustExec(c, box2.ID, "shell", "cat /workspace/note.txt"); r.Stdout != "handed\n" ||
		!strings.Contains(strings.Join(r.Notes, "\n"), "session was restarted") {
		t.Errorf("through C after B's stop: %q %q", r.Stdout, r.Notes)
	}
	if st, out := call(c, http.MethodDelete, "/sandbox/"+box2.ID, ""); st != http.StatusOK {
		t.Fatalf("delete through C: %d %s", st, out)
	}
	gone(box2.Name)
	c.stop()
	if _, err := cs.CoordinationV1().Leases(ns).Get(ctx, "warden-replica-"+idC, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("C's Lease after its stop: %v, want deleted; C's log:\n%s", err, c.log())
	}
	for _, id := range []string{id, box2.ID} {
		list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "warden.dev/sandbox=" + id})
		if err != nil || len(list.Items) != 0 {
			t.Errorf("pods of sandbox %s left: %v %v", id, list, err)
		}
	}
}

// replicaProc is one `warden serve` process.
type replicaProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	logs *syncLog
	done chan struct{}
}

// syncLog holds a process's stderr so far, in a channel of one.
type syncLog struct{ ch chan string }

func startReplica(t *testing.T, bin string, env ...string) *replicaProc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--port", "0")
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w := &replicaProc{t: t, cmd: cmd, done: make(chan struct{}), logs: &syncLog{ch: make(chan string, 1)}}
	t.Cleanup(w.kill)
	lines := bufio.NewScanner(stderr)
	var head strings.Builder
	for w.url == "" && lines.Scan() {
		head.WriteString(lines.Text() + "\n")
		if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
			w.url, _, _ = strings.Cut(rest, " ")
		}
	}
	if w.url == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("no listening line:\n%s", head.String())
	}
	w.logs.ch <- head.String()
	go func() {
		for lines.Scan() {
			s := <-w.logs.ch
			w.logs.ch <- s + lines.Text() + "\n"
		}
		close(w.done)
	}()
	return w
}

func (w *replicaProc) log() string {
	s := <-w.logs.ch
	w.logs.ch <- s
	return s
}

func (w *replicaProc) kill() {
	if w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Kill()
	<-w.done
	_ = w.cmd.Wait()
}

func (w *replicaProc) stop() {
	w.t.Helper()
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(2 * time.Minute):
		w.t.Fatalf("warden serve still running 2 minutes after SIGTERM:\n%s", w.log())
	}
	if err := w.cmd.Wait(); err != nil {
		w.t.Errorf("warden serve exited with %v:\n%s", err, w.log())
	}
}
