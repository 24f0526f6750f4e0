package e2b

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"

	"connectrpc.com/connect"

	"github.com/warden-sandbox/warden/client"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/filesystempb/filesystempbconnect"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/processpb/processpbconnect"
)

// envdMux routes envd's surface (port 49983): the Connect services and the
// REST routes. Everything but /health needs the sandbox's access token.
func (s *Server) envdMux() http.Handler {
	mux := http.NewServeMux()
	opts := []connect.HandlerOption{connect.WithInterceptors(authInterceptor{})}
	if s.maxBody > 0 {
		opts = append(opts, connect.WithReadMaxBytes(int(min(s.maxBody, 1<<30))))
	}
	mux.Handle(filesystempbconnect.NewFilesystemHandler(&filesystemService{s: s}, opts...))
	mux.Handle(processpbconnect.NewProcessHandler(&processService{s: s}, opts...))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if s.alive(w, r) {
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux.Handle("GET /files", s.dataRoute(s.readFile))
	mux.Handle("POST /files", s.dataRoute(s.writeFile))
	mux.Handle("/", s.dataRoute(func(w http.ResponseWriter, r *http.Request, _ *box) error {
		return errorf(http.StatusNotFound, "no route for %s %s on envd", r.Method, r.URL.Path)
	}))
	return mux
}

// dataRoute checks a sandbox route's token, runs h, and answers its error
// in E2B's shape; a sandbox that disappeared is a 502, as from E2B's
// proxy.
func (s *Server) dataRoute(h func(http.ResponseWriter, *http.Request, *box) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ref, _ := boxFrom(r.Context())
		if !ref.auth {
			s.writeError(w, r, errorf(http.StatusUnauthorized, "missing or wrong access token for sandbox %s", ref.b.id))
			return
		}
		err := h(w, r, ref.b)
		if err == nil {
			return
		}
		if errors.Is(err, client.ErrNotFound) && s.gone(r.Context(), ref.b) {
			err = errSandboxGone
		}
		if errors.Is(err, errSandboxGone) {
			writeJSON(w, http.StatusBadGateway, sandboxNotFound{SandboxID: ref.b.id, Message: "The sandbox was not found", Code: http.StatusBadGateway})
			return
		}
		s.writeError(w, r, err)
	})
}

// alive answers the 502 of a sandbox that Warden no longer has (removed
// through Warden's own API, or reaped) and reports whether it is there:
// the SDKs' isRunning asks /health. It needs no token, as in envd.
func (s *Server) alive(w http.ResponseWriter, r *http.Request) bool {
	ref, _ := boxFrom(r.Context())
	if s.gone(r.Context(), ref.b) {
		writeJSON(w, http.StatusBadGateway, sandboxNotFound{SandboxID: ref.b.id, Message: "The sandbox was not found", Code: http.StatusBadGateway})
		return false
	}
	return true
}

// checkUser refuses a user other than E2B's default one: Warden runs
// everything in a sandbox as its one unprivileged user.
func checkUser(u string) error {
	if u == "" || u == "user" {
		return nil
	}
	return errorf(http.StatusBadRequest, "user %q is not available: Warden runs everything in a sandbox as its one user, \"user\"", u)
}

// readFile answers GET /files?path=P: the file's bytes.
func (s *Server) readFile(w http.ResponseWriter, r *http.Request, b *box) error {
	q := r.URL.Query()
	if err := checkUser(q.Get("username")); err != nil {
		return err
	}
	p := q.Get("path")
	if p == "" {
		return errorf(http.StatusBadRequest, "path is required")
	}
	rel, err := b.wardenPath(p)
	if err != nil {
		return err
	}
	if rel == "" {
		return errorf(http.StatusBadRequest, "path %s is a directory", e2bPath(rel))
	}
	body, err := s.c.Download(r.Context(), b.wardenID, rel)
	switch {
	case errors.Is(err, client.ErrConflict):
		return errorf(http.StatusBadRequest, "path %s is a directory", e2bPath(rel))
	case errors.Is(err, client.ErrNotFound) && !s.gone(r.Context(), b):
		return errorf(http.StatusNotFound, "file %s does not exist", e2bPath(rel))
	}
	if err != nil {
		return err
	}
	defer body.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": path.Base(rel)}))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, body) // a failure mid-way can only cut the answer short
	return nil
}

// writtenFile is an element of POST /files's answer.
type writtenFile struct {
	Path string `json:"path"`
	Name string `json:"name"`
	Type string `json:"type"`
}

// writeFile answers POST /files: one file from an octet-stream body (path
// in the query), or one or more from the "file" parts of a multipart form
// (each at its part's file name, or at the query's path).
func (s *Server) writeFile(w http.ResponseWriter, r *http.Request, b *box) error {
	q := r.URL.Query()
	if err := checkUser(q.Get("username")); err != nil {
		return err
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-metadata-") {
			return errorf(http.StatusBadRequest, "file metadata is not supported")
		}
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return errorf(http.StatusBadRequest, "Content-Type %q is not multipart/form-data or application/octet-stream", r.Header.Get("Content-Type"))
	}
	var out []writtenFile
	switch mt {
	case "application/octet-stream":
		if q.Get("path") == "" {
			return errorf(http.StatusBadRequest, "path is required")
		}
		body := io.Reader(r.Body)
		switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
		case "", "identity":
		case "gzip":
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				return errorf(http.StatusBadRequest, "body is not gzip: %v", err)
			}
			defer zr.Close()
			body = zr
		default:
			return errorf(http.StatusBadRequest, "Content-Encoding %q is not supported", enc)
		}
		f, err := s.upload(r.Context(), b, q.Get("path"), body)
		if err != nil {
			return err
		}
		out = append(out, f)
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return errorf(http.StatusBadRequest, "reading the multipart form: %v", err)
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return multipartError(err)
			}
			if part.FormName() != "file" {
				_ = part.Close()
				continue
			}
			// Part.FileName keeps only the base name; the SDKs send the
			// whole path there.
			_, params, _ := mime.ParseMediaType(part.Header.Get("Content-Disposition"))
			target := params["filename"]
			if qp := q.Get("path"); qp != "" {
				if len(out) > 0 {
					return errorf(http.StatusBadRequest, "a path in the query takes one file; send several files without it, each named by its part's file name")
				}
				target = qp
			}
			if target == "" {
				return errorf(http.StatusBadRequest, "a file part has no file name and the query no path")
			}
			f, err := s.upload(r.Context(), b, target, part)
			if err != nil {
				return err
			}
			out = append(out, f)
		}
		if len(out) == 0 {
			return errorf(http.StatusBadRequest, "the form has no \"file\" part")
		}
	default:
		return errorf(http.StatusBadRequest, "Content-Type %q is not multipart/form-data or application/octet-stream", mt)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// multipartError tells a body over the cap from a malformed form.
