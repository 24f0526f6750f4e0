package kubernetes_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// TestClusterHostile runs, on a real cluster, the hostile-code cases of
// the Docker and bubblewrap providers that apply to a pod: code that
// fork-bombs, floods its output, writes garbage into the agent's channel,
// kills the agent or every process it may, or fills its workspace past
// the emptyDir's limit. Each must leave Warden and other sandboxes
// untouched, and the sandbox usable or its death reported.
func TestClusterHostile(t *testing.T) {
	t.Parallel()
	opts := clusterOptions(t)
	opts.KeepOrphans = true
	p := openCluster(t, opts)
	create := func(t *testing.T, spec sandbox.Spec) sandbox.ID {
		t.Helper()
		spec.Image = testutil.Image()
		info, err := p.Create(t.Context(), spec.WithDefaults())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Destroy(t.Context(), info.ID) })
		return info.ID
	}
	// A neighbour that must keep answering, and keep its state, whatever
	// the others do.
	neighbour := create(t, sandbox.Spec{})
	exec(t, p, neighbour, sandbox.Python, "n = 7")
	t.Cleanup(func() {
		r, err := p.Exec(context.Background(), neighbour, sandbox.ExecRequest{Language: sandbox.Python, Code: "n * 6", Timeout: 30 * time.Second})
		if err != nil || r.ReturnValue == nil || *r.ReturnValue != "42" {
			t.Errorf("the neighbour sandbox after the hostile cases: %v %v %+v %q", err, r.ReturnValue, r.Error, r.Notes)
		}
	})

	t.Run("ForkBomb", func(t *testing.T) {
		t.Parallel()
		id := create(t, sandbox.Spec{})
		// Kubernetes has no per-pod process limit of its own: the
		// kubelet's podPidsLimit bounds each pod (1024 on the test
		// cluster; ADR 0016).
		r := exec(t, p, id, sandbox.Python, `
import os, time
n = 0
try:
    while n < 100000:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        n += 1
except OSError as e:
    print("stopped after", n, "forks:", e.strerror)
`)
		if !strings.Contains(string(r.Stdout), "stopped after") {
			t.Fatalf("fork bomb = %q %+v %q", r.Stdout, r.Error, r.Notes)
		}
		t.Logf("%s", strings.TrimSpace(string(r.Stdout)))
		if r := exec(t, p, neighbour, sandbox.Python, "n"); r.ReturnValue == nil || *r.ReturnValue != "7" {
			t.Errorf("the neighbour during the bomb: %v %+v", r.ReturnValue, r.Error)
		}
		exec(t, p, id, sandbox.Shell, "kill -9 -1 2>/dev/null; sleep 1")
		if r := exec(t, p, id, sandbox.Python, "print('alive')"); string(r.Stdout) != "alive\n" {
			t.Fatalf("after the fork bomb = %q %+v %q", r.Stdout, r.Error, r.Notes)
		}
	})

	t.Run("OutputFloodAndProtocolAbuse", func(t *testing.T) {
		t.Parallel()
		id := create(t, sandbox.Spec{OutputLimit: 64 << 10})
		r, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Python, Code: "while True: print('flood' * 1000)", Timeout: 3 * time.Second})
		if err != nil || len(r.Stdout) != 64<<10 || !r.StdoutTruncated || !r.TimedOut {
			t.Fatalf("flood: %d bytes, truncated %v, timed out %v, %v", len(r.Stdout), r.StdoutTruncated, r.TimedOut, err)
		}
		exec(t, p, id, sandbox.Python, "x = 42")
		for _, c := range []struct {
			code string
			// forged: the code writes frames into the agent's own channel
			// to Warden. The agent is untrusted too (ADR 0003): Warden
			// reports the broken protocol and starts a new agent, and the
			// session's variables are lost, which a note says.
			forged bool
		}{
			{"import sys\nsys.stdout.buffer.write(b'r\\x00\\x00\\x00\\x02{}' * 100)", false},
			{"import os\nos.write(1, bytes(range(256)) * 64)", false},
			{"import os\nos.close(1)\nos.close(2)", false},
			{"import os\nfor fd in map(int, os.listdir('/proc/self/fd')):\n    try: os.write(fd, b'\\xff' * 64)\n    except OSError: pass", false},
			// The agent's own descriptors, through /proc: the agent is
			// the worker's parent and runs as the same user.
			{"import os\nfor fd in os.listdir('/proc/%d/fd' % os.getppid()):\n    try:\n        f = os.open('/proc/%d/fd/%s' % (os.getppid(), fd), os.O_WRONLY | os.O_NONBLOCK)\n        os.write(f, b'd\\x00\\x00\\x00\\x05junk!' * 10)\n    except OSError: pass", true},
		} {
			if err := p.Checkpoint(t.Context(), id); err != nil {
				t.Fatal(err)
			}
			abused, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Python, Code: c.code, Timeout: 10 * time.Second})
			if err != nil {
				t.Fatalf("Exec(%q): %v", c.code, err)
			}
			r := exec(t, p, id, sandbox.Python, "print('ok')\nx = 42\nx")
			kept := r.ReturnValue != nil && *r.ReturnValue == "42"
			if c.forged {
				kept = strings.Contains(strings.Join(r.Notes, " "), "restarted") || strings.Contains(strings.Join(abused.Notes, " "), "restarted")
			}
			if string(r.Stdout) != "ok\n" || !kept {
				t.Fatalf("after %q (exit %d, error %+v, notes %q): %q %v %q %+v", c.code,
					abused.ExitCode, abused.Error, abused.Notes, r.Stdout, r.ReturnValue, r.Notes, r.Error)
			}
		}
	})

	t.Run("AgentKilled", func(t *testing.T) {
		t.Parallel()
		id := create(t, sandbox.Spec{})
		exec(t, p, id, sandbox.Shell, "echo kept > marker")
		r := exec(t, p, id, sandbox.Python, "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
		if r.ExitCode != 137 {
			t.Fatalf("killing the agent = %+v", r)
		}
		if r := exec(t, p, id, sandbox.Shell, "cat marker"); string(r.Stdout) != "kept\n" || len(r.Notes) == 0 {
			t.Fatalf("after the agent's death = %q, notes %q; want the workspace kept and a note", r.Stdout, r.Notes)
		}
	})

	t.Run("KillEverything", func(t *testing.T) {
		t.Parallel()
		id := create(t, sandbox.Spec{})
		exec(t, p, id, sandbox.Python, "y = 5")
		// Every process the sandbox user may signal, the agent included;
		// the pod's PID 1 (the reaper) ignores it, so the pod lives on.
		exec(t, p, id, sandbox.Shell, "kill -9 -1")
		r := exec(t, p, id, sandbox.Shell, "echo back; cat /proc/1/comm")
		if !strings.HasPrefix(string(r.Stdout), "back\n") {
			t.Fatalf("after kill -9 -1 = %q %+v %q", r.Stdout, r.Error, r.Notes)
		}
	})

	t.Run("WorkspaceFilled", func(t *testing.T) {
		t.Parallel()
		// The emptyDir's sizeLimit is enforced by the kubelet's eviction,
		// not by the kernel: the writes succeed, then the pod is evicted,
		// and its death is reported.
		id := create(t, sandbox.Spec{WorkspaceSize: 16 << 20})
		exec(t, p, id, sandbox.Shell, "head -c 48M /dev/zero > fill")
		deadline := time.Now().Add(90 * time.Second)
		for {
			r, err := p.Exec(t.Context(), id, sandbox.ExecRequest{Language: sandbox.Shell, Code: "sleep 2", Timeout: 30 * time.Second})
			if errors.Is(err, sandbox.ErrConflict) {
				if !strings.Contains(err.Error(), "vict") {
					t.Errorf("the evicted sandbox's error does not say it was evicted: %v", err)
				}
				t.Logf("ended: %v", err)
				return
			}
			if err != nil {
				t.Fatalf("Exec after filling the workspace = %v, want a result or ErrConflict", err)
			}
			if notes := strings.Join(r.Notes, " "); strings.Contains(notes, "evict") {
				t.Logf("reported: %s", notes)
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the pod was not evicted 90 s after its workspace passed its size limit")
			}
		}
	})
}
