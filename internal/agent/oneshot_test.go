package agent

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// fakeRun is the sandbox's side of a one-shot run, played by the test:
// the init's socket and the runner's pipes.
type fakeRun struct {
	conn            net.Conn // the sandbox's end
	outW, errW      *os.File
	o               *OneShot
	killed          chan struct{}
	killOnce        sync.Once
	outR, errR      *os.File
	hostConn, _conn net.Conn
}

func newFakeRun(t *testing.T) *fakeRun {
	t.Helper()
	host, box := net.Pipe()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRun{conn: box, outW: outW, errW: errW, killed: make(chan struct{}), outR: outR, errR: errR}
	f.o = &OneShot{Conn: host, Stdout: outR, Stderr: errR, Workspace: "/workspace", Timeout: 10 * time.Second, OutputLimit: 100,
		Grace: 200 * time.Millisecond,
		Kill: func() {
			f.killOnce.Do(func() {
				close(f.killed)
				box.Close()
				outW.Close()
				errW.Close()
			})
		}}
	t.Cleanup(func() { f.o.Kill(); host.Close(); outR.Close(); errR.Close() })
	return f
}

// request reads the host's request.
func (f *fakeRun) request(t *testing.T) request {
	t.Helper()
	var hdr [headerSize]byte
	var r request
	if _, err := io.ReadFull(f.conn, hdr[:]); err != nil || hdr[0] != kindRequest {
		t.Errorf("reading the request: %v %q", err, hdr[0])
		return r
	}
	p := make([]byte, binary.BigEndian.Uint32(hdr[1:]))
	if _, err := io.ReadFull(f.conn, p); err != nil {
		t.Error(err)
	}
	if err := json.Unmarshal(p, &r); err != nil {
		t.Error(err)
	}
	return r
}

func (f *fakeRun) send(kind byte, v any) {
	p, _ := json.Marshal(v)
	_ = writeFrame(f.conn, kind, p)
}

// end is the runner exiting with status and the init going.
func (f *fakeRun) end(status int) {
	f.outW.Close()
	f.errW.Close()
	f.send(kindRunStatus, map[string]any{"status": status})
	f.conn.Close()
}

func TestOneShotPython(t *testing.T) {
	// Many times: the order of output and rich outputs must not depend on
	// which of the host's readers runs first.
	for i := 0; i < 200 && !t.Failed(); i++ {
		oneShotPython(t)
	}
}

func oneShotPython(t *testing.T) {
	f := newFakeRun(t)
	var got []string
	go func() {
		r := f.request(t)
		if r.Op != "python" || r.Code != "print(1)" || r.Limit != 100 || r.Cwd != "" {
			t.Errorf("request %+v", r)
		}
		f.outW.WriteString("1\n")
		f.errW.WriteString("w\n")
		f.send(kindDisplay, map[string]any{"type": "display", "data": map[string]string{"text/plain": "d"}})
		var ack [headerSize]byte
		if _, err := io.ReadFull(f.conn, ack[:]); err != nil || ack[0] != kindAck {
			t.Errorf("no ack: %v %q", err, ack[0])
		}
		f.errW.WriteString(strings.Repeat("e", 150))
		rv := "2"
		f.send(kindRunResult, wireResult{ExitCode: 0, ReturnValue: &rv, TimedOut: true, Notes: []string{"forged"}})
		f.end(0)
	}()
	res, err := f.o.Run(context.Background(), sandbox.ExecRequest{Language: sandbox.Python, Code: "print(1)",
		OnOutput:  func(s sandbox.Stream, p []byte) { got = append(got, string(s)+":"+string(p)) },
		OnDisplay: func(d sandbox.Output) { got = append(got, "display:"+d.Data["text/plain"]) }})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "1\n" || string(res.Stderr) != "w\n"+strings.Repeat("e", 98) || !res.StderrTruncated || res.ReturnValue == nil || *res.ReturnValue != "2" ||
		len(res.Outputs) != 1 || res.Outputs[0].Data["text/plain"] != "d" {
		t.Errorf("result %+v", res)
	}
	// What only the host may say is not taken from inside.
	if res.TimedOut || len(res.Notes) != 0 {
		t.Errorf("the sandbox's result set timed_out %v notes %q", res.TimedOut, res.Notes)
	}
	// What was printed before the display comes before it (stdout and
	// stderr between themselves in either order), what after, after.
	before := strings.Join(got[:min(2, len(got))], " ")
	if len(got) != 4 || (before != "stdout:1\n stderr:w\n" && before != "stderr:w\n stdout:1\n") ||
		got[2] != "display:d" || got[3] != "stderr:"+strings.Repeat("e", 98) {
		t.Errorf("streamed %q", got)
	}
}

