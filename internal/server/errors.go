package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/policy"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Error classes of the HTTP layer itself; everything else comes from
// package sandbox.
var (
	errUnauthorized     = errors.New("unauthorized")
	errRouteNotFound    = errors.New("not found")
	errMethodNotAllowed = errors.New("method not allowed")
	// errWorkspaceFull: a file operation ran out of the workspace's
	// space (its quota).
	errWorkspaceFull = errors.New("workspace full")
)

// ruleError is a refusal of the HTTP layer itself (such as a host
// directory outside SANDBOX__ALLOWED_HOST_DIRS) that names its rule and
// reason for the 403 body, as a *policy.PolicyError does with its fields.
type ruleError interface {
	error
	Rule() string
	Reason() string
}

// errorClasses maps error classes to statuses and codes, first match wins.
// It is the only place that decides a status from an error.
var errorClasses = []struct {
	class  error
	status int
	code   api.ErrorCode
}{
	{sandbox.ErrInvalid, http.StatusBadRequest, "invalid"},
	{sandbox.ErrUnsupported, http.StatusBadRequest, "invalid"},
	{errUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{sandbox.ErrDenied, http.StatusForbidden, "denied"},
	{sandbox.ErrNotFound, http.StatusNotFound, "not_found"},
	{errRouteNotFound, http.StatusNotFound, "not_found"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "method_not_allowed"},
	{sandbox.ErrConflict, http.StatusConflict, "conflict"},
	{errWorkspaceFull, http.StatusRequestEntityTooLarge, "too_large"},
	{sandbox.ErrLimit, http.StatusTooManyRequests, "limit"},
	{sandbox.ErrDisabled, http.StatusServiceUnavailable, "unavailable"},
	{sandbox.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	// An execution cancelled while its client is still there: the service
	// is shutting down.
	{context.Canceled, http.StatusServiceUnavailable, "unavailable"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "unavailable"},
}

// statusFor returns the HTTP status and error code of err. Unclassified
// errors are 500 "internal".
func statusFor(err error) (int, api.ErrorCode) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return http.StatusRequestEntityTooLarge, "too_large"
	}
	for _, c := range errorClasses {
		if errors.Is(err, c.class) {
			return c.status, c.code
		}
	}
	return http.StatusInternalServerError, "internal"
}

// bodyFor builds the answer to err, and logs internal errors with their
// detail, which the client never sees.
func (s *Server) bodyFor(r *http.Request, err error) (int, api.Error) {
	status, code := statusFor(err)
	if status == http.StatusInternalServerError {
		s.log.ErrorContext(r.Context(), "internal error", "request_id", requestID(r.Context()),
			"method", r.Method, "path", r.URL.Path, "err", err)
		return status, api.Error{Code: code, Message: "internal error"}
	}
	b := api.Error{Code: code, Message: message(err)}
	if status == http.StatusForbidden {
		if pe, ok := errors.AsType[*policy.PolicyError](err); ok {
			b.Rule, b.Reason = string(pe.Rule), pe.Reason
		} else if re, ok := errors.AsType[ruleError](err); ok {
			b.Rule, b.Reason = re.Rule(), re.Reason()
		}
	}
	return status, b
}

// writeError answers err, unless an answer has begun or the client has
// gone, in which case it only logs.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if rec, ok := w.(*recorder); ok && rec.wrote {
		s.log.WarnContext(r.Context(), "error after the response began", "request_id", requestID(r.Context()), "err", err)
		return
	}
	if r.Context().Err() != nil {
		// The client closed the connection, or only its sending side
		// (shutdown(SHUT_WR)), which net/http cannot tell apart: both
		// cancel the request. A half-closed client still reads, so it
		// learns why instead of getting an empty 200.
		s.log.DebugContext(r.Context(), "client went away", "request_id", requestID(r.Context()), "err", err)
		if rec, ok := w.(*recorder); ok {
			rec.cancelled = true
		}
		s.writeBody(w, http.StatusBadRequest, api.Error{Code: api.CodeInvalid,
			Message: "the request was cancelled: the client closed the connection, or its sending side, before the answer " +
				"(keep the connection open in both directions while waiting for it)"})
		return
	}
	status, body := s.bodyFor(r, err)
	s.writeBody(w, status, body)
}

// retryAfter is the Retry-After, in seconds, of every 503: the backend is
// busy, down or restarting, and may well answer later.
const retryAfter = "5"

func (s *Server) writeBody(w http.ResponseWriter, status int, body api.Error) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, api.ErrorResponse{Error: body})
}

// message renders err for a client. Joined errors (every problem of a
// spec) become one line, separated by "; ".
func message(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		parts := make([]string, 0, len(j.Unwrap()))
		for _, e := range j.Unwrap() {
			parts = append(parts, message(e))
		}
		return strings.Join(parts, "; ")
	}
	return strings.ReplaceAll(err.Error(), "\n", "; ")
}
