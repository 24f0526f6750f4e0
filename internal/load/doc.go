// Package load drives a running Warden service over HTTP with the public
// client, many clients at once, and checks every answer: `warden load`
// (docs/load.md).
//
// Each client creates a sandbox of its own and runs executions in it one
// after the other, as an agent does, in a fixed mix: Python that keeps a
// counter in the session's globals (the value must come back exact),
// shell echoing a unique token (byte for byte), Python exceptions (name,
// value, line, traceback), outputs of exactly the output limit (length
// and SHA-256, as JSON and as an event stream whose chunks must add up to
// the same bytes) and output past it (cut to the limit, marked
// truncated). A wrong answer is an error of class "check", a failed call
// one of class "request"; the report keeps the first few of each.
//
// A soak runs the mix for a duration, each client starting a new sandbox
// every so many executions; in every run the server's /metrics is sampled
// (live heap, RSS, goroutines, threads, descriptors, sandboxes), and the
// report gives the drift between the first and the last quarter of the
// samples, and the server before the run against the server settled after
// it.
//
// A fault mode breaks something while the load runs and checks what the
// server then promises: clients that disconnect mid-execution
// ([FaultDisconnect]), sandbox agents and interpreters killed
// ([FaultKillAgent]), the server itself killed and restarted
// ([FaultKillServer], only for a server the suite started, [StartServer]).
// A broken promise is an error of class "fault".
//
// Latencies are the client's: from sending a request to having decoded the
// whole answer, on a machine that also runs the server and the sandboxes.
package load
