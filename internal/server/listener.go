package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"regexp"
	"strconv"

	"github.com/warden-sandbox/warden/api"
)

// Listener wraps ln so that the errors net/http answers by itself, before
// any handler runs (a malformed request line, headers over the size limit
// (431), an invalid Content-Length or Transfer-Encoding), carry the API's
// JSON error body like every other error, instead of net/http's plain text.
//
// net/http writes those answers in one Write of a fixed shape, a status
// line followed by exactly "Content-Type: text/plain; charset=utf-8" and
// "Connection: close", then closes the connection; a handler's answers
// always carry a Date header, so they never match that shape.
func Listener(ln net.Listener) net.Listener { return jsonErrorListener{ln} }

type jsonErrorListener struct{ net.Listener }

func (l jsonErrorListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &jsonErrorConn{Conn: c}, nil
}

type jsonErrorConn struct {
	net.Conn
}

// plainError matches net/http's own error answers.
var plainError = regexp.MustCompile(`\AHTTP/1\.1 (\d{3}) [^\r\n]*\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n([^\r\n]*)\z`)

func (c *jsonErrorConn) Write(p []byte) (int, error) {
	m := plainError.FindSubmatch(p)
	if m == nil {
		return c.Conn.Write(p)
	}
	status, _ := strconv.Atoi(string(m[1]))
	code := api.CodeInvalid
	switch status {
	case 413, 431:
		code = api.CodeTooLarge
	case 500:
		code = api.CodeInternal
	}
	body, _ := json.Marshal(api.ErrorResponse{Error: api.Error{Code: code, Message: string(bytes.TrimSpace(m[2]))}})
	resp := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nX-Request-ID: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, statusText(p), newRequestID(), len(body), body)
	if _, err := c.Conn.Write([]byte(resp)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// statusText is the reason phrase of a status line as net/http wrote it.
func statusText(line []byte) string {
	line, _, _ = bytes.Cut(line, []byte("\r\n"))
	// "HTTP/1.1 431 Request Header Fields Too Large" or "... 400 Bad Request: reason"
	_, rest, _ := bytes.Cut(line, []byte(" "))
	_, reason, _ := bytes.Cut(rest, []byte(" "))
	reason, _, _ = bytes.Cut(reason, []byte(":"))
	return string(reason)
}
