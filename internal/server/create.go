package server

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/warden-sandbox/warden/api"
	"github.com/warden-sandbox/warden/internal/config"
	"github.com/warden-sandbox/warden/internal/sandbox"
)

// Bounds of the durations a request may ask for, in seconds.
const (
	maxTimeoutSeconds     = 3600
	maxIdleTimeoutSeconds = 7 * 24 * 3600
)

func (s *Server) createSandbox(w http.ResponseWriter, r *http.Request) error {
	req, err := parseCreate(r)
	if err != nil {
		return err
	}
	spec, idle, err := s.specFor(req)
	if err != nil {
		return err
	}
	info, err := s.mgr.Create(r.Context(), spec, idle)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/sandbox/"+string(info.ID))
	return writeJSON(w, http.StatusCreated, sandboxOf(info))
}

// parseCreate reads a create request from the JSON body or, as the seed's
// API took it, from the query string; not from both.
func parseCreate(r *http.Request) (api.CreateRequest, error) {
	var req api.CreateRequest
	found, err := decodeJSON(r, &req, true)
	if err != nil {
		return req, err
	}
	if len(r.URL.RawQuery) == 0 {
		return req, nil
	}
	if found {
		return req, fmt.Errorf("settings are given both as query parameters and as a JSON body; use one: %w", sandbox.ErrInvalid)
	}
	return parseCreateQuery(r.URL.Query())
}

// parseCreateQuery reads the query form: the body's names as parameters,
// lists as repeated parameters, environment variables as NAME=value.
func parseCreateQuery(q url.Values) (api.CreateRequest, error) {
	var req api.CreateRequest
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, sandbox.ErrInvalid)...))
	}
	float := func(name, v string) *float64 {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			bad("query parameter %s=%q is not a number", name, v)
			return nil
		}
		return &f
	}
	for _, name := range slices.Sorted(maps.Keys(q)) {
		vals := q[name]
		switch name {
		case "environment_variables":
			req.EnvironmentVariables = map[string]string{}
			for _, kv := range vals {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					bad("query parameter environment_variables wants NAME=value, got a value without '='")
					continue
				}
				req.EnvironmentVariables[k] = v
			}
			continue
		case "additional_read_dirs":
			req.AdditionalReadDirs = vals
			continue
		case "additional_write_dirs":
			req.AdditionalWriteDirs = vals
			continue
		}
		if len(vals) != 1 {
			bad("query parameter %s is given %d times", name, len(vals))
			continue
		}
		v := vals[0]
		switch name {
		case "image":
			req.Image = &v
		case "memory_limit":
			m := api.ByteSize(v)
			req.MemoryLimit = &m
		case "cpu_limit":
			req.CPULimit = float(name, v)
		case "pids_limit":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				bad("query parameter pids_limit=%q is not an integer", v)
				continue
			}
			req.PidsLimit = &n
		case "timeout":
			req.Timeout = float(name, v)
		case "idle_timeout":
			req.IdleTimeout = float(name, v)
		case "enable_network":
			b, err := strconv.ParseBool(v)
			if err != nil {
				bad("query parameter enable_network=%q is not a boolean", v)
				continue
			}
			req.EnableNetwork = &b
		case "workspace_path":
			req.WorkspacePath = &v
		case "workspace_mount_path":
			req.WorkspaceMountPath = &v
		case "workspace_size":
			m := api.ByteSize(v)
			req.WorkspaceSize = &m
		default:
			bad("unknown query parameter %q", name)
		}
	}
	return req, errors.Join(errs...)
}

