package load

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// Fault is a fault mode: what the suite breaks while the load runs, and
// what it then expects of the server (docs/load.md).
type Fault string

const (
	// FaultNone runs the mix alone.
	FaultNone Fault = "none"
	// FaultDisconnect cuts one execution in ten of each client
	// mid-execution: an event stream closed after its first output, or a
	// JSON request abandoned once the sandbox reports it running. The
	// execution must stop (the
	// next one in that sandbox starts at once, not when the cut one would
	// have ended), the session must keep its state, and the server must
	// count the request as 499.
	FaultDisconnect Fault = "disconnect"
	// FaultKillAgent SIGKILLs, once every 25 executions of each client,
	// alternately the sandbox's agent (from a shell: kill -9 $PPID) and
	// the Python interpreter (os.kill of itself). An agent's death ends
	// its execution with exit code 137 and a SandboxError; the next
	// execution gets a new agent and a fresh session, with a note saying
	// so, and the workspace is untouched. An interpreter's death ends its
	// execution with 137 and notes; the session continues from the
	// snapshot the notes name.
	FaultKillAgent Fault = "kill-agent"
	// FaultKillServer SIGKILLs the server the suite started, halfway
	// through, and starts it again on the same address. Every process the
	// killed server started must die with it; the new server must answer
	// /health; the old sandboxes are unknown to it (404), and their
	// workspaces and cgroups must be gone once it has started. Clients
	// then carry on in new sandboxes.
	FaultKillServer Fault = "kill-server"
)

// Faults lists the fault modes.
func Faults() []Fault { return []Fault{FaultNone, FaultDisconnect, FaultKillAgent, FaultKillServer} }

// ParseFault returns the fault mode named s ("" is none).
func ParseFault(s string) (Fault, error) {
	if s == "" {
		return FaultNone, nil
	}
	if f := Fault(s); slices.Contains(Faults(), f) {
		return f, nil
	}
	return "", fmt.Errorf("unknown fault mode %q (want one of none, disconnect, kill-agent, kill-server)", s)
}

// How often the fault modes strike, in executions of each client, and
// where in their cycle.
const (
	cutEvery  = 10
	killEvery = 25
	killAt    = 12
	// cutRecovery bounds the execution after a cut: far above a loaded
	// machine's p99, far below the cut execution's own cutSleepSeconds.
	cutRecovery = 30 * time.Second
)

// cutStep is an execution that prints a start line, flushed, then sleeps
// for cutSleepSeconds: Python or shell, read as a stream (cut once the
// line arrives) or as JSON (cut once the sandbox is busy with it).
func cutStep(tag string, variant int) step {
	start := tag + "-start"
	s := step{kind: KindCut, tag: tag, stream: variant%2 == 0}
	if variant/2%2 == 0 {
		s.opts = client.ExecuteOptions{Language: api.Python, Code: fmt.Sprintf("print(%s, flush=True)\nimport time\ntime.sleep(%d)", pyString(start), cutSleepSeconds)}
	} else {
		s.opts = client.ExecuteOptions{Language: api.Shell, Code: fmt.Sprintf("echo %s; sleep %d", start, cutSleepSeconds)}
	}
	return s
}

// markerFile is the workspace file a kill_agent execution writes before
// the kill, and KindMarker reads after it.
func markerFile(tag string) string { return ".load-" + tag }

// killAgentStep writes a marker file, then kills its parent, the agent.
// The execution must end with exit code 137 and a SandboxError naming the
// agent's death (internal/agent).
func killAgentStep(tag string) step {
	return step{kind: KindKillAgent, tag: tag,
		opts: client.ExecuteOptions{Language: api.Shell, Code: fmt.Sprintf("echo %s > %s; kill -9 $PPID; sleep %d", tag, markerFile(tag), cutSleepSeconds)},
		check: func(res api.ExecResult, _ []byte) string {
			if res.ExitCode != 137 || res.Error == nil || res.Error.Name != "SandboxError" || !strings.Contains(res.Error.Value, "agent died") {
				return fmt.Sprintf("exit code %d, error %+v; want 137 and a SandboxError saying the agent died", res.ExitCode, res.Error)
			}
			return ""
		}}
}

// markerStep reads the marker file back: the workspace outlives the agent.
func markerStep(tag, markerTag string) step {
	return step{kind: KindMarker, tag: tag,
		opts: client.ExecuteOptions{Language: api.Shell, Code: "cat " + markerFile(markerTag)},
		check: func(res api.ExecResult, _ []byte) string {
			if res.ExitCode != 0 || res.Stdout != markerTag+"\n" {
				return fmt.Sprintf("the file written before the agent was killed: exit code %d, stdout %.200q, stderr %.200q; want %q",
					res.ExitCode, res.Stdout, res.Stderr, markerTag+"\n")
			}
			return ""
		}}
}

// killWorkerStep increments the session's counter, then kills the Python
// interpreter running it. The execution must end with exit code 137 and a
// note that the interpreter was killed; the increment dies with it.
func killWorkerStep(st *sandboxState, tag string) step {
	code := fmt.Sprintf("_load = globals().get('_load') or {'id': %s, 'n': 0}\n_load['n'] += 1\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)", pyString(st.token))
	return step{kind: KindKillWorker, tag: tag,
		opts: client.ExecuteOptions{Language: api.Python, Code: code},
		check: func(res api.ExecResult, _ []byte) string {
			if res.ExitCode != 137 || !hasNote(res, "killed by signal 9") {
				return fmt.Sprintf("exit code %d, notes %q; want 137 and a note that the interpreter was killed by signal 9", res.ExitCode, res.Notes)
			}
			if _, ok := restoredState(res); !ok {
				return fmt.Sprintf("notes %q say nothing of the session's variables", res.Notes)
			}
			return ""
		}}
}

func hasNote(res api.ExecResult, s string) bool {
	return slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, s) })
}

// The notes internal/agent writes when a killed interpreter is replaced,
// and what they mean for the session's variables.
var restoredAfter = regexp.MustCompile(`variables were restored to their state after execution (\d+)`)

// restore says which state the session continues from after its
// interpreter was replaced.
type restore int

const (
	restoreKept  restore = iota // the variables from before the execution
	restoreOlder                // an older snapshot: later changes are lost
	restoreFresh                // a new interpreter: every variable is lost
)

// restoredState reads a result's notes: ok is false when they say nothing
// about the variables.
func restoredState(res api.ExecResult) (r restore, ok bool) {
	switch {
	case hasNote(res, "variables from before this execution were kept"):
		return restoreKept, true
	case slices.ContainsFunc(res.Notes, restoredAfter.MatchString), hasNote(res, "restored to the state the session started with"):
		return restoreOlder, true
	case hasNote(res, "variables were lost"):
		return restoreFresh, true
	}
	return 0, false
}

// parseState reads the (token, n) a KindState execution returns.
func parseState(ret *string, token string) (int, bool) {
	if ret == nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(*ret, "("+pyRepr(token)+", ")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(rest, ")"))
	return n, err == nil && strings.HasSuffix(rest, ")")
}
