package load

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// Kinds of operations, as reported. The first six make the mix; the
// rest are the fault modes' own executions and the sandbox lifecycle.
const (
	KindState       = "python_state" // a counter in the session's globals, checked exactly
	KindShell       = "shell"        // echo of a unique token, byte for byte
	KindError       = "python_error" // an exception, its name, value, line and traceback
	KindLarge       = "large_output" // exactly the output limit, by length and SHA-256
	KindLargeStream = "large_stream" // the same as an event stream, each chunk checked too
	KindTruncated   = "truncated"    // 64 KiB past the limit: cut to the limit, marked truncated
	KindCut         = "cut"          // disconnect: the client goes away mid-execution
	KindKillAgent   = "kill_agent"   // kill-agent: the sandbox's agent is SIGKILLed
	KindKillWorker  = "kill_worker"  // kill-agent: the Python interpreter is SIGKILLed
	KindMarker      = "workspace"    // kill-agent: a file written before the kill is still there
	KindCreate      = "create"       // POST /sandbox/create
	KindDelete      = "delete"       // DELETE /sandbox/{id}
	KindKillServer  = "kill_server"  // kill-server: from the kill to a healthy new server
	truncatedExtra  = 64 << 10       // how far KindTruncated writes past the limit
	defaultLimit    = 1 << 20        // SANDBOX__MAX_OUTPUT_BYTES' default
	cutSleepSeconds = 50             // how long a cut execution would run if not stopped
)

// schedule is the mix, one cycle of 20 executions: state-keeping Python
// most, then shell, large outputs (a fifth of the cycle, a mebibyte each),
// exceptions and truncation. Each client starts at a different offset, so
// that at any moment the kinds are spread over the clients.
var schedule = [...]string{
	KindState, KindShell, KindState, KindLarge, KindState,
	KindError, KindShell, KindState, KindLargeStream, KindState,
	KindShell, KindTruncated, KindState, KindShell, KindState,
	KindError, KindState, KindLarge, KindShell, KindLargeStream,
}

// mixKinds lists the kinds of the mix in the order reports show them.
func mixKinds() []string {
	return []string{KindState, KindShell, KindError, KindLarge, KindLargeStream, KindTruncated}
}

// step is one execution: what to send, and how to check what comes back.
type step struct {
	kind   string
	tag    string // unique to the execution: sandbox token and sequence number
	opts   client.ExecuteOptions
	stream bool // read as an event stream, checking the chunks
	// check returns why res is wrong, or "". streamed is what the event
	// stream carried on stdout (nil without streaming).
	check func(res api.ExecResult, streamed []byte) string
}

// sandboxState is what a client expects of its sandbox: the session's
// counter and the output limit.
type sandboxState struct {
	token string // unique to the sandbox
	count int    // the value the next KindState must return, minus one
	limit int    // output limit per stream, from the sandbox's spec
}

func pyString(s string) string { return strconv.Quote(s) } // tokens are ASCII: Go's quoting is Python's

// stateWant is what a KindState execution must return.
type stateWant struct {
	n     int    // the counter's value
	loose bool   // anything from 1 to n will do: an older snapshot may have been restored
	note  string // a note the result must carry, if not ""
}

