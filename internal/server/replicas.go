package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Replicas connects a server to the other `warden serve` replicas that
// share its sandboxes: the kubernetes provider's (ADR 0016, item 9). A
// request for a sandbox this server's registry does not hold goes to the
// replica that holds it, or, when that one is gone, the sandbox is
// adopted here; a client may send any request to any replica.
type Replicas interface {
	// ID names this replica.
	ID() string
	// Locate says where a sandbox this replica does not hold lives. It
	// fails with sandbox.ErrNotFound when it lives nowhere.
	Locate(ctx context.Context, id sandbox.ID) (Location, error)
	// Adopt takes over a sandbox that Locate says is Adoptable, for
	// session.Manager.Adopt.
	Adopt(ctx context.Context, id sandbox.ID) (sandbox.Info, error)
	// Release removes an Adoptable sandbox without adopting it.
	Release(ctx context.Context, id sandbox.ID) error
	// Peers are the other live replicas: ID -> base URL.
	Peers(ctx context.Context) (map[string]string, error)
}

// Location is where a sandbox lives.
type Location struct {
	// Replica owns the sandbox.
	Replica string
	// Address is the live owner's base URL (http://10.0.0.7:8000).
	Address string
	// Adoptable is set when no live replica holds the sandbox: this one
	// may take it over.
	Adoptable bool
	// Expires is when the owner's Lease ends unless renewed.
	Expires time.Time
}

// HeaderForwardedBy marks a request one replica forwarded to another,
// with the forwarder's ID. A forwarded request is never forwarded again,
// so no loop can form however the replicas' views of the cluster differ.
// A client that sets it only gives up forwarding: it is no credential
// (the API key is checked as for any request).
const HeaderForwardedBy = "X-Warden-Forwarded-By"

// Timeouts of requests between replicas. An owner that does not accept
// a connection within forwardDial is reported at once (503), never waited
// for; executions may then run as long as their own timeout.
const (
	forwardDial = 2 * time.Second
	peerList    = 5 * time.Second
)

// replicaState is what a server keeps for Options.Replicas.
type replicaState struct {
	transport *http.Transport

	mu       sync.Mutex
	adopting map[sandbox.ID]*adoptLock
}

type adoptLock struct {
	mu sync.Mutex
	n  int
}

func newReplicaState() *replicaState {
	d := &net.Dialer{Timeout: forwardDial, KeepAlive: 30 * time.Second}
	return &replicaState{
		transport: &http.Transport{
			DialContext:         d.DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   false,
		},
		adopting: map[sandbox.ID]*adoptLock{},
	}
}

// lock serializes the adoptions of one sandbox in this process.
func (rs *replicaState) lock(id sandbox.ID) func() {
	rs.mu.Lock()
	l := rs.adopting[id]
	if l == nil {
		l = &adoptLock{}
		rs.adopting[id] = l
	}
	l.n++
	rs.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		rs.mu.Lock()
		if l.n--; l.n == 0 {
			delete(rs.adopting, id)
		}
		rs.mu.Unlock()
	}
}

// elsewhere serves, for a route with a sandbox ID, the requests for a
// sandbox this replica does not hold: it forwards them to the owner, or
// adopts the sandbox and lets the route run. It reports whether it
// answered the request.
func (s *Server) elsewhere(w http.ResponseWriter, r *http.Request, pattern string) (bool, error) {
	id := sandboxID(r)
	if sandbox.ValidateID(string(id)) != nil {
		return false, nil // the route says what is wrong
	}
	if _, err := s.mgr.Get(id); err == nil {
		return false, nil
	}
	rep := s.opts.Replicas
	for attempt := 0; ; attempt++ {
		loc, err := rep.Locate(r.Context(), id)
		if errors.Is(err, sandbox.ErrNotFound) {
			return false, nil // the route answers 404
		}
		if err != nil {
			return true, err
		}
		if loc.Adoptable {
			if pattern == "DELETE /sandbox/{id}" {
				// Deleting needs no agent: remove the pod as it is.
				if err := rep.Release(context.WithoutCancel(r.Context()), id); err != nil {
					return true, err
				}
				return true, writeJSON(w, http.StatusOK, api.DeleteResponse{ID: string(id), Status: "destroyed"})
			}
			err := s.adopt(r.Context(), id)
			if errors.Is(err, sandbox.ErrConflict) && attempt == 0 {
				continue // adopted elsewhere meanwhile: look again
			}
			return err != nil, err
		}
		if from := r.Header.Get(HeaderForwardedBy); from != "" {
			return true, fmt.Errorf("sandbox %s: replica %s forwarded the request here, but replica %s holds the sandbox; "+
				"a forwarded request is not forwarded again: %w", id, from, loc.Replica, sandbox.ErrUnavailable)
		}
		s.forward(w, r, id, loc)
		return true, nil
	}
}

