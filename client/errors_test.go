package client_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/warden-sandbox/warden/client"
)

var classes = []error{
	client.ErrInvalid, client.ErrUnauthorized, client.ErrDenied, client.ErrNotFound, client.ErrConflict,
	client.ErrTooLarge, client.ErrLimit, client.ErrUnavailable,
}

func TestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		status int
		ctype  string
		header map[string]string
		body   string
		class  error // nil: no class
		want   client.APIError
	}{
		{name: "400", status: 400, body: `{"error":{"code":"invalid","message":"decoding body: unknown field \"imgae\""}}`,
			class: client.ErrInvalid, want: client.APIError{Code: "invalid", Message: `decoding body: unknown field "imgae"`}},
		{name: "401", status: 401, header: map[string]string{"WWW-Authenticate": "Bearer"},
			body:  `{"error":{"code":"unauthorized","message":"missing or wrong API key"}}`,
			class: client.ErrUnauthorized, want: client.APIError{Code: "unauthorized", Message: "missing or wrong API key"}},
		{name: "403 rule inside the error object", status: 403,
			body:  `{"error":{"code":"denied","message":"command refused by policy","rule":"rm-root","reason":"deletes /"}}`,
			class: client.ErrDenied, want: client.APIError{Code: "denied", Message: "command refused by policy", Rule: "rm-root", Reason: "deletes /"}},
		{name: "403 rule beside the error object", status: 403,
			body:  `{"error":{"code":"denied","message":""},"rule":"fork-bomb","reason":"spawns without bound"}`,
			class: client.ErrDenied, want: client.APIError{Code: "denied", Message: "spawns without bound", Rule: "fork-bomb", Reason: "spawns without bound"}},
		{name: "404 with request id", status: 404, header: map[string]string{"X-Request-ID": "req-7"},
			body:  `{"error":{"code":"not_found","message":"sandbox sb-1: not found"}}`,
			class: client.ErrNotFound, want: client.APIError{Code: "not_found", Message: "sandbox sb-1: not found", RequestID: "req-7"}},
		{name: "405", status: 405, body: `{"error":{"code":"method_not_allowed","message":"method not allowed"}}`,
			want: client.APIError{Code: "method_not_allowed", Message: "method not allowed"}},
		{name: "409", status: 409, body: `{"error":{"code":"conflict","message":"src is a directory"}}`,
			class: client.ErrConflict, want: client.APIError{Code: "conflict", Message: "src is a directory"}},
		{name: "413", status: 413, body: `{"error":{"code":"too_large","message":"body larger than 1048576 bytes"}}`,
			class: client.ErrTooLarge, want: client.APIError{Code: "too_large", Message: "body larger than 1048576 bytes"}},
		{name: "429", status: 429, body: `{"error":{"code":"limit","message":"10 sandboxes already"}}`,
			class: client.ErrLimit, want: client.APIError{Code: "limit", Message: "10 sandboxes already"}},
		{name: "500", status: 500, body: `{"error":{"code":"internal","message":"internal error","request_id":"req-9"}}`,
			want: client.APIError{Code: "internal", Message: "internal error"}}, // the ID travels in the header only
		{name: "502 HTML from a proxy", status: 502, ctype: "text/html",
			body: "<html><body><h1>502 Bad Gateway</h1></body></html>", want: client.APIError{Message: "Bad Gateway"}},
		{name: "502 text from a proxy", status: 502, ctype: "text/plain; charset=utf-8",
			body: "upstream connect error or disconnect/reset before headers\nmore", want: client.APIError{Message: "upstream connect error or disconnect/reset before headers"}},
		{name: "503", status: 503, body: `{"error":{"code":"unavailable","message":"docker daemon unreachable"}}`,
			class: client.ErrUnavailable, want: client.APIError{Code: "unavailable", Message: "docker daemon unreachable"}},
		{name: "503 disabled", status: 503, body: `{"error":{"code":"disabled","message":"sandboxes are disabled"}}`,
			class: client.ErrUnavailable, want: client.APIError{Code: "disabled", Message: "sandboxes are disabled"}},
		{name: "504 empty body", status: 504, ctype: "text/plain", want: client.APIError{Message: "Gateway Timeout"}},
		{name: "JSON of another shape", status: 422, body: `{"detail":"field required"}`,
			want: client.APIError{Message: "Unprocessable Entity"}},
		{name: "error object with a code only", status: 404, body: `{"error":{"code":"not_found"}}`,
			class: client.ErrNotFound, want: client.APIError{Code: "not_found", Message: "Not Found"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := newClient(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				reply(tt.status, tt.body)(w, r)
			})
			_, err := c.Get(t.Context(), "sb-1")
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("Get() = %v, want an *APIError", err)
			}
			want := tt.want
			want.StatusCode = tt.status
			if *ae != want {
				t.Errorf("Get() = %#v, want %#v", *ae, want)
			}
			for _, class := range classes {
				if got := errors.Is(err, class); got != (class == tt.class) {
					t.Errorf("errors.Is(%v, %v) = %v, want %v", err, class, got, !got)
				}
			}
		})
	}
}

