package client

import (
	"cmp"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/warden-sandbox/warden/api"
)

// The error classes of the API's answers. An error returned by a Client
// method matches at most one of them with errors.Is; arguments the client
// refuses before sending anything match ErrInvalid too.
var (
	// ErrInvalid: 400, the request is malformed or asks for something the
	// server's provider cannot enforce.
	ErrInvalid = errors.New("invalid request")
	// ErrUnauthorized: 401, the API key is missing or wrong.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrDenied: 403, a policy refused the request; [APIError] carries the
	// rule and reason.
	ErrDenied = errors.New("denied by policy")
	// ErrNotFound: 404, no such sandbox, file or route.
	ErrNotFound = errors.New("not found")
	// ErrConflict: 409, the request conflicts with the sandbox's state,
	// such as a directory where a file is expected.
	ErrConflict = errors.New("conflict")
	// ErrTooLarge: 413, the request body is larger than the server takes.
	ErrTooLarge = errors.New("request too large")
	// ErrLimit: 429, the server runs as many sandboxes as it may.
	ErrLimit = errors.New("limit reached")
	// ErrUnavailable: 503, sandboxes are disabled, the backend is
	// unreachable, or the server is shutting down.
	ErrUnavailable = errors.New("unavailable")
)

// maxErrorBody bounds how much of an error body is read: enough for any
// error the server writes, little enough that a misbehaving proxy cannot
// make the client buffer a large page.
const maxErrorBody = 64 << 10

// APIError is a non-2xx answer of the server, or an error event of a
// streamed execution. Match its class with errors.Is (see
// [APIError.Unwrap]) and read its fields with errors.As.
type APIError struct {
	// StatusCode is the HTTP status. For an error event in an event stream,
	// whose HTTP status was already 200, it is the status Code stands for.
	StatusCode int
	// Code is the machine-readable code of the body (api.CodeNotFound,
	// ...); empty when the body was not Warden's JSON (a proxy's page).
	Code api.ErrorCode
	// Message is the server's message, or the status text when the body
	// carried none.
	Message string
	// RequestID is the X-Request-ID of the answer, to find it in the
	// server's log.
	RequestID string
	// Rule and Reason are set on 403 answers: the policy rule that refused
	// the request and why.
	Rule, Reason string
}

// Error returns "HTTP <status> <code>: <message>".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(string(e.Code))
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	if e.Rule != "" && !strings.Contains(e.Message, e.Rule) {
		b.WriteString(" (rule ")
		b.WriteString(e.Rule)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the error class of the status: 400 [ErrInvalid], 401
// [ErrUnauthorized], 403 [ErrDenied], 404 [ErrNotFound], 409
// [ErrConflict], 413 [ErrTooLarge], 429 [ErrLimit], 503 [ErrUnavailable],
// and nil for any other status.
func (e *APIError) Unwrap() error {
	switch e.StatusCode {
	case http.StatusBadRequest:
		return ErrInvalid
	case http.StatusUnauthorized:
		return ErrUnauthorized
	case http.StatusForbidden:
		return ErrDenied
	case http.StatusNotFound:
		return ErrNotFound
	case http.StatusConflict:
		return ErrConflict
	case http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case http.StatusTooManyRequests:
		return ErrLimit
	case http.StatusServiceUnavailable:
		return ErrUnavailable
	}
	return nil
}

// errorBody is the error envelope of docs/api.md. Rule and Reason are
// read inside the error object and, failing that, beside it, as proxies
// and older servers put them.
type errorBody struct {
	Error  *api.Error `json:"error"`
	Rule   string     `json:"rule"`
	Reason string     `json:"reason"`
}

// fill copies the envelope into e and reports whether it held an error
// object.
func (b *errorBody) fill(e *APIError) bool {
	if b.Error == nil {
		return false
	}
	e.Code, e.Message = b.Error.Code, b.Error.Message
	e.Rule, e.Reason = cmp.Or(b.Error.Rule, b.Rule), cmp.Or(b.Error.Reason, b.Reason)
	if e.Message == "" {
		e.Message = e.Reason
	}
	return true
}

// readError turns a non-2xx response into an *APIError, reading at most
// maxErrorBody bytes of its body. A body that is not the JSON envelope
// (a proxy's 502 page) still gives an APIError, with the status text as
// message.
func readError(resp *http.Response) *APIError {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get("X-Request-ID")}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // a read error leaves the status
	var env errorBody
	if json.Unmarshal(body, &env) != nil || !env.fill(e) || e.Message == "" {
		e.Message = fallbackMessage(resp, body)
	}
	return e
}

// fallbackMessage describes a response whose body is not Warden's JSON: the
// first line of a short text/plain body (what net/http and most proxies
// write), else the status text; a redirect also names its target.
func fallbackMessage(resp *http.Response, body []byte) string {
	msg := http.StatusText(resp.StatusCode)
	if msg == "" {
		msg = "unexpected status"
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/plain" {
		line, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		line = strings.TrimSpace(line)
		if line != "" && len(line) <= 200 && utf8.ValidString(line) && validHeaderValue(line) {
			msg = line
		}
	}
	if loc := resp.Header.Get("Location"); loc != "" && resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirect to " + loc + "; redirects are not followed)"
	}
	return msg
}

// statusForCode maps the code of an error event back to the status the
// server would have answered with, so that Unwrap gives the same class.
func statusForCode(code api.ErrorCode) int { return code.Status() }
