package e2b_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/warden-sandbox/warden/internal/agent"
	"github.com/warden-sandbox/warden/internal/e2b/envdpb/processpb"
	wsandbox "github.com/warden-sandbox/warden/internal/sandbox"
)

// TestOutputLimit: a cell that prints more than the output limit gets the
// limit's worth of stdout, a notice that the rest was dropped, and its end;
// the session goes on.
func TestOutputLimit(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	body := st.execute(t, sb, `{"code":"import sys\nfor _ in range(48): sys.stdout.write('x' * 65536 + '\\n')\n'done'"}`)
	ls := lines(t, body)
	var stdout int
	for _, l := range ls {
		if l["type"] == "stdout" {
			stdout += len(l["text"].(string))
		}
	}
	if stdout > wsandbox.DefaultOutputLimit+4096 || stdout < wsandbox.DefaultOutputLimit/2 {
		t.Errorf("stdout of a 3 MiB cell: %d bytes, want about the %d-byte limit", stdout, wsandbox.DefaultOutputLimit)
	}
	if !strings.Contains(body, "truncated") {
		t.Errorf("no word that the output was cut (%d lines, types %s)", len(ls), types(ls))
	}
	if !strings.HasSuffix(types(ls), ",end_of_execution") {
		t.Errorf("the cell did not end: %s", types(ls))
	}
	if got := lines(t, st.execute(t, sb, `{"code":"6 * 7"}`)); len(got) < 2 || got[1]["text"] != "42" {
		t.Errorf("the next cell = %v", got)
	}
}

// TestProcessLimit: a sandbox runs at most agent.MaxProcesses commands at
// once; one more is resource_exhausted, and once one ends there is room
// again.
func TestProcessLimit(t *testing.T) {
	t.Parallel()
	st := newStack(t, stackOptions{})
	sb := st.create(t, nil)
	pc := st.process(sb.headers("49983")...)
	var first uint32
	start := func() (uint32, error) {
		s, err := pc.Start(t.Context(), connect.NewRequest(run("sleep 300")))
		if err != nil {
			return 0, err
		}
		defer s.Close()   // the command goes on without its client
		for s.Receive() { // keepalives may come first
			if pid := s.Msg().GetEvent().GetStart().GetPid(); pid != 0 {
				return pid, nil
			}
		}
		return 0, s.Err()
	}
	for i := range agent.MaxProcesses {
		pid, err := start()
		if err != nil {
			t.Fatalf("command %d: %v", i+1, err)
		}
		if i == 0 {
			first = pid
		}
	}
	_, err := start()
	if code(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "64") {
		t.Fatalf("command %d = %v, want resource_exhausted naming the limit", agent.MaxProcesses+1, err)
	}
	byPid := &processpb.ProcessSelector{Selector: &processpb.ProcessSelector_Pid{Pid: first}}
	if _, err := pc.SendSignal(t.Context(), connect.NewRequest(&processpb.SendSignalRequest{Process: byPid, Signal: processpb.Signal_SIGNAL_SIGKILL})); err != nil {
		t.Fatal(err)
	}
	// The kill lands asynchronously: wait for the end to be seen.
	for i := 0; ; i++ {
		_, err = start()
		if err == nil || code(err) != connect.CodeResourceExhausted || i == 50 {
			break
		}
		waitABit()
	}
	if err != nil {
		t.Errorf("a command after one ended = %v", err)
	}
}

func waitABit() { time.Sleep(100 * time.Millisecond) }
