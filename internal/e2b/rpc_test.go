package e2b_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/warden-sandbox/warden/internal/e2b/envdpb/filesystempb"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/filesystempb/filesystempbconnect"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/processpb"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/processpb/processpbconnect"
)

// headerTransport adds the data-plane headers to every request, as the
// SDK's fetch wrapper does.
type headerTransport struct{ header []string }

func (h headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for i := 0; i+1 < len(h.header); i += 2 {
		req.Header.Set(h.header[i], h.header[i+1])
	}
	return http.DefaultTransport.RoundTrip(req)
}

// filesystem returns a Connect client of the sandbox's filesystem service
// speaking JSON, as the SDKs do.
func (st *stack) filesystem(header ...string) filesystempbconnect.FilesystemClient {
	hc := &http.Client{Transport: headerTransport{header: header}}
	return filesystempbconnect.NewFilesystemClient(hc, st.url, connect.WithProtoJSON())
}

func code(err error) connect.Code { return connect.CodeOf(err) }

func TestFilesystem(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	fsc := st.filesystem(sb.headers("49983")...)
	ctx := t.Context()

	mk, err := fsc.MakeDir(ctx, connect.NewRequest(&filesystempb.MakeDirRequest{Path: "/home/user/a/b"}))
	if err != nil {
		t.Fatal(err)
	}
	if e := mk.Msg.GetEntry(); e.GetPath() != "/home/user/a/b" || e.GetName() != "b" || e.GetType() != filesystempb.FileType_FILE_TYPE_DIRECTORY ||
		fs.FileMode(e.GetMode())&fs.ModeDir == 0 || e.GetPermissions() != "drwxr-xr-x" || e.GetModifiedTime() == nil {
		t.Errorf("MakeDir = %v", e)
	}
	for _, p := range []string{"/home/user/a/b", "a", "/home/user", ""} {
		if _, err := fsc.MakeDir(ctx, connect.NewRequest(&filesystempb.MakeDirRequest{Path: p})); code(err) != connect.CodeAlreadyExists {
			t.Errorf("MakeDir(%q) again = %v, want already_exists", p, err)
		}
	}
	ct, body := multipartBody(t, map[string]string{"a/b/f.txt": "12345"}, "a/b/f.txt")
	if r := st.do(t, "POST", "/files", body, append(sb.headers("49983"), "Content-Type", ct)...); r.status != 200 {
		t.Fatalf("upload = %d %s", r.status, r.body)
	}
	if _, err := fsc.MakeDir(ctx, connect.NewRequest(&filesystempb.MakeDirRequest{Path: "a/b/f.txt/sub"})); code(err) != connect.CodeInvalidArgument {
		t.Errorf("MakeDir under a file = %v, want invalid_argument", err)
	}

	st1, err := fsc.Stat(ctx, connect.NewRequest(&filesystempb.StatRequest{Path: "a/b/f.txt"}))
	if e := st1.Msg.GetEntry(); err != nil || e.GetPath() != "/home/user/a/b/f.txt" || e.GetSize() != 5 ||
		e.GetType() != filesystempb.FileType_FILE_TYPE_FILE || e.GetPermissions() != "-rw-r--r--" || e.GetOwner() != "user" {
		t.Errorf("Stat = %v, %v", e, err)
	}
	home, err := fsc.Stat(ctx, connect.NewRequest(&filesystempb.StatRequest{Path: "/home/user"}))
	if err != nil || home.Msg.GetEntry().GetPath() != "/home/user" || home.Msg.GetEntry().GetName() != "user" {
		t.Errorf("Stat home = %v, %v", home, err)
	}

	ls, err := fsc.ListDir(ctx, connect.NewRequest(&filesystempb.ListDirRequest{Path: "/home/user", Depth: 3}))
	var paths []string
	for _, e := range ls.Msg.GetEntries() {
		paths = append(paths, e.GetPath())
	}
	if err != nil || strings.Join(paths, " ") != "/home/user/a /home/user/a/b /home/user/a/b/f.txt" {
		t.Errorf("ListDir depth 3 = %v, %v", paths, err)
	}
	ls, err = fsc.ListDir(ctx, connect.NewRequest(&filesystempb.ListDirRequest{Path: "a"}))
	if err != nil || len(ls.Msg.GetEntries()) != 1 || ls.Msg.GetEntries()[0].GetPath() != "/home/user/a/b" {
		t.Errorf("ListDir depth 0 (one level) = %v, %v", ls, err)
	}

	mv, err := fsc.Move(ctx, connect.NewRequest(&filesystempb.MoveRequest{Source: "a/b/f.txt", Destination: "/home/user/c/g.txt"}))
	if err != nil || mv.Msg.GetEntry().GetPath() != "/home/user/c/g.txt" {
		t.Errorf("Move = %v, %v", mv, err)
	}
	if got := st.execute(t, sb, `{"code":"open('c/g.txt').read()"}`); !strings.Contains(got, `"text":"12345"`) {
		t.Errorf("code reading the moved file: %s", got)
	}
	if _, err := fsc.Remove(ctx, connect.NewRequest(&filesystempb.RemoveRequest{Path: "/home/user/a"})); err != nil {
		t.Errorf("Remove = %v", err)
	}

	for name, err := range map[string]error{
		"Stat of a missing file": func() error {
			_, err := fsc.Stat(ctx, connect.NewRequest(&filesystempb.StatRequest{Path: "a"}))
			return err
		}(),
		"Remove of a missing file": func() error {
			_, err := fsc.Remove(ctx, connect.NewRequest(&filesystempb.RemoveRequest{Path: "nope"}))
			return err
		}(),
		"Move of a missing file": func() error {
			_, err := fsc.Move(ctx, connect.NewRequest(&filesystempb.MoveRequest{Source: "nope", Destination: "x"}))
			return err
		}(),
		"ListDir of a missing directory": func() error {
			_, err := fsc.ListDir(ctx, connect.NewRequest(&filesystempb.ListDirRequest{Path: "nope"}))
			return err
		}(),
	} {
		if code(err) != connect.CodeNotFound || !strings.Contains(err.Error(), "/home/user/") {
			t.Errorf("%s = %v, want not_found naming the path", name, err)
		}
	}
	for name, err := range map[string]error{
		"Stat outside home": func() error {
			_, err := fsc.Stat(ctx, connect.NewRequest(&filesystempb.StatRequest{Path: "/etc/passwd"}))
			return err
		}(),
		"ListDir of a file": func() error {
			_, err := fsc.ListDir(ctx, connect.NewRequest(&filesystempb.ListDirRequest{Path: "c/g.txt"}))
			return err
		}(),
		"ListDir too deep": func() error {
			_, err := fsc.ListDir(ctx, connect.NewRequest(&filesystempb.ListDirRequest{Path: "", Depth: 11}))
			return err
		}(),
		"Remove home": func() error {
			_, err := fsc.Remove(ctx, connect.NewRequest(&filesystempb.RemoveRequest{Path: "/home/user"}))
			return err
		}(),
		"Move into /tmp": func() error {
			_, err := fsc.Move(ctx, connect.NewRequest(&filesystempb.MoveRequest{Source: "c", Destination: "/tmp/c"}))
			return err
		}(),
	} {
		if code(err) != connect.CodeInvalidArgument {
			t.Errorf("%s = %v, want invalid_argument", name, err)
		}
	}
	stream, err := fsc.WatchDir(ctx, connect.NewRequest(&filesystempb.WatchDirRequest{Path: "/home/user"}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	if code(err) != connect.CodeUnimplemented {
		t.Errorf("WatchDir = %v, want unimplemented", err)
	}
	if _, err := fsc.CreateWatcher(ctx, connect.NewRequest(&filesystempb.CreateWatcherRequest{Path: "/home/user"})); code(err) != connect.CodeUnimplemented {
		t.Errorf("CreateWatcher = %v, want unimplemented", err)
	}

	// Tokens and sandboxes.
	noToken := st.filesystem("E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49983")
	if _, err := noToken.Stat(ctx, connect.NewRequest(&filesystempb.StatRequest{Path: "c"})); code(err) != connect.CodeUnauthenticated {
		t.Errorf("Stat without a token = %v, want unauthenticated", err)
	}
	stream, err = noToken.WatchDir(ctx, connect.NewRequest(&filesystempb.WatchDirRequest{Path: "/home/user"}))
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	if code(err) != connect.CodeUnauthenticated {
		t.Errorf("WatchDir without a token = %v, want unauthenticated", err)
	}
	unknown := st.filesystem("E2b-Sandbox-Id", "sb0000000000000000", "E2b-Sandbox-Port", "49983", "X-Access-Token", sb.EnvdAccessToken)
	if _, err := unknown.Stat(ctx, connect.NewRequest(&filesystempb.StatRequest{Path: "c"})); code(err) != connect.CodeUnavailable {
		t.Errorf("Stat in an unknown sandbox = %v, want unavailable (HTTP 502)", err)
	}
	if err := st.warden.Delete(ctx, "sb-"+sb.SandboxID[2:]); err != nil {
		t.Fatal(err)
	}
	if _, err := fsc.Stat(ctx, connect.NewRequest(&filesystempb.StatRequest{Path: "c"})); code(err) != connect.CodeUnavailable {
		t.Errorf("Stat in a removed sandbox = %v, want unavailable", err)
	}
}

// envelope frames one message of a Connect stream.
func envelope(flags byte, msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	b[0] = flags
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// Malformed Connect requests get Connect errors, never a 500 or a hang.
func TestMalformedConnect(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{maxBody: 16 << 10})
	sb := st.create(t, nil)
	h := sb.headers("49983")
	with := func(extra ...string) []string { return append(append([]string{}, h...), extra...) }
	unary := with("Content-Type", "application/json", "Connect-Protocol-Version", "1")
	stream := with("Content-Type", "application/connect+json", "Connect-Protocol-Version", "1")
	for _, tt := range []struct {
		name   string
		path   string
		body   []byte
		header []string
		status int
		code   string
	}{
		{"bad JSON", "/filesystem.Filesystem/Stat", []byte(`{"path":`), unary, 400, "invalid_argument"},
		{"wrong field type", "/filesystem.Filesystem/Stat", []byte(`{"path":7}`), unary, 400, "invalid_argument"},
		{"not an object", "/filesystem.Filesystem/ListDir", []byte(`[1]`), unary, 400, "invalid_argument"},
		{"negative depth", "/filesystem.Filesystem/ListDir", []byte(`{"depth":-1}`), unary, 400, "invalid_argument"},
		{"unknown method", "/filesystem.Filesystem/Chmod", []byte(`{}`), unary, 404, ""},
		{"huge unary body", "/filesystem.Filesystem/Stat", []byte(`{"path":"` + strings.Repeat("x", 200<<10) + `"}`), unary, 0, ""},
		// connect-go classes a broken envelope as a protocol error, code
		// internal, in the stream's end message.
		{"truncated envelope", "/filesystem.Filesystem/WatchDir", []byte{0, 0, 0, 1}, stream, 200, "internal"},
		{"envelope longer than its body", "/filesystem.Filesystem/WatchDir", envelope(0, []byte(`{}`))[:6], stream, 200, "internal"},
		{"bad JSON in an envelope", "/process.Process/Start", envelope(0, []byte(`{"process":`)), stream, 200, "invalid_argument"},
		{"huge envelope", "/process.Process/Start", envelope(0, []byte(`{"tag":"`+strings.Repeat("x", 200<<10)+`"}`)), stream, 200, "resource_exhausted"},
		{"declared huge envelope", "/process.Process/Start", []byte{0, 0x7f, 0xff, 0xff, 0xff}, stream, 200, "resource_exhausted"},
	} {
		r := st.do(t, "POST", tt.path, tt.body, tt.header...)
		if tt.status == 0 {
			// The transport cap cuts a huge body: an error status with
			// a JSON body, whichever layer answers first.
			if r.status < 400 || r.status == 500 {
				t.Errorf("%s = %d %s, want a 4xx", tt.name, r.status, r.body)
			}
			continue
		}
		if r.status != tt.status || tt.code != "" && !bytes.Contains(r.body, []byte(`"code":"`+tt.code+`"`)) {
			t.Errorf("%s = %d %s, want %d with code %s", tt.name, r.status, r.body, tt.status, tt.code)
		}
	}
	// A wrong content type is refused by Connect itself.
	if r := st.do(t, "POST", "/filesystem.Filesystem/Stat", `{}`, with("Content-Type", "text/plain")...); r.status != 415 {
		t.Errorf("text/plain = %d %s, want 415", r.status, r.body)
	}
	// Connect's GET form is not enabled, and a GET is not a call.
	if r := st.do(t, "GET", "/filesystem.Filesystem/Stat", nil, h...); r.status < 400 || r.status == 500 {
		t.Errorf("GET = %d %s", r.status, r.body)
	}
}

// process returns a Connect client of the sandbox's process service.
func (st *stack) process(header ...string) processpbconnect.ProcessClient {
	hc := &http.Client{Transport: headerTransport{header: header}}
	return processpbconnect.NewProcessClient(hc, st.url, connect.WithProtoJSON())
}

// run is what the SDK's commands.run sends: bash -l -c CMD.
func run(cmd string) *processpb.StartRequest {
	return &processpb.StartRequest{Process: &processpb.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-l", "-c", cmd}}, Stdin: proto.Bool(false)}
}

// events collects a process stream: its pid, output and end.
type events struct {
	pid        uint32
	stdout     string
	stderr     string
	end        *processpb.ProcessEvent_EndEvent
	keepalives int
	order      []string
}

func collect(t *testing.T, receive func() bool, msg func() *processpb.ProcessEvent, errf func() error) (events, error) {
	t.Helper()
	var ev events
	for receive() {
		switch e := msg().GetEvent().(type) {
		case *processpb.ProcessEvent_Start:
			ev.pid = e.Start.GetPid()
			ev.order = append(ev.order, "start")
		case *processpb.ProcessEvent_Data:
			ev.stdout += string(e.Data.GetStdout())
			ev.stderr += string(e.Data.GetStderr())
			ev.order = append(ev.order, "data")
		case *processpb.ProcessEvent_End:
			ev.end = e.End
			ev.order = append(ev.order, "end")
		case *processpb.ProcessEvent_Keepalive:
			ev.keepalives++
		}
	}
	return ev, errf()
}

func startAndCollect(t *testing.T, pc processpbconnect.ProcessClient, req *processpb.StartRequest) (events, error) {
	t.Helper()
	s, err := pc.Start(t.Context(), connect.NewRequest(req))
	if err != nil {
		return events{}, err
	}
	defer s.Close()
	return collect(t, s.Receive, func() *processpb.ProcessEvent { return s.Msg().GetEvent() }, s.Err)
}

func TestProcessStart(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, map[string]any{"templateID": "base", "envVars": map[string]string{"FROM_SANDBOX": "s"}})
	pc := st.process(sb.headers("49983")...)

	req := run(`echo "$FROM_SANDBOX $FROM_CALL $(pwd)"; echo oops >&2; exit 3`)
	req.Process.Envs = map[string]string{"FROM_CALL": "c"}
	ev, err := startAndCollect(t, pc, req)
	if err != nil {
		t.Fatal(err)
	}
	if ev.order[0] != "start" || ev.order[len(ev.order)-1] != "end" || ev.pid == 0 ||
		!strings.HasPrefix(ev.stdout, "s c /") || ev.stderr != "oops\n" {
		t.Errorf("events = %+v", ev)
	}
	if e := ev.end; e.GetExitCode() != 3 || !e.GetExited() || e.GetStatus() != "exit status 3" {
		t.Errorf("end = %v", e)
	}
	// cwd under the home directory, as the SDK sends it.
	if _, err := fsMkdir(st, sb, "/home/user/sub"); err != nil {
		t.Fatal(err)
	}
	req = run("basename $(pwd)")
	req.Process.Cwd = proto.String("/home/user/sub")
	if ev, err := startAndCollect(t, pc, req); err != nil || ev.stdout != "sub\n" || ev.end.GetExitCode() != 0 {
		t.Errorf("cwd = %+v, %v", ev, err)
	}
	for name, tt := range map[string]struct {
		req  *processpb.StartRequest
		code connect.Code
	}{
		"no cmd":          {&processpb.StartRequest{Process: &processpb.ProcessConfig{}}, connect.CodeInvalidArgument},
		"missing program": {&processpb.StartRequest{Process: &processpb.ProcessConfig{Cmd: "/nonexistent/prog"}}, connect.CodeInvalidArgument},
		"missing cwd":     {&processpb.StartRequest{Process: &processpb.ProcessConfig{Cmd: "/bin/true", Cwd: proto.String("/home/user/nope")}}, connect.CodeInvalidArgument},
		"pty":             {&processpb.StartRequest{Process: &processpb.ProcessConfig{Cmd: "/bin/bash"}, Pty: &processpb.PTY{}}, connect.CodeUnimplemented},
	} {
		if _, err := startAndCollect(t, pc, tt.req); code(err) != tt.code {
			t.Errorf("%s: %v, want %v", name, err, tt.code)
		}
	}
	// A user other than E2B's default one is refused.
	root := st.process(append(sb.headers("49983"), "Authorization", "Basic cm9vdDo=")...)
	if _, err := startAndCollect(t, root, run("id")); code(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "root") {
		t.Errorf("as root: %v", err)
	}
	user := st.process(append(sb.headers("49983"), "Authorization", "Basic dXNlcjo=")...)
	if ev, err := startAndCollect(t, user, run("echo ok")); err != nil || ev.stdout != "ok\n" {
		t.Errorf("as user: %+v, %v", ev, err)
	}
}

func fsMkdir(st *stack, sb sandbox, p string) (*connect.Response[filesystempb.MakeDirResponse], error) {
	return st.filesystem(sb.headers("49983")...).MakeDir(context.Background(), connect.NewRequest(&filesystempb.MakeDirRequest{Path: p}))
}

// A background command: listed, fed input, followed by a second client,
// killed; its stream ends with the signal.
func TestProcessBackground(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	pc := st.process(sb.headers("49983")...)
	ctx := t.Context()

	req := &processpb.StartRequest{Process: &processpb.ProcessConfig{Cmd: "/bin/bash", Args: []string{"-c", "while read l; do echo got $l; done; echo eof; sleep 60"}},
		Stdin: proto.Bool(true), Tag: proto.String("reader")}
	s, err := pc.Start(ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Receive() {
		t.Fatalf("no start event: %v", s.Err())
	}
	pid := s.Msg().GetEvent().GetStart().GetPid()
	if pid == 0 {
		t.Fatalf("first event %v, want start", s.Msg())
	}
	// The Python session is free meanwhile.
	if got := st.execute(t, sb, `{"code":"6 * 7"}`); !strings.Contains(got, `"text":"42"`) {
		t.Errorf("runCode beside a process: %s", got)
	}
	list, err := pc.List(ctx, connect.NewRequest(&processpb.ListRequest{}))
	if err != nil || len(list.Msg.GetProcesses()) != 1 {
		t.Fatalf("List = %v, %v", list, err)
	}
	if p := list.Msg.GetProcesses()[0]; p.GetPid() != pid || p.GetTag() != "reader" || p.GetConfig().GetCmd() != "/bin/bash" ||
		p.GetConfig().GetCwd() != "/home/user" {
		t.Errorf("listed %v", p)
	}

	// A second client connects by tag and sees what comes next.
	conn, err := pc.Connect(ctx, connect.NewRequest(&processpb.ConnectRequest{Process: &processpb.ProcessSelector{Selector: &processpb.ProcessSelector_Tag{Tag: "reader"}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if !conn.Receive() || conn.Msg().GetEvent().GetStart().GetPid() != pid {
		t.Fatalf("Connect's first event = %v, %v", conn.Msg(), conn.Err())
	}
	byPid := &processpb.ProcessSelector{Selector: &processpb.ProcessSelector_Pid{Pid: pid}}
	if _, err := pc.SendInput(ctx, connect.NewRequest(&processpb.SendInputRequest{Process: byPid,
		Input: &processpb.ProcessInput{Input: &processpb.ProcessInput_Stdin{Stdin: []byte("one\n")}}})); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.CloseStdin(ctx, connect.NewRequest(&processpb.CloseStdinRequest{Process: byPid})); err != nil {
		t.Fatal(err)
	}
	var seen string
	for !strings.Contains(seen, "eof") && s.Receive() {
		seen += string(s.Msg().GetEvent().GetData().GetStdout())
	}
	if seen != "got one\neof\n" {
		t.Errorf("output after input = %q", seen)
	}
	if _, err := pc.SendInput(ctx, connect.NewRequest(&processpb.SendInputRequest{Process: byPid,
		Input: &processpb.ProcessInput{Input: &processpb.ProcessInput_Stdin{Stdin: []byte("two\n")}}})); code(err) != connect.CodeFailedPrecondition {
		t.Errorf("input after close = %v, want failed_precondition", err)
	}
	if _, err := pc.SendSignal(ctx, connect.NewRequest(&processpb.SendSignalRequest{Process: byPid, Signal: processpb.Signal_SIGNAL_SIGKILL})); err != nil {
		t.Fatal(err)
	}
	rest, err := collect(t, s.Receive, func() *processpb.ProcessEvent { return s.Msg().GetEvent() }, s.Err)
	if err != nil || rest.end == nil || rest.end.GetExitCode() != -1 || rest.end.GetExited() || rest.end.GetStatus() != "signal: killed" {
		t.Errorf("end after SIGKILL = %+v, %v", rest.end, err)
	}
	other, err := collect(t, conn.Receive, func() *processpb.ProcessEvent { return conn.Msg().GetEvent() }, conn.Err)
	if err != nil || other.stdout != "got one\neof\n" || other.end.GetStatus() != "signal: killed" {
		t.Errorf("the connected client saw %+v, %v", other, err)
	}
	// Gone now: the SDK's kill returns false on not_found.
	if _, err := pc.SendSignal(ctx, connect.NewRequest(&processpb.SendSignalRequest{Process: byPid, Signal: processpb.Signal_SIGNAL_SIGTERM})); code(err) != connect.CodeNotFound {
		t.Errorf("signal to an ended process = %v, want not_found", err)
	}
	for name, call := range map[string]func() error{
		"signal 0": func() error {
			_, err := pc.SendSignal(ctx, connect.NewRequest(&processpb.SendSignalRequest{Process: byPid}))
			return err
		},
		"no selector": func() error {
			_, err := pc.CloseStdin(ctx, connect.NewRequest(&processpb.CloseStdinRequest{}))
			return err
		},
	} {
		if err := call(); code(err) != connect.CodeInvalidArgument {
			t.Errorf("%s = %v, want invalid_argument", name, err)
		}
	}
	unknown := &processpb.ProcessSelector{Selector: &processpb.ProcessSelector_Pid{Pid: 999999}}
	if _, err := pc.SendSignal(ctx, connect.NewRequest(&processpb.SendSignalRequest{Process: unknown, Signal: processpb.Signal_SIGNAL_SIGKILL})); code(err) != connect.CodeNotFound {
		t.Errorf("signal to an unknown pid = %v, want not_found", err)
	}
	c2, err := pc.Connect(ctx, connect.NewRequest(&processpb.ConnectRequest{Process: unknown}))
	if err == nil {
		for c2.Receive() {
		}
		err = c2.Err()
	}
	if code(err) != connect.CodeNotFound {
		t.Errorf("Connect to an unknown pid = %v, want not_found", err)
	}
	if _, err := pc.Update(ctx, connect.NewRequest(&processpb.UpdateRequest{Process: byPid})); code(err) != connect.CodeUnimplemented {
		t.Errorf("Update = %v, want unimplemented", err)
	}
	if list, err := pc.List(ctx, connect.NewRequest(&processpb.ListRequest{})); err != nil || len(list.Msg.GetProcesses()) != 0 {
		t.Errorf("List after the kill = %v, %v", list, err)
	}
}

// The call's deadline is the command's timeout; a quiet stream gets
// keepalives.
func TestProcessTimeoutAndKeepalive(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	pc := st.process(sb.headers("49983")...)
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	s, err := pc.Start(ctx, connect.NewRequest(run("sleep 30")))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := collect(t, s.Receive, func() *processpb.ProcessEvent { return s.Msg().GetEvent() }, s.Err)
	if code(err) != connect.CodeDeadlineExceeded || ev.pid == 0 || ev.keepalives == 0 {
		t.Errorf("stream = %+v, %v; want a start, keepalives, then deadline_exceeded", ev, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := pc.List(t.Context(), connect.NewRequest(&processpb.ListRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Msg.GetProcesses()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the command outlived its timeout by 10 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Without a deadline a command runs on after its client leaves.
	ctx2, cancel2 := context.WithCancel(t.Context())
	s, err = pc.Start(ctx2, connect.NewRequest(run("sleep 30")))
	if err != nil || !s.Receive() {
		t.Fatalf("start: %v %v", err, s.Err())
	}
	cancel2()
	time.Sleep(300 * time.Millisecond)
	if list, err := pc.List(t.Context(), connect.NewRequest(&processpb.ListRequest{})); err != nil || len(list.Msg.GetProcesses()) != 1 {
		t.Errorf("after the client left: %v, %v; want the command still running", list, err)
	}
}

func TestProcessTokensAndSandboxes(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	ctx := t.Context()
	noToken := st.process("E2b-Sandbox-Id", sb.SandboxID, "E2b-Sandbox-Port", "49983")
	if _, err := startAndCollect(t, noToken, run("true")); code(err) != connect.CodeUnauthenticated {
		t.Errorf("Start without a token = %v", err)
	}
	if _, err := noToken.List(ctx, connect.NewRequest(&processpb.ListRequest{})); code(err) != connect.CodeUnauthenticated {
		t.Errorf("List without a token = %v", err)
	}
	unknown := st.process("E2b-Sandbox-Id", "sb1111111111111111", "E2b-Sandbox-Port", "49983", "X-Access-Token", sb.EnvdAccessToken)
	if _, err := startAndCollect(t, unknown, run("true")); code(err) != connect.CodeUnavailable {
		t.Errorf("Start in an unknown sandbox = %v, want unavailable", err)
	}
	pc := st.process(sb.headers("49983")...)
	if err := st.warden.Delete(ctx, "sb-"+sb.SandboxID[2:]); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.List(ctx, connect.NewRequest(&processpb.ListRequest{})); code(err) != connect.CodeUnavailable {
		t.Errorf("List in a removed sandbox = %v, want unavailable", err)
	}
}
