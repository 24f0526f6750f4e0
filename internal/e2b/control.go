package e2b

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// clientID is what create reports as the sandbox's client; E2B's SDKs
// read nothing from it.
const clientID = "warden"

// controlMux routes the control plane. Every route needs the API key.
func (s *Server) controlMux() http.Handler {
	mux := http.NewServeMux()
	for pattern, h := range map[string]func(http.ResponseWriter, *http.Request) error{
		"POST /sandboxes":                  s.create,
		"POST /v2/sandboxes":               s.create,
		"GET /sandboxes":                   s.list,
		"GET /v2/sandboxes":                s.list,
		"GET /sandboxes/{id}":              s.get,
		"DELETE /sandboxes/{id}":           s.kill,
		"POST /sandboxes/{id}/timeout":     s.setTimeout,
		"POST /sandboxes/{id}/connect":     s.connect,
		"POST /v2/sandboxes/{id}/connect":  s.connect,
		"POST /sandboxes/{id}/pause":       unsupported("pausing a sandbox"),
		"POST /sandboxes/{id}/resume":      unsupported("resuming a sandbox"),
		"POST /sandboxes/{id}/refreshes":   unsupported("refreshing a sandbox"),
		"POST /sandboxes/{id}/fork":        unsupported("forking a sandbox"),
		"POST /sandboxes/{id}/snapshots":   unsupported("snapshots"),
		"PUT /sandboxes/{id}/network":      unsupported("changing a sandbox's network rules"),
		"GET /sandboxes/{id}/metrics":      unsupported("sandbox metrics"),
		"GET /sandboxes/metrics":           unsupported("sandbox metrics"),
		"GET /sandboxes/{id}/logs":         unsupported("sandbox logs"),
		"GET /v2/sandboxes/{id}/logs":      unsupported("sandbox logs"),
		"POST /sandboxes/{id}/volumes":     unsupported("volumes"),
		"DELETE /sandboxes/{id}/snapshots": unsupported("snapshots"),
		"/snapshots/":                      unsupported("snapshots"),
		"/templates/":                      unsupported("templates (map a name to an image with SANDBOX__E2B_TEMPLATES)"),
		"/volumes/":                        unsupported("volumes"),
		"/volumecontent/":                  unsupported("volumecontent"),
		"/secrets/":                        unsupported("secrets"),
	} {
		mux.Handle(pattern, s.controlRoute(h))
	}
	for _, p := range []string{"/snapshots", "/templates", "/volumes", "/volumecontent", "/secrets"} {
		mux.Handle(p, s.controlRoute(unsupported(strings.TrimPrefix(p, "/"))))
	}
	mux.Handle("/", s.controlRoute(func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no route for %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

// controlRoute checks the API key, then runs h and answers its error.
func (s *Server) controlRoute(h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := s.authorize(r)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

func unsupported(what string) func(http.ResponseWriter, *http.Request) error {
	return func(http.ResponseWriter, *http.Request) error {
		return errorf(http.StatusNotImplemented, "%s is not supported by Warden", what)
	}
}

// createRequest is the body of POST /v2/sandboxes (and /sandboxes), as the
// SDKs send it. Unknown fields are ignored, so that newer SDKs keep
// working; fields that ask for what Warden cannot do are refused.
type createRequest struct {
	TemplateID          string            `json:"templateID"`
	Timeout             *float64          `json:"timeout"`
	Metadata            map[string]string `json:"metadata"`
	EnvVars             map[string]string `json:"envVars"`
	AllowInternetAccess *bool             `json:"allow_internet_access"`
	AutoPause           *bool             `json:"autoPause"`
	AutoResume          *struct {
		Enabled bool `json:"enabled"`
	} `json:"autoResume"`
	Network      json.RawMessage   `json:"network"`
	MCP          json.RawMessage   `json:"mcp"`
	IAM          json.RawMessage   `json:"iam"`
	VolumeMounts []json.RawMessage `json:"volumeMounts"`
}

// created is the answer of create and connect.
type created struct {
	SandboxID          string  `json:"sandboxID"`
	TemplateID         string  `json:"templateID"`
	Alias              string  `json:"alias,omitempty"`
	ClientID           string  `json:"clientID"`
	EnvdVersion        string  `json:"envdVersion"`
	EnvdAccessToken    string  `json:"envdAccessToken"`
	TrafficAccessToken string  `json:"trafficAccessToken"`
	Domain             *string `json:"domain"`
}

// detail is the answer of GET /sandboxes/{id}, and (without the token) an
// element of the list.
type detail struct {
	SandboxID           string            `json:"sandboxID"`
	TemplateID          string            `json:"templateID"`
	Alias               string            `json:"alias,omitempty"`
	ClientID            string            `json:"clientID"`
	StartedAt           time.Time         `json:"startedAt"`
	EndAt               time.Time         `json:"endAt"`
	State               string            `json:"state"`
	CPUCount            int               `json:"cpuCount"`
	MemoryMB            int               `json:"memoryMB"`
	DiskSizeMB          int               `json:"diskSizeMB"`
	EnvdVersion         string            `json:"envdVersion"`
	EnvdAccessToken     string            `json:"envdAccessToken,omitempty"`
	AllowInternetAccess *bool             `json:"allowInternetAccess,omitempty"`
	Domain              *string           `json:"domain"`
	Metadata            map[string]string `json:"metadata"`
	VolumeMounts        []struct{}        `json:"volumeMounts"`
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	var bad []string
	if req.TemplateID == "" {
		bad = append(bad, "templateID is required")
	}
	image, known := s.templates[req.TemplateID]
	if req.TemplateID != "" && !known {
		return errorf(http.StatusNotFound, "template %q not found: this Warden knows %s (SANDBOX__E2B_TEMPLATES adds others)",
			req.TemplateID, strings.Join(slices.Sorted(maps.Keys(s.templates)), ", "))
	}
	ttl, err := timeoutOf(req.Timeout)
	if err != nil {
		bad = append(bad, err.Error())
	}
	if req.AutoPause != nil && *req.AutoPause || req.AutoResume != nil && req.AutoResume.Enabled {
		bad = append(bad, "pausing is not supported: a sandbox is killed when its timeout runs out")
	}
	for name, raw := range map[string]json.RawMessage{"network": req.Network, "mcp": req.MCP, "iam": req.IAM} {
		if !emptyJSON(raw) {
			bad = append(bad, name+" is not supported (use allow_internet_access for network access)")
		}
	}
	if len(req.VolumeMounts) > 0 {
		bad = append(bad, "volume mounts are not supported")
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return errorf(http.StatusBadRequest, "%s", strings.Join(bad, "; "))
	}

	env := map[string]string{"HOME": home}
	maps.Copy(env, req.EnvVars)
	opts := client.CreateOptions{
		Image:                image,
		EnvironmentVariables: env,
		EnableNetwork:        req.AllowInternetAccess,
		// The E2B timeout decides when the sandbox goes; Warden's idle
		// timeout is pushed past the longest one.
		IdleTimeout:        MaxTimeout,
		WorkspaceMountPath: home,
	}
	// A sandbox whose creation the client gave up on is removed, not
	// left to the idle timeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Minute)
	defer cancel()
	sb, err := s.c.Create(ctx, opts)
	if err != nil {
		return err
	}
	b, err := s.adopt(ctx, sb, req, image, ttl)
	if err == nil && r.Context().Err() != nil {
		err = r.Context().Err()
		s.forget(b)
	}
	if err != nil {
		if derr := s.c.Delete(ctx, sb.ID); derr != nil && !errors.Is(derr, client.ErrNotFound) {
			s.log.Warn("removing an e2b sandbox that could not be set up", "sandbox_id", sb.ID, "err", derr)
		}
		return err
	}
	s.log.Info("e2b sandbox created", "sandbox_id", sb.ID, "e2b_id", b.id, "template", b.template, "timeout", ttl)
	writeJSON(w, http.StatusCreated, b.created())
	return nil
}

// adopt records a new Warden sandbox as an E2B one, with its token and
// timer.
func (s *Server) adopt(ctx context.Context, sb api.Sandbox, req createRequest, image string, ttl time.Duration) (*box, error) {
	id := e2bID(sb.ID)
	if id == "" {
		return nil, fmt.Errorf("warden sandbox id %q has no E2B form", sb.ID)
	}
	if ws := sb.Spec.WorkspacePath; ws != "" && ws != home && req.EnvVars["HOME"] == "" {
		// The local provider keeps the workspace at its host path: HOME
		// follows it, so that ~ is the workspace there too.
		if _, err := s.c.UpdateEnv(ctx, sb.ID, map[string]string{"HOME": ws}, nil); err != nil {
			return nil, err
		}
	}
	tok := newToken()
	b := &box{
		id:        id,
		wardenID:  sb.ID,
		template:  req.TemplateID,
		image:     image,
		token:     tok,
		tokenHash: sha256.Sum256([]byte(tok)),
		metadata:  maps.Clone(req.Metadata),
		network:   sb.Spec.EnableNetwork,
		cpus:      max(1, int(math.Ceil(sb.Spec.CPULimit))),
		memoryMB:  int(sb.Spec.MemoryLimit >> 20),
		startedAt: s.now().UTC(),
		workspace: sb.Spec.WorkspacePath,
	}
	if b.metadata == nil {
		b.metadata = map[string]string{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errorf(http.StatusServiceUnavailable, "the service is shutting down")
	}
	s.boxes[id] = b
	s.armLocked(b, b.startedAt.Add(ttl))
	return b, nil
}

func (b *box) created() created {
	return created{
		SandboxID: b.id, TemplateID: b.template, Alias: b.template, ClientID: clientID,
		EnvdVersion: EnvdVersion, EnvdAccessToken: b.token, TrafficAccessToken: b.token,
	}
}

// detail describes b. s.mu is held.
func (b *box) detailLocked() detail {
	net := b.network
	return detail{
		SandboxID: b.id, TemplateID: b.template, Alias: b.template, ClientID: clientID,
		StartedAt: b.startedAt, EndAt: b.end.UTC(), State: "running",
		CPUCount: b.cpus, MemoryMB: b.memoryMB, EnvdVersion: EnvdVersion,
		AllowInternetAccess: &net, Metadata: maps.Clone(b.metadata), VolumeMounts: []struct{}{},
	}
}

// timeoutOf reads a timeout in seconds: absent is DefaultTimeout; it may
// be 0 (the sandbox goes at once) to MaxTimeout.
func timeoutOf(t *float64) (time.Duration, error) {
	if t == nil {
		return DefaultTimeout, nil
	}
	if !(*t >= 0 && *t <= MaxTimeout.Seconds()) {
		return 0, fmt.Errorf("timeout %g s is outside 0 to %g s", *t, MaxTimeout.Seconds())
	}
	return time.Duration(*t * float64(time.Second)), nil
}

// sandboxFor returns the sandbox the path names, checking with Warden that
// it is still there.
func (s *Server) sandboxFor(r *http.Request) (*box, error) {
	id := r.PathValue("id")
	b := s.lookup(id)
	if b == nil || s.gone(r.Context(), b) {
		return nil, errorf(http.StatusNotFound, "sandbox %q not found", id)
	}
	return b, nil
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) error {
	b, err := s.sandboxFor(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	d := b.detailLocked()
	s.mu.Unlock()
	d.EnvdAccessToken = b.token
	writeJSON(w, http.StatusOK, d)
	return nil
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	b := s.lookup(id)
	if b == nil || !s.forget(b) {
		return errorf(http.StatusNotFound, "sandbox %q not found", id)
	}
	err := s.c.Delete(context.WithoutCancel(r.Context()), b.wardenID)
	if errors.Is(err, client.ErrNotFound) {
		return errorf(http.StatusNotFound, "sandbox %q not found", id)
	}
	if err != nil {
		return err
	}
	s.log.Info("e2b sandbox killed", "sandbox_id", b.wardenID, "e2b_id", b.id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type timeoutRequest struct {
	Timeout *float64 `json:"timeout"`
}

// setTimeout sets the sandbox's end to now plus the timeout, sooner or
// later than before, as E2B does.
func (s *Server) setTimeout(w http.ResponseWriter, r *http.Request) error {
	var req timeoutRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.Timeout == nil {
		return errorf(http.StatusBadRequest, "timeout is required")
	}
	ttl, err := timeoutOf(req.Timeout)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	b, err := s.sandboxFor(r)
	if err != nil {
		return err
	}
	if !s.setEnd(b, s.now().Add(ttl)) {
		return errorf(http.StatusNotFound, "sandbox %q not found", b.id)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type connectRequest struct {
	Timeout *float64 `json:"timeout"`
}

// connect answers as create does, for a running sandbox, and extends its
// life to now plus the timeout if that is later than its end.
func (s *Server) connect(w http.ResponseWriter, r *http.Request) error {
	var req connectRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	ttl, err := timeoutOf(req.Timeout)
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	b, err := s.sandboxFor(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	ok := s.boxes[b.id] == b
	if end := s.now().Add(ttl); ok && end.After(b.end) {
		s.armLocked(b, end)
	}
	s.mu.Unlock()
	if !ok {
		return errorf(http.StatusNotFound, "sandbox %q not found", b.id)
	}
	writeJSON(w, http.StatusOK, b.created())
	return nil
}

// list answers GET /v2/sandboxes (and /sandboxes): the live sandboxes made
// here, filtered by state, metadata and template, in pages.
func (s *Server) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	running := true
	if states := q["state"]; len(states) > 0 {
		running = false
		for _, v := range states {
			for st := range strings.SplitSeq(v, ",") {
				switch st {
				case "running":
					running = true
				case "paused":
				default:
					return errorf(http.StatusBadRequest, "state %q is not running or paused", st)
				}
			}
		}
	}
	var meta url.Values
	if m := q.Get("metadata"); m != "" {
		var err error
		if meta, err = url.ParseQuery(m); err != nil {
			return errorf(http.StatusBadRequest, "metadata %q is not key=value pairs joined by &", m)
		}
	}
	limit := 100
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return errorf(http.StatusBadRequest, "limit %q is not a whole number from 1 to 100", v)
		}
		limit = n
	}
	from := 0
	if v := q.Get("nextToken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "nextToken %q is not one this server gave", v)
		}
		from = n
	}
	var after time.Time
	if v := q.Get("startedAfter"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return errorf(http.StatusBadRequest, "startedAfter %q is not an RFC 3339 time", v)
		}
		after = t
	}
	desc := false
	switch o := q.Get("order"); strings.ToLower(o) {
	case "", "asc":
	case "desc":
		desc = true
	default:
		return errorf(http.StatusBadRequest, "order %q is not asc or desc", o)
	}

	live, err := s.c.List(r.Context())
	if err != nil {
		return err
	}
	alive := map[string]bool{}
	for _, sb := range live {
		alive[sb.ID] = true
	}
	out := []detail{}
	if running {
		s.mu.Lock()
		for _, b := range s.boxes {
			if !alive[b.wardenID] || b.startedAt.Before(after) || q.Get("template") != "" && q.Get("template") != b.template {
				continue
			}
			if !matches(b.metadata, meta) {
				continue
			}
			out = append(out, b.detailLocked())
		}
		s.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.Before(out[j].StartedAt) != desc
		}
		return out[i].SandboxID < out[j].SandboxID
	})
	out = out[min(from, len(out)):]
	if len(out) > limit {
		w.Header().Set("X-Next-Token", strconv.Itoa(from+limit))
		out = out[:limit]
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func matches(meta map[string]string, want url.Values) bool {
	for k, vs := range want {
		for _, v := range vs {
			if meta[k] != v {
				return false
			}
		}
	}
	return true
}

// decodeJSON reads a JSON object from the body into v. An empty body is
// refused unless emptyOK. Unknown fields are ignored.
func decodeJSON(r *http.Request, v any, emptyOK bool) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return nil
		}
		return errorf(http.StatusBadRequest, "request body is empty; want a JSON object")
	}
	if body = bytes.TrimSpace(body); body[0] != '{' {
		return errorf(http.StatusBadRequest, "request body is not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid JSON body: %v", err)
	}
	if dec.More() {
		return errorf(http.StatusBadRequest, "request body holds more than one JSON value")
	}
	return nil
}

// emptyJSON reports whether raw is absent, null or an empty object.
func emptyJSON(raw json.RawMessage) bool {
	t := string(bytes.TrimSpace(raw))
	return t == "" || t == "null" || t == "{}"
}
