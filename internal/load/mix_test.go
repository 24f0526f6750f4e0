package load

import (
	"strings"
	"testing"

	"github.com/warden-sandbox/warden/api"
)

func ptr(s string) *string { return &s }

func ok(stdout string) api.ExecResult { return api.ExecResult{Stdout: stdout, Success: true} }

// Every check accepts the answer the API documents and refuses each way
// of getting it wrong.
func TestChecks(t *testing.T) {
	t.Parallel()
	st := &sandboxState{token: "c1-abcd", count: 4, limit: 64}
	big := pattern("c1-abcd-9", 64)
	trunc := strings.Repeat("c1-abcd-9\n", 7)[:64]
	tb := "Traceback (most recent call last):\n  File \"<cell>\", line 1\nValueError: c1-abcd-9\n"
	pyErr := api.ExecResult{ExitCode: 1, Error: &api.ExecError{Name: "ValueError", Value: "c1-abcd-9", Line: 1, Traceback: tb}, ErrorTraceback: &tb}
	withNotes := func(r api.ExecResult, notes ...string) api.ExecResult { r.Notes = notes; return r }
	state := func(n string) api.ExecResult { r := ok(""); r.ReturnValue = ptr("('c1-abcd', " + n + ")"); return r }
	kill137 := api.ExecResult{ExitCode: 137}

	cases := []struct {
		name     string
		step     step
		res      api.ExecResult
		streamed string
		wantOK   bool
	}{
		{"state exact", stateStep(st, "t", stateWant{n: 5}), state("5"), "", true},
		{"state lost", stateStep(st, "t", stateWant{n: 5}), state("1"), "", false},
		{"state repeated", stateStep(st, "t", stateWant{n: 5}), state("4"), "", false},
		{"state ahead", stateStep(st, "t", stateWant{n: 5}), state("6"), "", false},
		{"state of another sandbox", stateStep(st, "t", stateWant{n: 5}), func() api.ExecResult { r := ok(""); r.ReturnValue = ptr("('c2-ffff', 5)"); return r }(), "", false},
		{"state no value", stateStep(st, "t", stateWant{n: 5}), ok(""), "", false},
		{"state failed", stateStep(st, "t", stateWant{n: 5}), pyErr, "", false},
		{"state loose", stateStep(st, "t", stateWant{n: 5, loose: true}), state("2"), "", true},
		{"state older snapshot noted", stateStep(st, "t", stateWant{n: 5}),
			withNotes(state("3"), "variables were restored to their state after execution 2; changes made by executions 3 to 4 were lost (the session had not been idle for a snapshot)"), "", true},
		{"state fresh noted", stateStep(st, "t", stateWant{n: 5}), withNotes(state("1"), "the interpreter was restarted and its variables were lost"), "", true},
		{"state fresh noted but kept", stateStep(st, "t", stateWant{n: 5}), withNotes(state("5"), "the interpreter was restarted and its variables were lost"), "", false},
		{"state wants note", stateStep(st, "t", stateWant{n: 1, note: "the Python session was restarted"}),
			withNotes(state("1"), "the sandbox agent died during the execution (killed, or out of memory); the Python session was restarted and its variables were lost"), "", true},
		{"state note missing", stateStep(st, "t", stateWant{n: 1, note: "the Python session was restarted"}), state("1"), "", false},

		{"shell", shellStep("c1-abcd-9"), ok("c1-abcd-9\n"), "", true},
		{"shell other bytes", shellStep("c1-abcd-9"), ok("c1-abcd-9"), "", false},
		{"shell stderr", shellStep("c1-abcd-9"), func() api.ExecResult { r := ok("c1-abcd-9\n"); r.Stderr = "x"; return r }(), "", false},
		{"shell failed", shellStep("c1-abcd-9"), api.ExecResult{ExitCode: 2, Stdout: "c1-abcd-9\n"}, "", false},

		{"error", errorStep("c1-abcd-9"), pyErr, "", true},
		{"error succeeded", errorStep("c1-abcd-9"), ok(""), "", false},
		{"error other value", errorStep("c1-abcd-9"), func() api.ExecResult { r := pyErr; e := *r.Error; e.Value = "x"; r.Error = &e; return r }(), "", false},
		{"error no traceback", errorStep("c1-abcd-9"), func() api.ExecResult { r := pyErr; e := *r.Error; e.Traceback = ""; r.Error = &e; return r }(), "", false},

		{"large", largeStep(st, "c1-abcd-9", false), ok(big), "", true},
		{"large short", largeStep(st, "c1-abcd-9", false), ok(big[:63]), "", false},
		{"large altered", largeStep(st, "c1-abcd-9", false), ok(big[:63] + "x"), "", false},
		{"large marked truncated", largeStep(st, "c1-abcd-9", false), func() api.ExecResult { r := ok(big); r.Truncated, r.StdoutTruncated = true, true; return r }(), "", false},
		{"large stream", largeStep(st, "c1-abcd-9", true), ok(big), big, true},
		{"large stream lost a chunk", largeStep(st, "c1-abcd-9", true), ok(big), big[:32], false},

		{"truncated", truncatedStep(st, "c1-abcd-9"), func() api.ExecResult { r := ok(trunc); r.Truncated, r.StdoutTruncated = true, true; return r }(), "", true},
		{"truncated unmarked", truncatedStep(st, "c1-abcd-9"), ok(trunc), "", false},
		{"truncated too long", truncatedStep(st, "c1-abcd-9"), func() api.ExecResult { r := ok(trunc + "x"); r.Truncated, r.StdoutTruncated = true, true; return r }(), "", false},

		{"kill agent", killAgentStep("t"), api.ExecResult{ExitCode: 137, Error: &api.ExecError{Name: "SandboxError", Value: "the sandbox agent died during the execution (killed, or out of memory)"}}, "", true},
		{"kill agent survived", killAgentStep("t"), ok(""), "", false},
		{"kill worker kept", killWorkerStep(st, "t"), withNotes(kill137, "the interpreter was killed by signal 9", "variables from before this execution were kept"), "", true},
		{"kill worker silent", killWorkerStep(st, "t"), withNotes(kill137, "the interpreter was killed by signal 9"), "", false},
		{"kill worker survived", killWorkerStep(st, "t"), ok(""), "", false},
		{"marker", markerStep("t", "c1-abcd-3"), ok("c1-abcd-3\n"), "", true},
		{"marker gone", markerStep("t", "c1-abcd-3"), api.ExecResult{ExitCode: 1, Stderr: "cat: no such file"}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var streamed []byte
			if c.streamed != "" {
				streamed = []byte(c.streamed)
			}
			msg := c.step.check(c.res, streamed)
			if (msg == "") != c.wantOK {
				t.Errorf("check(%+v) = %q, want ok %t", c.res, msg, c.wantOK)
			}
		})
	}
}