func TestOneShotEnds(t *testing.T) {
	for _, c := range []struct {
		name   string
		lang   sandbox.Language
		play   func(f *fakeRun)
		code   int
		errTxt string // in Error.Value
		stderr string // in Stderr
		note   string
	}{
		{"shell exit", sandbox.Shell, func(f *fakeRun) { f.end(3 << 8) }, 3, "", "", ""},
		{"shell signal", sandbox.Shell, func(f *fakeRun) { f.end(15) }, 143, "", "", ""},
		{"python os._exit", sandbox.Python, func(f *fakeRun) { f.end(5 << 8) }, 5, "", "", "exited with code 5"},
		{"python killed", sandbox.Python, func(f *fakeRun) { f.end(9) }, 137, "", "", "killed by signal 9"},
		{"unknown frame", sandbox.Python, func(f *fakeRun) { _ = writeFrame(f.conn, 'z', nil) }, 137, "broke the protocol", "", ""},
		{"huge frame", sandbox.Python, func(f *fakeRun) {
			var hdr [headerSize]byte
			hdr[0] = kindRunResult
			binary.BigEndian.PutUint32(hdr[1:], 1<<30)
			_, _ = f.conn.Write(hdr[:])
		}, 137, "broke the protocol", "", ""},
		{"garbage result", sandbox.Python, func(f *fakeRun) { _ = writeFrame(f.conn, kindRunResult, []byte("{")) }, 137, "garbage", "", ""},
		{"init dies", sandbox.Shell, func(f *fakeRun) { f.conn.Close() }, 137, "died", "", ""},
		{"python result then end", sandbox.Python, func(f *fakeRun) {
			f.send(kindRunResult, wireResult{ExitCode: 2})
			f.outW.Close()
			f.errW.Close()
			f.conn.Close()
		}, 2, "", "", ""},
		{"python ends, status from the pidfd", sandbox.Python, func(f *fakeRun) {
			f.o.ExitStatus = func() (int, bool) { return 5 << 8, true }
			f.outW.Close()
			f.errW.Close()
			f.conn.Close()
		}, 5, "", "", "exited with code 5"},
		{"python killed, status from the pidfd", sandbox.Python, func(f *fakeRun) {
			f.o.ExitStatus = func() (int, bool) { return 11, true }
			f.conn.Close()
		}, 139, "", "", "killed by signal 11"},
		{"python ended on a signal", sandbox.Python, func(f *fakeRun) { f.end(15) }, 143, "", "", "killed by signal 15"},
		{"pipes held open", sandbox.Shell, func(f *fakeRun) {
			// A process of the sandbox keeps the pipes: the end waits a
			// grace, then kills the sandbox.
			f.send(kindRunStatus, map[string]any{"status": 0})
		}, 0, "", "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFakeRun(t)
			go func() {
				f.request(t)
				c.play(f)
			}()
			req := sandbox.ExecRequest{Language: c.lang, Code: "x"}
			start := time.Now()
			res, err := f.o.Run(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v", d)
			}
			if res.ExitCode != c.code {
				t.Errorf("exit code %d, want %d (%+v)", res.ExitCode, c.code, res.Error)
			}
			if c.errTxt != "" && (res.Error == nil || !strings.Contains(res.Error.Value, c.errTxt)) {
				t.Errorf("error %+v, want %q", res.Error, c.errTxt)
			}
			if c.errTxt == "" && res.Error != nil {
				t.Errorf("error %+v, want none", res.Error)
			}
			if c.note != "" && (len(res.Notes) != 1 || !strings.Contains(res.Notes[0], c.note)) {
				t.Errorf("notes %q, want %q", res.Notes, c.note)
			}
		})
	}
}

