package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/server"
	"github.com/warden-sandbox/warden/internal/session"
)

// The replicas' tests run `warden serve`'s HTTP API (internal/server) on
// loopback for each replica, over providers that share one fake cluster
// (fake API server, fake kubelet running the real agent).

const replicaKey = "replica-test-key"

// serverReplicas adapts a Provider to server.Replicas, as cmd/warden does.
type serverReplicas struct{ p *Provider }

func (r serverReplicas) ID() string { return r.p.ReplicaID() }
func (r serverReplicas) Locate(ctx context.Context, id sandbox.ID) (server.Location, error) {
	o, err := r.p.Owner(ctx, id)
	return server.Location{Replica: o.Replica, Address: o.Address, Adoptable: o.Adoptable, Expires: o.Expires}, err
}
func (r serverReplicas) Adopt(ctx context.Context, id sandbox.ID) (sandbox.Info, error) {
	return r.p.Adopt(ctx, id)
}
func (r serverReplicas) Release(ctx context.Context, id sandbox.ID) error {
	return r.p.Release(ctx, id)
}
func (r serverReplicas) Peers(ctx context.Context) (map[string]string, error) {
	return r.p.Peers(ctx)
}

// replicaServer is one replica: provider, registry, HTTP server.
type replicaServer struct {
	t   *testing.T
	p   *Provider
	mgr *session.Manager
	srv *server.Server
	ts  *httptest.Server
	url string
}

// preconditions makes the fake API server keep resource versions on pods
// and Leases and check them on updates and on deletes with
// preconditions, as a real one does (the tracker alone does not).
func (c *cluster) preconditions() {
	var rv int64
	check := func(a k8stesting.Action) (bool, runtime.Object, error) {
		var name, want string
		switch a := a.(type) {
		case k8stesting.CreateAction:
			if m, err := metaOf(a.GetObject()); err == nil {
				rv++
				m.SetResourceVersion(strconv.FormatInt(rv, 10))
			}
			return false, nil, nil
		case k8stesting.UpdateAction:
			m, err := metaOf(a.GetObject())
			if err != nil {
				return false, nil, nil
			}
			name, want = m.GetName(), m.GetResourceVersion()
			defer func() {
				rv++
				m.SetResourceVersion(strconv.FormatInt(rv, 10))
			}()
		case k8stesting.DeleteAction:
			o := a.GetDeleteOptions()
			if o.Preconditions == nil || o.Preconditions.ResourceVersion == nil {
				return false, nil, nil
			}
			name, want = a.GetName(), *o.Preconditions.ResourceVersion
		default:
			return false, nil, nil
		}
		cur, err := c.cs.Tracker().Get(a.GetResource(), a.GetNamespace(), name)
		if err != nil || want == "" {
			return false, nil, nil
		}
		if m, err := metaOf(cur); err == nil && m.GetResourceVersion() != want {
			return true, nil, apierrors.NewConflict(a.GetResource().GroupResource(), name, errors.New("the object has been modified"))
		}
		return false, nil, nil
	}
	for _, res := range []string{"pods", "leases"} {
		for _, verb := range []string{"create", "update", "delete"} {
			c.cs.PrependReactor(verb, res, check)
		}
	}
}

func metaOf(o runtime.Object) (metav1.Object, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return nil, errors.New("no metadata")
	}
	return m, nil
}

// replica starts a replica named id on the cluster.
func (c *cluster) replica(id string) *replicaServer {
	c.t.Helper()
	p := c.provider(Options{KeepOrphans: true, Replica: ReplicaOptions{ID: id}})
	mgr := session.New(p, session.Options{HandOver: p.HandOver})
	var h *server.Server
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	c.t.Cleanup(ts.Close)
	h = server.New(server.Options{Manager: mgr, Keys: []string{replicaKey}, Defaults: hostSpec(c.t), Replicas: serverReplicas{p}})
	if err := p.StartReplica(c.t.Context(), ts.URL); err != nil {
		c.t.Fatal(err)
	}
	return &replicaServer{t: c.t, p: p, mgr: mgr, srv: h, ts: ts, url: ts.URL}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *replicaServer) do(method, path, body string, header ...string) reply {
	r.t.Helper()
	req, err := http.NewRequestWithContext(r.t.Context(), method, r.url+path, strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+replicaKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header, b}
}

