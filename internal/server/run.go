package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
	"github.com/warden-sandbox/warden/internal/wire"
)

// run answers POST /sandbox/run, a one-shot run: a sandbox made from the
// body's create fields runs its execute fields and is removed before the
// answer, an execute answer (a JSON result, or an event stream). The
// sandbox is checked and counted as a created one is, the execution as an
// executed one is.
func (s *Server) run(w http.ResponseWriter, r *http.Request) error {
	if len(r.URL.RawQuery) > 0 {
		return fmt.Errorf("a run is given as a JSON body, not as query parameters: %w", sandbox.ErrInvalid)
	}
	var body api.RunRequest
	if _, err := decodeJSON(r, &body, false); err != nil {
		return err
	}
	spec, _, specErr := s.specFor(body.CreateRequest())
	req, reqErr := execRequestOf(body.ExecuteRequest())
	if err := errors.Join(specErr, reqErr); err != nil {
		return err
	}
	// The run outlives the write deadline by as long as its execution may.
	bound := req
	if bound.Timeout == 0 {
		bound.Timeout = spec.Timeout
	}
	s.extendWriteDeadline(w, bound)
	if wantsEventStream(r) {
		return s.executeStream(w, r, req, func(ctx context.Context, req sandbox.ExecRequest) (sandbox.ExecResult, error) {
			return s.mgr.RunOneShot(ctx, spec, req)
		})
	}
	// The request's context cancels the run when the client goes.
	res, err := s.mgr.RunOneShot(r.Context(), spec, req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, wire.ExecResult(res))
}