// adopt takes sandbox id over into this replica's registry, once however
// many requests ask at the same time.
func (s *Server) adopt(ctx context.Context, id sandbox.ID) error {
	unlock := s.replicas.lock(id)
	defer unlock()
	if _, err := s.mgr.Get(id); err == nil {
		return nil // another request adopted it
	}
	// A client that hangs up does not leave a half-adopted sandbox.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	_, err := s.mgr.Adopt(ctx, id, s.opts.IdleTimeout, func(ctx context.Context) (sandbox.Info, error) {
		return s.opts.Replicas.Adopt(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("taking sandbox %s over: %w", id, err)
	}
	s.log.InfoContext(ctx, "sandbox adopted", "sandbox_id", id, "replica", s.opts.Replicas.ID())
	return nil
}

// forward proxies the request, streams included, to the replica that
// holds the sandbox. The client's bearer key goes along (replicas share
// API__KEYS); a request made in process (MCP, E2B), which has none,
// carries the first configured key.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, id sandbox.ID, loc Location) {
	target, err := url.Parse(loc.Address)
	if err != nil || target.Host == "" {
		s.writeError(w, r, fmt.Errorf("sandbox %s: replica %s has an unusable address %q: %w", id, loc.Replica, loc.Address, sandbox.ErrUnavailable))
		return
	}
	self := s.opts.Replicas.ID()
	reqID := requestID(r.Context())
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = target.Host
			pr.Out.Header.Set(HeaderForwardedBy, self)
			pr.Out.Header.Set("X-Request-ID", reqID)
			if pr.Out.Header.Get("Authorization") == "" && len(s.opts.Keys) > 0 {
				pr.Out.Header.Set("Authorization", "Bearer "+s.opts.Keys[0])
			}
		},
		Transport:     s.replicas.transport,
		FlushInterval: -1, // event streams as they come
		ModifyResponse: func(resp *http.Response) error {
			resp.Header.Del("X-Request-ID") // ours is set already, and the same
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				s.writeError(w, r, err)
				return
			}
			wait := time.Until(loc.Expires).Round(time.Second)
			s.writeError(w, r, fmt.Errorf("sandbox %s is held by replica %s at %s, which does not answer (%v); "+
				"if it is gone, any replica takes the sandbox over when its Lease has expired, in %s at most: %w",
				id, loc.Replica, loc.Address, err, max(wait, 0), sandbox.ErrUnavailable))
		},
		ErrorLog: nil,
	}
	s.log.DebugContext(r.Context(), "forwarding to the sandbox's replica", "request_id", reqID, "sandbox_id", id,
		"replica", loc.Replica, "address", loc.Address)
	p.ServeHTTP(w, r)
}

// listEverywhere adds to this replica's sandboxes those of the other live
// replicas, asked in parallel (each answers for itself only: the request
// is marked forwarded). A replica that does not answer within peerList is
// left out and named in the X-Warden-Unreachable-Replicas header; the
// sandboxes of replicas gone are listed by none until adopted.
func (s *Server) listEverywhere(w http.ResponseWriter, r *http.Request, own []api.Sandbox) []api.Sandbox {
	peers, err := s.opts.Replicas.Peers(r.Context())
	if err != nil {
		s.log.WarnContext(r.Context(), "listing the other replicas", "err", err)
		w.Header().Set("X-Warden-Unreachable-Replicas", "*")
		return own
	}
	type answer struct {
		id    string
		boxes []api.Sandbox
		err   error
	}
	answers := make(chan answer, len(peers))
	for id, addr := range peers {
		go func() {
			boxes, err := s.listPeer(r, addr)
			answers <- answer{id, boxes, err}
		}()
	}
	all := slices.Clone(own)
	seen := map[string]bool{}
	for _, b := range own {
		seen[b.ID] = true
	}
	var missing []string
	for range peers {
		a := <-answers
		if a.err != nil {
			s.log.WarnContext(r.Context(), "listing the sandboxes of a replica", "replica", a.id, "err", a.err)
			missing = append(missing, a.id)
			continue
		}
		for _, b := range a.boxes {
			if !seen[b.ID] {
				seen[b.ID] = true
				all = append(all, b)
			}
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		w.Header().Set("X-Warden-Unreachable-Replicas", strings.Join(missing, ","))
	}
	slices.SortFunc(all, func(a, b api.Sandbox) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return all
}

func (s *Server) listPeer(r *http.Request, addr string) ([]api.Sandbox, error) {
	ctx, cancel := context.WithTimeout(r.Context(), peerList)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(addr, "/")+"/sandbox", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderForwardedBy, s.opts.Replicas.ID())
	req.Header.Set("X-Request-ID", requestID(r.Context()))
	if h := r.Header.Get("Authorization"); h != "" {
		req.Header.Set("Authorization", h)
	} else if len(s.opts.Keys) > 0 {
		req.Header.Set("Authorization", "Bearer "+s.opts.Keys[0])
	}
	resp, err := (&http.Client{Transport: s.replicas.transport}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s", addr, resp.Status)
	}
	var list api.SandboxList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("%s: %v", addr, err)
	}
	return list.Sandboxes, nil
}
