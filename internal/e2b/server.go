package e2b

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/client"
)

// The ports of E2B's in-sandbox daemons, as the SDKs name them in the
// E2b-Sandbox-Port header.
const (
	envdPort        = "49983"
	interpreterPort = "49999"
)

// EnvdVersion is the envd version create reports. The SDKs gate features
// on it; 0.6.1 enables what Warden implements (stdin closing from 0.5.2,
// octet-stream uploads from 0.5.7) and keeps the SDK from sending file
// metadata (0.6.2) or watch options (0.6.3), which Warden does not keep.
const EnvdVersion = "0.6.1"

// home is E2B's home directory, where sandboxes made here mount their
// workspace.
const home = "/home/user"

// Defaults of the lifetime a create or connect does not name, and the
// longest it may ask for (E2B's own limit for its paid plans).
const (
	DefaultTimeout = 300 * time.Second
	MaxTimeout     = 24 * time.Hour
)

// Options configure a [Server].
type Options struct {
	// Client reaches Warden's API, normally in process. Required.
	Client *client.Client
	// Keys are the accepted X-API-KEY values (Warden's API__KEYS); none
	// leaves the control plane open.
	Keys []string
	// Templates maps E2B template names to images. "base" and
	// "code-interpreter-v1" are always known; an empty image means
	// Warden's configured one.
	Templates map[string]string
	// MaxBodyBytes caps request bodies (SANDBOX__MAX_REQUEST_BYTES); 0 is
	// no cap.
	MaxBodyBytes int64
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
	// Now is the clock; nil is time.Now. Tests move it.
	Now func() time.Time
	// KeepaliveInterval is the pause after which a quiet process stream
	// gets a keepalive event; 0 means 30 s.
	KeepaliveInterval time.Duration
}

// Server is the E2B-compatible surface. It is safe for concurrent use.
type Server struct {
	c         *client.Client
	keys      [][sha256.Size]byte
	templates map[string]string
	maxBody   int64
	log       *slog.Logger
	now       func() time.Time
	keepalive time.Duration

	envd        http.Handler // the Connect services and envd's REST routes
	interpreter http.Handler
	control     http.Handler

	mu     sync.Mutex
	boxes  map[string]*box // by E2B sandbox ID
	closed bool
}

// New returns a Server over opts.Client.
func New(opts Options) *Server {
	if opts.Client == nil {
		panic("e2b: Options.Client is nil")
	}
	s := &Server{
		c:         opts.Client,
		templates: map[string]string{"base": "", "code-interpreter-v1": ""},
		maxBody:   opts.MaxBodyBytes,
		log:       opts.Log,
		now:       opts.Now,
		keepalive: cmp.Or(opts.KeepaliveInterval, 30*time.Second),
		boxes:     map[string]*box{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, k := range opts.Keys {
		s.keys = append(s.keys, sha256.Sum256([]byte(k)))
	}
	for name, image := range opts.Templates {
		s.templates[name] = image
	}
	s.control = s.controlMux()
	s.envd = s.envdMux()
	s.interpreter = s.interpreterMux()
	return s
}

// Handler returns next behind the E2B surface: requests for a sandbox's
// daemons (E2b-Sandbox-Id) and for the control plane (/sandboxes,
// /v2/sandboxes) are served here, everything else by next.
func (s *Server) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("E2b-Sandbox-Id")
		control := isControlPath(r.URL.Path)
		if id == "" && !control {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{ResponseWriter: w}
		defer s.recoverPanic(rec, r)
		if r.Body != nil && s.maxBody > 0 {
			// Multipart framing is allowed on top of the largest file.
			r.Body = http.MaxBytesReader(rec, r.Body, s.maxBody+64<<10)
		}
		if id != "" {
			s.serveSandbox(rec, r, id)
			return
		}
		s.control.ServeHTTP(rec, r)
	})
}

// controlPrefixes are the paths of E2B's control plane: sandboxes, and
// what the SDKs reach but Warden does not serve (answered 501).
var controlPrefixes = []string{"/sandboxes", "/v2/sandboxes", "/snapshots", "/templates", "/volumes", "/volumecontent", "/secrets"}

// isControlPath reports whether p is one of E2B's control-plane paths.
func isControlPath(p string) bool {
	for _, prefix := range controlPrefixes {
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return true
		}
	}
	return false
}