// The Python the mix sends is what the checks expect: the counter code
// returns the tuple parseState reads, the pattern code writes pattern().
func TestCode(t *testing.T) {
	t.Parallel()
	st := &sandboxState{token: "c7-0011", count: 0, limit: 1 << 20}
	if s := stateStep(st, "t", stateWant{n: 1}); !strings.Contains(s.opts.Code, `"c7-0011"`) || s.opts.Language != api.Python {
		t.Errorf("state code %q", s.opts.Code)
	}
	if n, ok := parseState(ptr("('c7-0011', 12)"), "c7-0011"); !ok || n != 12 {
		t.Errorf("parseState = %d, %t", n, ok)
	}
	for _, bad := range []string{"('c7-0011', 12", "('c8-0011', 12)", "('c7-0011', x)", "12"} {
		if _, ok := parseState(ptr(bad), "c7-0011"); ok {
			t.Errorf("parseState(%q) accepted", bad)
		}
	}
	if p := pattern("ab", 7); p != "ab|ab|a" {
		t.Errorf("pattern = %q", p)
	}
	if c := patternCode("ab", 7); !strings.Contains(c, `"ab|"`) || !strings.Contains(c, "[:7]") {
		t.Errorf("patternCode = %q", c)
	}
	if s := truncatedStep(st, "t1"); s.opts.Code != "yes t1 | head -c 1114112" {
		t.Errorf("truncated code %q", s.opts.Code)
	}
	// Each client walks the whole schedule, from its own offset.
	for c := range 3 {
		seen := map[string]int{}
		for i := range len(schedule) {
			seen[mixStep(st, c, i, "t").kind]++
		}
		if seen[KindState] != 8 || seen[KindShell] != 5 || seen[KindError] != 2 || seen[KindLarge] != 2 || seen[KindLargeStream] != 2 || seen[KindTruncated] != 1 {
			t.Errorf("client %d's cycle = %v", c, seen)
		}
	}
}

func TestRestoredState(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		notes []string
		want  restore
		ok    bool
	}{
		{[]string{"the interpreter was killed by signal 9", "variables from before this execution were kept"}, restoreKept, true},
		{[]string{"variables were restored to their state after execution 3; changes made by executions 4 to 5 were lost (the session had not been idle for a snapshot)"}, restoreOlder, true},
		{[]string{"variables were restored to the state the session started with; changes made by executions 1 to 4 were lost"}, restoreOlder, true},
		{[]string{"the interpreter was restarted and its variables were lost"}, restoreFresh, true},
		{[]string{"the interpreter was killed by signal 9"}, 0, false},
		{nil, 0, false},
	} {
		got, ok := restoredState(api.ExecResult{Notes: c.notes})
		if got != c.want || ok != c.ok {
			t.Errorf("restoredState(%q) = %v, %t; want %v, %t", c.notes, got, ok, c.want, c.ok)
		}
	}
}

func TestParseFault(t *testing.T) {
	t.Parallel()
	for _, f := range Faults() {
		if got, err := ParseFault(string(f)); err != nil || got != f {
			t.Errorf("ParseFault(%q) = %q, %v", f, got, err)
		}
	}
	if got, err := ParseFault(""); err != nil || got != FaultNone {
		t.Errorf("ParseFault(\"\") = %q, %v", got, err)
	}
	if _, err := ParseFault("kill-all"); err == nil {
		t.Error("ParseFault(kill-all) accepted")
	}
}
