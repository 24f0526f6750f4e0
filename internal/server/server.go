package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/policy"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/session"
)

// Options configure a [Server].
type Options struct {
	// Manager holds the live sandboxes. Required. A Manager without a
	// provider makes the service "disabled": sandbox operations answer 503
	// while /health and /sandbox/status still answer.
	Manager *session.Manager
	// Status reports the service's mode for /sandbox/status and /health.
	// It is called per request and must be cheap. Nil derives the mode from
	// the Manager's provider.
	Status func(ctx context.Context) StatusInfo
	// DockerInfo answers /sandbox/docker-info (always 200); the caller
	// computes it, e.g. from a cached Docker probe. Nil reports status
	// "disabled".
	DockerInfo func(ctx context.Context) api.DockerInfo
	// Defaults is the base spec from configuration; fields of a create
	// request override it.
	Defaults sandbox.Spec
	// IdleTimeout is the idle timeout of sandboxes whose create request
	// names none: 0 never reaps them, a negative value means the Manager's
	// default.
	IdleTimeout time.Duration
	// Keys are the accepted bearer keys; none disables authentication.
	Keys []string
	// MaxBodyBytes caps every request body (uploads included); larger
	// bodies get 413. 0 means no cap.
	MaxBodyBytes int64
	// AllowedHostDirs, when not empty, are the only host directories (and
	// what lies below them, symbolic links resolved) that a request may
	// name as workspace_path or additional_*_dirs; others are refused with
	// 403. Directories from Defaults (configuration) are not checked.
	AllowedHostDirs []string
	// Version is reported by /health.
	Version string
	// Log receives request logs (debug) and internal errors. Nil discards.
	Log *slog.Logger
	// MCP, if set, builds the handler served at /mcp, behind the same keys
	// as the rest of the API, from a transport that reaches this server in
	// process (see [Server.InProcess]).
	MCP func(inProcess http.RoundTripper) http.Handler
	// Replicas, when set, makes this server one of several replicas that
	// share sandboxes (ADR 0016): requests for a sandbox it does not hold
	// go to the replica that does, or adopt the sandbox when that one is
	// gone, and GET /sandbox lists every live replica's sandboxes.
	Replicas Replicas
	// Metrics collects the /metrics counters. Nil makes New create one;
	// execution and lifecycle counters then stay at zero unless the same
	// Metrics is also the Manager's session.Observer.
	Metrics *Metrics
}

// StatusInfo is what Options.Status reports.
type StatusInfo struct {
	// Mode is how the service isolates code.
	Mode session.Mode
	// Provider and Isolation describe the backend; empty when disabled.
	Provider  string
	Isolation sandbox.Isolation
	// Runtime is the OCI runtime of the provider's containers ("runc",
	// "runsc"), "" for providers without one.
	Runtime string
	// DockerAvailable reports whether a Docker daemon answers, whichever
	// provider is selected.
	DockerAvailable bool
	// Enabled and MockMode are the SANDBOX__ENABLED and SANDBOX__MOCK_MODE
	// settings, reported as the Agent Platform did.
	Enabled, MockMode bool
	// Warning is set when nothing isolates the code (session.MockWarning),
	// and "" otherwise.
	Warning string
	// Policy says which checks run before executions; nil when unknown.
	Policy *api.PolicyInfo
	// Providers lists the providers considered at startup, whether each
	// can run here and why; nil when unknown.
	Providers []api.ProviderAvailability
}

// PolicyOf reports the checks p applies: those of a *policy.Guard, or
// none.
func PolicyOf(p sandbox.Provider) *api.PolicyInfo {
	g, ok := p.(*policy.Guard)
	if !ok {
		return &api.PolicyInfo{}
	}
	return &api.PolicyInfo{ShellCheck: !g.Shell.Bypass && !slices.Contains(g.Shell.ExtraCommands, "*"), PythonCheck: !g.Python.Trusted}
}

// Server is the HTTP API. It implements [http.Handler] and is safe for
// concurrent use. It owns no goroutines beyond the requests it serves.
type Server struct {
	opts    Options
	mgr     *session.Manager
	log     *slog.Logger
	metrics *Metrics
	mux     *http.ServeMux
	routes  []route
	keys    [][sha256.Size]byte // hashes of Options.Keys
	start   time.Time
	// chown: the process may hand files to the sandbox user (it is root).
	chown bool
	// keepalive is the interval of comments on a silent event stream.
	keepalive time.Duration
	// replicas is the state of Options.Replicas; nil without.
	replicas *replicaState
}

// handlerFunc is an HTTP handler that returns its error; handle turns the
// error into a status and a JSON body.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type route struct {
	pattern string
	h       handlerFunc
	public  bool // served without authentication
}