// serveSandbox routes a request for a sandbox's daemon, as E2B's proxy
// does: an unknown sandbox or a closed port is a 502.
func (s *Server) serveSandbox(w http.ResponseWriter, r *http.Request, id string) {
	b := s.lookup(id)
	if b == nil {
		writeJSON(w, http.StatusBadGateway, sandboxNotFound{SandboxID: id, Message: "The sandbox was not found", Code: http.StatusBadGateway})
		return
	}
	port := r.Header.Get("E2b-Sandbox-Port")
	var h http.Handler
	auth := false
	switch port {
	case envdPort:
		h, auth = s.envd, b.tokenOK(r.Header.Get("X-Access-Token"))
	case interpreterPort:
		h = s.interpreter
		// The code interpreter's context routes send only the traffic
		// token; /execute sends both.
		auth = b.tokenOK(r.Header.Get("X-Access-Token")) || b.tokenOK(r.Header.Get("E2B-Traffic-Access-Token"))
	default:
		writeJSON(w, http.StatusBadGateway, portClosed{SandboxID: id, Port: port,
			Message: "The sandbox is running but port is not open", Code: http.StatusBadGateway})
		return
	}
	ctx := context.WithValue(r.Context(), boxKey{}, boxRef{b: b, auth: auth})
	h.ServeHTTP(w, r.WithContext(ctx))
}

type sandboxNotFound struct {
	SandboxID string `json:"sandboxId"`
	Message   string `json:"message"`
	Code      int    `json:"code"`
}

type portClosed struct {
	SandboxID string `json:"sandboxId"`
	Message   string `json:"message"`
	Port      string `json:"port"`
	Code      int    `json:"code"`
}

type boxKey struct{}

// boxRef is what serveSandbox hands the daemons: the sandbox, and whether
// the request carried its token.
type boxRef struct {
	b    *box
	auth bool
}

func boxFrom(ctx context.Context) (boxRef, bool) {
	ref, ok := ctx.Value(boxKey{}).(boxRef)
	return ref, ok
}

// authorize checks the control plane's X-API-KEY (or a bearer key, as
// Warden's API takes it) against the keys, every one, in constant time.
func (s *Server) authorize(r *http.Request) error {
	if len(s.keys) == 0 {
		return nil
	}
	key := r.Header.Get("X-API-KEY")
	if key == "" {
		if scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
			key = strings.TrimSpace(token)
		}
	}
	if key == "" {
		return errorf(http.StatusUnauthorized, "missing API key: send it in the X-API-KEY header")
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(key)))
	match := 0
	for i := range s.keys {
		match |= subtle.ConstantTimeCompare(got[:], s.keys[i][:])
	}
	if match != 1 {
		return errorf(http.StatusUnauthorized, "invalid API key")
	}
	return nil
}

// Close stops the lifetime timers. The sandboxes themselves belong to
// Warden, which removes them when it shuts down.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, b := range s.boxes {
		b.timer.Stop()
	}
}

// httpError is an error answer in E2B's shape, {"code", "message"}.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// errorBody is E2B's error object.
type errorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// writeError answers err in E2B's shape with its status: an *httpError's,
// 413 for a body over the cap, else Warden's error class mapped onto the
// status E2B uses; anything unexpected is logged and answered as a 500
// without details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := s.statusOf(r.Context(), err)
	writeJSON(w, status, errorBody{Code: status, Message: msg})
}

func (s *Server) statusOf(ctx context.Context, err error) (int, string) {
	var he *httpError
	var mbe *http.MaxBytesError
	var ae *client.APIError
	switch {
	case errors.As(err, &he):
		return he.status, he.msg
	case errors.Is(err, errPathOutside):
		return http.StatusBadRequest, err.Error()
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
	case errors.As(err, &ae) && ae.StatusCode >= 400 && ae.StatusCode < 500 || errors.Is(err, client.ErrUnavailable):
		status := ae.StatusCode
		if status == http.StatusConflict {
			status = http.StatusBadRequest // E2B has no 409 for what Warden calls a conflict
		}
		return status, ae.Message
	case ctx.Err() != nil:
		return 499, "request cancelled" // the client left: nobody reads this
	}
	s.log.ErrorContext(ctx, "e2b request failed", "err", err)
	return http.StatusInternalServerError, "internal error"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are written
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// recorder remembers whether an answer has begun, for the panic handler.
type recorder struct {
	http.ResponseWriter
	wrote bool
}

func (r *recorder) WriteHeader(code int) {
	if code >= 200 {
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(p)
}

// Flush lets streamed answers reach the client at once.
func (r *recorder) Flush() {
	r.wrote = true
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// recoverPanic answers a panic with a 500 in E2B's shape if nothing was
// written yet, and logs it; a response under way is aborted.
func (s *Server) recoverPanic(w *recorder, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}
	s.log.ErrorContext(r.Context(), "panic serving an e2b request", "path", r.URL.Path,
		"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	if w.wrote {
		panic(http.ErrAbortHandler)
	}
	writeJSON(w, http.StatusInternalServerError, errorBody{Code: http.StatusInternalServerError, Message: "internal error"})
}

// newToken returns a random access token: 32 hex digits.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on Linux
	return hex.EncodeToString(b[:])
}
