package e2b

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/client"
)

// interpreterMux routes the code interpreter's surface (port 49999).
func (s *Server) interpreterMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if s.alive(w, r) {
			writeJSON(w, http.StatusOK, "OK")
		}
	})
	mux.Handle("POST /execute", s.dataRoute(s.execute))
	mux.Handle("GET /contexts", s.dataRoute(func(w http.ResponseWriter, r *http.Request, _ *box) error {
		writeJSON(w, http.StatusOK, []codeContext{defaultContext})
		return nil
	}))
	mux.Handle("POST /contexts", s.dataRoute(s.createContext))
	mux.Handle("DELETE /contexts/{id}", s.dataRoute(contextRoute("removed")))
	mux.Handle("POST /contexts/{id}/restart", s.dataRoute(contextRoute("restarted")))
	mux.Handle("/", s.dataRoute(func(w http.ResponseWriter, r *http.Request, _ *box) error {
		return errorf(http.StatusNotFound, "no route for %s %s on the code interpreter", r.Method, r.URL.Path)
	}))
	return mux
}

// codeContext is a code interpreter context: Warden has one per sandbox,
// its Python session.
type codeContext struct {
	ID       string `json:"id"`
	Language string `json:"language"`
	Cwd      string `json:"cwd"`
}

var defaultContext = codeContext{ID: "default", Language: "python", Cwd: home}

const oneSession = "Warden runs one Python session per sandbox, the default context; create another sandbox for a separate session"

// createContext refuses new contexts: a second Python session would need
// a second sandbox, which would not share the files.
func (s *Server) createContext(w http.ResponseWriter, r *http.Request, _ *box) error {
	var req struct {
		Language string `json:"language"`
		Cwd      string `json:"cwd"`
	}
	if err := decodeJSON(r, &req, true); err != nil {
		return err
	}
	return errorf(http.StatusNotImplemented, "%s", oneSession)
}

// contextRoute answers DELETE /contexts/{id} and its restart: unknown
// contexts are 404, the default one cannot be removed or restarted.
func contextRoute(what string) func(http.ResponseWriter, *http.Request, *box) error {
	return func(w http.ResponseWriter, r *http.Request, _ *box) error {
		if id := r.PathValue("id"); id != defaultContext.ID {
			return errorf(http.StatusNotFound, "context %q not found", id)
		}
		return errorf(http.StatusNotImplemented, "the default context cannot be %s: %s", what, oneSession)
	}
}

// executeRequest is the body of POST /execute.
type executeRequest struct {
	Code      *string           `json:"code"`
	ContextID *string           `json:"context_id"`
	Language  *string           `json:"language"`
	EnvVars   map[string]string `json:"env_vars"`
}

// executeTimeout bounds one /execute in Warden: the longest execution it
// allows. The SDK's own timeoutMs (60 s by default) ends the request
// sooner, and with it the execution.
const executeTimeout = time.Hour

