package client

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
)

// maxEventBytes bounds one line and one event's data. The result event
// carries both output streams, JSON-escaped (up to six bytes per byte for
// control characters), so this leaves room for output limits well above
// the 1 MiB default.
const maxEventBytes = 64 << 20

// errEventTooLarge is returned for a line or event beyond the bound.
var errEventTooLarge = fmt.Errorf("event stream: event larger than %d bytes", maxEventBytes)

// event is one dispatched server-sent event.
type event struct {
	typ  string // "message" when the event had no event field
	data []byte // the data lines joined by "\n"
}

// eventReader parses a text/event-stream as the WHATWG HTML standard
// (§9.2.6) describes it: lines end in CRLF, LF or CR; a line starting with
// ":" is a comment (keep-alive); "field: value" lines, with one optional
// space after the colon; a blank line dispatches the event, unless it had
// no data. An event cut off by the end of the stream is not dispatched.
// The "id" and "retry" fields are ignored: the client does not reconnect.
type eventReader struct {
	r       *bufio.Reader
	max     int
	line    []byte
	skipLF  bool // the previous line ended in CR; a following LF is part of it
	started bool // the optional byte order mark has been dealt with
	typ     string
	data    []byte
}

func newEventReader(r io.Reader, max int) *eventReader {
	return &eventReader{r: bufio.NewReaderSize(r, 32<<10), max: max}
}

// next returns the next event. At the end of the stream it returns io.EOF,
// discarding an incomplete event.
func (er *eventReader) next() (event, error) {
	for {
		line, err := er.readLine()
		if err != nil {
			return event{}, err
		}
		if len(line) == 0 {
			if len(er.data) == 0 {
				er.typ = ""
				continue
			}
			ev := event{typ: er.typ, data: er.data[:len(er.data)-1]}
			if ev.typ == "" {
				ev.typ = "message"
			}
			er.typ, er.data = "", nil
			return ev, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		switch string(field) {
		case "event":
			er.typ = string(value)
		case "data":
			if len(er.data)+len(value)+1 > er.max {
				return event{}, errEventTooLarge
			}
			er.data = append(er.data, value...)
			er.data = append(er.data, '\n')
		}
	}
}

// readLine returns the next line without its terminator. The slice is
// valid until the next call.
func (er *eventReader) readLine() ([]byte, error) {
	er.line = er.line[:0]
	if !er.started {
		er.started = true
		if b, err := er.r.Peek(3); err == nil && string(b) == "\uFEFF" {
			_, _ = er.r.Discard(3)
		}
	}
	if er.skipLF {
		// Reading ahead only now, not when the CR arrived, keeps an event
		// that ends in CR CR from waiting for the next byte.
		er.skipLF = false
		b, err := er.r.ReadByte()
		if err != nil {
			return nil, err
		}
		if b != '\n' {
			_ = er.r.UnreadByte()
		}
	}
	for {
		if er.r.Buffered() == 0 {
			if _, err := er.r.Peek(1); err != nil {
				return nil, err // an unterminated last line is dropped with its event
			}
		}
		buf, _ := er.r.Peek(er.r.Buffered())
		i := bytes.IndexAny(buf, "\r\n")
		n := len(buf)
		if i >= 0 {
			n = i
		}
		if len(er.line)+n > er.max {
			return nil, errEventTooLarge
		}
		er.line = append(er.line, buf[:n]...)
		if i < 0 {
			_, _ = er.r.Discard(n)
			continue
		}
		er.skipLF = buf[i] == '\r'
		_, _ = er.r.Discard(i + 1)
		return er.line, nil
	}
}