// specFor maps a request onto a copy of the configured defaults and checks
// the result, reporting every problem at once. It refuses settings the
// provider cannot enforce rather than silently dropping them.
func (s *Server) specFor(req api.CreateRequest) (sandbox.Spec, time.Duration, error) {
	spec := s.opts.Defaults
	spec.Env = maps.Clone(spec.Env)
	spec.Labels = maps.Clone(spec.Labels)
	spec.Mounts = slices.Clone(spec.Mounts)
	idle := s.opts.IdleTimeout

	var caps sandbox.Capabilities
	p := s.mgr.Provider()
	if p != nil {
		caps = p.Capabilities()
	}
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format+": %w", append(args, sandbox.ErrInvalid)...))
	}
	// unsupported refuses a setting the provider does not enforce. With no
	// provider, Create answers 503 instead.
	unsupported := func(name string, ok bool) {
		if p != nil && !ok {
			bad("%s: the %s provider cannot enforce it", name, p.Name())
		}
	}

	if req.Image != nil {
		if *req.Image == "" {
			bad("image is empty")
		}
		if *req.Image != spec.Image {
			unsupported("image", caps.Images)
		}
		spec.Image = *req.Image
	}
	if req.MemoryLimit != nil {
		n, err := parseMemory(*req.MemoryLimit)
		if err != nil {
			errs = append(errs, err)
		}
		if err == nil && n <= 0 {
			bad("memory_limit must be positive")
		}
		spec.MemoryLimit = n
		unsupported("memory_limit", caps.MemoryLimit)
	}
	// Zero means "the default" in a Spec; a request that says 0 means it,
	// so it is refused rather than silently replaced.
	if req.CPULimit != nil {
		if *req.CPULimit <= 0 {
			bad("cpu_limit %g must be positive", *req.CPULimit)
		}
		spec.CPULimit = *req.CPULimit
		unsupported("cpu_limit", caps.CPULimit)
	}
	if req.PidsLimit != nil {
		if *req.PidsLimit <= 0 {
			bad("pids_limit %d must be positive", *req.PidsLimit)
		}
		spec.PidsLimit = *req.PidsLimit
		unsupported("pids_limit", caps.PidsLimit)
	}
	if req.Timeout != nil {
		if t := *req.Timeout; !(t > 0 && t <= maxTimeoutSeconds) {
			bad("timeout %g s is outside (0, %d]", t, maxTimeoutSeconds)
		} else {
			spec.Timeout = seconds(t)
		}
	}
	if req.IdleTimeout != nil {
		if t := *req.IdleTimeout; !(t > 0 && t <= maxIdleTimeoutSeconds) {
			bad("idle_timeout %g s is outside (0, %d]", t, maxIdleTimeoutSeconds)
		} else {
			idle = seconds(t)
		}
	}
	if req.EnableNetwork != nil {
		spec.Network = *req.EnableNetwork
		unsupported("enable_network", caps.NetworkToggle)
	}
	if req.EnvironmentVariables != nil {
		if spec.Env == nil {
			spec.Env = map[string]string{}
		}
		maps.Copy(spec.Env, req.EnvironmentVariables)
	}
	addMount := func(dir string, readOnly bool) {
		if dir == "" {
			bad("an additional directory is empty")
			return
		}
		if filepath.IsAbs(dir) {
			dir = filepath.Clean(dir)
		}
		m := sandbox.Mount{Source: dir, Target: dir, ReadOnly: readOnly}
		if slices.Contains(spec.Mounts, m) {
			return // configured already
		}
		spec.Mounts = append(spec.Mounts, m)
	}
	for _, d := range req.AdditionalReadDirs {
		addMount(d, true)
	}
	for _, d := range req.AdditionalWriteDirs {
		addMount(d, false)
	}
	if len(req.AdditionalReadDirs)+len(req.AdditionalWriteDirs) > 0 {
		unsupported("additional directories", caps.Mounts)
	}
	if req.WorkspacePath != nil {
		ws := *req.WorkspacePath
		if filepath.IsAbs(ws) {
			ws = filepath.Clean(ws)
		}
		if ws == "" {
			bad("workspace_path is empty")
		}
		spec.WorkspaceDir = ws
	}
	if req.WorkspaceSize != nil {
		n, err := config.ParseBytes(string(*req.WorkspaceSize))
		switch {
		case err != nil:
			bad("workspace_size: %v", err)
		case n <= 0:
			bad("workspace_size must be positive")
		case req.WorkspacePath != nil:
			bad("workspace_size bounds the sandbox's private workspace; a workspace_path is a directory of yours and is not bounded")
		default:
			spec.WorkspaceSize = n
			unsupported("workspace_size", caps.WorkspaceQuota)
		}
	}
	if spec.WorkspaceDir != "" || p != nil && !caps.WorkspaceQuota && req.WorkspaceSize == nil {
		// A directory of the caller's is not bounded; nor, silently, any
		// workspace where the configured default cannot be enforced
		// (warden doctor says why).
		spec.WorkspaceSize = 0
	}
	if req.WorkspaceMountPath != nil {
		if err := sandbox.ValidateWorkspacePath(*req.WorkspaceMountPath); err != nil {
			bad("workspace_mount_path %q must be a clean absolute path outside the system directories", *req.WorkspaceMountPath)
		} else {
			spec.WorkspacePath = *req.WorkspaceMountPath
		}
	}

	spec = spec.WithDefaults()
	if err := spec.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return sandbox.Spec{}, 0, err
	}
	requested := slices.Concat(req.AdditionalReadDirs, req.AdditionalWriteDirs)
	if req.WorkspacePath != nil {
		requested = append(requested, *req.WorkspacePath)
	}
	if err := checkHostDirs(s.opts.AllowedHostDirs, requested); err != nil {
		return sandbox.Spec{}, 0, err
	}
	return spec, idle, nil
}

// hostDirError refuses a host directory outside SANDBOX__ALLOWED_HOST_DIRS.
type hostDirError struct{ dir string }

func (e *hostDirError) Error() string {
	return fmt.Sprintf("host directory %q is outside the allowed host directories: %v", e.dir, sandbox.ErrDenied)
}
func (e *hostDirError) Rule() string { return "allowed_host_dirs" }
func (e *hostDirError) Reason() string {
	return fmt.Sprintf("%s is not within SANDBOX__ALLOWED_HOST_DIRS", e.dir)
}
func (e *hostDirError) Unwrap() error { return sandbox.ErrDenied }

// checkHostDirs refuses any of dirs that does not lie within one of
// allowed, after resolving symbolic links on both sides (a link inside an
// allowed directory pointing elsewhere is refused). No allowed list allows
// everything.
func checkHostDirs(allowed, dirs []string) error {
	if len(allowed) == 0 {
		return nil
	}
	resolve := func(p string) string {
		p = filepath.Clean(p)
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r
		}
		return p
	}
	roots := make([]string, len(allowed))
	for i, a := range allowed {
		roots[i] = resolve(a)
	}
	for _, d := range dirs {
		r := resolve(d)
		if !slices.ContainsFunc(roots, func(root string) bool {
			return r == root || strings.HasPrefix(r, strings.TrimSuffix(root, "/")+"/")
		}) {
			return &hostDirError{dir: d}
		}
	}
	return nil
}

// parseMemory reads memory_limit: "512m"-style, or digits alone for bytes
// (a JSON integer arrives as its digits).
func parseMemory(m api.ByteSize) (int64, error) {
	n, err := config.ParseBytes(string(m))
	if err != nil {
		return 0, fmt.Errorf("memory_limit: %w", err)
	}
	return n, nil
}

// seconds converts a positive number of seconds to a duration of at least
// a millisecond: a tiny timeout must not round to zero, which means "the
// default".
func seconds(s float64) time.Duration {
	d := time.Duration(s * float64(time.Second))
	if s > 0 && d < time.Millisecond {
		d = time.Millisecond
	}
	return d
}
