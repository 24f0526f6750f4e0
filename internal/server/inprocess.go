package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// inProcessKey marks a request made through [Server.InProcess]. Only this
// package can put it in a context, so no network request can carry it.
type inProcessKey struct{}

// InProcess returns a transport that hands requests straight to the
// server's handler, without a network: for surfaces built in this process
// on top of the API (the MCP server of `warden serve` and `warden mcp`),
// which go through the same routes, checks and limits as any client.
//
// Requests through it need no bearer key: the surface that makes them has
// authenticated its own caller already (the /mcp route is behind the
// keys). Cancelling a request's context cancels the handler, as a client
// hanging up does; the response body streams as the handler writes.
func (s *Server) InProcess() http.RoundTripper { return inProcessTransport{s} }

type inProcessTransport struct{ s *Server }

func (t inProcessTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := context.WithValue(req.Context(), inProcessKey{}, true)
	r := req.Clone(ctx)
	if r.Body == nil {
		r.Body = http.NoBody
	}
	r.RequestURI = r.URL.RequestURI()
	r.RemoteAddr = "in-process"
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	pr, pw := io.Pipe()
	w := &pipeWriter{header: http.Header{}, body: pw, ready: make(chan struct{})}
	go func() {
		defer func() {
			if v := recover(); v != nil {
				// Server.ServeHTTP answers panics itself; what reaches here
				// is http.ErrAbortHandler, a response that must look broken.
				pw.CloseWithError(fmt.Errorf("handler aborted the response: %v", v))
				w.start(http.StatusInternalServerError)
				return
			}
			w.start(http.StatusOK)
			pw.Close()
		}()
		t.s.ServeHTTP(w, r)
	}()
	select {
	case <-w.ready:
	case <-ctx.Done():
		pr.CloseWithError(ctx.Err())
		return nil, ctx.Err()
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", w.status, http.StatusText(w.status)),
		StatusCode:    w.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.sent,
		Body:          pr,
		ContentLength: -1,
		Request:       req,
	}, nil
}

// isInProcess reports whether r came through InProcess.
func isInProcess(r *http.Request) bool {
	v, _ := r.Context().Value(inProcessKey{}).(bool)
	return v
}

// pipeWriter is the ResponseWriter of an in-process request: the status
// and headers are handed over at the first write, the body streams
// through a pipe.
type pipeWriter struct {
	header http.Header
	body   *io.PipeWriter

	once   sync.Once
	ready  chan struct{}
	status int
	sent   http.Header
}

func (w *pipeWriter) Header() http.Header { return w.header }

func (w *pipeWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 {
		return // informational: nothing to hand over
	}
	w.start(code)
}

func (w *pipeWriter) start(code int) {
	w.once.Do(func() {
		w.status = code
		w.sent = w.header.Clone()
		close(w.ready)
	})
}

func (w *pipeWriter) Write(p []byte) (int, error) {
	w.start(http.StatusOK)
	n, err := w.body.Write(p)
	if errors.Is(err, io.ErrClosedPipe) {
		err = http.ErrHandlerTimeout // the reader went away, as a closed connection would
	}
	return n, err
}

// Flush implements http.Flusher: writes reach the reader at once anyway.
func (w *pipeWriter) Flush() { w.start(http.StatusOK) }
