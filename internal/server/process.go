package server

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/wire"
)

// maxProcessTimeoutSeconds bounds a background process's timeout: a week.
const maxProcessTimeoutSeconds = 7 * 24 * 3600

func (s *Server) startProcess(w http.ResponseWriter, r *http.Request) error {
	var body api.ProcessStart
	if _, err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	spec := sandbox.ProcessSpec{Argv: body.Command, Command: body.Code, Env: body.EnvironmentVariables,
		Workdir: body.Workdir, Stdin: body.Stdin, Tag: body.Tag}
	if t := body.Timeout; t != nil {
		if math.IsNaN(*t) || !(*t > 0 && *t <= maxProcessTimeoutSeconds) {
			return fmt.Errorf("timeout %g s is outside (0, %d]: %w", *t, maxProcessTimeoutSeconds, sandbox.ErrInvalid)
		}
		spec.Timeout = seconds(*t)
	}
	if err := spec.Validate(); err != nil {
		return err
	}
	stream := wantsEventStream(r)
	spec.Watch = stream
	info, watch, err := s.mgr.StartProcess(r.Context(), sandboxID(r), spec)
	if err != nil {
		return err
	}
	if !stream {
		w.Header().Set("Location", fmt.Sprintf("/sandbox/%s/processes/%d", sandboxID(r), info.PID))
		return writeJSON(w, http.StatusCreated, wire.Process(info))
	}
	s.streamProcess(w, r, info, watch)
	return nil
}

func (s *Server) listProcesses(w http.ResponseWriter, r *http.Request) error {
	list, err := s.mgr.Processes(r.Context(), sandboxID(r))
	if err != nil {
		return err
	}
	out := api.ProcessList{Processes: make([]api.Process, len(list))}
	for i, p := range list {
		out.Processes[i] = wire.Process(p)
	}
	return writeJSON(w, http.StatusOK, out)
}

// process finds the process the route names.
func (s *Server) process(r *http.Request) (int, sandbox.ProcessInfo, error) {
	pid, err := strconv.Atoi(r.PathValue("pid"))
	if err != nil || pid <= 0 {
		return 0, sandbox.ProcessInfo{}, fmt.Errorf("process id %q is not a positive integer: %w", r.PathValue("pid"), sandbox.ErrInvalid)
	}
	list, err := s.mgr.Processes(r.Context(), sandboxID(r))
	if err != nil {
		return 0, sandbox.ProcessInfo{}, err
	}
	for _, p := range slices.Backward(list) {
		if p.PID == pid {
			return pid, p, nil
		}
	}
	return 0, sandbox.ProcessInfo{}, fmt.Errorf("process %d: %w", pid, sandbox.ErrNotFound)
}

func (s *Server) getProcess(w http.ResponseWriter, r *http.Request) error {
	_, p, err := s.process(r)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wire.Process(p))
}

func (s *Server) watchProcess(w http.ResponseWriter, r *http.Request) error {
	pid, p, err := s.process(r)
	if err != nil {
		return err
	}
	from := r.URL.Query().Get("from")
	if from != "" && from != "start" && from != "now" {
		return fmt.Errorf("query parameter from=%q: want start or now: %w", from, sandbox.ErrInvalid)
	}
	watch, err := s.mgr.WatchProcess(r.Context(), sandboxID(r), pid, from == "start")
	if err != nil {
		return err
	}
	s.streamProcess(w, r, p, watch)
	return nil
}

// streamProcess sends a process's events as server-sent events: "start"
// with the process, "stdout" and "stderr" as it writes, "end" with the
// process as it ended; an "error" event if the stream fell behind. A
// client that goes away stops watching; the process runs on.
func (s *Server) streamProcess(w http.ResponseWriter, r *http.Request, p sandbox.ProcessInfo, watch *sandbox.ProcessWatch) {
	defer watch.Close()
	st := &eventStream{w: w, rc: http.NewResponseController(w)}
	start := wire.Process(p)
	st.mu.Lock()
	st.event(api.ProcessStarted, api.ProcessEvent{Type: api.ProcessStarted, Process: &start})
	st.mu.Unlock()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(s.keepalive)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				st.comment("keepalive")
			}
		}
	})
	defer func() { close(stop); wg.Wait() }()
	for {
		select {
		case e, ok := <-watch.Events:
			if !ok {
				if watch.Lagged() {
					st.mu.Lock()
					st.event("error", api.ErrorResponse{Error: api.Error{Code: api.CodeLimit,
						Message: "the stream fell behind the process's output and was dropped; watch it again"}})
					st.mu.Unlock()
				}
				return
			}
			we := wire.ProcessEvent(e)
			st.mu.Lock()
			st.event(we.Type, we)
			st.mu.Unlock()
		case <-r.Context().Done():
			if rec, ok := w.(*recorder); ok {
				rec.clientGone = true
			}
			return
		}
	}
}

func (s *Server) processInput(w http.ResponseWriter, r *http.Request) error {
	pid, _, err := s.process(r)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return fmt.Errorf("input is larger than %d bytes: %w", mbe.Limit, mbe)
		}
		return fmt.Errorf("reading input: %w", err)
	}
	if err := s.mgr.SendInput(r.Context(), sandboxID(r), pid, data); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) closeProcessInput(w http.ResponseWriter, r *http.Request) error {
	pid, _, err := s.process(r)
	if err != nil {
		return err
	}
	if err := s.mgr.CloseInput(r.Context(), sandboxID(r), pid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) signalProcess(w http.ResponseWriter, r *http.Request) error {
	pid, _, err := s.process(r)
	if err != nil {
		return err
	}
	var body api.SignalRequest
	if _, err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	sig, ok := sandbox.Signals[strings.ToUpper(body.Signal)]
	if !ok {
		return fmt.Errorf("signal %q: want one of SIGTERM, SIGKILL, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGSTOP, SIGCONT: %w", body.Signal, sandbox.ErrInvalid)
	}
	return s.sendSignal(w, r, pid, sig)
}

func (s *Server) killProcess(w http.ResponseWriter, r *http.Request) error {
	pid, _, err := s.process(r)
	if err != nil {
		return err
	}
	return s.sendSignal(w, r, pid, syscall.SIGKILL)
}

func (s *Server) sendSignal(w http.ResponseWriter, r *http.Request, pid int, sig syscall.Signal) error {
	if err := s.mgr.SignalProcess(r.Context(), sandboxID(r), pid, sig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
