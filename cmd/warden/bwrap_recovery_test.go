package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/owner"
	"github.com/warden-sandbox/warden/internal/provider/local"
	"github.com/warden-sandbox/warden/internal/testutil"
)

// These tests run a real `warden serve` on bubblewrap, as root (cgroup
// limits), and check what it leaves on the host.

// buildWarden builds the binary, in a directory the sandboxes' user
// cannot reach (as a binary in a home directory): Warden then copies it
// under the workspace root to serve as the sandboxes' shim.
func buildWarden(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "warden")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// wardenProc is one `warden serve` process.
type wardenProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	root string // its SANDBOX__WORKSPACE_ROOT
	// Its owner ID, which its sandboxes' processes carry, and the tag of
	// it, which the names of their cgroups and workspaces carry.
	owner, tag string
	mu         sync.Mutex
	logs       bytes.Buffer
	workspaces map[string]string // host workspace of each sandbox it made
	done       chan struct{}     // closed when its stderr ends
}

// startServer runs `warden serve` on bubblewrap with the workspace root
// given and extra settings.
func startServer(t *testing.T, bin, root string, extra ...string) *wardenProc {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--port", "0")
	cmd.Env = append(os.Environ(), "SANDBOX__PROVIDER=bubblewrap", "SANDBOX__PROVIDER_FALLBACK=false",
		"SANDBOX__BWRAP_ROOT=host", "SANDBOX__WORKSPACE_ROOT="+root, "LOG__LEVEL=warn", "LOG__FORMAT=text")
	cmd.Env = append(cmd.Env, extra...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	pid := cmd.Process.Pid
	id := fmt.Sprintf("%s/%d/%d", host, pid, owner.StartTime(pid))
	s := &wardenProc{t: t, cmd: cmd, root: root, done: make(chan struct{}), owner: id, tag: owner.TagOf(id),
		workspaces: map[string]string{}}
	t.Cleanup(s.kill)
	lines := bufio.NewScanner(stderr)
	for s.url == "" && lines.Scan() {
		s.logs.WriteString(lines.Text() + "\n")
		if _, rest, ok := strings.Cut(lines.Text(), "listening on "); ok {
			s.url, _, _ = strings.Cut(rest, " ")
		}
	}
	if s.url == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("no listening line:\n%s", s.logs.String())
	}
	go func() {
		b, _ := io.ReadAll(stderr)
		s.mu.Lock()
		s.logs.Write(b)
		s.mu.Unlock()
		close(s.done)
	}()
	return s
}

func (s *wardenProc) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logs.String()
}

// kill ends the server with SIGKILL and waits for it.
func (s *wardenProc) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
	_ = s.cmd.Wait()
}

// stop ends the server with SIGTERM, as an operator would.
func (s *wardenProc) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(2 * time.Minute):
		s.t.Fatalf("warden serve still running 2 minutes after SIGTERM:\n%s", s.log())
	}
	if err := s.cmd.Wait(); err != nil {
		s.t.Errorf("warden serve exited with %v:\n%s", err, s.log())
	}
}

// reply is one HTTP answer.
type reply struct {
	status     int
	retryAfter string
	body       []byte
	err        error
}

func (s *wardenProc) do(ctx context.Context, method, path, body string) reply {
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, strings.NewReader(body))
	if err != nil {
		return reply{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: b, err: err}
}

// create makes a sandbox and returns its ID.
func (s *wardenProc) create(ctx context.Context) string {
	s.t.Helper()
	r := s.do(ctx, http.MethodPost, "/sandbox/create", `{}`)
	var v struct {
		ID string `json:"id"`
	}
	if r.err != nil || r.status != http.StatusCreated || json.Unmarshal(r.body, &v) != nil || v.ID == "" {
		s.t.Fatalf("create = %d %s, %v", r.status, r.body, r.err)
	}
	return v.ID
}

// shell runs a shell command in a sandbox.
func (s *wardenProc) shell(ctx context.Context, id, code string) reply {
	b, _ := json.Marshal(map[string]string{"language": "shell", "code": code})
	return s.do(ctx, http.MethodPost, "/sandbox/"+id+"/execute", string(b))
}

