package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Names of the files in a run directory.
const (
	ConsoleLog   = "console.log"
	StdoutLog    = "stdout.log"
	StderrLog    = "stderr.log"
	ResultFile   = "result.json"
	WorkspaceDir = "workspace"
)

// Result is the outcome of one run, as written to result.json. The log
// files are authoritative for the output: Stdout and Stderr hold at most
// the last Options.PreviewLimit bytes of each stream, as text (invalid
// UTF-8 replaced by U+FFFD); StdoutBytes and StderrBytes say how much the
// logs hold.
type Result struct {
	// RunID is run_<script stem>_<8 hex digits>; empty when the job was
	// refused before a run directory was made.
	RunID string `json:"run_id"`
	// Script is the absolute host path of the script.
	Script string `json:"script"`
	// Args are the script's arguments.
	Args []string `json:"args"`
	// Framework is the job's framework, for the record.
	Framework string `json:"framework"`
	// Image is the image the sandbox ran.
	Image string `json:"image"`
	// Provider is the sandbox provider that ran the script: bubblewrap,
	// docker, seatbelt or local; empty when the job was refused before a
	// sandbox was asked for.
	Provider string `json:"provider"`
	// Success: the script ran to the end and exited with 0.
	Success bool `json:"success"`
	// ExitCode is the script's exit code; 124 after a timeout, 137 when
	// killed (out of memory or otherwise), -1 when it did not run or did
	// not finish for another reason (see Error).
	ExitCode int `json:"exit_code"`
	// TimedOut reports that the timeout stopped the script.
	TimedOut bool `json:"timed_out"`
	// OOMKilled reports that the script was killed for exceeding the
	// sandbox's memory limit.
	OOMKilled bool `json:"oom_killed"`
	// Error says why the run did not succeed, "" when it did. After a
	// timeout it is "Timeout after N seconds", as in the seed system.
	Error  string `json:"error"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	// StdoutBytes and StderrBytes are the sizes of stdout.log and
	// stderr.log.
	StdoutBytes int64 `json:"stdout_bytes"`
	StderrBytes int64 `json:"stderr_bytes"`
	// StdoutTruncated and StderrTruncated report that the stream exceeded
	// Options.OutputLimit and the rest was dropped.
	StdoutTruncated bool `json:"stdout_truncated"`
	StderrTruncated bool `json:"stderr_truncated"`
	// LogDir is the absolute path of the run directory.
	LogDir string `json:"log_dir"`
	// StartedAt is when the run started (UTC).
	StartedAt time.Time `json:"started_at"`
	// Duration is the wall time of the whole run, sandbox creation and
	// removal included, in seconds.
	Duration float64 `json:"duration"`
	// Timeout is the run's timeout, in seconds.
	Timeout float64 `json:"timeout"`
	// SandboxID is the sandbox the script ran in.
	SandboxID string `json:"sandbox_id,omitempty"`
}

// recorder writes a run's output to its log files as it arrives. Its
// write method is called by the provider from one goroutine; the mutex
// only guards against a late call racing with close.
type recorder struct {
	limit   int64
	preview int

	mu      sync.Mutex
	console *os.File
	files   [2]*os.File
	n       [2]int64
	trunc   [2]bool
	tail    [2][]byte
	err     error
	closed  bool
}

func streamIndex(s sandbox.Stream) int {
	if s == sandbox.Stderr {
		return 1
	}
	return 0
}

// openRecorder creates the three log files in dir.
func openRecorder(dir string, limit int64, preview int) (*recorder, error) {
	rec := &recorder{limit: limit, preview: preview}
	var err error
	open := func(name string) *os.File {
		if err != nil {
			return nil
		}
		var f *os.File
		f, err = os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		return f
	}
	rec.console = open(ConsoleLog)
	rec.files[0] = open(StdoutLog)
	rec.files[1] = open(StderrLog)
	if err != nil {
		rec.close()
		return nil, fmt.Errorf("creating log files: %w", err)
	}
	return rec, nil
}

// write records one chunk: to the stream's log and to console.log, up to
// the stream's limit. Write errors are kept for close to report; the run
// goes on.
func (r *recorder) write(s sandbox.Stream, p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	i := streamIndex(s)
	if room := r.limit - r.n[i]; int64(len(p)) > room {
		p = p[:max(room, 0)]
		r.trunc[i] = true
	}
	if len(p) == 0 {
		return
	}
	r.n[i] += int64(len(p))
	if _, err := r.files[i].Write(p); err != nil && r.err == nil {
		r.err = err
	}
	if _, err := r.console.Write(p); err != nil && r.err == nil {
		r.err = err
	}
	t := append(r.tail[i], p...)
	if len(t) > 2*r.preview {
		t = append(t[:0:0], t[len(t)-r.preview:]...)
	}
	r.tail[i] = t
}

// previewOf returns the last preview bytes of stream i as valid UTF-8.
func (r *recorder) previewOf(i int) string {
	t := r.tail[i]
	if len(t) > r.preview {
		t = t[len(t)-r.preview:]
	}
	if int64(len(t)) < r.n[i] {
		// Cut: do not start in the middle of a character.
		for k := 0; k < utf8.UTFMax-1 && len(t) > 0 && !utf8.RuneStart(t[0]); k++ {
			t = t[1:]
		}
	}
	return strings.ToValidUTF8(string(t), "\uFFFD")
}

// close closes the files and reports the first write or close error.
func (r *recorder) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return r.err
	}
	r.closed = true
	errs := []error{r.err}
	for _, f := range []*os.File{r.console, r.files[0], r.files[1]} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("writing logs: %w", err)
	}
	return nil
}

// fill copies what the recorder saw into res.
func (r *recorder) fill(res *Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res.Stdout, res.Stderr = r.previewOf(0), r.previewOf(1)
	res.StdoutBytes, res.StderrBytes = r.n[0], r.n[1]
	res.StdoutTruncated = res.StdoutTruncated || r.trunc[0]
	res.StderrTruncated = res.StderrTruncated || r.trunc[1]
}

// writeResult writes res as dir/result.json, atomically: a reader never
// sees half a file.
func writeResult(dir string, res Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+ResultFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", ResultFile, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ResultFile)); err != nil {
		return fmt.Errorf("writing %s: %w", ResultFile, err)
	}
	return nil
}
