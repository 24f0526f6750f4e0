// Package server serves Warden's HTTP API (docs/api.md) over a
// [session.Manager]: sandbox lifecycle, executions (JSON or a
// server-sent-event stream), environment variables, workspace files, status,
// an OpenAPI document and Prometheus metrics.
//
// Guarantees: every error is a JSON body {"error":{"code","message"}} whose
// status comes from one table (statusFor) over the sandbox error classes;
// internal errors reach the client only as "internal error". Every response
// carries X-Request-ID. When keys are configured, every route but GET /health
// requires a bearer key, compared in constant time. Keys, environment values,
// request bodies and query strings are never logged. File operations go
// through [os.Root] on the sandbox's host workspace, so no path, however
// formed and whatever symlinks the sandboxed code planted, reaches outside it.
//
// The package holds no business logic: it decodes and checks requests, calls
// the Manager and encodes the answer. It never imports a concrete provider.
package server