// remains lists what is on this host of the sandboxes given, and of any
// sandbox of the server w: cgroup directories; workspaces (named after w
// or a sandbox under its root, or where w said a sandbox's workspace was,
// with what a bounded one has beside it: its image, its owner file, its
// mount); processes in those cgroups or carrying a sandbox's ID or w's
// owner ID in their environment or command line.
func remains(w *wardenProc, ids []string) []string {
	match := func(name string) bool {
		if strings.Contains(name, w.tag) || strings.Contains(name, w.owner) {
			return true
		}
		for _, id := range ids {
			if strings.Contains(name, id) {
				return true
			}
		}
		return false
	}
	found := map[string]bool{}
	for _, ctl := range []string{"memory", "pids", "cpu"} {
		dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", ctl, "warden", "*"))
		for _, d := range dirs {
			if st, err := os.Stat(d); err == nil && st.IsDir() && match(filepath.Base(d)) {
				found["cgroup "+d] = true
			}
		}
	}
	if ents, err := os.ReadDir(w.root); err == nil {
		for _, e := range ents {
			if match(e.Name()) {
				found["workspace "+filepath.Join(w.root, e.Name())] = true
			}
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	w.mu.Lock()
	for _, id := range ids {
		ws := w.workspaces[id]
		if ws == "" {
			continue
		}
		if _, err := os.Lstat(ws); err == nil {
			found["workspace "+ws] = true
		}
		for _, f := range []string{ws + ".quota.img", ws + ".owner"} {
			if _, err := os.Lstat(f); err == nil {
				found["file "+f] = true
			}
		}
		if bytes.Contains(mounts, []byte(" "+ws+" ")) {
			found["mount "+ws] = true
		}
	}
	w.mu.Unlock()
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if filepath.Base(p) == fmt.Sprint(os.Getpid()) {
			continue
		}
		cg, _ := os.ReadFile(p + "/cgroup")
		env, _ := os.ReadFile(p + "/environ")
		cmdline, _ := os.ReadFile(p + "/cmdline")
		if match(string(cg)) || match(string(env)) || match(string(cmdline)) {
			found[fmt.Sprintf("process %s: %.120s", filepath.Base(p), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))] = true
		}
	}
	out := make([]string, 0, len(found))
	for f := range found {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// TestServeBurst drives 200 concurrent creates through the HTTP API on
// bubblewrap (two cores here), then deletes every sandbox made: every
// create must succeed (creates queue for a turn to start, and the wait is
// bounded by the client alone, so a burst is slow but never refused), and
// nothing of the sandboxes may stay on the host.
func TestServeBurst(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds and runs the binary, and 200 sandboxes")
	}
	const n = 200
	bin := buildWarden(t)
	root := testutil.SharedDir(t)
	// Unbounded workspaces: the burst is bubblewrap's (internal/quota
	// bounds them with a file system each, where Warden is root).
	s := startServer(t, bin, root, fmt.Sprintf("SANDBOX__MAX_SANDBOXES=%d", n+10), "SANDBOX__WARM_POOL_SIZE=0",
		"SANDBOX__WORKSPACE_SIZE=0")
	ctx := t.Context()

	var (
		mu       sync.Mutex
		ids      []string
		statuses = map[int]int{}
		bad      []string
		wg       sync.WaitGroup
	)
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			r := s.do(ctx, http.MethodPost, "/sandbox/create", `{}`)
			mu.Lock()
			defer mu.Unlock()
			if r.err != nil {
				bad = append(bad, "transport error: "+r.err.Error())
				return
			}
			statuses[r.status]++
			switch {
			case r.status == http.StatusCreated:
				var v struct {
					ID string `json:"id"`
				}
				if err := json.Unmarshal(r.body, &v); err != nil || v.ID == "" {
					bad = append(bad, fmt.Sprintf("201 without an id: %s", r.body))
					return
				}
				ids = append(ids, v.ID)
			default:
				bad = append(bad, fmt.Sprintf("%d (Retry-After %q): %s", r.status, r.retryAfter, r.body))
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d creates in %s: statuses %v", n, time.Since(began).Round(time.Millisecond), statuses)
	for _, b := range bad {
		t.Errorf("create: %s", b)
	}
	if len(ids) == 0 {
		t.Fatalf("no create succeeded:\n%s", s.log())
	}
	// A sandbox made in the burst works.
	if r := s.shell(ctx, ids[len(ids)-1], "echo ok"); r.status != http.StatusOK || !strings.Contains(string(r.body), `"stdout":"ok\n"`) {
		t.Errorf("execute in the last sandbox = %d %s", r.status, r.body)
	}

	began = time.Now()
	deleteStatuses := map[int]int{}
	for _, id := range ids {
		wg.Go(func() {
			r := s.do(ctx, http.MethodDelete, "/sandbox/"+id, "")
			mu.Lock()
			defer mu.Unlock()
			if r.err != nil {
				t.Errorf("delete %s: %v", id, r.err)
				return
			}
			deleteStatuses[r.status]++
			if r.status >= 300 {
				t.Errorf("delete %s = %d %s", id, r.status, r.body)
			}
		})
	}
	wg.Wait()
	t.Logf("%d deletes in %s: statuses %v", len(ids), time.Since(began).Round(time.Millisecond), deleteStatuses)
	// A delete answers at once and the removal goes on in the background
	// (warden_sandboxes_removing counts it): once that gauge is back to
	// 0, nothing of the sandboxes, made or failed, may be left while the
	// server still runs.
	removing := -1
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		r := s.do(ctx, http.MethodGet, "/metrics", "")
		removing = -1
		for _, line := range strings.Split(string(r.body), "\n") {
			if v, ok := strings.CutPrefix(line, "warden_sandboxes_removing "); ok {
				removing, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if removing == 0 {
			break
		}
	}
	t.Logf("removal finished %s after the deletes", time.Since(began).Round(time.Millisecond))
	if removing != 0 {
		t.Errorf("warden_sandboxes_removing = %d two minutes after the deletes", removing)
	}
	if left := remains(s, ids); len(left) > 0 {
		t.Errorf("%d remains after deleting every sandbox:\n%s", len(left), strings.Join(left, "\n"))
	}
	s.stop()
	if left := remains(s, ids); len(left) > 0 {
		t.Errorf("%d remains after the server stopped:\n%s", len(left), strings.Join(left, "\n"))
	}
	if strings.Contains(s.log(), "level=ERROR") {
		t.Errorf("errors in the log:\n%s", s.log())
	}
}

// createWith makes a sandbox from a create request and returns its ID.
func (s *wardenProc) createWith(ctx context.Context, body string) string {
	s.t.Helper()
	r := s.do(ctx, http.MethodPost, "/sandbox/create", body)
	var v struct {
		ID        string `json:"id"`
		Workspace string `json:"workspace"`
	}
	if r.err != nil || r.status != http.StatusCreated || json.Unmarshal(r.body, &v) != nil || v.ID == "" {
		s.t.Fatalf("create %s = %d %s, %v\n%s", body, r.status, r.body, r.err, s.log())
	}
	s.mu.Lock()
	s.workspaces[v.ID] = v.Workspace
	s.mu.Unlock()
	return v.ID
}

// echo checks that a sandbox still runs commands.
func (s *wardenProc) echo(ctx context.Context, id string) {
	s.t.Helper()
	if r := s.shell(ctx, id, "echo alive"); r.status != http.StatusOK || !strings.Contains(string(r.body), `"stdout":"alive\n"`) {
		s.t.Errorf("sandbox %s: execute = %d %s, %v", id, r.status, r.body, r.err)
	}
}

// kinds counts remains by their first word.
func kinds(left []string) map[string]int {
	n := map[string]int{}
	for _, l := range left {
		k, _, _ := strings.Cut(l, " ")
		n[k]++
	}
	return n
}

// TestServeCrashRecovery kills a real `warden serve` on bubblewrap with
// SIGKILL while its sandboxes live and one runs an execution, and checks
// that the next start removes everything they left, while the sandboxes
// of a second live Warden on the same workspace root survive it; then that
// `warden prune` does the same once that second one is killed, and leaves
// the live one's alone.
func TestServeCrashRecovery(t *testing.T) {
	testutil.RequireBwrap(t)
	testutil.RequireRoot(t)
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildWarden(t)
	root := testutil.SharedDir(t)
	ctx := t.Context()
	const pool = "SANDBOX__WARM_POOL_SIZE=0"

	// The first server's workspaces are bubblewrap's own; the second's
	// are bounded ones (internal/quota) where this host can have them.
	const unbounded = "SANDBOX__WORKSPACE_SIZE=0"
	a := startServer(t, bin, root, pool, unbounded)
	b := startServer(t, bin, root, pool) // a second live Warden, same root
	var aIDs, bIDs []string
	aIDs = append(aIDs, a.createWith(ctx, `{}`), a.createWith(ctx, `{"memory_limit":"128m"}`))
	if _, err := exec.LookPath("slirp4netns"); err == nil {
		aIDs = append(aIDs, a.createWith(ctx, `{"enable_network":true}`))
	}
	// A child in a session of its own survives the execution's process
	// group; a running execution holds the agent busy.
	if r := a.shell(ctx, aIDs[0], "setsid sleep 1000 >/dev/null 2>&1 < /dev/null & echo started"); r.status != http.StatusOK {
		t.Fatalf("background child: %d %s", r.status, r.body)
	}
	running := make(chan reply, 1)
	go func() {
		running <- a.do(context.Background(), http.MethodPost, "/sandbox/"+aIDs[1]+"/execute",
			`{"language":"shell","code":"echo begun > marker; sleep 1000","timeout":600}`)
	}()
	bIDs = append(bIDs, b.createWith(ctx, `{}`), b.createWith(ctx, `{}`))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m, _ := filepath.Glob(filepath.Join(root, "bwrap-"+aIDs[1]+"@*", "marker")); len(m) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the long execution did not begin")
		}
	}

	before := remains(a, aIDs)
	a.kill()
	if r := <-running; r.err == nil {
		t.Errorf("the execution answered %d %s though its server was killed", r.status, r.body)
	}
	// What the killed server leaves: cgroups and workspaces at least (its
	// processes mostly die with it, killed by the kernel).
	left := waitSettled(a, aIDs)
	t.Logf("before the kill: %v; after it: %v", kinds(before), kinds(left))
	if k := kinds(left); k["cgroup"] != 3*len(aIDs) || k["workspace"] != len(aIDs) {
		t.Fatalf("after the kill, want %d cgroups and %d workspaces, have:\n%s", 3*len(aIDs), len(aIDs), strings.Join(left, "\n"))
	}
	shims, _ := filepath.Glob(filepath.Join(root, ".init", "*@"+a.tag))
	if len(shims) == 0 {
		all, _ := filepath.Glob(filepath.Join(root, ".init", "*"))
		t.Errorf("no shim copy of the killed server in %s: %v", filepath.Join(root, ".init"), all)
	}
	bBefore := remains(b, bIDs)
	t.Logf("the second server's sandboxes: %v", kinds(bBefore))

	// The next start sweeps before it listens.
	a2 := startServer(t, bin, root, pool, unbounded)
	if left := remains(a, aIDs); len(left) > 0 {
		t.Errorf("%d remains of the killed server after the restart:\n%s", len(left), strings.Join(left, "\n"))
	}
	if shims, _ := filepath.Glob(filepath.Join(root, ".init", "*@"+a.tag)); len(shims) > 0 {
		t.Errorf("shim copies of the killed server after the restart: %v", shims)
	}
	// The live one's sandboxes are untouched.
	// (Its agents' processes may come and go: only their number is
	// compared.)
	bAfter := remains(b, bIDs)
	if !slices.Equal(noProcesses(bAfter), noProcesses(bBefore)) || kinds(bAfter)["process"] != kinds(bBefore)["process"] {
		t.Errorf("the live server's sandboxes changed in the sweep:\nbefore:\n%s\nafter:\n%s", strings.Join(bBefore, "\n"), strings.Join(bAfter, "\n"))
	}
	for _, id := range bIDs {
		b.echo(ctx, id)
	}

	// warden prune, once the second server is killed too: its remains go,
	// the restarted server's sandbox stays.
	keep := a2.createWith(ctx, `{}`)
	b.kill()
	var out, errb bytes.Buffer
	prune := exec.CommandContext(ctx, bin, "prune")
	prune.Env = append(os.Environ(), "SANDBOX__PROVIDER=bubblewrap", "SANDBOX__WORKSPACE_ROOT="+root)
	prune.Stdout, prune.Stderr = &out, &errb
	if err := prune.Run(); err != nil {
		t.Errorf("warden prune: %v\n%s%s", err, out.String(), errb.String())
	}
	// Any Warden's start sweeps the orphans of dead ones host-wide (their
	// cgroups are shared), and other test packages start providers
	// meanwhile: prune may find some already gone. What it must do is
	// say how many it removed, and leave none (checked below).
	var removed int
	if _, err := fmt.Sscanf(out.String()[max(0, strings.Index(out.String(), "removed ")):], "removed %d orphaned bubblewrap sandboxes", &removed); err != nil || removed > len(bIDs) {
		t.Errorf("warden prune said %q, want \"removed N orphaned bubblewrap sandboxes\", N at most %d", out.String(), len(bIDs))
	} else if removed < len(bIDs) {
		t.Logf("warden prune removed %d of the %d orphans: another Warden's sweep took the rest first", removed, len(bIDs))
	}
	if left := remains(b, bIDs); len(left) > 0 {
		t.Errorf("%d remains of the second server after warden prune:\n%s", len(left), strings.Join(left, "\n"))
	}
	a2.echo(ctx, keep)

	// A clean stop leaves nothing either.
	a2.stop()
	if left := remains(a2, []string{keep}); len(left) > 0 {
		t.Errorf("%d remains after a clean stop:\n%s", len(left), strings.Join(left, "\n"))
	}
	if shims, _ := filepath.Glob(filepath.Join(root, ".init", "*@*")); len(shims) > 0 {
		t.Logf("shim copies left after a clean stop (removed by the next start): %v", shims)
	}
}

func noProcesses(left []string) []string {
	return slices.DeleteFunc(slices.Clone(left), func(l string) bool { return strings.HasPrefix(l, "process ") })
}

// waitSettled returns the remains once processes the kernel is killing
// have gone, so that what is counted is what stays.
func waitSettled(w *wardenProc, ids []string) []string {
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := remains(w, ids)
		if kinds(left)["process"] == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestPruneLocal: `warden prune` on the local provider kills the processes
// and removes the directories of a dead Warden's local sandboxes, and
// leaves another host's alone.
func TestPruneLocal(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	host, _ := os.Hostname()
	dead := host + "/999999999/1"
	dir := filepath.Join(root, "local-sb-dead")
	other := filepath.Join(root, "local-sb-other")
	for d, o := range map[string]string{dir: dead, other: "elsewhere.example/1/1"} {
		if err := os.MkdirAll(filepath.Join(d, "workspace"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "owner"), []byte(o), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sleep := exec.Command("sleep", "300")
	sleep.Env = []string{local.OwnerEnv + "=" + dead}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = sleep.Wait(); close(done) }()
	t.Cleanup(func() { _ = sleep.Process.Kill(); <-done })

	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"prune"}, env{
		environ: []string{"SANDBOX__PROVIDER=local", "SANDBOX__MOCK_MODE=true", "SANDBOX__WORKSPACE_ROOT=" + root},
		stdin:   strings.NewReader(""), stdout: &out, stderr: &errb})
	if code != 0 || !strings.Contains(out.String(), "removed 2 orphaned local") {
		t.Errorf("warden prune = exit %d, %q, %q", code, out.String(), errb.String())
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("the dead Warden's local sandbox process survived warden prune")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the dead Warden's local sandbox directory: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another host's local sandbox directory: %v", err)
	}
}