func multipartError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return err
	}
	return errorf(http.StatusBadRequest, "reading the multipart form: %v", err)
}

// upload writes r to p through Warden's file API.
func (s *Server) upload(ctx context.Context, b *box, p string, r io.Reader) (writtenFile, error) {
	rel, err := b.wardenPath(p)
	if err != nil {
		return writtenFile{}, err
	}
	if rel == "" {
		return writtenFile{}, errorf(http.StatusBadRequest, "path %s is a directory", home)
	}
	tr := &trackingReader{r: r}
	_, err = s.c.Upload(ctx, b.wardenID, rel, tr)
	if tr.err != nil {
		// The body broke off (or grew past the cap): say that, not what
		// Warden made of a short body.
		var mbe *http.MaxBytesError
		if errors.As(tr.err, &mbe) {
			return writtenFile{}, tr.err
		}
		return writtenFile{}, errorf(http.StatusBadRequest, "reading the request body: %v", tr.err)
	}
	if errors.Is(err, client.ErrConflict) {
		return writtenFile{}, errorf(http.StatusBadRequest, "cannot write %s: %s", e2bPath(rel), messageOf(err))
	}
	if err != nil {
		return writtenFile{}, err
	}
	return writtenFile{Path: e2bPath(rel), Name: path.Base(rel), Type: "file"}, nil
}

// trackingReader remembers a read error other than EOF.
type trackingReader struct {
	r   io.Reader
	err error
}

func (t *trackingReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		t.err = err
	}
	return n, err
}

// authInterceptor refuses Connect calls without the sandbox's token.
type authInterceptor struct{}

func (authInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if err := checkAuth(ctx, req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (authInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (authInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := checkAuth(ctx, conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// checkAuth checks the sandbox's token, and the user a call names (the
// SDKs send "Authorization: Basic <user>:" when one is given).
func checkAuth(ctx context.Context, h http.Header) error {
	ref, ok := boxFrom(ctx)
	if !ok || !ref.auth {
		return connect.NewError(connect.CodeUnauthenticated, errors.New("missing or wrong X-Access-Token for this sandbox"))
	}
	if err := checkUser(userOf(h)); err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	return nil
}

// userOf reads the user of an "Authorization: Basic" header, "" if none.
func userOf(h http.Header) string {
	scheme, cred, ok := strings.Cut(h.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return ""
	}
	dec, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "(undecodable)"
	}
	u, _, _ := strings.Cut(string(dec), ":")
	return u
}

// rpcError maps an error of Warden's API onto a Connect error: a sandbox
// that disappeared is unavailable (the SDKs read that as the sandbox
// having timed out), a policy refusal permission_denied, Warden's 429
// resource_exhausted.
func (s *Server) rpcError(ctx context.Context, b *box, err error) error {
	var ce *connect.Error
	var he *httpError
	var ae *client.APIError
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, errSandboxGone):
		return connect.NewError(connect.CodeUnavailable, errSandboxGone)
	case errors.Is(err, client.ErrNotFound):
		if s.gone(ctx, b) {
			return connect.NewError(connect.CodeUnavailable, errSandboxGone)
		}
		return connect.NewError(connect.CodeNotFound, errors.New(messageOf(err)))
	case errors.Is(err, errPathOutside), errors.Is(err, client.ErrInvalid), errors.Is(err, client.ErrConflict):
		return connect.NewError(connect.CodeInvalidArgument, errors.New(messageOf(err)))
	case errors.As(err, &he) && he.status == http.StatusBadRequest:
		return connect.NewError(connect.CodeInvalidArgument, he)
	case errors.Is(err, client.ErrDenied):
		return connect.NewError(connect.CodePermissionDenied, errors.New(messageOf(err)))
	case errors.Is(err, client.ErrLimit), errors.Is(err, client.ErrTooLarge):
		return connect.NewError(connect.CodeResourceExhausted, errors.New(messageOf(err)))
	case errors.Is(err, client.ErrUnavailable):
		return connect.NewError(connect.CodeUnavailable, errors.New(messageOf(err)))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return connect.NewError(connect.CodeCanceled, errors.New("the call was cancelled"))
	case errors.As(err, &ae):
		s.log.ErrorContext(ctx, "e2b call failed in warden's api", "sandbox_id", b.wardenID, "err", err)
	default:
		s.log.ErrorContext(ctx, "e2b call failed", "sandbox_id", b.wardenID, "err", err)
	}
	return connect.NewError(connect.CodeInternal, errors.New("internal error"))
}

// messageOf is the message of Warden's answer, without the client's
// "HTTP 404 not_found:" prefix.
func messageOf(err error) string {
	var ae *client.APIError
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}