// stateStep increments a counter kept in the session's globals and checks
// it comes back exact: a lost, repeated or foreign session shows at once.
// The token in the tuple proves the session is this sandbox's. When the
// result's notes say the session was restored from an older snapshot or
// started anew, as internal/agent documents, the counter may be lower:
// from 1 to the expected value, or exactly 1.
func stateStep(st *sandboxState, tag string, want stateWant) step {
	code := fmt.Sprintf("_load = globals().get('_load') or {'id': %s, 'n': 0}\n_load['n'] += 1\n(_load['id'], _load['n'])", pyString(st.token))
	return step{kind: KindState, tag: tag,
		opts: client.ExecuteOptions{Language: api.Python, Code: code},
		check: func(res api.ExecResult, _ []byte) string {
			if msg := wantSuccess(res); msg != "" {
				return msg
			}
			if want.note != "" && !hasNote(res, want.note) {
				return fmt.Sprintf("notes %q lack %q", res.Notes, want.note)
			}
			lo, hi := want.n, want.n
			if want.loose {
				lo = 1
			}
			if r, ok := restoredState(res); ok {
				switch r {
				case restoreOlder:
					lo = 1
				case restoreFresh:
					lo, hi = 1, 1
				}
			}
			n, ok := parseState(res.ReturnValue, st.token)
			switch {
			case !ok:
				return fmt.Sprintf("return value %.200q, want %q", deref(res.ReturnValue), stateRepr(st.token, want.n))
			case n < lo || n > hi:
				if lo == hi {
					return fmt.Sprintf("return value %.200q, want %q (notes %q)", *res.ReturnValue, stateRepr(st.token, lo), res.Notes)
				}
				return fmt.Sprintf("return value %.200q, want a count from %d to %d (notes %q)", *res.ReturnValue, lo, hi, res.Notes)
			}
			return ""
		}}
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func stateRepr(token string, n int) string { return fmt.Sprintf("(%s, %d)", pyRepr(token), n) }

// pyRepr is Python's repr of an ASCII string without quotes in it.
func pyRepr(s string) string { return "'" + s + "'" }

// shellStep echoes the tag; stdout must be exactly it and a newline.
func shellStep(tag string) step {
	return step{kind: KindShell, tag: tag,
		opts: client.ExecuteOptions{Language: api.Shell, Code: "echo " + tag},
		check: func(res api.ExecResult, _ []byte) string {
			if msg := wantSuccess(res); msg != "" {
				return msg
			}
			if res.Stdout != tag+"\n" || res.Stderr != "" {
				return fmt.Sprintf("stdout %.200q, stderr %.200q; want %q and nothing", res.Stdout, res.Stderr, tag+"\n")
			}
			return ""
		}}
}

// errorStep raises an exception whose value is the tag.
func errorStep(tag string) step {
	return step{kind: KindError, tag: tag,
		opts: client.ExecuteOptions{Language: api.Python, Code: "raise ValueError(" + pyString(tag) + ")"},
		check: func(res api.ExecResult, _ []byte) string {
			e := res.Error
			switch {
			case res.ExitCode != 1 || res.Success:
				return fmt.Sprintf("exit code %d, success %t; want 1, false", res.ExitCode, res.Success)
			case e == nil:
				return "no error in the result"
			case e.Name != "ValueError" || e.Value != tag || e.Line != 1:
				return fmt.Sprintf("error %s: %.200q on line %d; want ValueError: %q on line 1", e.Name, e.Value, e.Line, tag)
			case !strings.Contains(e.Traceback, "ValueError: "+tag):
				return fmt.Sprintf("traceback %.300q lacks the exception", e.Traceback)
			case res.ErrorTraceback == nil || !strings.Contains(*res.ErrorTraceback, tag):
				return "error_traceback lacks the exception"
			}
			return ""
		}}
}

// pattern is n bytes of "tag|" repeated, cut at n.
func pattern(tag string, n int) string {
	block := tag + "|"
	return strings.Repeat(block, n/len(block)+1)[:n]
}

// patternCode is Python that writes pattern(tag, n) to stdout.
func patternCode(tag string, n int) string {
	return fmt.Sprintf("import sys\n_b = %s\nsys.stdout.write((_b * (%d // len(_b) + 1))[:%d])", pyString(tag+"|"), n, n)
}

// largeStep writes exactly the output limit: all of it must come back,
// unmarked. With stream, it comes as an event stream whose chunks must
// add up to the same bytes.
func largeStep(st *sandboxState, tag string, stream bool) step {
	n := st.limit
	want := pattern(tag, n)
	sum := sha256.Sum256([]byte(want))
	kind := KindLarge
	if stream {
		kind = KindLargeStream
	}
	return step{kind: kind, tag: tag, stream: stream,
		opts: client.ExecuteOptions{Language: api.Python, Code: patternCode(tag, n)},
		check: func(res api.ExecResult, streamed []byte) string {
			if msg := wantSuccess(res); msg != "" {
				return msg
			}
			if res.Truncated || res.StdoutTruncated {
				return fmt.Sprintf("marked truncated at %d bytes, the limit", len(res.Stdout))
			}
			if got := sha256.Sum256([]byte(res.Stdout)); len(res.Stdout) != n || got != sum {
				return fmt.Sprintf("stdout: %d bytes, sha256 %x; want %d bytes, sha256 %x", len(res.Stdout), got[:8], n, sum[:8])
			}
			if stream {
				if got := sha256.Sum256(streamed); len(streamed) != n || got != sum {
					return fmt.Sprintf("streamed stdout: %d bytes, sha256 %x; want %d bytes, sha256 %x", len(streamed), got[:8], n, sum[:8])
				}
			}
			return ""
		}}
}

// truncatedStep writes past the limit from a shell pipeline: stdout must
// be the first limit bytes exactly, marked truncated (docs/api.md).
func truncatedStep(st *sandboxState, tag string) step {
	n := st.limit + truncatedExtra
	// yes prints "tag\n" forever; head stops it.
	block := tag + "\n"
	want := strings.Repeat(block, st.limit/len(block)+1)[:st.limit]
	sum := sha256.Sum256([]byte(want))
	return step{kind: KindTruncated, tag: tag,
		opts: client.ExecuteOptions{Language: api.Shell, Code: fmt.Sprintf("yes %s | head -c %d", tag, n)},
		check: func(res api.ExecResult, _ []byte) string {
			if res.ExitCode != 0 || res.TimedOut {
				return fmt.Sprintf("exit code %d, timed out %t; stderr %.200q", res.ExitCode, res.TimedOut, res.Stderr)
			}
			if !res.Truncated || !res.StdoutTruncated || res.StderrTruncated {
				return fmt.Sprintf("truncated %t, stdout_truncated %t, stderr_truncated %t; want true, true, false", res.Truncated, res.StdoutTruncated, res.StderrTruncated)
			}
			if got := sha256.Sum256([]byte(res.Stdout)); len(res.Stdout) != st.limit || got != sum {
				return fmt.Sprintf("stdout: %d bytes, sha256 %x; want the first %d bytes, sha256 %x", len(res.Stdout), got[:8], st.limit, sum[:8])
			}
			return ""
		}}
}

// wantSuccess is "" for a successful result, else what went wrong.
func wantSuccess(res api.ExecResult) string {
	if res.Success && res.ExitCode == 0 && res.Error == nil && !res.TimedOut && !res.OOMKilled {
		return ""
	}
	msg := fmt.Sprintf("exit code %d, success %t, timed out %t, oom %t", res.ExitCode, res.Success, res.TimedOut, res.OOMKilled)
	if res.Error != nil {
		msg += fmt.Sprintf(", error %s: %.200s", res.Error.Name, res.Error.Value)
	}
	if res.Stderr != "" {
		msg += fmt.Sprintf(", stderr %.200q", res.Stderr)
	}
	return msg
}

// mixStep is the i-th execution of client c's schedule.
func mixStep(st *sandboxState, c, i int, tag string) step {
	switch schedule[(i+c*7)%len(schedule)] {
	case KindShell:
		return shellStep(tag)
	case KindError:
		return errorStep(tag)
	case KindLarge:
		return largeStep(st, tag, false)
	case KindLargeStream:
		return largeStep(st, tag, true)
	case KindTruncated:
		return truncatedStep(st, tag)
	default:
		return stateStep(st, tag, stateWant{n: st.count + 1})
	}
}