func TestAPIErrorString(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		err  client.APIError
		want string
	}{
		{client.APIError{StatusCode: 404, Code: "not_found", Message: "sandbox sb-1: not found"}, "HTTP 404 not_found: sandbox sb-1: not found"},
		{client.APIError{StatusCode: 502, Message: "Bad Gateway"}, "HTTP 502: Bad Gateway"},
		{client.APIError{StatusCode: 403, Code: "denied", Message: "refused", Rule: "rm-root"}, "HTTP 403 denied: refused (rule rm-root)"},
		{client.APIError{StatusCode: 403, Code: "denied", Message: "rule rm-root: refused", Rule: "rm-root"}, "HTTP 403 denied: rule rm-root: refused"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestRedirectNotFollowed checks that a 3xx is an error: following a 301
// would turn the DELETE into a GET and report success.
func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	c, _ := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	})
	err := c.Delete(t.Context(), "sb-1")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 301 || !strings.Contains(ae.Message, "/elsewhere") {
		t.Errorf("Delete() = %v, want an APIError naming the redirect", err)
	}
	if n.Load() != 1 {
		t.Errorf("server got %d requests, want 1", n.Load())
	}
}

// endless is an error body that starts like Warden's JSON and never ends.
// It counts the bytes read.
type endless struct {
	read   atomic.Int64
	closed atomic.Bool
}

const endlessPrefix = `{"error":{"code":"internal","message":"`

func (e *endless) Read(p []byte) (int, error) {
	off := e.read.Load()
	for i := range p {
		if j := off + int64(i); j < int64(len(endlessPrefix)) {
			p[i] = endlessPrefix[j]
		} else {
			p[i] = 'a'
		}
	}
	e.read.Add(int64(len(p)))
	return len(p), nil
}

func (e *endless) Close() error { e.closed.Store(true); return nil }

func TestErrorBodyBounded(t *testing.T) {
	t.Parallel()
	body := &endless{}
	hc := &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		return &http.Response{
			StatusCode: 500, Header: http.Header{"Content-Type": {"application/json"}}, Body: body, Request: r,
		}, nil
	})}
	c, err := client.New("http://warden.invalid", client.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Status(t.Context())
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Message != "Internal Server Error" {
		t.Errorf("Status() = %v, want an APIError with the status text", err)
	}
	if n := body.read.Load(); n > 64<<10 {
		t.Errorf("client read %d bytes of the error body, want at most 64 KiB", n)
	}
	if !body.closed.Load() {
		t.Error("error body not closed")
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	c, _ := newClient(t, reply(200, `{}`))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Health(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Health() with a cancelled context = %v, want context.Canceled", err)
	}
	down, err := client.New("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = down.Health(t.Context())
	var ae *client.APIError
	if err == nil || errors.As(err, &ae) {
		t.Errorf("Health() of a closed port = %v, want a transport error", err)
	}
}