// execute runs a cell in the sandbox's Python session (or, for language
// bash, a command) and streams its output as the code interpreter does:
// one JSON object per line.
func (s *Server) execute(w http.ResponseWriter, r *http.Request, b *box) error {
	var req executeRequest
	if err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.Code == nil {
		return errorf(http.StatusBadRequest, "code is required")
	}
	lang := ""
	if req.Language != nil {
		lang = strings.ToLower(*req.Language)
	}
	if req.ContextID != nil && *req.ContextID != "" {
		if lang != "" {
			return errorf(http.StatusBadRequest, "give context_id or language, not both")
		}
		if *req.ContextID != defaultContext.ID {
			return errorf(http.StatusNotFound, "context %q not found", *req.ContextID)
		}
	}
	opts := client.ExecuteOptions{Code: *req.Code, Timeout: executeTimeout}
	switch lang {
	case "", "python", "python3":
		opts.Language = api.Python
		if len(req.EnvVars) > 0 {
			return errorf(http.StatusBadRequest, "env_vars for one Python execution are not supported: set envs when creating the sandbox")
		}
	case "bash", "sh", "shell":
		opts.Language = api.Shell
		if len(req.EnvVars) > 0 {
			// env sets them for this command only, as the request asks.
			opts.Command = []string{"env"}
			for _, k := range slices.Sorted(maps.Keys(req.EnvVars)) {
				opts.Command = append(opts.Command, k+"="+req.EnvVars[k])
			}
			opts.Command = append(opts.Command, "bash", "-c", *req.Code)
			opts.Code = ""
		}
	default:
		return errorf(http.StatusBadRequest, "language %q is not supported: Warden runs python (the default context) and bash", lang)
	}

	st := &ndjson{w: w}
	opts.OnOutput = func(s api.Stream, p []byte) {
		st.begin(b)
		st.line(logLine{Type: string(s), Text: string(p), Timestamp: time.Now().UTC().Format(time.RFC3339Nano)})
	}
	mainSeen := false
	opts.OnDisplay = func(o api.Output) {
		st.begin(b)
		if o.Type == api.OutputResult {
			mainSeen = true
		}
		st.line(resultLine(o.Data, o.Type == api.OutputResult))
	}
	res, err := s.c.Execute(r.Context(), b.wardenID, opts)
	if err != nil && !st.started {
		if r.Context().Err() != nil {
			return nil // the client left; nobody reads an answer
		}
		return err
	}
	st.begin(b)
	if err != nil {
		status, msg := s.statusOf(r.Context(), err)
		if errors.Is(err, client.ErrNotFound) && s.gone(r.Context(), b) {
			msg = "The sandbox was not found"
		}
		st.line(errorLine{Type: "error", Name: "SandboxError", Value: fmt.Sprintf("%d: %s", status, msg)})
		st.line(typeLine{Type: "end_of_execution"})
		return nil
	}
	if !mainSeen && res.ReturnValue != nil {
		st.line(resultLine(map[string]string{"text/plain": *res.ReturnValue}, true))
	}
	// E2B has no word for output cut at a limit: say so on stderr, where
	// an agent reading the logs sees it, rather than let a cut look whole.
	for _, cut := range []struct {
		stream string
		was    bool
	}{{"stdout", res.StdoutTruncated}, {"stderr", res.StderrTruncated}, {"results", res.OutputsTruncated}} {
		if cut.was {
			st.line(logLine{Type: "stderr", Text: fmt.Sprintf("[warden: %s truncated at the sandbox's output limit; the rest was dropped]\n", cut.stream),
				Timestamp: time.Now().UTC().Format(time.RFC3339Nano)})
		}
	}
	switch e := res.Error; {
	case e != nil:
		st.line(errorLine{Type: "error", Name: e.Name, Value: e.Value, Traceback: e.Traceback})
	case res.TimedOut:
		st.line(errorLine{Type: "error", Name: "TimeoutError", Value: "the execution timed out"})
	case res.OOMKilled:
		st.line(errorLine{Type: "error", Name: "MemoryError", Value: "the sandbox ran out of memory and the execution was killed"})
	case res.ExitCode != 0:
		if opts.Language == api.Python {
			st.line(errorLine{Type: "error", Name: "SystemExit", Value: fmt.Sprint(res.ExitCode)})
		} else {
			st.line(errorLine{Type: "error", Name: "CommandExitError", Value: fmt.Sprintf("exit status %d", res.ExitCode)})
		}
	}
	st.line(typeLine{Type: "end_of_execution"})
	return nil
}

// ndjson writes the /execute stream. The status line waits for the first
// output, so that a refused execution still gets its own status.
type ndjson struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	started bool
	failed  bool
}

// begin starts the answer, once: 200, then number_of_executions, which
// the code interpreter sends first.
func (n *ndjson) begin(b *box) {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return
	}
	n.started = true
	n.w.Header().Set("Content-Type", "application/json")
	n.w.Header().Set("Cache-Control", "no-cache")
	n.w.Header().Set("X-Accel-Buffering", "no")
	n.w.WriteHeader(http.StatusOK)
	n.mu.Unlock()
	n.line(countLine{Type: "number_of_executions", ExecutionCount: b.executions.Add(1)})
}

func (n *ndjson) line(v any) {
	line, err := json.Marshal(v)
	if err != nil {
		panic(err) // only our own types are written
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.failed {
		return
	}
	if _, err := n.w.Write(append(line, '\n')); err != nil {
		n.failed = true // the client left; the request's context stops the execution
		return
	}
	if f, ok := n.w.(http.Flusher); ok {
		f.Flush()
	}
}

type typeLine struct {
	Type string `json:"type"`
}

type logLine struct {
	Type      string `json:"type"`
	Text      string `json:"text"`
	Timestamp string `json:"timestamp"`
}

type countLine struct {
	Type           string `json:"type"`
	ExecutionCount int64  `json:"execution_count"`
}

type errorLine struct {
	Type      string `json:"type"`
	Name      string `json:"name"`
	Value     string `json:"value"`
	Traceback string `json:"traceback"`
}

// resultLine maps a MIME bundle onto the code interpreter's result: text,
// html, markdown, svg, png and jpeg (base64), pdf, latex, json (an
// object), javascript; other types go to extra.
func resultLine(data map[string]string, main bool) map[string]any {
	out := map[string]any{"type": "result", "is_main_result": main}
	extra := map[string]any{}
	for mt, v := range data {
		switch mt {
		case "text/plain":
			if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
				v = v[1 : len(v)-1] // a str's repr, as the code interpreter shows it
			}
			out["text"] = v
		case "text/html":
			out["html"] = v
		case "text/markdown":
			out["markdown"] = v
		case "image/svg+xml":
			out["svg"] = v
		case "image/png":
			out["png"] = v
		case "image/jpeg":
			out["jpeg"] = v
		case "application/pdf":
			out["pdf"] = v
		case "text/latex":
			out["latex"] = v
		case "application/javascript":
			out["javascript"] = v
		case "application/json":
			var obj any
			if json.Unmarshal([]byte(v), &obj) == nil {
				out["json"] = obj
			} else {
				extra[mt] = v
			}
		default:
			extra[mt] = v
		}
	}
	if len(extra) > 0 {
		out["extra"] = extra
	}
	return out
}
