package client

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readAll returns the events of in and the error that ended them.
func readAll(r io.Reader, max int) ([]event, error) {
	er := newEventReader(r, max)
	var evs []event
	for {
		ev, err := er.next()
		if err != nil {
			return evs, err
		}
		evs = append(evs, event{ev.typ, []byte(string(ev.data))})
	}
}

func ev(typ, data string) event { return event{typ, []byte(data)} }

func TestEventReader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []event
	}{
		{"LF", "event: stdout\ndata: {\"text\":\"a\"}\n\n", []event{ev("stdout", `{"text":"a"}`)}},
		{"CRLF", "event: stdout\r\ndata: x\r\n\r\nevent: result\r\ndata: y\r\n\r\n", []event{ev("stdout", "x"), ev("result", "y")}},
		{"CR", "event: a\rdata: x\r\rdata: y\r\r", []event{ev("a", "x"), ev("message", "y")}},
		{"mixed endings", "data: 1\r\n\ndata: 2\n\r\ndata: 3\r\r\n", []event{ev("message", "1"), ev("message", "2"), ev("message", "3")}},
		{"multi-line data", "event: result\ndata: {\"a\":\ndata: 1}\n\n", []event{ev("result", "{\"a\":\n1}")}},
		{"comments and keep-alives", ": ping\n\n:\n: another\nevent: stdout\n: inside an event\ndata: x\n\n: ping\n\n", []event{ev("stdout", "x")}},
		{"no space after colon", "event:e\ndata:x\n\n", []event{ev("e", "x")}},
		{"only one space is stripped", "data:  x \n\n", []event{ev("message", " x ")}},
		{"colon in the value", "data: a:b: c\n\n", []event{ev("message", "a:b: c")}},
		{"field without colon", "data\n\n", []event{ev("message", "")}},
		{"empty data line", "data:\ndata:\n\n", []event{ev("message", "\n")}},
		{"event without data is not dispatched and its type is dropped", "event: x\n\ndata: y\n\n", []event{ev("message", "y")}},
		{"id retry and unknown fields are ignored", "id: 7\nretry: 10\nfoo: bar\nevent: e\ndata: x\n\n", []event{ev("e", "x")}},
		{"last event type wins", "event: a\nevent: b\ndata: x\n\n", []event{ev("b", "x")}},
		{"byte order mark", "\uFEFFdata: x\n\n", []event{ev("message", "x")}},
		{"incomplete event at the end is dropped", "data: x\n\ndata: y\n", []event{ev("message", "x")}},
		{"unterminated line at the end is dropped", "data: x\n\ndata: y", []event{ev("message", "x")}},
		{"empty stream", "", nil},
	}
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"halves":   func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
		"data+EOF": func(s string) io.Reader { return iotest.DataErrReader(strings.NewReader(s)) },
	}
	for _, tt := range tests {
		for rname, mk := range readers {
			got, err := readAll(mk(tt.in), 1<<10)
			if !errors.Is(err, io.EOF) {
				t.Errorf("%s, %s: error = %v, want io.EOF", tt.name, rname, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s, %s: events of %q = %q, want %q", tt.name, rname, tt.in, got, tt.want)
			}
		}
	}
}

func TestEventReaderLimits(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"data: " + strings.Repeat("x", 100) + "\n\n",              // one long line
		strings.Repeat("data: "+strings.Repeat("x", 20)+"\n", 10), // many lines, one event
		": " + strings.Repeat("x", 100),                           // a long comment without an end
	} {
		if _, err := readAll(strings.NewReader(in), 64); !errors.Is(err, errEventTooLarge) {
			t.Errorf("reading %.20q... = %v, want errEventTooLarge", in, err)
		}
	}
	// Within the bound: many small events add up to more than the bound.
	in := strings.Repeat("data: "+strings.Repeat("x", 20)+"\n\n", 10)
	if got, err := readAll(strings.NewReader(in), 64); len(got) != 10 || !errors.Is(err, io.EOF) {
		t.Errorf("reading 10 small events = %d events, %v; want 10, EOF", len(got), err)
	}
}

// TestEventReaderCRDoesNotWait checks that an event ended by CR CR is
// delivered at once, without waiting for the byte that may follow a CR.
func TestEventReaderCRDoesNotWait(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = io.WriteString(pw, "data: x\r\r") }()
	done := make(chan event, 1)
	go func() {
		e, _ := newEventReader(pr, 1<<10).next()
		done <- e
	}()
	select {
	case e := <-done:
		if string(e.data) != "x" {
			t.Errorf("event = %q, want data x", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("event ended by CR CR was not delivered before more data came")
	}
}

func FuzzEventReader(f *testing.F) {
	for _, s := range []string{
		"event: stdout\ndata: {\"text\":\"a\"}\n\n", "data: a\r\n\r\n", ": ping\r\r", "data\ndata:\n\n", "\uFEFFevent:x\rdata:y\r\r",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		const max = 256
		evs, err := readAll(strings.NewReader(s), max)
		if !errors.Is(err, io.EOF) && !errors.Is(err, errEventTooLarge) {
			t.Fatalf("error = %v, want EOF or errEventTooLarge", err)
		}
		for _, e := range evs {
			if len(e.data) > max || e.typ == "" || strings.ContainsAny(e.typ, "\r\n") {
				t.Fatalf("bad event %q from %q", e, s)
			}
		}
		// Splitting the input differently must not change the events.
		again, err2 := readAll(iotest.OneByteReader(strings.NewReader(s)), max)
		if !reflect.DeepEqual(evs, again) || !errors.Is(err2, err) {
			t.Fatalf("events of %q depend on how the input is split: %q, %v vs %q, %v", s, evs, err, again, err2)
		}
	})
}