func (r *replicaServer) exec(id, lang, code string) api.ExecResult {
	r.t.Helper()
	body, _ := json.Marshal(map[string]string{"language": lang, "code": code})
	rep := r.do(http.MethodPost, "/sandbox/"+id+"/execute", string(body))
	if rep.status != http.StatusOK {
		r.t.Fatalf("execute %q: %d %s", code, rep.status, rep.body)
	}
	var res api.ExecResult
	if err := json.Unmarshal(rep.body, &res); err != nil {
		r.t.Fatal(err)
	}
	return res
}

// expire makes replica id's Lease look expired, as when its process died
// (its renewals must have stopped).
func (c *cluster) expire(id string) {
	c.t.Helper()
	leases := c.cs.CoordinationV1().Leases("warden")
	l, err := leases.Get(context.Background(), leaseName(id), metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	past := metav1.NewMicroTime(time.Now().Add(-time.Hour))
	l.Spec.RenewTime = &past
	if _, err := leases.Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// die ends a replica as a crash would: no more answers, no more
// renewals, its agents gone; its Lease and pods stay.
func (r *replicaServer) die(c *cluster) {
	r.ts.CloseClientConnections()
	r.ts.Close()
	r.p.stopRenewing()
	for _, pod := range c.pods() {
		c.kill(pod)
	}
}

// TestReplicasShareSandboxes: a sandbox created through replica A is used
// through B (B forwards; the session is A's), a forwarded request is not
// forwarded again, a key is still required; when A dies, B answers 503 at
// once until A's Lease expires, then adopts the sandbox: the workspace and
// environment are kept, the session restarts and the result says so, and
// A, if it came back, would not start an agent beside B's. Deleting
// through B leaves nothing.
func TestReplicasShareSandboxes(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	c.preconditions()
	a, b := c.replica("a"), c.replica("b")

	rep := a.do(http.MethodPost, "/sandbox/create", `{"environment_variables":{"TOKEN":"s3cret"}}`)
	if rep.status != http.StatusCreated {
		t.Fatalf("create: %d %s", rep.status, rep.body)
	}
	var box api.Sandbox
	if err := json.Unmarshal(rep.body, &box); err != nil {
		t.Fatal(err)
	}
	id := box.ID
	pod, err := c.cs.CoreV1().Pods("warden").Get(t.Context(), box.Name, metav1.GetOptions{})
	if err != nil || pod.Annotations[annotationReplica] != "a" {
		t.Fatalf("pod %v: replica annotation %q, want a", err, pod.Annotations[annotationReplica])
	}
	if s, err := c.cs.CoreV1().Secrets("warden").Get(t.Context(), box.Name+envSecretSuffix, metav1.GetOptions{}); err != nil || string(s.Data["TOKEN"]) != "s3cret" {
		t.Fatalf("the environment's Secret: %v", err)
	}

	// Through B, served by A: the Python session is A's.
	b.exec(id, "python", "x = 41")
	if r := b.exec(id, "python", "print(x + 1)"); r.Stdout != "42\n" {
		t.Errorf("through B, the session's state: %q %v", r.Stdout, r.Error)
	}
	b.exec(id, "shell", "echo kept > note.txt")
	// An event stream, through B.
	if r := b.do(http.MethodPost, "/sandbox/"+id+"/execute", `{"language":"python","code":"print('one', flush=True)\nprint(x)"}`,
		"Accept", "text/event-stream"); r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") ||
		!strings.Contains(string(r.body), "one") || !strings.Contains(string(r.body), "41") {
		t.Errorf("event stream through B: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	if _, err := b.mgr.Get(sandbox.ID(id)); err == nil {
		t.Error("B registered A's live sandbox")
	}
	if r := b.do(http.MethodPatch, "/sandbox/"+id+"/env", `{"set":{"MORE":"yes"}}`); r.status != http.StatusOK {
		t.Fatalf("PATCH env through B: %d %s", r.status, r.body)
	}
	// GET /sandbox through B lists A's sandbox.
	if r := b.do(http.MethodGet, "/sandbox", ""); r.status != http.StatusOK || !strings.Contains(string(r.body), id) {
		t.Errorf("list through B: %d %s", r.status, r.body)
	}
	// No key, no forwarding.
	if r := b.do(http.MethodGet, "/sandbox/"+id, "", "Authorization", ""); r.status != http.StatusUnauthorized {
		t.Errorf("without a key through B: %d %s", r.status, r.body)
	}
	// A request made in process (MCP, E2B) has no key of its own: the
	// forwarded one carries the replica's.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://warden.invalid/sandbox/"+id, nil)
	if resp, err := b.srv.InProcess().RoundTrip(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("in-process request through B: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// A forwarded request is not forwarded again.
	if r := b.do(http.MethodGet, "/sandbox/"+id, "", server.HeaderForwardedBy, "a"); r.status != http.StatusServiceUnavailable ||
		!strings.Contains(string(r.body), "not forwarded again") {
		t.Errorf("a forwarded request for another replica's sandbox: %d %s", r.status, r.body)
	}

	// A dies. Until its Lease expires, B says so at once.
	a.die(c)
	start := time.Now()
	if r := b.do(http.MethodGet, "/sandbox/"+id, ""); r.status != http.StatusServiceUnavailable || !strings.Contains(string(r.body), "does not answer") {
		t.Errorf("while A's Lease holds: %d %s", r.status, r.body)
	}
	t.Logf("answer about a dead owner took %v", time.Since(start))
	c.expire("a")
	r := b.exec(id, "python", "print(x)")
	if r.Error == nil || r.Error.Name != "NameError" {
		t.Errorf("after adoption, x = %q %+v, want a NameError (the session restarted)", r.Stdout, r.Error)
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "session was restarted") {
		t.Errorf("notes after adoption: %q", r.Notes)
	}
	if r := b.exec(id, "shell", `cat note.txt; echo "$TOKEN $MORE"`); r.Stdout != "kept\ns3cret yes\n" {
		t.Errorf("workspace and environment after adoption: %q", r.Stdout)
	}
	if r := b.exec(id, "python", "print('again')"); len(r.Notes) != 0 {
		t.Errorf("the restart note is repeated: %q", r.Notes)
	}
	pod, _ = c.cs.CoreV1().Pods("warden").Get(t.Context(), box.Name, metav1.GetOptions{})
	if pod.Annotations[annotationReplica] != "b" {
		t.Errorf("after adoption the pod names replica %q", pod.Annotations[annotationReplica])
	}
	// A's provider, were its process alive, may not start an agent in B's pod.
	if _, err := (&launcher{p: a.p, pod: box.Name}).Start(t.Context()); !errors.Is(err, sandbox.ErrConflict) {
		t.Errorf("the old owner starting an agent = %v, want ErrConflict", err)
	}

	// A's registry still holds the sandbox (as a replica cut off from the
	// API server would): its removal of it must not delete B's pod.
	if err := a.p.Destroy(t.Context(), sandbox.ID(id)); err != nil {
		t.Fatalf("the old owner's Destroy: %v", err)
	}
	if got := c.pods(); len(got) != 1 {
		t.Fatalf("the old owner's Destroy deleted the adopter's pod: %v", got)
	}
	if r := b.do(http.MethodDelete, "/sandbox/"+id, ""); r.status != http.StatusOK {
		t.Fatalf("delete through B: %d %s", r.status, r.body)
	}
	waitFor(t, func() bool { return len(c.pods()) == 0 && b.mgr.Removing() == 0 })
	if s, _ := c.cs.CoreV1().Secrets("warden").List(t.Context(), metav1.ListOptions{}); len(s.Items) != 0 {
		t.Errorf("Secrets left: %d", len(s.Items))
	}
}

// TestReplicaHandOver: a replica that stops leaves its sandboxes' pods
// and marks its Lease expired; the next request through another replica
// adopts them at once.
func TestReplicaHandOver(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	c.preconditions()
	a, b := c.replica("a"), c.replica("b")
	rep := a.do(http.MethodPost, "/sandbox/create", `{}`)
	var box api.Sandbox
	if err := json.Unmarshal(rep.body, &box); err != nil || rep.status != http.StatusCreated {
		t.Fatalf("create: %d %s", rep.status, rep.body)
	}
	a.exec(box.ID, "shell", "echo kept > note.txt")
	if err := a.mgr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.p.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	a.ts.Close()
	if got := c.pods(); len(got) != 1 {
		t.Fatalf("pods after A stopped: %v, want its sandbox's", got)
	}
	l, err := c.cs.CoordinationV1().Leases("warden").Get(t.Context(), leaseName("a"), metav1.GetOptions{})
	if err != nil || !leaseExpired(l, time.Now()) {
		t.Fatalf("A's Lease after its stop: %v, want it there and expired", err)
	}
	if r := b.exec(box.ID, "shell", "cat note.txt"); r.Stdout != "kept\n" || !strings.Contains(strings.Join(r.Notes, " "), "session was restarted") {
		t.Errorf("through B after A's stop: %q %q", r.Stdout, r.Notes)
	}
}

// TestReplicaDeleteElsewhere: deleting through a replica that does not
// hold the sandbox deletes it, whether its owner lives (forwarded) or not
// (its pod removed without adopting).
func TestReplicaDeleteElsewhere(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	c.preconditions()
	a, b := c.replica("a"), c.replica("b")
	create := func() string {
		rep := a.do(http.MethodPost, "/sandbox/create", `{}`)
		var box api.Sandbox
		if err := json.Unmarshal(rep.body, &box); err != nil || rep.status != http.StatusCreated {
			t.Fatalf("create: %d %s", rep.status, rep.body)
		}
		return box.ID
	}
	live, orphan := create(), create()
	if r := b.do(http.MethodDelete, "/sandbox/"+live, ""); r.status != http.StatusOK {
		t.Fatalf("delete of a live replica's sandbox through another: %d %s", r.status, r.body)
	}
	// At once, while A still removes it: gone, not adopted back.
	for _, r := range []*replicaServer{a, b} {
		if rep := r.do(http.MethodGet, "/sandbox/"+live, ""); rep.status != http.StatusNotFound {
			t.Errorf("right after the delete, GET through %s: %d %s", r.p.ReplicaID(), rep.status, rep.body)
		}
	}
	waitFor(t, func() bool { return len(c.pods()) == 1 })
	a.die(c)
	c.expire("a")
	if r := b.do(http.MethodDelete, "/sandbox/"+orphan, ""); r.status != http.StatusOK {
		t.Fatalf("delete of a dead replica's sandbox: %d %s", r.status, r.body)
	}
	if got := c.pods(); len(got) != 0 {
		t.Errorf("pods left: %v", got)
	}
	if r := b.do(http.MethodGet, "/sandbox/"+orphan, ""); r.status != http.StatusNotFound {
		t.Errorf("after delete: %d %s", r.status, r.body)
	}
}

// TestReplicaAdoptOnce: of two replicas adopting one sandbox at once,
// exactly one wins; neither adopts a live replica's sandbox.
func TestReplicaAdoptOnce(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	c.preconditions()
	a := c.replica("a")
	info, err := a.p.Create(t.Context(), hostSpec(t))
	if err != nil {
		t.Fatal(err)
	}
	b, d := c.replica("b").p, c.replica("d").p
	if _, err := b.Adopt(t.Context(), info.ID); !errors.Is(err, sandbox.ErrConflict) {
		t.Fatalf("adopting a live replica's sandbox = %v, want ErrConflict", err)
	}
	a.die(c)
	c.expire("a")
	// One after the other: the second finds the first's live claim. Two
	// at once race on the pod's resourceVersion, which only a real API
	// server decides atomically; the fake clientset let both updates of
	// the same version through (3 runs in 40), so that race is not
	// judged here.
	errs := make([]error, 2)
	for i, p := range []*Provider{b, d} {
		_, errs[i] = p.Adopt(t.Context(), info.ID)
	}
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, sandbox.ErrConflict):
			t.Errorf("the loser's error = %v, want ErrConflict", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d adopters won (%v), want 1", won, errs)
	}
}

// TestReplicaRemoveExpired: the pods of a replica whose Lease expired
// longer ago than the adoption window are removed; a live replica's are
// not, nor those within the window, nor by a provider that starts.
func TestReplicaRemoveExpired(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	a, b := c.replica("a"), c.replica("b")
	for _, r := range []*replicaServer{a, b} {
		if _, err := r.p.Create(t.Context(), hostSpec(t)); err != nil {
			t.Fatal(err)
		}
	}
	// A new, non-replica provider on the same host leaves them alone.
	c.provider(Options{})
	if got := c.pods(); len(got) != 2 {
		t.Fatalf("after a provider started: pods %v", got)
	}
	if n, err := b.p.RemoveExpired(t.Context()); n != 0 || err != nil {
		t.Fatalf("RemoveExpired with every replica live = %d, %v", n, err)
	}
	a.die(c)
	c.expire("a") // an hour ago: past the default window of 10 minutes
	short := c.provider(Options{KeepOrphans: true, Replica: ReplicaOptions{ID: "c", AdoptWindow: 2 * time.Hour}})
	if n, err := short.RemoveExpired(t.Context()); n != 0 || err != nil {
		t.Fatalf("RemoveExpired within the window = %d, %v", n, err)
	}
	if n, err := b.p.RemoveExpired(t.Context()); n != 1 || err != nil {
		t.Fatalf("RemoveExpired past the window = %d, %v, want 1", n, err)
	}
	if got := c.pods(); len(got) != 1 {
		t.Errorf("pods left: %v, want B's", got)
	}
	if _, err := c.cs.CoordinationV1().Leases("warden").Get(t.Context(), leaseName("a"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Lease of the replica gone: %v, want it deleted", err)
	}
}

// TestReplicaLease: a second process under a live replica's ID waits and
// fails; Close deletes the Lease.
func TestReplicaLease(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	c.preconditions()
	p := c.provider(Options{KeepOrphans: true, Replica: ReplicaOptions{ID: "a"}})
	if err := p.StartReplica(t.Context(), "10.0.0.7:8000"); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("an address without a scheme = %v", err)
	}
	if err := p.StartReplica(t.Context(), "http://10.0.0.7:8000"); err != nil {
		t.Fatal(err)
	}
	q := c.provider(Options{KeepOrphans: true, Replica: ReplicaOptions{ID: "b"}})
	peers, err := q.Peers(t.Context())
	if err != nil || peers["a"] != "http://10.0.0.7:8000" || len(peers) != 1 {
		t.Errorf("Peers = %v, %v", peers, err)
	}
	// Another process with ID a: the Lease's holder is a process ID, and
	// this test's providers share one; pretend another holds it.
	p.stopRenewing()
	l, _ := c.cs.CoordinationV1().Leases("warden").Get(t.Context(), leaseName("a"), metav1.GetOptions{})
	other := "elsewhere/1/1"
	l.Spec.HolderIdentity = &other
	if _, err := c.cs.CoordinationV1().Leases("warden").Update(t.Context(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := c.provider(Options{KeepOrphans: true, Replica: ReplicaOptions{ID: "a", LeaseDuration: time.Second}})
	if err := r.StartReplica(t.Context(), "http://10.0.0.8:8000"); !errors.Is(err, sandbox.ErrConflict) {
		// The Lease says 15 s, not 1: r waits 2 s and gives up.
		t.Errorf("a second replica under a live ID = %v, want ErrConflict", err)
	}
	if _, err := newProvider(t.Context(), c.cs, c.exec, Options{Replica: ReplicaOptions{ID: "Bad_ID"}}); !errors.Is(err, sandbox.ErrInvalid) {
		t.Errorf("a bad replica ID = %v", err)
	}
	if err := q.StartReplica(t.Context(), "http://10.0.0.9:8000"); err != nil {
		t.Fatal(err)
	}
	// A renewal written whose answer was lost: q's copy is stale.
	lq, _ := c.cs.CoordinationV1().Leases("warden").Get(t.Context(), leaseName("b"), metav1.GetOptions{})
	if _, err := c.cs.CoordinationV1().Leases("warden").Update(t.Context(), lq, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = q.Close(context.Background())
	if _, err := c.cs.CoordinationV1().Leases("warden").Get(t.Context(), leaseName("b"), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Lease after Close: %v, want deleted", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
	}
}

// TestReplicaDestroyNotAdoptable: while a replica destroys a sandbox, its
// pod is never offered for adoption (the service would take it back as
// one this replica left): not while the teardown runs, not when it fails
// and puts the sandbox back, not while a second Destroy still runs.
func TestReplicaDestroyNotAdoptable(t *testing.T) {
	t.Parallel()
	requirePython(t)
	c := newCluster(t)
	// Pod deletions wait for release (when set), then fail (when fail is).
	var (
		mu      sync.Mutex
		release chan struct{}
		fail    bool
	)
	c.cs.PrependReactor("delete", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		r, f := release, fail
		mu.Unlock()
		if r != nil {
			<-r
		}
		if f {
			return true, nil, errors.New("the API server is down")
		}
		return false, nil, nil
	})
	hold := func(failing bool) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		release, fail = make(chan struct{}), failing
		return release
	}
	unhold := func() {
		mu.Lock()
		defer mu.Unlock()
		release, fail = nil, false
	}
	p := c.provider(Options{KeepOrphans: true, Replica: ReplicaOptions{ID: "a"}})
	if err := p.StartReplica(t.Context(), "http://127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	create := func() sandbox.ID {
		info, err := p.Create(t.Context(), hostSpec(t))
		if err != nil {
			t.Fatal(err)
		}
		return info.ID
	}
	// destroying starts a Destroy and returns once its sandbox has left
	// Boxes (its teardown waits at the pod's deletion).
	destroying := func(id sandbox.ID) <-chan error {
		done := make(chan error, 1)
		go func() { done <- p.Destroy(context.Background(), id) }()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if _, err := p.Boxes.Info(id); err != nil {
				return done
			}
			if time.Now().After(deadline) {
				t.Fatal("the sandbox never left the registry")
			}
		}
	}

	// While the teardown runs.
	id := create()
	rel := hold(false)
	done := destroying(id)
	if o, err := p.Owner(t.Context(), id); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("Owner during the teardown: %+v %v, want ErrNotFound", o, err)
	}
	unhold()
	close(rel)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A teardown that fails puts the sandbox back: an Owner that found it
	// gone, then finds no mark, must look again.
	id = create()
	rel = hold(true)
	done = destroying(id)
	p.hookOwnerChecked = func() {
		p.hookOwnerChecked = nil
		close(rel)
		if err := <-done; err == nil {
			t.Error("the Destroy with a failing deletion succeeded")
		}
	}
	if o, err := p.Owner(t.Context(), id); !errors.Is(err, sandbox.ErrNotFound) {
		t.Errorf("Owner across a failed teardown: %+v %v, want ErrNotFound", o, err)
	}
	if p.hookOwnerChecked != nil {
		t.Fatal("Owner never found the sandbox gone")
	}
	if _, err := p.Boxes.Info(id); err != nil {
		t.Fatalf("the failed Destroy did not put the sandbox back: %v", err)
	}
	unhold()
	if err := p.Destroy(t.Context(), id); err != nil {
		t.Fatal(err)
	}

	// Two Destroys of one sandbox at once: the mark stays until both end.
	p.markTearing("pod", 1)
	p.markTearing("pod", 1)
	p.markTearing("pod", -1)
	if !p.isTearing("pod") {
		t.Error("one Destroy of two ended: the pod is no longer marked")
	}
	p.markTearing("pod", -1)
	if p.isTearing("pod") {
		t.Error("both ended: the pod is still marked")
	}
}
