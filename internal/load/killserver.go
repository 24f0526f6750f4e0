package load

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// killSwitch lets the clients of FaultKillServer wait for the server
// while it is down, and tell whether a failure was the kill's doing. Its
// methods accept a nil receiver: no kill, ever.
type killSwitch struct {
	mu     sync.Mutex
	gen    int           // kills so far
	down   bool          // between the kill and the new server's health
	back   chan struct{} // closed when the latest kill is over
	failed bool          // the server did not come back
}

var errServerGone = errors.New("the killed server did not come back")

// wait returns the current generation once the server is up.
func (k *killSwitch) wait(ctx context.Context) (int, error) {
	if k == nil {
		return 0, nil
	}
	k.mu.Lock()
	back := k.back
	k.mu.Unlock()
	select {
	case <-back:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.failed {
		return 0, errServerGone
	}
	return k.gen, nil
}

// hit reports whether a kill happened since generation gen, or is under
// way.
func (k *killSwitch) hit(gen int) bool {
	if k == nil {
		return false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.down || k.gen != gen
}

func (k *killSwitch) begin() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.gen++
	k.down = true
	k.back = make(chan struct{})
}

func (k *killSwitch) end(failed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.down = false
	k.failed = failed
	close(k.back)
}

// killServer waits until the run is half done, then SIGKILLs the server,
// checks what it left behind, and starts it again.
func (r *runner) killServer(ctx context.Context) {
	total := r.opts.Clients * r.opts.Executions
	for {
		if r.opts.Soak > 0 && time.Since(r.start) >= r.opts.Soak/2 {
			break
		}
		if execs, _ := r.rec.executionsDone(); r.opts.Soak == 0 && execs >= total/2 {
			break
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return
		}
	}
	srv := r.opts.Server
	fault := func(format string, args ...any) {
		r.rec.fail(ErrorSample{Kind: KindKillServer, Class: ClassFault, Client: -1, Message: fmt.Sprintf(format, args...)})
	}
	lctx, cancel := context.WithTimeout(ctx, r.callTimeout())
	boxes, err := r.c.List(lctx)
	cancel()
	if err != nil {
		r.rec.note("listing the sandboxes before the kill failed: %v", err)
	}
	pid := srv.PID()
	kids := descendants(pid)

	r.ks.begin()
	r.rec.injected()
	execs, _ := r.rec.executionsDone()
	t0 := time.Now()
	if err := srv.Kill(); err != nil {
		fault("killing the server: %v", err)
		r.ks.end(true)
		return
	}
	r.rec.note("killed the server (pid %d, SIGKILL) after %s and %d executions, with %d sandboxes live and %d processes below it",
		pid, t0.Sub(r.start).Round(time.Millisecond), execs, len(boxes), len(kids))

	// Every process the server started dies with it.
	var alive []proc
	for wait := time.Now().Add(5 * time.Second); ; {
		alive = alive[:0]
		for _, p := range kids {
			if p.alive() {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 || time.Now().After(wait) {
			break
		}
		sleep(ctx, 20*time.Millisecond)
	}
	for i, p := range alive {
		if i == 5 {
			fault("%d more processes of the killed server still run", len(alive)-5)
			break
		}
		fault("process %d (%s) of the killed server still runs 5 s after it died", p.pid, p.name)
	}
	if len(alive) == 0 && len(kids) > 0 {
		r.rec.note("all %d processes below it were gone %s after the kill", len(kids), time.Since(t0).Round(time.Millisecond))
	}

	mark := srv.logs.mark()
	if err := srv.Restart(ctx); err != nil {
		fault("the server did not come back: %v", err)
		r.ks.end(true)
		return
	}
	r.rec.done(KindKillServer, time.Since(t0), false)
	r.rec.note("restarted on the same address; /health answered %s after the kill", time.Since(t0).Round(time.Millisecond))
	// The new server has swept what the dead one left (quota workspaces,
	// orphaned containers) before listening: the old sandboxes' traces
	// must be gone now.
	left := 0
	for _, b := range boxes {
		var traces []string
		if b.Workspace != "" {
			if _, err := os.Lstat(b.Workspace); err == nil {
				traces = append(traces, "workspace "+b.Workspace)
			}
		}
		for _, cg := range leftoverCgroups(b.ID) {
			traces = append(traces, "cgroup "+cg)
		}
		if len(traces) > 0 {
			left++
			fault("%s, a sandbox of the killed server, left after the restart: %s", b.ID, strings.Join(traces, ", "))
		}
	}
	r.rec.note("of the %d old sandboxes, %d left a workspace or a cgroup behind after the restart", len(boxes), left)
	for _, l := range srv.logs.since(mark) {
		if strings.Contains(l, "removed") {
			r.rec.note("new server: %s", l)
		}
	}
	r.ks.end(false)
}

// leftoverCgroups lists the cgroup directories named after sandbox id
// under /sys/fs/cgroup, where the bubblewrap provider makes them (v1: one
// per controller, below warden/; v2: warden/ in the root), as <id> or
// <id>@<owner tag>.
func leftoverCgroups(id string) []string {
	var out []string
	for _, dir := range []string{"/sys/fs/cgroup/warden/", "/sys/fs/cgroup/*/warden/"} {
		for _, name := range []string{id, id + "@*"} {
			m, _ := filepath.Glob(dir + name)
			out = append(out, m...)
		}
	}
	return out
}