// New returns a Server for opts. It panics if opts.Manager is nil.
func New(opts Options) *Server {
	if opts.Manager == nil {
		panic("api: Options.Manager is nil")
	}
	s := &Server{
		opts:      opts,
		mgr:       opts.Manager,
		log:       opts.Log,
		metrics:   opts.Metrics,
		mux:       http.NewServeMux(),
		start:     time.Now(),
		chown:     os.Geteuid() == 0,
		keepalive: 15 * time.Second,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	for _, k := range opts.Keys {
		s.keys = append(s.keys, sha256.Sum256([]byte(k)))
	}
	if opts.Replicas != nil {
		s.replicas = newReplicaState()
	}
	s.routes = s.routeTable()
	if opts.MCP != nil {
		s.routes = append(s.routes, route{pattern: "/mcp", h: s.mcpHandler(opts.MCP(s.InProcess()))})
	}
	for _, rt := range s.routes {
		s.mux.Handle(rt.pattern, s.handle(rt))
	}
	// Everything no route matches lands here: 404, or 405 when the path is
	// known under another method (ServeMux's own answers are plain text).
	s.mux.Handle("/", s.handle(route{pattern: routeUnmatched, h: s.unmatched}))
	return s
}

// routeUnmatched is the route label of requests no route matched.
const routeUnmatched = "unmatched"

// routeTable is the whole API surface, in one place.
func (s *Server) routeTable() []route {
	return []route{
		{pattern: "GET /{$}", h: s.root},
		{pattern: "GET /health", h: s.health, public: true},
		{pattern: "GET /sandbox/status", h: s.status},
		{pattern: "GET /sandbox/docker-info", h: s.dockerInfo},
		{pattern: "POST /sandbox/create", h: s.createSandbox},
		{pattern: "POST /sandbox/run", h: s.run},
		{pattern: "GET /sandbox", h: s.listSandboxes},
		{pattern: "GET /sandbox/{id}", h: s.getSandbox},
		{pattern: "DELETE /sandbox/{id}", h: s.deleteSandbox},
		{pattern: "POST /sandbox/{id}/execute", h: s.execute},
		{pattern: "GET /sandbox/{id}/env", h: s.getEnv},
		{pattern: "PUT /sandbox/{id}/env", h: s.replaceEnv},
		{pattern: "PATCH /sandbox/{id}/env", h: s.patchEnv},
		{pattern: "DELETE /sandbox/{id}/env/{name}", h: s.deleteEnv},
		{pattern: "PUT /sandbox/{id}/files", h: s.putFile},
		{pattern: "GET /sandbox/{id}/files", h: s.getFile},
		{pattern: "DELETE /sandbox/{id}/files", h: s.removeFile},
		{pattern: "GET /sandbox/{id}/files/list", h: s.listFiles},
		{pattern: "GET /sandbox/{id}/files/stat", h: s.statFile},
		{pattern: "POST /sandbox/{id}/files/mkdir", h: s.makeDir},
		{pattern: "POST /sandbox/{id}/files/move", h: s.moveFile},
		{pattern: "POST /sandbox/{id}/processes", h: s.startProcess},
		{pattern: "GET /sandbox/{id}/processes", h: s.listProcesses},
		{pattern: "GET /sandbox/{id}/processes/{pid}", h: s.getProcess},
		{pattern: "DELETE /sandbox/{id}/processes/{pid}", h: s.killProcess},
		{pattern: "GET /sandbox/{id}/processes/{pid}/events", h: s.watchProcess},
		{pattern: "POST /sandbox/{id}/processes/{pid}/stdin", h: s.processInput},
		{pattern: "DELETE /sandbox/{id}/processes/{pid}/stdin", h: s.closeProcessInput},
		{pattern: "POST /sandbox/{id}/processes/{pid}/signal", h: s.signalProcess},
		{pattern: "GET /openapi.json", h: s.openAPI},
		{pattern: "GET /metrics", h: s.serveMetrics},
	}
}

// handle adapts an error-returning handler: it records the route for logs
// and metrics, checks the bearer key unless the route is public, and turns
// a returned error into its JSON answer.
func (s *Server) handle(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.route = rt.pattern
		}
		var err error
		if !rt.public {
			err = s.authorize(w, r)
		}
		if err == nil && s.replicas != nil && strings.Contains(rt.pattern, "{id}") {
			var done bool
			if done, err = s.elsewhere(w, r, rt.pattern); done {
				if err != nil {
					s.writeError(w, r, err)
				}
				return
			}
		}
		if err == nil {
			err = rt.h(w, r)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authorize checks the Authorization header against the configured keys.
// Every key is compared, in constant time, as a SHA-256 hash, so neither
// the position of a match nor a key's length shows in the timing.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) error {
	if len(s.keys) == 0 || isInProcess(r) {
		return nil
	}
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden"`)
		return fmt.Errorf("missing bearer key in the Authorization header: %w", errUnauthorized)
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	match := 0
	for i := range s.keys {
		match |= subtle.ConstantTimeCompare(got[:], s.keys[i][:])
	}
	if match != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="warden", error="invalid_token"`)
		return fmt.Errorf("wrong bearer key: %w", errUnauthorized)
	}
	return nil
}

// mcpHandler serves an MCP handler as a route: authenticated, logged and
// counted like the others; its own errors are its own (JSON-RPC).
func (s *Server) mcpHandler(h http.Handler) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	}
}

// unmatched answers requests no route matched: 405 with Allow when another
// method would have matched the path, 404 otherwise.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return fmt.Errorf("no route for %s %s: %w", r.Method, r.URL.Path, errRouteNotFound)
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	return fmt.Errorf("%s is not allowed on %s (allowed: %s): %w", r.Method, r.URL.Path, strings.Join(allow, ", "), errMethodNotAllowed)
}

// ServeHTTP implements [http.Handler]: request ID, body cap, panic
// recovery, request log and metrics around the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-ID")
	if !validRequestID(id) {
		id = newRequestID()
	}
	w.Header().Set("X-Request-ID", id)
	ctx := context.WithValue(r.Context(), requestIDKey{}, id)
	r = r.WithContext(ctx)
	if r.Body != nil && s.opts.MaxBodyBytes > 0 {
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	}
	rec := &recorder{ResponseWriter: w, route: routeUnmatched}
	defer func() {
		v := recover()
		began := rec.wrote // before a 500 below
		if v != nil && v != http.ErrAbortHandler {
			s.log.ErrorContext(ctx, "panic serving request", "request_id", id, "route", rec.route,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !rec.wrote {
				// Drop what the handler set for its own answer (a
				// Content-Length, an event-stream type) but keep the ID.
				clear(w.Header())
				w.Header().Set("X-Request-ID", id)
				s.writeBody(rec, http.StatusInternalServerError, api.Error{Code: api.CodeInternal, Message: "internal error"})
			}
		}
		status := rec.statusCode()
		if ctx.Err() != nil && (rec.cancelled || rec.clientGone) {
			status = statusClientClosed
		}
		d := time.Since(start)
		s.metrics.observeHTTP(rec.route, status, d)
		s.log.DebugContext(ctx, "http request", "request_id", id, "method", r.Method, "route", rec.route,
			"status", status, "duration", d)
		if v != nil && (began || v == http.ErrAbortHandler) {
			// A response was under way: abort it so the client sees a
			// broken response, not a truncated one that looks whole.
			panic(http.ErrAbortHandler)
		}
	}()
	// ServeMux would redirect a path with dot segments or doubled
	// slashes to its clean form (a POST becoming a GET on the way): refuse
	// it instead, and say which path was meant.
	if p := r.URL.Path; !isClean(p) {
		s.writeError(rec, r, fmt.Errorf("path %q has dot segments or doubled slashes; use %q: %w",
			p, path.Clean(p), sandbox.ErrInvalid))
		return
	}
	s.mux.ServeHTTP(rec, r)
}

// isClean reports whether p is a path ServeMux serves as it is: no dot
// segments, no doubled slashes (a single trailing slash is left to the
// routes, which answer 404).
func isClean(p string) bool {
	c := path.Clean(p)
	return c == p || c+"/" == p
}

// statusClientClosed is recorded (never sent) for requests whose client
// went away before an answer, as nginx does.
const statusClientClosed = 499

type requestIDKey struct{}

// requestID returns the request ID ServeHTTP put in ctx.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// validRequestID accepts a client's request ID if it is a token that is
// safe to log and echo: 1 to 128 characters of [A-Za-z0-9._-].
func validRequestID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	return hex.EncodeToString(b[:])
}

// recorder remembers the status and route of a response for the request
// log and metrics.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
	route  string
	// cancelled marks an answer written because the client went away (or
	// half-closed); clientGone a stream cut short by it. Both count as
	// 499 in the metrics.
	cancelled, clientGone bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote && code >= 200 {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(p)
}

// ReadFrom keeps the underlying writer's sendfile path for downloads.
func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	return io.Copy(r.ResponseWriter, src)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) statusCode() int {
	if !r.wrote {
		return http.StatusOK // what net/http sends for an empty answer
	}
	return r.status
}
