package sandbox

import "errors"

// Error classes. Providers wrap them with %w; callers match them with
// errors.Is and never with the error text. The HTTP layer maps each class to
// one status code.
var (
	// ErrNotFound: the sandbox (or file) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: the request or spec is malformed or out of range.
	ErrInvalid = errors.New("invalid argument")
	// ErrConflict: the operation conflicts with the sandbox's state, for
	// example an execution already running where concurrent ones are refused.
	ErrConflict = errors.New("conflict")
	// ErrDenied: a policy refused the request.
	ErrDenied = errors.New("denied by policy")
	// ErrDisabled: the provider exists but the operator has not enabled it.
	ErrDisabled = errors.New("disabled")
	// ErrUnsupported: the backend cannot do this on this system.
	ErrUnsupported = errors.New("unsupported")
	// ErrUnavailable: the backend is not reachable (daemon down, binary
	// missing). Unlike ErrUnsupported it may succeed later.
	ErrUnavailable = errors.New("backend unavailable")
	// ErrLimit: a configured limit (number of sandboxes, request size) was
	// reached.
	ErrLimit = errors.New("limit reached")
)
