package server

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// replaceEnvRequest is api.Env with a pointer, to tell a missing set from
// an empty one.
type replaceEnvRequest struct {
	EnvironmentVariables *map[string]string `json:"environment_variables"`
}

func (s *Server) getEnv(w http.ResponseWriter, r *http.Request) error {
	env, err := s.mgr.Env(r.Context(), sandboxID(r))
	if err != nil {
		return err
	}
	return writeEnv(w, env)
}

func (s *Server) replaceEnv(w http.ResponseWriter, r *http.Request) error {
	var req replaceEnvRequest
	if _, err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	if req.EnvironmentVariables == nil {
		return fmt.Errorf("environment_variables is required (an empty object clears the set): %w", sandbox.ErrInvalid)
	}
	set := *req.EnvironmentVariables
	if err := validateEnvNames(slices.Collect(maps.Keys(set))); err != nil {
		return err
	}
	return s.updateEnv(w, r, sandbox.EnvUpdate{Set: set, Replace: true})
}

func (s *Server) patchEnv(w http.ResponseWriter, r *http.Request) error {
	var req api.EnvPatch
	if _, err := decodeJSON(r, &req, false); err != nil {
		return err
	}
	names := append(slices.Collect(maps.Keys(req.Set)), req.Unset...)
	if err := validateEnvNames(names); err != nil {
		return err
	}
	return s.updateEnv(w, r, sandbox.EnvUpdate{Set: req.Set, Unset: req.Unset})
}

func (s *Server) deleteEnv(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := sandbox.ValidateEnvName(name); err != nil {
		return err
	}
	return s.updateEnv(w, r, sandbox.EnvUpdate{Unset: []string{name}})
}

func (s *Server) updateEnv(w http.ResponseWriter, r *http.Request, u sandbox.EnvUpdate) error {
	env, err := s.mgr.UpdateEnv(r.Context(), sandboxID(r), u)
	if err != nil {
		return err
	}
	return writeEnv(w, env)
}

func writeEnv(w http.ResponseWriter, env map[string]string) error {
	if env == nil {
		env = map[string]string{}
	}
	return writeJSON(w, http.StatusOK, api.Env{EnvironmentVariables: env})
}

// validateEnvNames reports every bad name at once, in a stable order.
func validateEnvNames(names []string) error {
	slices.Sort(names)
	var errs []error
	for _, k := range names {
		if err := sandbox.ValidateEnvName(k); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
