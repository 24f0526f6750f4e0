package kubernetes_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestNodeLost: the sandbox's node goes away (its kubelet stops
// answering, as when a node freezes or drops off the network) while an
// execution runs and a sandbox sits idle. Each gets a reported death in
// bounded time, never a hang: the execution's result says the pod is
// unreachable, and every later call fails with ErrConflict. It stops the
// test cluster's only kubelet, so it runs alone, after the other cluster
// tests (scripts/k8s/ci.sh runs it so, with WARDEN_TEST_K8S_KUBELET_PIDFILE
// naming the kubelet's pid file), and lets the kubelet go on at the end.
func TestNodeLost(t *testing.T) {
	opts := clusterOptions(t)
	pidfile := os.Getenv("WARDEN_TEST_K8S_KUBELET_PIDFILE")
	if pidfile == "" {
		if testutil.Required("WARDEN_REQUIRE_KUBERNETES") {
			t.Fatal("WARDEN_TEST_K8S_KUBELET_PIDFILE is not set; scripts/k8s/ci.sh sets it")
		}
		t.Skip("stops the cluster's kubelet: set WARDEN_TEST_K8S_KUBELET_PIDFILE (scripts/k8s/ci.sh does)")
	}
	data, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	kubelet, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("kubelet pid file %s: %v", pidfile, err)
	}
	opts.KeepOrphans = true
	p := openCluster(t, opts)
	busy, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	idle, err := p.Create(t.Context(), sandbox.Spec{Image: testutil.Image()}.WithDefaults())
	if err != nil {
		t.Fatal(err)
	}
	exec(t, p, busy.ID, sandbox.Python, "x = 1")
	exec(t, p, idle.ID, sandbox.Python, "y = 2")

	if err := syscall.Kill(kubelet, syscall.SIGSTOP); err != nil {
		t.Fatalf("stopping the kubelet: %v", err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(kubelet, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)

	// Both at once: the busy sandbox's running execution, and the idle
	// one's next call.
	type outcome struct {
		r    sandbox.ExecResult
		err  error
		took time.Duration
	}
	idleDone := make(chan outcome, 1)
	go func() {
		start := time.Now()
		r, err := p.Exec(t.Context(), idle.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "y", Timeout: 30 * time.Second})
		idleDone <- outcome{r, err, time.Since(start)}
	}()
	start := time.Now()
	r, err := p.Exec(t.Context(), busy.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "import time\ntime.sleep(120)\nprint('done')", Timeout: 30 * time.Second})
	took := time.Since(start)
	t.Logf("running execution: %s: exit %d, notes %q, err %v", took.Round(time.Millisecond), r.ExitCode, r.Notes, err)
	// The running execution ends at its timeout, later than usual: the
	// interrupt and the kill go through the lost kubelet and time out in
	// turn (76 s for a 30 s timeout in the first run). Its result may not
	// know yet that the pod is lost; the next call does.
	if err == nil && !r.TimedOut && !strings.Contains(strings.Join(r.Notes, " "), "cannot run anything more") {
		t.Errorf("the execution on a lost node = %+v, want it timed out or its death reported", r)
	}
	if err != nil && !errors.Is(err, sandbox.ErrConflict) && !errors.Is(err, sandbox.ErrUnavailable) {
		t.Errorf("the execution on a lost node = %v, want a reported death", err)
	}
	if took > 3*time.Minute {
		t.Errorf("the execution on a lost node took %s to end", took)
	}
	if _, err := p.Exec(t.Context(), busy.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "x"}); !errors.Is(err, sandbox.ErrConflict) {
		t.Errorf("Exec after the node was lost = %v, want ErrConflict", err)
	}

	o := <-idleDone
	t.Logf("idle sandbox's next execution: %s: notes %q, err %v", o.took.Round(time.Millisecond), o.r.Notes, o.err)
	// The same for the idle sandbox's call: timed out, or its death
	// reported; its next call knows.
	if o.err == nil && !o.r.TimedOut && !strings.Contains(strings.Join(o.r.Notes, " "), "cannot run anything more") {
		t.Errorf("an execution on an idle sandbox of a lost node = %+v, want it timed out or its death reported", o.r)
	}
	if o.err != nil && !errors.Is(o.err, sandbox.ErrConflict) {
		t.Errorf("an execution on an idle sandbox of a lost node = %v, want ErrConflict saying why", o.err)
	}
	if o.took > 3*time.Minute {
		t.Errorf("the idle sandbox's call took %s to end", o.took)
	}
	if _, err := p.Exec(t.Context(), idle.ID, sandbox.ExecRequest{Language: sandbox.Python, Code: "y"}); !errors.Is(err, sandbox.ErrConflict) {
		t.Errorf("the idle sandbox's next call after the node was lost = %v, want ErrConflict", err)
	} else {
		t.Logf("then: %v", err)
	}

	// The node comes back: the sandboxes stay ended (their agents'
	// sessions are gone), Destroy removes their pods.
	resume()
	for _, id := range []sandbox.ID{busy.ID, idle.ID} {
		if err := p.Destroy(t.Context(), id); err != nil {
			t.Errorf("Destroy(%s) after the node came back: %v", id, err)
		}
	}
}