func TestOneShotTimeoutAndCancel(t *testing.T) {
	f := newFakeRun(t)
	go func() {
		f.request(t)
		f.outW.WriteString("p\n")
		f.errW.WriteString("x")
	}()
	res, err := f.o.Run(context.Background(), sandbox.ExecRequest{Language: sandbox.Shell, Code: "sleep 9", Timeout: 300 * time.Millisecond})
	if err != nil || !res.TimedOut || res.ExitCode != sandbox.TimeoutExitCode || string(res.Stdout) != "p\n" ||
		string(res.Stderr) != "x\nCommand timed out after 0.3 seconds\n" || res.Error != nil {
		t.Errorf("shell timeout: %v %+v %q", err, res, res.Stderr)
	}
	select {
	case <-f.killed:
	default:
		t.Error("the sandbox was not killed at the timeout")
	}

	f = newFakeRun(t)
	go f.request(t)
	res, err = f.o.Run(context.Background(), sandbox.ExecRequest{Language: sandbox.Python, Code: "while 1: pass", Timeout: 300 * time.Millisecond})
	if err != nil || !res.TimedOut || res.Error == nil || res.Error.Name != "TimeoutError" ||
		string(res.Stderr) != "Execution timed out after 0.3 seconds\n" {
		t.Errorf("python timeout: %v %+v %q", err, res, res.Stderr)
	}

	f = newFakeRun(t)
	go f.request(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	res, err = f.o.Run(ctx, sandbox.ExecRequest{Language: sandbox.Python, Code: "while 1: pass"})
	if err == nil || res.TimedOut || res.Error == nil || res.Error.Name != "Cancelled" {
		t.Errorf("cancel: %v %+v", err, res)
	}

	// Refused before anything is sent.
	f = newFakeRun(t)
	if _, err := f.o.Run(context.Background(), sandbox.ExecRequest{Language: sandbox.Python, Code: "1", Workdir: "x"}); err == nil {
		t.Error("Python with a workdir was not refused")
	}
}

// TestOneShotFlood: output far past the limit, still written while a
// display waits for its acknowledgement (a thread of the code, a child),
// is read to its end and cut at the limit.
func TestOneShotFlood(t *testing.T) {
	f := newFakeRun(t)
	go func() {
		f.request(t)
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			b := []byte(strings.Repeat("x", 1<<16))
			for range 64 { // 4 MiB
				if _, err := f.outW.Write(b); err != nil {
					return
				}
			}
		}()
		f.send(kindDisplay, map[string]any{"type": "display", "data": map[string]string{"text/plain": "d"}})
		var ack [headerSize]byte
		if _, err := io.ReadFull(f.conn, ack[:]); err != nil || ack[0] != kindAck {
			t.Errorf("no ack: %v %q", err, ack[0])
		}
		<-wrote
		f.send(kindRunResult, wireResult{})
		f.end(0)
	}()
	n := 0
	res, err := f.o.Run(context.Background(), sandbox.ExecRequest{Language: sandbox.Python, Code: "x",
		OnOutput: func(s sandbox.Stream, p []byte) { n += len(p) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stdout) != 100 || !res.StdoutTruncated || n != 100 || len(res.Outputs) != 1 || res.ExitCode != 0 || res.Error != nil {
		t.Errorf("stdout %d truncated %v streamed %d outputs %d exit %d %+v", len(res.Stdout), res.StdoutTruncated, n, len(res.Outputs), res.ExitCode, res.Error)
	}
}
